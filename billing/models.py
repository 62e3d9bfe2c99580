"""Usage storage: raw events (append-only), their dedup keys, and the rollups that
usage reads use instead of scanning raw events.

On PostgreSQL the events table is partitioned by month (see migration 0001 and
billing.partitions). A unique index there must include the partition key, so
deduplication on (customer, event id) lives in EventKey, written in the same
statement as the event.
"""

from django.db import models

from customers.models import Customer
from plans.models import Meter

QUANTITY = {"max_digits": 38, "decimal_places": 10}


class UsageEvent(models.Model):
    """One billable action as the product reported it. Never updated or deleted."""

    id = models.BigAutoField(primary_key=True)
    # No database FK: customers are never deleted, and the check would cost every insert.
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    event_id = models.CharField(max_length=255)
    event_name = models.CharField(max_length=255)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "event_name", "timestamp"], name="usage_event_cust_name_ts"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id}"


class EventKey(models.Model):
    """The (customer, event id) pairs already stored: a duplicate conflicts here."""

    pk = models.CompositePrimaryKey("customer_id", "event_id")
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    event_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.event_id}"


class UsageRollup(models.Model):
    """One meter's usage for one customer in one UTC hour, maintained at ingestion."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour")
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    meter = models.ForeignKey(Meter, on_delete=models.DO_NOTHING, db_constraint=False)
    hour = models.DateTimeField()
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(**QUANTITY, default=0)
    value_max = models.DecimalField(**QUANTITY, null=True)
    # The latest event by timestamp (ties: the greater event id) and its value.
    latest_at = models.DateTimeField(null=True)
    latest_event_id = models.CharField(max_length=255, default="")
    latest_value = models.DecimalField(**QUANTITY, null=True)

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.hour:%Y-%m-%d %H}h"


class UsageUniqueValue(models.Model):
    """The distinct values a unique_count meter saw in one UTC hour."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "value")
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    meter = models.ForeignKey(Meter, on_delete=models.DO_NOTHING, db_constraint=False)
    hour = models.DateTimeField()
    value = models.CharField(max_length=512)

    def __str__(self) -> str:
        return self.value


class Subscription(models.Model):
    """A customer on a plan version. At most one live (trialing or active)
    subscription per customer: two could charge the same meter twice."""

    TRIALING = "trialing"
    ACTIVE = "active"
    CANCELED = "canceled"
    ENDED = "ended"
    STATUSES = [
        (TRIALING, "Trialing"),
        (ACTIVE, "Active"),
        (CANCELED, "Canceled"),
        (ENDED, "Ended"),
    ]
    LIVE = (TRIALING, ACTIVE)

    ANNIVERSARY = "anniversary"
    CALENDAR = "calendar"
    ANCHORS = [(ANNIVERSARY, "Anniversary of the start"), (CALENDAR, "Calendar month")]

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    version = models.ForeignKey(
        "plans.PlanVersion", on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(max_length=16, choices=STATUSES, db_index=True)
    billing_anchor = models.CharField(max_length=16, choices=ANCHORS, default=ANNIVERSARY)
    started_at = models.DateTimeField()
    # Periods are counted from here: the start, or the end of a trial.
    anchor_at = models.DateTimeField()
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    seats = models.PositiveIntegerField(default=1)
    # Usage before this (an immediate plan change) was billed already.
    usage_from = models.DateTimeField(null=True, blank=True)
    # Applied by the close at the end of the current period.
    scheduled_version = models.ForeignKey(
        "plans.PlanVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=("trialing", "active")),
                name="subscription_one_live_per_customer",
            ),
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer_id} on {self.version_id} ({self.status})"


class SubscriptionChange(models.Model):
    """One row for every change to a subscription: what, when, how."""

    CREATED = "created"
    PLAN_CHANGE = "plan_change"
    SEATS = "seats"
    CANCEL = "cancel"
    KINDS = [
        (CREATED, "Created"),
        (PLAN_CHANGE, "Plan change"),
        (SEATS, "Seats"),
        (CANCEL, "Cancel"),
    ]

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="changes")
    kind = models.CharField(max_length=16, choices=KINDS)
    from_version = models.ForeignKey(
        "plans.PlanVersion", on_delete=models.PROTECT, null=True, related_name="+"
    )
    to_version = models.ForeignKey(
        "plans.PlanVersion", on_delete=models.PROTECT, null=True, related_name="+"
    )
    effective_at = models.DateTimeField()
    how = models.CharField(max_length=16, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscription", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.effective_at:%Y-%m-%d %H:%M}"


class BilledPeriod(models.Model):
    """What a closed period billed for usage, per meter, so that usage arriving
    late can be billed as the difference on a later invoice."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="billed")
    version = models.ForeignKey("plans.PlanVersion", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The part of the period whose usage was billed: all of it, or the part
    # before or after an immediate plan change.
    usage_from = models.DateTimeField()
    usage_to = models.DateTimeField()
    # meter code (or "minimum_commitment") -> {"quantity": "...", "amount": "..."}
    billed = models.JSONField(default=dict)

    class Meta:
        ordering = ["subscription", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "usage_from", "usage_to"], name="billed_period_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.usage_from:%Y-%m-%d}..{self.usage_to:%Y-%m-%d}"
