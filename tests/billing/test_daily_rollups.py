"""Daily rollups (billing.models.UsageDailyRollup): a read adds a row per whole UTC
day of its range and the hourly rows only for the hours around them; migration
0017 builds the daily rows of the hourly rollups already stored. Both databases.
(That daily rows equal their day's events after ingestion, folds and a kill:
tests/billing/test_folding.py.)"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import UsageDailyRollup, UsageRollup
from billing.usage.folding import usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from customers.services import customer_create
from plans.services import meter_create

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOV_19 = datetime(2026, 11, 19, tzinfo=UTC)


def ingest_every_hour(customer: str) -> None:
    """One event of n=1 in every hour from Nov 19 00:00 to Nov 21 11:00."""
    events = [
        {
            "id": f"h{i}",
            "customer": customer,
            "event_name": "llm",
            "timestamp": (NOV_19 + timedelta(hours=i, minutes=10)).isoformat(),
            "properties": {"n": 1},
        }
        for i in range(60)
    ]
    with time_machine.travel(NOW, tick=False):
        assert events_ingest(events=events).accepted == 60
    usage_fold(wait=True)


def test_a_read_takes_whole_days_from_the_daily_rows_and_the_other_hours_from_the_hourly(db):
    """The hourly rows of Nov 20 are made wrong on purpose: a read of a range with Nov
    20 as a whole day does not see them (it adds the day's row), a read of some of
    its hours does."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    created = meter_create(
        code="tokens", name="T", event_name="llm", aggregation="sum", value_property="n"
    )
    meter = meter_cache.by_id()[created.id]
    ingest_every_hour("acme")
    assert UsageDailyRollup.objects.filter(customer=acme).count() == 3
    nov_20 = NOV_19 + timedelta(days=1)
    UsageRollup.objects.filter(
        customer=acme, hour__gte=nov_20, hour__lt=nov_20 + timedelta(days=1)
    ).update(value_sum=Decimal(100))

    def read(start, end):
        return usage_quantities(customer_id=acme.id, meters=[meter], start=start, end=end)[meter.id]

    # 19th 22:00 to 21st 02:00: two hours, the whole 20th (24 from its daily row), two hours
    assert read(NOV_19 + timedelta(hours=22), nov_20 + timedelta(hours=26)) == 28
    # The 20th's hours 03:00 to 05:00: hourly rows, as they now are (100 each)
    assert read(nov_20 + timedelta(hours=3), nov_20 + timedelta(hours=5)) == 200
    # From 19th 00:30 (the 00:10 event is before it): the edge hour from the raw
    # events, the 19th's other hours and the 21st's from hourly rows, the 20th its day
    assert read(NOV_19 + timedelta(minutes=30), NOW) == 59


@pytest.mark.django_db(transaction=True)
def test_migration_0017_builds_the_daily_rows_of_the_stored_hourly_rollups():
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0016_rollup_tail_vacuum")])
    apps = executor.loader.project_state([("billing", "0016_rollup_tail_vacuum")]).apps
    Customer = apps.get_model("customers", "Customer")
    Meter = apps.get_model("plans", "Meter")
    Rollup = apps.get_model("billing", "UsageRollup")
    customer = Customer.objects.create(external_id="acme", name="Acme", currency="USD")
    meter = Meter.objects.create(
        code="tokens", name="T", event_name="llm", aggregation="sum", value_property="n"
    )
    hours = [NOV_19 + timedelta(hours=h) for h in (0, 5, 23, 24, 47)]
    for i, hour in enumerate(hours):
        Rollup.objects.create(
            customer_id=customer.id,
            meter_id=meter.id,
            hour=hour,
            event_count=i + 1,
            value_sum=Decimal("1.5") * (i + 1),
            value_max=Decimal(10 - i),
            latest_at=hour + timedelta(minutes=59),
            latest_event_id=f"e{i}",
            latest_value=Decimal(i),
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    days = list(
        UsageDailyRollup.objects.order_by("day").values_list(
            "day", "event_count", "value_sum", "value_max", "latest_event_id", "latest_value"
        )
    )
    assert days == [
        (NOV_19, 6, Decimal("9"), Decimal(10), "e2", Decimal(2)),
        (NOV_19 + timedelta(days=1), 9, Decimal("13.5"), Decimal(7), "e4", Decimal(4)),
    ]
    # and an event ingested afterwards adds to the migrated day's row, not a second one
    meter_cache.clear()
    event = {"id": "late", "customer": "acme", "event_name": "llm", "properties": {"n": 2}}
    event["timestamp"] = (NOV_19 + timedelta(hours=5, minutes=30)).isoformat()
    with time_machine.travel(NOW, tick=False):
        assert events_ingest(events=[event]).accepted == 1
    usage_fold(wait=True)
    assert list(
        UsageDailyRollup.objects.filter(day__lt=NOV_19 + timedelta(days=1)).values_list(
            "event_count", "value_sum"
        )
    ) == [(7, Decimal("11"))]


def test_rebuild_daily_rollups_recomputes_every_day_from_the_hourly_rows(db):
    """After an upgrade during which processes of the code before kept writing
    hourly rows only, the command puts every day right again."""
    customer_create(external_id="acme", name="Acme", currency="USD")
    meter_create(code="tokens", name="T", event_name="llm", aggregation="sum", value_property="n")
    ingest_every_hour("acme")
    UsageDailyRollup.objects.filter(day=NOV_19).delete()
    UsageDailyRollup.objects.update(event_count=1, value_sum=Decimal(1))
    call_command("rebuild_daily_rollups", stdout=StringIO())
    assert list(
        UsageDailyRollup.objects.order_by("day").values_list("event_count", "value_sum")
    ) == [
        (24, Decimal(24)),
        (24, Decimal(24)),
        (12, Decimal(12)),
    ]
