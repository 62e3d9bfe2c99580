"""Usage storage (re-exported by billing.models): raw events (append-only), their
dedup keys, the rollups that usage reads use instead of scanning raw events, and
the fold's watermark between the two (billing.usage.folding).

On PostgreSQL the events table is partitioned by month (see migration 0001 and
billing.usage.partitions). A unique index there must include the partition key, so
deduplication on (customer, event id) lives in EventKey, written in the same
statement as the event.
"""

from django.db import models

from billing.usage_columns import RollupAggregates, key_customer, key_meter
from customers.models import Customer


class UsageEvent(models.Model):
    """One billable action as the product reported it. Never deleted; updated only
    by re-rating, which rewrites what was derived from what a gateway sent (its
    `model`, and the contributions) and keeps what it sent (billing.usage.restated_events)."""

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
    # The meters the event feeds, as ingestion metered it, for the fold
    # (billing.usage.folding): JSON text, [[meter id, value or null, [group
    # values] for a meter with group_by], ...]; null for an event no meter counts.
    contributions = models.TextField(null=True)  # noqa: DJ001 (null: no meter; "" is no JSON)

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "event_name", "timestamp"], name="usage_event_cust_name_ts"
            ),
            # A read's events after the fold's watermark, and the fold's.
            models.Index(fields=["customer", "id"], name="usage_event_cust_id"),
            models.Index(fields=["id"], name="usage_event_id"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id}"


class UsageFoldWatermark(models.Model):
    """The one row: the highest event id the fold has added to the rollups
    (billing.usage.folding). Events above it are read from the events table."""

    folded_through = models.BigIntegerField(default=0)
    # When a fold last took its bound: the batches' folds run at most every
    # BILLING_FOLD_MS across all processes (each bound holds batches back a moment).
    bound_taken_at = models.DateTimeField(null=True, blank=True)
    # The daily group rollups hold every folded event of the UTC days before it (a
    # day's start); a fold adds to them for those days only, and the first fold of a
    # new day rolls the days up to it from the hourly group rows. Null: of every day,
    # as every fold wrote them before billing 0032 (billing.usage.folding).
    group_days_before = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"folded through event {self.folded_through}"


class EventKey(models.Model):
    """The (customer, event id) pairs already stored: a duplicate conflicts here."""

    pk = models.CompositePrimaryKey("customer_id", "event_id")
    customer = key_customer()
    event_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.event_id}"


class UsageRollup(RollupAggregates):
    """One meter's usage for one customer in one UTC hour: written at ingestion on
    SQLite, by the fold on PostgreSQL (billing.usage.folding)."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour")
    customer = key_customer()
    meter = key_meter()
    hour = models.DateTimeField()

    class Meta:
        # A read of every meter of a customer over a few hours (the partial days
        # and edges of a period): the key, led by the meter, would walk all of the
        # customer's hours.
        indexes = [models.Index(fields=["customer", "hour"], name="usage_rollup_cust_hour")]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.hour:%Y-%m-%d %H}h"


class UsageDailyRollup(RollupAggregates):
    """One meter's usage for one customer in one UTC day: its hourly rollups added
    up, written with them (billing.usage.rollups, billing.usage.folding), so that a
    read of a long range adds a row a day instead of 24."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "day")
    customer = key_customer()
    meter = key_meter()
    day = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "day"], name="usage_daily_cust_day")]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.day:%Y-%m-%d}"


class UsageUniqueValue(models.Model):
    """The distinct values a unique_count meter saw in one UTC hour."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "value")
    customer = key_customer()
    meter = key_meter()
    hour = models.DateTimeField()
    value = models.CharField(max_length=512)

    def __str__(self) -> str:
        return self.value
