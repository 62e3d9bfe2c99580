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

GROUP_VALUE_MAX_LENGTH = 512
# As UsageRollup's (billing.models): exact quantities, keys without constraints.
QUANTITY = {"max_digits": 38, "decimal_places": 10}


def _key_customer() -> models.ForeignKey:
    return models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


def _key_meter() -> models.ForeignKey:
    return models.ForeignKey(
        "plans.Meter", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False
    )


GROUP_COLUMNS = ("g1", "g2", "g3")


def _group_value() -> models.CharField:
    return models.CharField(max_length=GROUP_VALUE_MAX_LENGTH, default="", blank=True)


class UsageGroupRollup(models.Model):
    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "g1", "g2", "g3")
    customer = _key_customer()
    meter = _key_meter()
    hour = models.DateTimeField()
    g1 = _group_value()
    g2 = _group_value()
    g3 = _group_value()
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(**QUANTITY, default=0)
    value_max = models.DecimalField(**QUANTITY, null=True)
    latest_at = models.DateTimeField(null=True)
    latest_event_id = models.CharField(max_length=255, default="")
    latest_value = models.DecimalField(**QUANTITY, null=True)

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.meter_id} {self.hour:%Y-%m-%d %H}h {self.g1}"


class UsageGroupUniqueValue(models.Model):
    """The distinct values a unique_count meter saw in one UTC hour and group."""

    pk = models.CompositePrimaryKey("customer_id", "meter_id", "hour", "g1", "g2", "g3", "value")
    customer = _key_customer()
    meter = _key_meter()
    hour = models.DateTimeField()
    g1 = _group_value()
    g2 = _group_value()
    g3 = _group_value()
    value = models.CharField(max_length=512)

    def __str__(self) -> str:
        return self.value
