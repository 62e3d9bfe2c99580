"""Writes for subscriptions and usage rollups. Rating, period close, plan changes
and cancellation build on these in the rating and invoicing work."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from billing.cycle import subscription_start_invoice
from billing.errors import Conflict, InvalidRequest, NotFound
from billing.ingestion import PreparedEvent, _generic, _postgres, rollup_deltas, rollup_lock
from billing.metering import (
    PROPERTIES_DECODER,
    EventRejected,
    contributions,
    meter_cache,
    meter_def,
)
from billing.models import (
    Subscription,
    SubscriptionChange,
    UsageEvent,
    UsageRollup,
    UsageUniqueValue,
)
from billing.periods import period_boundary
from customers.models import Customer
from plans.models import Meter, Plan, PlanVersion

MAX_SEATS = 1_000_000


def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    start: datetime,
    version_number: int | None = None,
    seats: int = 1,
    billing_anchor: str = Subscription.ANNIVERSARY,
) -> Subscription:
    """Subscribe a customer to a published version of a plan (the latest when
    `version_number` is None), from `start`, which may be in the past. The first
    period starts at `start`, and its fixed fees are invoiced in advance (a draft,
    finalized by the close). Locks the customer row: a customer has at most one
    live subscription (also enforced by a partial unique index)."""
    if billing_anchor not in dict(Subscription.ANCHORS):
        raise InvalidRequest(
            f"billing_anchor must be one of {', '.join(dict(Subscription.ANCHORS))}",
            fields={"billing_anchor": ["must be anniversary or calendar"]},
        )
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= MAX_SEATS:
        raise InvalidRequest(
            f"seats must be a whole number from 1 to {MAX_SEATS}",
            fields={"seats": [f"must be from 1 to {MAX_SEATS}"]},
        )
    versions = plan.versions.filter(status=PlanVersion.PUBLISHED)
    if version_number is None:
        version = versions.order_by("-number").first()
        if version is None:
            raise Conflict(
                f"plan {plan.code!r} has no published version", fields={"plan": ["not published"]}
            )
    else:
        version = plan.versions.filter(number=version_number).first()
        if version is None:
            raise NotFound(f"plan {plan.code!r} has no version {version_number}")
        if version.status != PlanVersion.PUBLISHED:
            raise Conflict(
                f"{plan.code} v{version_number} is {version.status}; only a published "
                "version takes new subscriptions",
                fields={"version": [f"is {version.status}"]},
            )
    if version.currency != customer.currency:
        raise InvalidRequest(
            f"plan {plan.code!r} bills in {version.currency} but customer "
            f"{customer.external_id!r} pays in {customer.currency}",
            fields={"plan": [f"bills in {version.currency}, not {customer.currency}"]},
        )
    trialing = version.trial_days > 0
    # A trial is a first period of its own, without fixed fees; periods then run
    # from its end.
    trial_end = start + timedelta(days=version.trial_days) if trialing else None
    anchor = trial_end or start
    period_end = trial_end or period_boundary(
        start,
        ZoneInfo(customer.timezone),
        interval=version.interval,
        calendar_aligned=billing_anchor == Subscription.CALENDAR,
        k=1,
    )
    try:
        with transaction.atomic():
            Customer.objects.select_for_update().get(pk=customer.pk)
            if Subscription.objects.filter(
                customer=customer, status__in=Subscription.LIVE
            ).exists():
                raise Conflict(
                    f"customer {customer.external_id!r} already has a live subscription; "
                    "change its plan instead",
                    fields={"customer": ["already subscribed"]},
                )
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
            fields={"customer": ["already subscribed"]},
        ) from exc
    return subscription


REBUILD_CHUNK = 2000


def meter_usage_rebuild(*, meter_id: int) -> int:
    """Recompute one meter's rollups from every stored event, e.g. for a meter
    created or redefined after its events arrived. Idempotent. Takes the rollup
    lock exclusively, so concurrent ingestion waits and then meters with the new
    definition. A stored event the meter cannot read (say, without its value
    property) is left out, as it would have been refused had the meter existed.
    Returns the number of events the meter counted."""
    meter = Meter.objects.filter(pk=meter_id).first()
    if meter is None:
        return 0
    definition = meter_def(meter)
    counted = 0
    with transaction.atomic():
        rollup_lock(shared=False)
        meter_cache.clear()
        UsageRollup.objects.filter(meter_id=meter_id).delete()
        UsageUniqueValue.objects.filter(meter_id=meter_id).delete()
        writer = _postgres if connection.vendor == "postgresql" else _generic
        rows = (
            UsageEvent.objects.filter(event_name=meter.event_name)
            .annotate(raw=Cast("properties", TextField()))
            .values_list("customer_id", "event_id", "timestamp", "raw")
            .order_by()
            .iterator(chunk_size=REBUILD_CHUNK)
        )
        events: list[PreparedEvent] = []
        for customer_id, event_id, timestamp, raw in rows:
            try:
                found = contributions([definition], PROPERTIES_DECODER.decode(raw))
            except EventRejected:
                continue
            if found:
                events.append(PreparedEvent(customer_id, event_id, "", timestamp, {}, found))
        counted = len(events)
        rollups, uniques = rollup_deltas(events)
        for start in range(0, len(rollups), REBUILD_CHUNK):
            writer.upsert_rollups(rollups[start : start + REBUILD_CHUNK])
        for start in range(0, len(uniques), REBUILD_CHUNK):
            writer.insert_uniques(uniques[start : start + REBUILD_CHUNK])
    return counted
