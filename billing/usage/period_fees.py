"""A period's fixed fees as its invoices bill them: base fee and seats in
advance, for the share of a whole period a part is (a calendar month's first
period, a plan change), at the seats held when the part starts; a seat change
charged or credited from its moment to the period's end on the next invoice
written; none at all in a trial. The period statement (billing.usage.statement)
adds these up, and the invoices that write them (the start, the close, a plan
change, a cancel) take each rule from here."""

from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.core import customer_text, rawsql
from billing.core.money import quantize_money
from billing.core.periods import period_share
from billing.core.vocabulary import LineKind
from billing.models import Subscription, SubscriptionChange
from billing.rating.lines import LineInput
from plans.validation import VersionSpec


def remaining_fraction(subscription: Subscription, spec: VersionSpec, at: datetime) -> Decimal:
    """The part of a whole period at `spec` from `at` to the current period's end
    (Subscription.whole_period: of a month in a calendar subscription's first).
    From the period's start: the part its fixed fees are, less than 1 for a
    calendar-anchored subscription's first period, the rest of a month."""
    start, end = subscription.current_period_start, subscription.current_period_end
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return period_share(at, end, whole=whole)


def proration_text(subscription: Subscription, spec: VersionSpec, at: datetime) -> str:
    """What remaining_fraction prorates, as days in the customer's time zone:
    '15 of 30 days (16 Nov - 30 Nov 2026)'."""
    start, end = subscription.current_period_start, subscription.current_period_end
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return customer_text.proration(
        at, end, whole=whole, zone=customer_text.customer_zone(subscription.customer)
    )


def seat_changes(subscription: Subscription, *, since: datetime) -> list[SubscriptionChange]:
    """The subscription's seat changes effective from `since`, in the order made.
    Fixed SQL for the ids: most periods have none."""
    found = rawsql.ids(
        "SELECT id FROM billing_subscriptionchange WHERE subscription_id = %s AND kind = %s "
        "AND effective_at >= %s",
        [subscription.pk, SubscriptionChange.SEATS, since],
    )
    if not found:
        return []
    return list(SubscriptionChange.objects.filter(pk__in=found).order_by("effective_at", "id"))


def seats_at(subscription: Subscription, changes: list[SubscriptionChange], at: datetime) -> int:
    """The seats the subscription held at `at`: what the first of `changes` (all
    its seat changes from before `at`, seat_changes) made at or after `at`
    changed from; its seats now when none was."""
    for change in changes:
        if change.effective_at >= at:
            return change.details["from"]
    return subscription.seats


def seat_change_lines(
    subscription: Subscription,
    spec: VersionSpec,
    changes: list[SubscriptionChange],
    *,
    since: datetime,
    until: datetime,
) -> list[LineInput]:
    """Of `changes`, those made in [since, until), each prorated from its moment
    to the period's end at `spec`'s seat price. They are billed on the next
    invoice written: the close, or an immediate plan change or cancel, whose
    credit then covers the seats held for the rest of the period."""
    if not spec.seat_price:
        return []
    end = subscription.current_period_end
    lines = []
    for change in changes:
        if not since <= change.effective_at < until:
            continue
        delta = change.details["to"] - change.details["from"]
        share = remaining_fraction(subscription, spec, change.effective_at)
        quantity = delta * share
        lines.append(
            LineInput(
                LineKind.PRORATION_CHARGE if delta > 0 else LineKind.PRORATION_CREDIT,
                _("Seats {old} to {new}, {days}").format(
                    old=customer_text.quantity(change.details["from"]),
                    new=customer_text.quantity(change.details["to"]),
                    days=proration_text(subscription, spec, change.effective_at),
                ),
                None,
                quantity,
                spec.seat_price,
                quantize_money(quantity * spec.seat_price, spec.currency),
                change.effective_at,
                end,
                share=share,
            )
        )
    return lines
