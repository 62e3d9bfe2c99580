"""Row locks on subscriptions and what belongs to them, in one place.

The order, whenever a transaction takes several locks: the customer
(customers.locks), its subscription, a coupon it redeems (plans.locks), the
subscription's billed periods, the invoices it writes (invoices.locks), then
wallets (wallets.locks); several rows of one table in primary-key order. Bulk
migrations lock their migration, then one item, then that item's subscription."""

from datetime import datetime

from billing.models import (
    BilledPeriod,
    PlanMigration,
    PlanMigrationItem,
    Subscription,
    WebhookDelivery,
)


def subscription_lock(subscription_id: int) -> Subscription:
    """Lock one subscription (not the rows it joins) and return it fresh."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "version__plan", "scheduled_version__plan")
        .get(pk=subscription_id)
    )


def billed_periods_lock(
    *, subscription: Subscription, ended_after: datetime, ended_by: datetime
) -> list[BilledPeriod]:
    """Lock the subscription's billed periods that ended in (ended_after, ended_by]."""
    return list(
        BilledPeriod.objects.select_for_update(of=("self",))
        .filter(subscription=subscription, period_end__lte=ended_by, period_end__gt=ended_after)
        .select_related("version__plan")
        .order_by("pk")
    )


def plan_migration_lock(migration_id: int) -> PlanMigration:
    return PlanMigration.objects.select_for_update().get(pk=migration_id)


def plan_migration_item_lock(item_id: int) -> PlanMigrationItem:
    return PlanMigrationItem.objects.select_for_update().get(pk=item_id)


def webhook_delivery_claim(delivery_id: int) -> WebhookDelivery | None:
    """Lock a pending delivery unless another worker holds it (then None)."""
    return (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id, status=WebhookDelivery.PENDING)
        .first()
    )
