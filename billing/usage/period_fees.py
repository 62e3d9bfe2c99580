"""A period's fixed fees as its invoices bill them: base fee and seats in
advance, for the share of a whole period a part is (a calendar month's first
period, a plan change), at the seats held when the part starts; a seat change
charged or credited from its moment to the period's end on the next invoice
written; none at all in a trial. The period statement (billing.usage.statement)
adds these up, and the invoices that write them (the start, the close, a plan
change, a cancel) take each rule from here."""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.models import Subscription, SubscriptionChange
from common import customer_text, rawsql
from common.money import quantize_money
from common.periods import period_containing, period_share
from common.vocabulary import LineKind
from plans import rating
from plans.overrides import terms_spec
from plans.rating import LineInput
from plans.validation import VersionSpec


def _period(subscription: Subscription, period) -> tuple[datetime, datetime]:
    if period is None:
        return subscription.current_period_start, subscription.current_period_end
    return period


def remaining_fraction(
    subscription: Subscription, spec: VersionSpec, at: datetime, *, period=None
) -> Decimal:
    """The part of a whole period at `spec` from `at` to the end of `period`
    (start, end), the current one by default (Subscription.whole_period: of a
    month in a calendar subscription's first). From the period's start: the part
    its fixed fees are, less than 1 for a calendar-anchored subscription's first
    period, the rest of a month."""
    start, end = _period(subscription, period)
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return period_share(at, end, whole=whole)


def proration_text(
    subscription: Subscription,
    spec: VersionSpec,
    at: datetime,
    *,
    period=None,
    whole_price: Decimal | None = None,
) -> str:
    """What remaining_fraction prorates, as billed, in the customer's time zone
    (customer_text.proration): '16 Nov 14:05 - 30 Nov 2026, 0.4803 of Nov 2026',
    its share written so that it times `whole_price` (the line's fee for the
    whole period) gives the line's amount."""
    start, end = _period(subscription, period)
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return customer_text.proration(
        at,
        end,
        whole=whole,
        zone=customer_text.customer_zone(subscription.customer),
        whole_price=whole_price,
        currency=spec.currency,
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
    """The seats the subscription held at `at`: its seats now less what each of
    `changes` (all its seat changes from `at` or before, seat_changes) effective
    at or after `at` added, whatever order they were made in (one may be dated
    before another made earlier)."""
    later = (c.details["to"] - c.details["from"] for c in changes if c.effective_at >= at)
    return subscription.seats - sum(later)


def seats_held(subscription: Subscription, at: datetime) -> int:
    """The seats the subscription held at `at` (seats_at, its changes read)."""
    return seats_at(subscription, seat_changes(subscription, since=at), at)


def seat_change_lines(
    subscription: Subscription,
    spec: VersionSpec,
    changes: list[SubscriptionChange],
    *,
    since: datetime,
    until: datetime,
    period=None,
) -> list[LineInput]:
    """Of `changes`, those made in [since, until), each prorated from its moment
    to the end of `period` (start, end; the current one by default) at `spec`'s
    seat price. They are billed on the next
    invoice written: the close, or an immediate plan change or cancel, whose
    credit then covers the seats held for the rest of the period."""
    if not spec.seat_price:
        return []
    end = _period(subscription, period)[1]
    lines = []
    for change in changes:
        if not since <= change.effective_at < until:
            continue
        delta = change.details["to"] - change.details["from"]
        share = remaining_fraction(subscription, spec, change.effective_at, period=period)
        quantity = delta * share
        lines.append(
            LineInput(
                LineKind.PRORATION_CHARGE if delta > 0 else LineKind.PRORATION_CREDIT,
                _("Seats {old} to {new}, {days}").format(
                    old=customer_text.quantity(change.details["from"]),
                    new=customer_text.quantity(change.details["to"]),
                    days=proration_text(
                        subscription,
                        spec,
                        change.effective_at,
                        period=period,
                        whole_price=delta * spec.seat_price,
                    ),
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


def version_name(version) -> str:
    """The plan with its version, 'Chat Growth (v2)': where two versions of a plan
    meet on one invoice (a plan change), each side says which it is."""
    return _("{plan} (v{number})").format(plan=version.plan.name, number=version.number)


def line_inputs(rated: list[LineInput], start=None, end=None) -> list[LineInput]:
    """The rated lines, for the service period [start, end)."""
    return [replace(r, period_start=start, period_end=end) for r in rated]


def overrides_next(subscription: Subscription, version) -> dict:
    """The overrides of the subscription's next period on `version`: those set
    for it, else the current ones while the version stays; a move to another
    version drops them unless it repeats them (it sets those for the next
    period)."""
    if version.pk != (subscription.scheduled_version_id or subscription.version_id):
        return {}  # a preview of a move elsewhere
    if subscription.next_overrides is not None:
        return subscription.next_overrides
    return subscription.overrides if version.pk == subscription.version_id else {}


def next_period(
    subscription: Subscription, spec: VersionSpec, *, after: datetime | None = None
) -> tuple[datetime, datetime]:
    """The period of the subscription's schedule (on `spec`'s interval, in the
    customer's zone) that starts at `after`, a period boundary: by default its
    current period's end."""
    return period_containing(
        subscription.anchor_at,
        customer_text.customer_zone(subscription.customer),
        interval=spec.interval,
        calendar_aligned=subscription.billing_anchor == Subscription.CALENDAR,
        moment=subscription.current_period_end if after is None else after,
    )


def next_period_fixed_lines(*, subscription: Subscription, version) -> list[LineInput]:
    """The fixed fees (base fee, seats) of the period after the current one on
    `version`, as the close bills them in advance. Reads only: a migration at
    period end previews these."""
    spec = terms_spec(version=version, overrides=overrides_next(subscription, version))
    start, end = next_period(subscription, spec)
    # The period's invoice carries the version being left too (its usage): the
    # fees of another version of the same plan say which version they are.
    current = subscription.version
    versions_meet = version.pk != current.pk and version.plan_id == current.plan_id
    fixed = rating.fixed_lines(
        spec,
        plan_name=version_name(version) if versions_meet else version.plan.name,
        seats=subscription.seats,
        label=customer_text.period(start, end, customer_text.customer_zone(subscription.customer)),
    )
    # Priced by `version`, which the subscription moves to only after the invoice is written.
    return [replace(line, version=version) for line in line_inputs(fixed, start, end)]


def closing_lines(*, subscription: Subscription, lines: list[LineInput]) -> list[LineInput]:
    """What the invoice closing the subscription's current period bills before
    its discount, from `lines` (the period statement's closing lines, and the
    close's late usage): those, then the next period's fixed fees in advance (at
    the version it runs on next), none when the subscription ends with the
    period. The close writes them and the statement shares their discount alike."""
    if subscription.cancel_at_period_end:
        return list(lines)
    version = subscription.scheduled_version or subscription.version
    return [*lines, *next_period_fixed_lines(subscription=subscription, version=version)]
