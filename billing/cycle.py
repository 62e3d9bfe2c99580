"""The billing cycle (services): the invoice a subscription starts with, the
period close, late usage, and the finalization of drafts.

Base fee and seats are billed in advance, usage in arrears: the invoice that
closes a period carries its usage and the next period's fixed fees. Each
subscription's period closes in its own transaction under a row lock, and a
unique constraint on (subscription, reason, period) makes a rerun, a resumed
run or a concurrent run write every invoice once.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from billing import rating
from billing.core.errors import Conflict, InvalidRequest
from billing.core.periods import month_start, period_containing, period_share
from billing.models import BilledPeriod, Subscription, SubscriptionChange
from billing.selectors import usage_quantities
from billing.usage.metering import meter_cache
from invoices.models import Invoice
from invoices.services import LineInput, invoice_write_draft, invoices_finalize_due
from plans.selectors import version_spec
from plans.validation import VersionSpec
from wallets.services import period_credits_grant

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
ONE = Decimal(1)
TRUE_UP = "minimum_commitment"


@dataclass(frozen=True)
class CloseResult:
    periods_closed: int
    invoices_finalized: int


def label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """'Nov 2026' for a calendar month, '15 Nov 2026 to 15 Dec 2026' otherwise."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if month_start(local_start) == start and month_start(local_start, months=1) == end:
        return f"{local_start:%b %Y}"
    return f"{local_start:%d %b %Y} to {local_end:%d %b %Y}"


def _zone(subscription: Subscription) -> ZoneInfo:
    return ZoneInfo(subscription.customer.timezone)


def _plan_name(version) -> str:
    return version.plan.name


def _lines(rated: list[rating.RatedLine], start=None, end=None) -> list[LineInput]:
    return [
        LineInput(r.kind, r.description, r.meter, r.quantity, r.unit_price, r.amount, start, end)
        for r in rated
    ]


def first_period_fraction(subscription: Subscription, spec: VersionSpec) -> Decimal:
    """The part of a whole period that the subscription's current period is, by
    the second: less than 1 for a calendar-anchored subscription's first period,
    the rest of a month (Subscription.whole_period). Its fixed fees are that part."""
    start, end = subscription.current_period_start, subscription.current_period_end
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return period_share(start, end, whole=whole)


def grant_period_credits(subscription: Subscription, spec: VersionSpec) -> None:
    """The version's credits for the subscription's current period, expiring at its
    end (once per period: see wallets.services.period_credits_grant)."""
    if spec.credits_per_period:
        period_credits_grant(
            subscription=subscription,
            credits=spec.credits_per_period,
            period_start=subscription.current_period_start,
            period_end=subscription.current_period_end,
            now=subscription.current_period_start,
        )


def subscription_start_invoice(*, subscription: Subscription) -> Invoice | None:
    """The in-advance invoice of the first period: base fee and seats (prorated for
    a partial calendar month), and the plan's credits for it. None during a
    trial, which carries no fixed fee."""
    version = subscription.version
    spec = version_spec(version=version)
    grant_period_credits(subscription, spec)
    if subscription.status == Subscription.TRIALING:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    fixed = rating.fixed_lines(
        spec,
        plan_name=_plan_name(version),
        seats=subscription.seats,
        label=label(start, end, _zone(subscription)),
        fraction=first_period_fraction(subscription, spec),
    )
    invoice = invoice_write_draft(
        customer=subscription.customer,
        subscription=subscription,
        reason=Invoice.START,
        period_start=start,
        period_end=end,
        lines=_lines(fixed, start, end),
        now=start,
    )
    return invoice


def usage_by_meter(
    *, customer_id: int, meter_codes: Iterable[str], start: datetime, end: datetime
) -> dict[str, Decimal]:
    """The customer's quantity in [start, end) of each meter named (by code); a
    code that names no meter is left out."""
    by_code = {m.code: m for m in meter_cache.by_id().values()}
    meters = [by_code[code] for code in dict.fromkeys(meter_codes) if code in by_code]
    quantities = usage_quantities(customer_id=customer_id, meters=meters, start=start, end=end)
    return {m.code: quantities[m.id] for m in meters}


def usage_rated(
    spec: VersionSpec, *, quantities: dict[str, Decimal], share: Decimal = ONE
) -> list[rating.RatedLine]:
    """Pure: the in-arrears lines of these quantities (by meter code) at `spec`,
    with the minimum commitment counted for `share` of a period."""
    return rating.usage_and_true_up(spec, quantities=quantities, share=share)


def period_rated(
    spec: VersionSpec,
    *,
    plan_name: str,
    seats: int,
    quantities: dict[str, Decimal],
    label: str,
    fraction: Decimal = ONE,
    fixed_fees: bool = True,
) -> list[rating.RatedLine]:
    """Pure: all that one period at `spec` bills, whichever invoice carries it:
    its fixed fees (in advance, on the invoice of the close before it; left out
    with `fixed_fees` False, as in a trial) and its usage with the minimum
    commitment true-up (in arrears, on its own close), fees and commitment for
    `fraction` of a whole period. Proration, seat changes within the period and
    late usage are not in it."""
    lines = []
    if fixed_fees:
        lines = rating.fixed_lines(
            spec, plan_name=plan_name, seats=seats, label=label, fraction=fraction
        )
    return lines + usage_rated(spec, quantities=quantities, share=fraction)


def rate_usage(
    *,
    subscription: Subscription,
    spec: VersionSpec,
    start: datetime,
    end: datetime,
    usage_from: datetime,
    usage_to: datetime | None = None,
) -> tuple[list[rating.RatedLine], dict]:
    """The usage lines of [usage_from, usage_to) (by default to the end) of the
    period [start, end) at `spec`, with the minimum commitment prorated to the
    part of the whole period that they cover (Subscription.whole_period: a
    calendar subscription's first period is part of a month); and what they bill
    per meter."""
    usage_to = usage_to or end
    by_meter = usage_by_meter(
        customer_id=subscription.customer_id,
        meter_codes=[c.meter for c in spec.charges],
        start=usage_from,
        end=usage_to,
    )
    whole = subscription.whole_period(start, end, interval=spec.interval)
    share = period_share(usage_from, usage_to, whole=whole)
    rated = usage_rated(spec, quantities=by_meter, share=share)
    billed: dict[str, dict] = {}
    for charge in spec.charges:
        amount = sum((r.amount for r in rated if r.meter == charge.meter), ZERO)
        billable = sum(
            (r.quantity for r in rated if r.meter == charge.meter and r.kind == "overage"), ZERO
        )
        billed[charge.meter] = {
            "quantity": str(by_meter.get(charge.meter, ZERO)),
            "billable": str(billable),
            "amount": str(amount),
        }
    billed[TRUE_UP] = {"amount": str(sum((r.amount for r in rated if r.kind == TRUE_UP), ZERO))}
    return rated, billed


def late_usage_lines(
    *, subscription: Subscription, before: datetime, zone: ZoneInfo
) -> list[LineInput]:
    """Usage that arrived after its period was billed: each recently billed
    period is rated again and the difference billed at that period's prices.
    Updates the periods' records so the same difference is never billed twice."""
    horizon = before - timedelta(days=settings.BILLING_LATE_EVENT_DAYS + 1)
    lines: list[LineInput] = []
    periods = (
        BilledPeriod.objects.select_for_update()
        .filter(subscription=subscription, period_end__lte=before, period_end__gt=horizon)
        .select_related("version__plan")
    )
    for billed_period in periods:
        spec = version_spec(version=billed_period.version)
        _, now_billed = rate_usage(
            subscription=subscription,
            spec=spec,
            start=billed_period.period_start,
            end=billed_period.period_end,
            usage_from=billed_period.usage_from,
            usage_to=billed_period.usage_to,
        )
        when = label(billed_period.period_start, billed_period.period_end, zone)
        prices = {c.meter: c.pricing for c in spec.charges}
        for meter, now_values in now_billed.items():
            was = billed_period.billed.get(meter, {"amount": "0", "billable": "0"})
            delta = Decimal(now_values["amount"]) - Decimal(was["amount"])
            if delta == 0:
                continue
            units = Decimal(now_values.get("billable", "0")) - Decimal(was.get("billable", "0"))
            pricing = prices.get(meter)
            unit_price = pricing.unit_price if pricing and pricing.scheme == "per_unit" else None
            what = "minimum commitment adjustment" if meter == TRUE_UP else meter
            lines.append(
                LineInput(
                    "late_usage",
                    f"Late usage for {when}: {what}",
                    None if meter == TRUE_UP else meter,
                    units if meter != TRUE_UP else Decimal(1),
                    unit_price if meter != TRUE_UP else delta,
                    delta,
                    billed_period.period_start,
                    billed_period.period_end,
                )
            )
        if now_billed != billed_period.billed:
            billed_period.billed = now_billed
            billed_period.save(update_fields=["billed"])
    return lines


def subscription_close_period(*, subscription_id: int, as_of: datetime) -> bool:
    """Close the subscription's current period if it ended at or before `as_of`:
    write its draft invoice (usage in arrears, late usage, the next period's fixed
    fees in advance), apply a change scheduled for the period's end, and advance.
    One transaction, the subscription row locked. False when nothing was due."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("customer", "version__plan", "scheduled_version__plan")
            .get(pk=subscription_id)
        )
        if subscription.status not in Subscription.LIVE or subscription.current_period_end > as_of:
            return False
        zone = _zone(subscription)
        start, end = subscription.current_period_start, subscription.current_period_end
        usage_from = subscription.usage_from or start
        lines = _bill_usage(subscription, until=end)
        lines += late_usage_lines(subscription=subscription, before=usage_from, zone=zone)
        next_version = subscription.scheduled_version or subscription.version
        next_spec = version_spec(version=next_version)
        next_start, next_end = _next_period(subscription, next_spec)
        if not subscription.cancel_at_period_end:
            lines += next_period_fixed_lines(subscription=subscription, version=next_version)
        invoice_write_draft(
            customer=subscription.customer,
            subscription=subscription,
            reason=Invoice.PERIOD,
            period_start=start,
            period_end=end,
            lines=lines,
            now=end,
        )
        if subscription.cancel_at_period_end:
            subscription.status = Subscription.ENDED
            subscription.ended_at = end
        else:
            if subscription.status == Subscription.TRIALING:
                subscription.status = Subscription.ACTIVE
            subscription.version = next_version
            subscription.current_period_start, subscription.current_period_end = (
                next_start,
                next_end,
            )
        subscription.scheduled_version = None
        subscription.usage_from = None
        subscription.save(
            update_fields=[
                "status",
                "ended_at",
                "version",
                "current_period_start",
                "current_period_end",
                "scheduled_version",
                "usage_from",
            ]
        )
        if subscription.status in Subscription.LIVE:
            grant_period_credits(subscription, next_spec)
    return True


def _next_period(subscription: Subscription, spec: VersionSpec) -> tuple[datetime, datetime]:
    return period_containing(
        subscription.anchor_at,
        _zone(subscription),
        interval=spec.interval,
        calendar_aligned=subscription.billing_anchor == Subscription.CALENDAR,
        moment=subscription.current_period_end,
    )


def next_period_fixed_lines(*, subscription: Subscription, version) -> list[LineInput]:
    """The fixed fees (base fee, seats) of the period after the current one on
    `version`, as the close bills them in advance. Reads only: a migration at
    period end previews these."""
    spec = version_spec(version=version)
    start, end = _next_period(subscription, spec)
    fixed = rating.fixed_lines(
        spec,
        plan_name=_plan_name(version),
        seats=subscription.seats,
        label=label(start, end, _zone(subscription)),
    )
    return _lines(fixed, start, end)


def drafts_finalize(*, as_of: datetime) -> int:
    """Finalize the drafts written at least BILLING_INVOICE_GRACE_HOURS before `as_of`."""
    cutoff = as_of - timedelta(hours=settings.BILLING_INVOICE_GRACE_HOURS)
    return invoices_finalize_due(cutoff=cutoff, now=as_of)


def periods_close(
    *, as_of: datetime, fail_at: int | None = None, processes: int = 1
) -> CloseResult:
    """Close every period that ended at or before `as_of`, one subscription and
    period per transaction, then finalize drafts past their grace. Safe to run
    any number of times, and to run again after a failure part way. With
    `processes` > 1 the due subscriptions are shared out among that many forked
    processes (the row locks keep them apart)."""
    if processes > 1:
        closed = _close_in_processes(as_of=as_of, processes=processes)
    else:
        with meter_cache.pinned():
            closed = _close_due(as_of=as_of, fail_at=fail_at)
    return CloseResult(closed, drafts_finalize(as_of=as_of))


def due_subscription_ids(*, as_of: datetime) -> list[int]:
    return list(
        Subscription.objects.filter(status__in=Subscription.LIVE, current_period_end__lte=as_of)
        .order_by("id")
        .values_list("id", flat=True)
    )


def subscriptions_close(*, subscription_ids: list[int], as_of: datetime) -> int:
    """Close the ended periods of these subscriptions (all of them, however many
    have ended). The unit of work a worker process or a Celery task takes."""
    closed = 0
    with meter_cache.pinned():
        for subscription_id in subscription_ids:
            while subscription_close_period(subscription_id=subscription_id, as_of=as_of):
                closed += 1
    return closed


def _close_shard(subscription_ids: list[int], as_of: datetime, results) -> None:
    results.put(subscriptions_close(subscription_ids=subscription_ids, as_of=as_of))


def _close_in_processes(*, as_of: datetime, processes: int) -> int:
    import multiprocessing

    from django.db import connections

    ids = due_subscription_ids(as_of=as_of)
    connections.close_all()  # each child opens its own connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(target=_close_shard, args=(ids[n::processes], as_of, results))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    closed = sum(results.get() for _ in children)
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a close process failed (exit {child.exitcode}); run it again")
    return closed


def _close_due(*, as_of: datetime, fail_at: int | None) -> int:
    closed = 0
    while True:
        due = due_subscription_ids(as_of=as_of)
        if not due:
            break
        progressed = False
        for subscription_id in due:
            if subscription_close_period(subscription_id=subscription_id, as_of=as_of):
                closed += 1
                progressed = True
                if fail_at is not None and closed == fail_at:
                    raise RuntimeError(f"injected failure after {closed} closed periods")
        if not progressed:
            break
    return closed


def _remaining_fraction(subscription: Subscription, spec: VersionSpec, at: datetime) -> Decimal:
    """The part of a whole period at `spec` from `at` to the current period's end
    (Subscription.whole_period: of a month in a calendar subscription's first)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return period_share(at, end, whole=whole)


def _check_in_period(subscription: Subscription, at: datetime, *, after_change: bool) -> None:
    """`at` lies in what is left of the current period. An immediate change or
    cancel (`after_change`) must come strictly after a previous immediate change:
    two at one instant would bill the same moment twice."""
    start = subscription.usage_from or subscription.current_period_start
    if not start <= at < subscription.current_period_end:
        raise InvalidRequest(
            f"'at' must lie in the current period, from {start.isoformat()} "
            f"to before {subscription.current_period_end.isoformat()}",
            fields={"at": ["outside the current period"]},
        )
    if after_change and subscription.usage_from is not None and at == subscription.usage_from:
        raise Conflict(
            f"the subscription changed plan at {at.isoformat()} already; a further change "
            "must come later",
            fields={"at": ["a change happened at this moment already"]},
        )


def _proration(
    subscription: Subscription, spec: VersionSpec, *, at: datetime, kind: str, sign: int, name: str
) -> list[LineInput]:
    """The fixed fees of `spec` for the rest of the period from `at`, as credit
    (sign -1) or charge (sign +1) lines, each rounded once."""
    end = subscription.current_period_end
    fixed = rating.fixed_lines(
        spec,
        plan_name=name,
        seats=subscription.seats,
        label=f"{at:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        fraction=_remaining_fraction(subscription, spec, at),
    )
    prefix = "Unused time on " if sign < 0 else "Remaining time on "
    return [
        LineInput(
            kind,
            prefix + line.description,
            None,
            line.quantity,
            line.unit_price,
            sign * line.amount,
            at,
            end,
        )
        for line in fixed
    ]


def _usage_so_far(subscription: Subscription, *, until: datetime) -> tuple[list[LineInput], dict]:
    """The lines for the current period's usage (and seat changes) from where its
    billing stands up to `until` (the period's end, or an immediate change), at
    the current version; and what they bill per meter. Reads only."""
    start, end = subscription.current_period_start, subscription.current_period_end
    usage_from = subscription.usage_from or start
    spec = version_spec(version=subscription.version)
    usage, billed = rate_usage(
        subscription=subscription,
        spec=spec,
        start=start,
        end=end,
        usage_from=usage_from,
        usage_to=until,
    )
    lines = _lines(usage, usage_from, until) + seat_change_lines(
        subscription, spec, since=usage_from, until=until
    )
    return lines, billed


def _record_billed(subscription: Subscription, *, until: datetime, billed: dict) -> None:
    """A record of what the usage up to `until` billed, for late usage. Under the
    subscription's row lock, once per segment (a unique constraint too)."""
    BilledPeriod.objects.create(
        subscription=subscription,
        usage_from=subscription.usage_from or subscription.current_period_start,
        usage_to=until,
        version=subscription.version,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        billed=billed,
    )


def _bill_usage(subscription: Subscription, *, until: datetime) -> list[LineInput]:
    """_usage_so_far's lines, recorded as billed."""
    lines, billed = _usage_so_far(subscription, until=until)
    _record_billed(subscription, until=until, billed=billed)
    return lines


def _locked(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "version__plan")
        .get(pk=subscription.pk)
    )


def plan_change_check(*, subscription: Subscription, version, effective: str, at: datetime) -> None:
    """Raise the BillingError that subscription_change_plan would refuse this change
    with, as the subscription and version stand. Reads only."""
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    if subscription.status not in Subscription.LIVE:
        raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
    if version.status != version.PUBLISHED:
        raise Conflict(
            f"{version.plan.code} v{version.number} is {version.status}; only a "
            "published version takes subscribers",
            fields={"version": [f"is {version.status}"]},
        )
    if version.currency != subscription.customer.currency:
        raise InvalidRequest(
            f"{version.plan.code} bills in {version.currency}, the customer pays in "
            f"{subscription.customer.currency}",
            fields={"plan": ["another currency"]},
        )
    if effective == "immediate":
        if version.pk == subscription.version_id:
            raise Conflict("the subscription is on that version already")
        _check_in_period(subscription, at, after_change=True)


@dataclass(frozen=True)
class PlanChangeLines:
    """What an immediate plan change invoices, in the invoice's order."""

    # Usage (and seat changes) up to the change, at the old version's prices.
    so_far: list[LineInput]
    # The unused part of the old version's fixed fees, negative.
    credit: list[LineInput]
    # The new version's fixed fees for the rest of the period.
    charge: list[LineInput]
    # What `so_far` bills per meter, recorded for late usage.
    billed: dict

    @property
    def lines(self) -> list[LineInput]:
        return [*self.so_far, *self.credit, *self.charge]


def plan_change_lines(*, subscription: Subscription, version, at: datetime) -> PlanChangeLines:
    """The lines an immediate change of the subscription to `version` at `at`
    invoices, for a change plan_change_check accepts. Reads only: a bulk
    migration previews exactly what subscription_change_plan invoices."""
    so_far, billed = _usage_so_far(subscription, until=at)
    credit: list[LineInput] = []
    charge: list[LineInput] = []
    if subscription.status != Subscription.TRIALING:
        old = subscription.version
        credit = _proration(
            subscription,
            version_spec(version=old),
            at=at,
            kind="proration_credit",
            sign=-1,
            name=_plan_name(old),
        )
        charge = _proration(
            subscription,
            version_spec(version=version),
            at=at,
            kind="proration_charge",
            sign=1,
            name=_plan_name(version),
        )
    return PlanChangeLines(so_far, credit, charge, billed)


def subscription_change_plan(
    *, subscription: Subscription, version, effective: str, at: datetime
) -> tuple[Subscription, Invoice | None]:
    """Move a subscription to another published version.

    `immediate`: an invoice now with the usage so far at the old version's
    prices, a credit for the unused part of the old fixed fees and a charge for
    the rest of the period on the new one, prorated by the second (the lines of
    plan_change_lines); the period end stays. `period_end`: nothing now; the
    close applies it. Both leave a history row. Locks the subscription row."""
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    with transaction.atomic():
        subscription = _locked(subscription)
        # The version as stored now, not as the caller last saw it.
        version = type(version).objects.select_related("plan").get(pk=version.pk)
        plan_change_check(subscription=subscription, version=version, effective=effective, at=at)
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
            subscription.save(update_fields=["scheduled_version"])
            change.effective_at = subscription.current_period_end
            change.save()
            return subscription, None
        end = subscription.current_period_end
        planned = plan_change_lines(subscription=subscription, version=version, at=at)
        _record_billed(subscription, until=at, billed=planned.billed)
        invoice = invoice_write_draft(
            customer=subscription.customer,
            subscription=subscription,
            reason=Invoice.PLAN_CHANGE,
            period_start=at,
            period_end=end,
            lines=planned.lines,
            now=at,
        )
        subscription.version = version
        subscription.usage_from = at
        subscription.scheduled_version = None
        subscription.save(update_fields=["version", "usage_from", "scheduled_version"])
        change.effective_at = at
        change.details = {"invoice": invoice.pk, "total": str(invoice.total)}
        change.save()
    return subscription, invoice


def subscription_cancel(
    *, subscription: Subscription, effective: str, at: datetime
) -> tuple[Subscription, Invoice | None]:
    """Cancel. `period_end`: the close ends it, billing the period's usage and no
    further fees. `immediate`: an invoice now with the usage so far and a credit
    for the unused part of the fixed fees. A history row either way."""
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    with transaction.atomic():
        subscription = _locked(subscription)
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
        _check_in_period(subscription, at, after_change=True)
        lines = _bill_usage(subscription, until=at)
        if subscription.status != Subscription.TRIALING:
            lines += _proration(
                subscription,
                version_spec(version=subscription.version),
                at=at,
                kind="proration_credit",
                sign=-1,
                name=_plan_name(subscription.version),
            )
        invoice = invoice_write_draft(
            customer=subscription.customer,
            subscription=subscription,
            reason=Invoice.CANCEL,
            period_start=at,
            period_end=subscription.current_period_end,
            lines=lines,
            now=at,
        )
        subscription.status = Subscription.CANCELED
        subscription.canceled_at = subscription.ended_at = at
        subscription.save(update_fields=["status", "canceled_at", "ended_at"])
        change.effective_at = at
        change.details = {"invoice": invoice.pk, "total": str(invoice.total)}
        change.save()
    return subscription, invoice


def subscription_set_seats(*, subscription: Subscription, seats: int, at: datetime) -> Subscription:
    """Change the seat count from `at`. The difference for the rest of the period
    is charged or credited, prorated by the second, on the invoice that closes
    the period; the next periods bill the new count."""
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= 1_000_000:
        raise InvalidRequest("seats must be from 1 to 1000000", fields={"seats": ["out of range"]})
    with transaction.atomic():
        subscription = _locked(subscription)
        if subscription.status not in Subscription.LIVE:
            raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
        _check_in_period(subscription, at, after_change=False)
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


def seat_change_lines(
    subscription: Subscription, spec: VersionSpec, *, since: datetime, until: datetime
) -> list[LineInput]:
    """The seat changes made in [since, until), each prorated from its moment to
    the period's end at `spec`'s seat price. They are billed on the next invoice
    written: the close, or an immediate plan change or cancel, whose credit then
    covers the seats held for the rest of the period. None during a trial, which
    has no fixed fees."""
    if not spec.seat_price or subscription.status == Subscription.TRIALING:
        return []
    changes = SubscriptionChange.objects.filter(
        subscription=subscription,
        kind=SubscriptionChange.SEATS,
        effective_at__gte=since,
        effective_at__lt=until,
    ).order_by("id")
    end = subscription.current_period_end
    lines = []
    for change in changes:
        delta = change.details["to"] - change.details["from"]
        quantity = delta * _remaining_fraction(subscription, spec, change.effective_at)
        lines.append(
            LineInput(
                "proration_charge" if delta > 0 else "proration_credit",
                f"Seats {change.details['from']} to {change.details['to']} from "
                f"{change.effective_at:%Y-%m-%d %H:%M} UTC",
                None,
                quantity,
                spec.seat_price,
                rating.quantize_money(quantity * spec.seat_price, spec.currency),
                change.effective_at,
                end,
            )
        )
    return lines
