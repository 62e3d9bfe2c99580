"""What the usage tables (billing.models, billing.breakdown_models) share: their
keys, and the aggregates a rollup row keeps.

The keys lead every usage table's primary key with the customer, which serves
every read; a meter rebuild deletes by meter rarely enough to scan. No index of
their own (each would be one more write per event and per rollup row) and no
constraint (customers and meters are never deleted)."""

from django.db import models

QUANTITY = {"max_digits": 38, "decimal_places": 10}


def key_customer() -> models.ForeignKey:
    return models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


def key_meter() -> models.ForeignKey:
    return models.ForeignKey(
        "plans.Meter", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False
    )


class RollupAggregates(models.Model):
    """A rollup row's aggregates of the events it covers."""

    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(**QUANTITY, default=0)
    value_max = models.DecimalField(**QUANTITY, null=True)
    # The latest event by timestamp (ties: the greater event id) and its value. Read only
    # for `latest` meters: for the others a fold adds nothing to them (a row's may be empty,
    # or as it was before: rows folded before 2026-11, rebuilt, or written on SQLite).
    latest_at = models.DateTimeField(null=True)
    latest_event_id = models.CharField(max_length=255, default="")
    latest_value = models.DecimalField(**QUANTITY, null=True)

    class Meta:
        abstract = True
