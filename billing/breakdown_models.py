"""Usage broken down by event properties (re-exported by billing.models): per
customer, meter, UTC hour and the values of the meter's `group_by` properties,
the same aggregates as UsageRollup, maintained at ingestion beside it.

`g1`..`g3` hold the text (metering.as_text) of the event's value of each
`group_by` property, in the meter's order; "" stands for an event without it
(or with null, an empty text, a list or an object there), which the reads
answer as `null`; a meter with fewer properties leaves the rest "". One row per
distinct combination: a read by any of the properties sums (or maxes) over the
others."""

from django.db import models

from billing.usage_columns import RollupAggregates, key_customer, key_meter

GROUP_VALUE_MAX_LENGTH = 512
GROUP_COLUMNS = ("g1", "g2", "g3")


def _group_value() -> models.CharField:
    return models.CharField(max_length=GROUP_VALUE_MAX_LENGTH, default="", blank=True)


class GroupKey(models.Model):
    """A group's place: customer, meter, UTC hour and the group's values."""

    customer = key_customer()
    meter = key_meter()
    hour = models.DateTimeField()
    g1 = _group_value()
    g2 = _group_value()
    g3 = _group_value()

    class Meta:
        abstract = True


class UsageGroupRollup(GroupKey, RollupAggregates):
    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "g1", "g2", "g3")

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.hour:%Y-%m-%d %H}h {self.g1}"


class UsageGroupUniqueValue(GroupKey):
    """The distinct values a unique_count meter saw in one UTC hour and group."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "g1", "g2", "g3", "value")
    value = models.CharField(max_length=512)

    def __str__(self) -> str:
        return self.value
