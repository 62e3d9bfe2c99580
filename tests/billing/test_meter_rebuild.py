"""A meter created or redefined after its events arrived counts them all, the same
from the rollups (whole hours) as from the raw events (partial hours)."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import UsageRollup
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from billing.usage.rebuild import meter_usage_rebuild
from plans.models import Meter
from plans.services import meter_create, meter_update

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
DAY_START = datetime(2026, 11, 20, tzinfo=UTC)


def llm(index: int, minute: int, tokens: int, model: str = "gpt-4o") -> dict:
    return {
        "id": f"e{index}",
        "customer": "acme",
        "event_name": "llm",
        "timestamp": (DAY_START + timedelta(minutes=minute)).isoformat(),
        "properties": {"model": model, "tokens": tokens},
    }


def quantity(meter: Meter, start: datetime, end: datetime) -> Decimal:
    meter_cache.clear()
    definition = meter_cache.by_id()[meter.id]
    return usage_quantities(
        customer_id=_acme_id(),
        meters=[definition],
        start=start,
        end=end,
    )[meter.id]


def _acme_id() -> int:
    from customers.models import Customer

    return Customer.objects.get(external_id="acme").id


@pytest.mark.django_db
def test_a_meter_created_after_its_events_counts_them_once_rebuilt(acme):
    # given: 30 events over 5 hours, before any meter reads them
    events = [llm(i, minute=i * 10, tokens=100 + i) for i in range(30)]
    assert events_ingest(events=events, now=NOW).accepted == 30
    meter = meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        filters={"model": ["gpt-4o"]},
    )

    # when
    counted = meter_usage_rebuild(meter_id=meter.id)

    # then: whole hours (rollups) and a mid-hour range (raw edges) agree with the events
    assert counted == 30
    expected = sum(100 + i for i in range(30))
    assert quantity(meter, DAY_START, DAY_START + timedelta(days=1)) == expected
    mid = DAY_START + timedelta(minutes=35)
    assert quantity(meter, mid, DAY_START + timedelta(days=1)) == sum(
        100 + i for i in range(30) if i * 10 >= 35
    )


@pytest.mark.django_db
def test_a_redefined_draft_meter_is_counted_again(acme):
    meter = meter_create(code="calls", name="Calls", event_name="llm", aggregation="count")
    events_ingest(events=[llm(i, minute=i, tokens=5) for i in range(10)], now=NOW)
    assert quantity(meter, DAY_START, NOW) == 10

    meter_update(meter=meter, aggregation="sum", value_property="tokens")
    meter_usage_rebuild(meter_id=meter.id)

    assert quantity(meter, DAY_START, NOW) == 50


@pytest.mark.django_db
def test_rebuild_is_idempotent_and_skips_events_the_meter_cannot_read(acme):
    events_ingest(events=[llm(0, 5, 7), {**llm(1, 6, 0), "properties": {}}], now=NOW)
    meter = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="tokens"
    )

    assert meter_usage_rebuild(meter_id=meter.id) == 1
    assert meter_usage_rebuild(meter_id=meter.id) == 1
    assert quantity(meter, DAY_START, NOW) == 7
    assert UsageRollup.objects.filter(meter=meter).count() == 1


@pytest.mark.django_db
def test_creating_a_meter_schedules_the_rebuild(acme, django_capture_on_commit_callbacks):
    events_ingest(events=[llm(i, minute=i, tokens=1) for i in range(4)], now=NOW)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        meter = meter_create(code="calls", name="Calls", event_name="llm", aggregation="count")

    assert len(callbacks) == 1
    assert quantity(meter, DAY_START, NOW) == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rebuild_while_events_arrive_loses_none(acme):
    # given: events already stored, more arriving from two threads during the rebuild
    events_ingest(events=[llm(i, minute=i % 600, tokens=1) for i in range(500)], now=NOW)
    meter = Meter.objects.create(
        code="calls", name="Calls", event_name="llm", aggregation="count"
    )  # created without the scheduled rebuild: the test runs it by hand, concurrently

    def ingest(offset: int) -> None:
        for batch in range(5):
            first = 1000 + offset * 1000 + batch * 100
            events_ingest(
                events=[llm(i, minute=i % 600, tokens=1) for i in range(first, first + 100)],
                now=NOW,
            )
        connection.close()

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    meter_usage_rebuild(meter_id=meter.id)
    for thread in threads:
        thread.join()

    # then: every event, stored before, during or after the rebuild, is counted once
    assert quantity(meter, DAY_START, DAY_START + timedelta(days=1)) == 1500
