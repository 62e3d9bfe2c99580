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
