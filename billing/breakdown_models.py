"""Usage broken down by event properties (re-exported by billing.models): per
customer, meter, UTC hour, one of the meter's `group_by` properties (its
`position` in the list) and a value of it, the same aggregates as UsageRollup,
maintained at ingestion beside it.

`group_value` holds the text (metering.as_text) of the event's value of the
property; "" stands for an event without it (or with null, an empty text, a
list, an object or an overlong text there), which the reads answer as `null`.
Each event adds to one row per property, so that a read by a property sums
only that property's few rows per hour (not every combination of values), and, for
a meter of two or more properties, to one row of their combination (its position
after theirs: metering.combination_text), which rate cards price. A count or sum
meter of two or more properties adds to its combination's row only, its
one-property reads summing the combinations' (metering.combinations_only).

UsagePropertyDailyRollup adds the hourly group rows up per UTC day, so that a read
of a long range adds a row a day and group instead of 24 (as UsageDailyRollup does
for the meters). On PostgreSQL a fold writes a day's rows once the day has passed
(and adds a late event to them): billing.usage.folding.group_days_roll."""

from django.db import models

from billing.usage_columns import RollupAggregates, key_customer, key_meter

GROUP_VALUE_MAX_LENGTH = 512


class GroupKey(models.Model):
    """A group's place: customer, meter, UTC hour, property and value."""

    customer = key_customer()
    meter = key_meter()
    hour = models.DateTimeField()
    # The property's place in the meter's group_by (0, 1 or 2), or the combination's
    # (metering.combination_position).
    position = models.PositiveSmallIntegerField()
    group_value = models.CharField(max_length=GROUP_VALUE_MAX_LENGTH, default="", blank=True)

    class Meta:
        abstract = True


class UsagePropertyRollup(GroupKey, RollupAggregates):
    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "position", "group_value")

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.hour:%Y-%m-%d %H}h {self.group_value}"


class UsagePropertyDailyRollup(RollupAggregates):
    """A group's usage in one UTC day: its hourly rows (UsagePropertyRollup) added
    up; on PostgreSQL once the day has passed (billing.usage.folding.group_days_roll),
    on SQLite with them (billing.usage.rollups)."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "day", "position", "group_value")
    customer = key_customer()
    meter = key_meter()
    day = models.DateTimeField()
    position = models.PositiveSmallIntegerField()
    group_value = models.CharField(max_length=GROUP_VALUE_MAX_LENGTH, default="", blank=True)

    class Meta:
        # A read of one combination over a period (a rate-card row's usage so far, for
        # a check): its few days, where the key walks every group of every day. A
        # fold's update of a row changes no indexed column (a heap-only tuple, with
        # the tables' fillfactor): only a new day and group writes an entry.
        indexes = [
            models.Index(
                fields=["customer", "meter", "position", "group_value", "day"],
                name="usage_group_daily_value",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.day:%Y-%m-%d} {self.group_value}"


class UsagePropertyUniqueValue(GroupKey):
    """The distinct values a unique_count meter saw in one UTC hour and group."""

    pk = models.CompositePrimaryKey(
        "customer_id", "meter_id", "hour", "position", "group_value", "value"
    )
    value = models.CharField(max_length=512)

    def __str__(self) -> str:
        return self.value


class UsageGroupValue(models.Model):
    """A value of a grouped property that has its own group for a customer, meter and
    UTC month: at most BILLING_GROUP_VALUES_LIMIT of them per property (and per
    combination of the properties); an event's further values count under the
    reserved "other" value (billing.usage.group_limits)."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "month", "position", "group_value")
    customer = key_customer()
    meter = key_meter()
    # The first instant of the event's UTC month.
    month = models.DateTimeField()
    position = models.PositiveSmallIntegerField()
    group_value = models.CharField(max_length=GROUP_VALUE_MAX_LENGTH, default="", blank=True)

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.month:%Y-%m} {self.group_value}"
