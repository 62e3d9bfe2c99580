"""A subscription's life: create (with its start invoice), change plan (now,
prorated, or at period end), cancel, and change seats. Each change is recorded
as a SubscriptionChange and takes the subscription's row lock."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from billing.invoicing.close import change_invoice_finalize_on_commit, subscription_start_invoice
from billing.invoicing.commit_true_ups import commit_true_ups_write
from billing.invoicing.discounts import discounts_end
from billing.invoicing.period_lines import (
    UsageSoFar,
    bill_usage,
    record_billed,
    usage_so_far,
)
from billing.invoicing.unused_time import (
    CANCEL,
    PLAN_CHANGE,
    issue_unused_credit,
    plan_unused_credit,
)
from billing.locks import subscription_lock
from billing.models import (
    Subscription,
    SubscriptionChange,
)
from billing.notifications.entitlements import entitlements_announce, entitlements_of
from billing.subscriptions import refusals
from billing.subscriptions.checks import (
    MAX_SEATS,
    check_in_period,
    check_not_subscribed,
    check_seats,
    plan_change_check,
    seats_change_check,
    subscription_create_check,
)
from billing.subscriptions.deals import overrides_check
from billing.usage.period_fees import (
    proration_text,
    remaining_fraction,
    seats_held,
    version_name,
)
from common import customer_text
from common.customer_text import customer_zone
from common.errors import Conflict, InvalidRequest
from common.periods import period_boundary
from common.vocabulary import LineKind
from customers.locks import customer_lock
from customers.models import Customer
from invoices.models import Invoice
from invoices.services import invoice_write_draft
from plans import rating
from plans.models import Plan
from plans.overrides import Overrides, subscription_spec, terms_spec
from plans.rating import LineInput
from plans.validation import VersionSpec
from wallets.commits import EXPIRE, LEFTOVERS, commits_end_early

__all__ = [
    "MAX_SEATS",
    "plan_change_check",
    "seats_change_check",
    "subscription_create_check",
]


def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    start: datetime,
    version_number: int | None = None,
    seats: int = 1,
    billing_anchor: str = Subscription.ANNIVERSARY,
    overrides: Overrides | None = None,
) -> Subscription:
    """Subscribe a customer to a published version of a plan (the latest when
    `version_number` is None), from `start`, which may be in the past, with the
    deal's `overrides` of its terms from the start. The first period starts at
    `start`, and its fixed fees are invoiced in advance (a draft, finalized by
    the close). Locks the customer row: a customer has at most one
    live subscription (also enforced by a partial unique index)."""
    version = subscription_create_check(
        customer=customer,
        plan=plan,
        version_number=version_number,
        seats=seats,
        billing_anchor=billing_anchor,
    )
    stored_overrides = overrides_check(version=version, overrides=overrides)
    trialing = version.trial_days > 0
    # A trial is a first period of its own, without fixed fees; periods then run
    # from its end.
    trial_end = start + timedelta(days=version.trial_days) if trialing else None
    anchor = trial_end or start
    period_end = trial_end or period_boundary(
        start,
        customer_zone(customer),
        interval=version.interval,
        calendar_aligned=billing_anchor == Subscription.CALENDAR,
        k=1,
    )
    try:
        with transaction.atomic():
            customer_lock(customer.pk)
            check_not_subscribed(customer)
            subscription = Subscription.objects.create(
                customer=customer,
                version=version,
                status=Subscription.TRIALING if trialing else Subscription.ACTIVE,
                billing_anchor=billing_anchor,
                started_at=start,
                anchor_at=anchor,
                trial_end=trial_end,
                current_period_start=start,
                current_period_end=period_end,
                seats=seats,
                overrides=stored_overrides,
            )
            SubscriptionChange.objects.create(
                subscription=subscription,
                kind=SubscriptionChange.CREATED,
                to_version=version,
                effective_at=start,
                details={"seats": seats, "billing_anchor": billing_anchor},
            )
            subscription_start_invoice(subscription=subscription)
    except IntegrityError as exc:  # a concurrent create won the partial unique index
        raise Conflict(
            f"customer {customer.external_id!r} already has a live subscription",
            **refusals.refused("customer", refusals.already_subscribed_text(customer)),
        ) from exc
    return subscription


def _proration(
    subscription: Subscription,
    spec: VersionSpec,
    *,
    at: datetime,
    kind: str,
    sign: int,
    version,
    seats: int,
) -> list[LineInput]:
    """The fixed fees of `spec` (of `version`) for the rest of the period from
    `at`, as credit (sign -1) or charge (sign +1) lines, each rounded once. Each
    names the plan's version: a plan change puts two on one invoice. At `seats`,
    those held at `at` (period_fees.seats_held): a seat change made from then on
    is billed as its own line."""
    end = subscription.current_period_end
    fixed = rating.fixed_lines(
        spec,
        plan_name=version.plan.name,
        seats=seats,
        label="",
        fraction=remaining_fraction(subscription, spec, at),
    )
    return [
        LineInput(
            kind,
            customer_text.proration_description(
                fee_kind=line.kind,
                sign=sign,
                name=version_name(version),
                seats=seats,
                # Its share written to give its amount: of seats x seat price, or the base fee.
                days=proration_text(
                    subscription,
                    spec,
                    at,
                    whole_price=line.unit_price * (seats if line.kind == LineKind.SEATS else 1),
                ),
            ),
            None,
            line.quantity,
            line.unit_price,
            sign * line.amount,
            at,
            end,
            per=line.per,
            version=version,
            share=line.share,
        )
        for line in fixed
    ]


@dataclass(frozen=True)
class PlanChangeLines:
    """What an immediate plan change invoices, in the invoice's order."""

    # Usage (and seat changes) up to the change, at the old version's prices.
    so_far: list[LineInput]
    # The unused part of the old version's fixed fees, negative.
    credit: list[LineInput]
    # The new version's fixed fees for the rest of the period.
    charge: list[LineInput]
    # What `so_far` bills per meter (recorded for late usage) and draws from a commit.
    usage: UsageSoFar

    @property
    def lines(self) -> list[LineInput]:
        return [*self.so_far, *self.credit, *self.charge]


def plan_change_lines(
    *, subscription: Subscription, version, at: datetime, overrides: dict | None = None
) -> PlanChangeLines:
    """The lines an immediate change of the subscription to `version` (with the
    stored `overrides` it repeats; none by default: a plan change drops them) at
    `at` invoices, for a change plan_change_check accepts. Reads only: a bulk
    migration previews exactly what subscription_change_plan invoices."""
    with customer_text.speaking(subscription.customer.locale):
        usage = usage_so_far(subscription, until=at)
        credit: list[LineInput] = []
        charge: list[LineInput] = []
        if subscription.bills_fixed_fees:
            old = subscription.version
            seats = seats_held(subscription, at)
            credit = _proration(
                subscription,
                subscription_spec(subscription),
                at=at,
                kind=LineKind.PRORATION_CREDIT,
                sign=-1,
                version=old,
                seats=seats,
            )
            charge = _proration(
                subscription,
                terms_spec(version=version, overrides=overrides),
                at=at,
                kind=LineKind.PRORATION_CHARGE,
                sign=1,
                version=version,
                seats=seats,
            )
    return PlanChangeLines(usage.lines, credit, charge, usage)


def subscription_change_plan(
    *,
    subscription: Subscription,
    version,
    effective: str,
    at: datetime,
    overrides: Overrides | None = None,
) -> tuple[Subscription, Invoice | None]:
    """Move a subscription to another published version, dropping its overrides
    unless `overrides` repeats them (against the new version).

    `immediate`: an invoice now with the usage so far at the old version's
    prices, a credit for the unused part of the old fixed fees and a charge for
    the rest of the period on the new one, prorated by the second (the lines of
    plan_change_lines), finalized once this commits when there is no grace; the
    period end stays. `period_end`: nothing now; the
    close applies it. Both leave a history row. Locks the subscription row."""
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    with transaction.atomic():
        # The customer before its subscription: the credit note for unused time
        # locks it (billing.locks).
        customer_lock(subscription.customer_id)
        subscription = subscription_lock(subscription.pk)
        # The version as stored now, not as the caller last saw it.
        version = type(version).objects.select_related("plan").get(pk=version.pk)
        plan_change_check(subscription=subscription, version=version, effective=effective, at=at)
        stored_overrides = overrides_check(version=version, overrides=overrides)
        old = subscription.version
        change = SubscriptionChange(
            subscription=subscription,
            kind=SubscriptionChange.PLAN_CHANGE,
            from_version=old,
            to_version=version,
            how=effective,
        )
        if effective == "period_end":
            subscription.scheduled_version = version
            subscription.next_overrides = stored_overrides
            subscription.save(update_fields=["scheduled_version", "next_overrides"])
            change.effective_at = subscription.current_period_end
            change.save()
            return subscription, None
        before = entitlements_of(subscription)
        planned = plan_change_lines(
            subscription=subscription, version=version, at=at, overrides=stored_overrides
        )
        unused = plan_unused_credit(subscription=subscription, credit=planned.credit, at=at)
        invoice = _change_invoice(
            subscription,
            reason=Invoice.PLAN_CHANGE,
            lines=[*planned.so_far, *unused.left, *planned.charge],
            usage=planned.usage,
            at=at,
        )
        subscription.version = version
        subscription.overrides, subscription.next_overrides = stored_overrides, None
        subscription.usage_from = at
        subscription.scheduled_version = None
        changed = ["version", "overrides", "next_overrides", "usage_from", "scheduled_version"]
        subscription.save(update_fields=changed)
        change.effective_at = at
        change.save()
        entitlements_announce(
            subscription=subscription,
            before=before,
            reason="plan_change",
            now=at,
            change_id=change.pk,
        )
        _change_documents(change, invoice, unused, cause=PLAN_CHANGE, at=at)
    return subscription, invoice


def _change_invoice(
    subscription: Subscription, *, reason: str, lines: list[LineInput], usage: UsageSoFar, at
) -> Invoice | None:
    """The invoice of an immediate change at `at` (usage so far, the new fees,
    what no credit note can take), finalized once this commits when there is no
    grace; None when it has nothing to bill (no line, no commit drawn from): the
    unused time is then only a credit note. Records what the usage billed."""
    invoice = None
    if lines or usage.commit is not None:
        invoice = invoice_write_draft(
            customer=subscription.customer,
            subscription=subscription,
            reason=reason,
            period_start=at,
            period_end=subscription.current_period_end,
            lines=lines,
            now=at,
            # The terms the usage so far was priced at (the new fees say their own).
            version=subscription.version,
        )
        change_invoice_finalize_on_commit(invoice=invoice)
    record_billed(subscription, until=at, so_far=usage, invoice=invoice)
    return invoice


def _change_documents(change, invoice, unused, *, cause: str, at) -> None:
    """The credit note of the unused time (billing.invoicing.unused_time), last in
    the change's transaction, and the documents named on the change's history row."""
    note = issue_unused_credit(credit=unused, cause=cause, now=at)
    change.details = {
        **change.details,
        "invoice": invoice.pk if invoice else None,
        "total": str(invoice.total) if invoice else None,
        "credit_note": note.pk if note else None,
    }
    change.save(update_fields=["details"])


def cancel_credit_lines(*, subscription: Subscription, at: datetime) -> list[LineInput]:
    """The credit an immediate cancel at `at` gives for the unused part of the
    fixed fees (none in a trial), negative. Reads only: the admin's cancel page
    shows it with usage_so_far, the lines the cancel invoices."""
    if not subscription.bills_fixed_fees:
        return []
    with customer_text.speaking(subscription.customer.locale):
        return _proration(
            subscription,
            subscription_spec(subscription),
            at=at,
            kind=LineKind.PRORATION_CREDIT,
            sign=-1,
            version=subscription.version,
            seats=seats_held(subscription, at),
        )


def subscription_cancel(
    *, subscription: Subscription, effective: str, at: datetime, commit_leftover: str = EXPIRE
) -> tuple[Subscription, Invoice | None]:
    """Cancel. `period_end`: the close ends it, billing the period's usage and no
    further fees. `immediate`: an invoice now with the usage so far and a credit
    for the unused part of the fixed fees, finalized once this commits when there
    is no grace; a commit ends with it (`commit_leftover`: its access left
    expires, or is credited; wallets.commits). A history row either way."""
    if commit_leftover not in LEFTOVERS:
        raise InvalidRequest(
            "commit_leftover must be expire or credit", fields={"commit_leftover": ["unknown"]}
        )
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    with transaction.atomic():
        # The customer before its subscription: the credit note for unused time
        # locks it (billing.locks).
        customer_lock(subscription.customer_id)
        subscription = subscription_lock(subscription.pk)
        if subscription.status not in Subscription.LIVE:
            raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
        change = SubscriptionChange(
            subscription=subscription,
            kind=SubscriptionChange.CANCEL,
            from_version=subscription.version,
            how=effective,
        )
        if subscription.cancel_at_period_end:
            raise Conflict(f"subscription {subscription.pk} ends with its period already")
        if effective == "period_end":
            subscription.cancel_at_period_end = True
            subscription.save(update_fields=["cancel_at_period_end"])
            change.effective_at = subscription.current_period_end
            change.save()
            return subscription, None
        check_in_period(subscription, at, after_change=True)
        before = entitlements_of(subscription)
        with customer_text.speaking(subscription.customer.locale):
            so_far = bill_usage(subscription, until=at)
            credit = cancel_credit_lines(subscription=subscription, at=at)
        unused = plan_unused_credit(subscription=subscription, credit=credit, at=at)
        invoice = _change_invoice(
            subscription,
            reason=Invoice.CANCEL,
            lines=[*so_far.lines, *unused.left],
            usage=so_far,
            at=at,
        )
        subscription.status = Subscription.CANCELED
        subscription.canceled_at = subscription.ended_at = at
        subscription.save(update_fields=["status", "canceled_at", "ended_at"])
        discounts_end(subscription=subscription, at=at)  # nothing left to discount
        ended = commits_end_early(subscription=subscription, at=at, leftover=commit_leftover)
        commit_true_ups_write(ended, subscription, now=at)
        change.effective_at = at
        change.save()
        entitlements_announce(
            subscription=subscription, before=before, reason="ended", now=at, change_id=change.pk
        )
        _change_documents(change, invoice, unused, cause=CANCEL, at=at)
    return subscription, invoice


def subscription_set_seats(*, subscription: Subscription, seats: int, at: datetime) -> Subscription:
    """Change the seat count from `at`. The difference for the rest of the period
    is charged or credited, prorated by the second, on the invoice that closes
    the period; the next periods bill the new count."""
    check_seats(seats)
    with transaction.atomic():
        subscription = subscription_lock(subscription.pk)
        seats_change_check(subscription=subscription, seats=seats, at=at)
        if seats == subscription.seats:
            return subscription
        SubscriptionChange.objects.create(
            subscription=subscription,
            kind=SubscriptionChange.SEATS,
            from_version=subscription.version,
            to_version=subscription.version,
            effective_at=at,
            details={"from": subscription.seats, "to": seats},
        )
        subscription.seats = seats
        subscription.save(update_fields=["seats"])
    return subscription
