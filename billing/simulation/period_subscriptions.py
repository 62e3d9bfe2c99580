"""Which subscription each customer had in a past period, and what it was on
when the period started (its version and seats, from its plan and seat
changes): the "current" side of a price simulation (billing.simulation.engine)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from billing.models import Subscription, SubscriptionChange
from plans.models import Plan, PlanVersion


@dataclass(frozen=True)
class PeriodTerms:
    """What a subscription was on in a period, as of its start."""

    version: PlanVersion
    seats: int
    # False when the period starts in a trial, which has no fixed fees.
    fixed_fees: bool
    # The version changed within the period (its usage is still rated at `version`).
    changed: bool


def period_subscriptions(
    *,
    customer_ids: Iterable[int] | QuerySet | None,
    period_start: datetime,
    period_end: datetime,
) -> dict[int, Subscription]:
    """Each customer's subscription in [period_start, period_end): the one started
    last among those that overlap it, with its plan and seat changes prefetched.
    `customer_ids` may be a query (a subquery then); None is every customer."""
    subscriptions = (
        Subscription.objects.filter(started_at__lt=period_end)
        .exclude(ended_at__lte=period_start)
        .select_related("version__plan")
        .prefetch_related(
            Prefetch(
                "changes",
                queryset=SubscriptionChange.objects.filter(
                    kind__in=(SubscriptionChange.PLAN_CHANGE, SubscriptionChange.SEATS)
                )
                .select_related("from_version__plan", "to_version__plan")
                .order_by("id"),
            )
        )
        .order_by("customer_id", "started_at", "id")
    )
    if customer_ids is not None:
        if not isinstance(customer_ids, QuerySet):
            customer_ids = list(customer_ids)
        subscriptions = subscriptions.filter(customer_id__in=customer_ids)
    # Ordered by start: the last one of a customer wins.
    return {subscription.customer_id: subscription for subscription in subscriptions}


def _applied_plan_changes(changes: list[SubscriptionChange]) -> list[SubscriptionChange]:
    """The plan changes that took effect, in the order they did. A change
    scheduled for a period's end is dropped when a later one replaced it before
    then: another scheduled for the same end, or an immediate change."""
    plan_changes = [c for c in changes if c.kind == SubscriptionChange.PLAN_CHANGE]
    applied = []
    for change in plan_changes:
        if change.how == "period_end" and any(
            later.pk > change.pk
            and (
                (later.how == "period_end" and later.effective_at == change.effective_at)
                or (later.how != "period_end" and later.effective_at < change.effective_at)
            )
            for later in plan_changes
        ):
            continue
        applied.append(change)
    return sorted(applied, key=lambda c: (c.effective_at, c.pk))


def period_terms(
    subscription: Subscription, *, period_start: datetime, period_end: datetime
) -> PeriodTerms:
    """The version and seats the subscription had when the period started (or when
    it started, if later), from its change history."""
    at = max(period_start, subscription.started_at)
    changes = list(subscription.changes.all())
    plan_changes = _applied_plan_changes(changes)
    before = [c for c in plan_changes if c.effective_at <= at]
    if before:
        version = before[-1].to_version
    elif plan_changes:
        version = plan_changes[0].from_version
    else:
        version = subscription.version
    seat_changes = sorted(
        (c for c in changes if c.kind == SubscriptionChange.SEATS),
        key=lambda c: (c.effective_at, c.pk),
    )
    seats_before = [c for c in seat_changes if c.effective_at <= at]
    if seats_before:
        seats = seats_before[-1].details["to"]
    elif seat_changes:
        seats = seat_changes[0].details["from"]
    else:
        seats = subscription.seats
    trialing = subscription.trial_end is not None and subscription.trial_end > at
    changed = any(at < c.effective_at < period_end for c in plan_changes)
    return PeriodTerms(version=version, seats=seats, fixed_fees=not trialing, changed=changed)


def plan_subscriber_ids(*, plan: Plan, period_start: datetime, period_end: datetime) -> list[int]:
    """The customers whose subscription in the period was on a version of `plan`
    when the period started, by id."""
    candidates = (
        Subscription.objects.filter(started_at__lt=period_end)
        .exclude(ended_at__lte=period_start)
        .filter(
            Q(version__plan=plan)
            | Q(changes__from_version__plan=plan)
            | Q(changes__to_version__plan=plan)
        )
        .values_list("customer_id", flat=True)
        .distinct()
    )
    subscriptions = period_subscriptions(
        customer_ids=candidates, period_start=period_start, period_end=period_end
    )
    on_plan = []
    for customer_id, subscription in subscriptions.items():
        terms = period_terms(subscription, period_start=period_start, period_end=period_end)
        if terms.version.plan_id == plan.pk:
            on_plan.append(customer_id)
    return sorted(on_plan)
