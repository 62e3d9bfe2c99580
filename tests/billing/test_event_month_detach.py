"""Old months of the events table detached on a schedule (billing.usage.detaching):
a month no period may still need leaves the table, kept as a plain table, with its
event keys; a month a period may still need stays; a meter rebuild recomputes only
the attached months and keeps the detached months' rollups."""

import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from billing.invoicing.close import periods_close
from billing.models import (
    BilledPeriod,
    EventKey,
    UsageDailyRollup,
    UsageRollup,
)
from billing.tasks import detach_event_months, ensure_event_partitions
from billing.usage.folding import usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.partitions import event_partitions_ensure, month_tables
from billing.usage.reads import usage_quantities
from billing.usage.rebuild import meter_usage_rebuild
from invoices.models import Invoice
from tests.beat import scheduled
from tests.factories import ai_assistant_plan, prompts_meter, subscribe

# Years after the months the migration made, so that this test's months are its own.
JAN_1 = datetime(2031, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2031, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2031, 3, 1, tzinfo=UTC)
# A year and the late-event window (35 days) and more after January's end, but not
# after February's (March 1st 2031 + 12 months + 37 days is April 7th 2032).
LATER = datetime(2032, 3, 15, 9, tzinfo=UTC)
JANUARY = "billing_usageevent_y2031m01"
FEBRUARY = "billing_usageevent_y2031m02"


def prompts(prefix: str, count: int, at: datetime) -> None:
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": at.replace(minute=i % 60).isoformat(),
            "properties": {},
        }
        for i in range(count)
    ]
    assert events_ingest(events=events, now=at.replace(minute=59)).accepted == count


def attached() -> dict[str, bool]:
    """The test's two months: attached or not (absent: missing)."""
    tables = month_tables()
    return {
        name: tables[month]
        for name, month in ((JANUARY, JAN_1.date()), (FEBRUARY, FEB_1.date()))
        if month in tables
    }


def ours(detached: list[str]) -> list[str]:
    """This test's months among those detached: the migration's months (2026 and
    2027) are past the window too."""
    assert all(name < FEBRUARY for name in detached)
    return [name for name in detached if "_y2031" in name]


def rollups() -> list[tuple]:
    hourly = UsageRollup.objects.order_by("hour").values_list("hour", "event_count", "value_sum")
    daily = UsageDailyRollup.objects.order_by("day").values_list("day", "event_count", "value_sum")
    return [*hourly, *daily]


def quantity(meter_id: int, customer_id: int, start: datetime, end: datetime) -> D:
    meter = meter_cache.by_id()[meter_id]
    return usage_quantities(customer_id=customer_id, meters=[meter], start=start, end=end)[meter_id]


@pytest.fixture
def billed_january(acme):
    """acme on the AI Assistant plan from January 1st 2031: 400 prompts in January
    (mid-hour ones at the month's first hour too), January closed and billed, 30
    prompts in February, every event folded into the rollups."""
    prompts_meter()
    ai_assistant_plan()
    assert event_partitions_ensure(around=JAN_1, back=0, ahead=1) == [JANUARY, FEBRUARY]
    subscribe(acme, "ai_assistant", start=JAN_1)
    prompts("jan-first-hour-", 40, JAN_1)
    prompts("jan-", 360, datetime(2031, 1, 10, 14, tzinfo=UTC))
    prompts("feb-", 30, datetime(2031, 2, 3, 8, tzinfo=UTC))
    usage_fold(wait=True)
    periods_close(as_of=FEB_1)
    return acme


@pytest.mark.postgres
def test_the_beat_detaches_a_month_past_the_window_and_keeps_the_next(billed_january):
    assert scheduled("Detach the usage events' old monthly partitions") == (
        "billing.tasks.detach_event_months",
        60,
        "minutes",
    )
    january_keys = EventKey.objects.filter(timestamp__lt=FEB_1).count()
    assert (january_keys, EventKey.objects.count()) == (400, 430)

    # when: the hourly task runs, as the beat runs it, on March 15th 2032
    with time_machine.travel(LATER, tick=False):
        detached = detach_event_months.apply().get()

    # then: January is a table of its own, February still a partition
    assert ours(detached) == [JANUARY]
    assert attached() == {JANUARY: False, FEBRUARY: True}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {JANUARY}")  # noqa: S608
        assert cursor.fetchone()[0] == 400
    # January's keys went with it; February's guard its events still
    assert list(EventKey.objects.values_list("timestamp__month", flat=True).distinct()) == [2]
    assert EventKey.objects.count() == 30

    # Again: nothing more to do
    with time_machine.travel(LATER, tick=False):
        assert detach_event_months.apply().get() == []
    assert attached() == {JANUARY: False, FEBRUARY: True}


@pytest.mark.postgres
def test_the_hourly_partition_task_leaves_a_detached_month_alone(billed_january):
    with time_machine.travel(LATER, tick=False):
        detach_event_months.apply().get()

    # The months around February 10th 2031 include January: made again, it would be
    # an empty partition where the archived events were.
    with time_machine.travel(datetime(2031, 2, 10, tzinfo=UTC), tick=False):
        made = ensure_event_partitions.apply().get()

    assert JANUARY not in made
    assert attached() == {JANUARY: False, FEBRUARY: True}


@pytest.mark.postgres
def test_a_month_an_open_period_may_need_stays_attached(acme):
    """The subscription's January period was never closed (the close stopped): its
    events are needed to close it, a year later or not."""
    prompts_meter()
    ai_assistant_plan()
    event_partitions_ensure(around=JAN_1, back=0, ahead=1)
    subscribe(acme, "ai_assistant", start=JAN_1)
    prompts("jan-", 10, datetime(2031, 1, 10, 14, tzinfo=UTC))
    usage_fold(wait=True)

    with time_machine.travel(LATER, tick=False):
        assert ours(detach_event_months.apply().get()) == []

    assert attached() == {JANUARY: True, FEBRUARY: True}
    assert EventKey.objects.count() == 10


@pytest.mark.postgres
def test_off_detaches_nothing(billed_january, settings):
    settings.BILLING_EVENT_MONTHS_ATTACHED = None

    with time_machine.travel(LATER, tick=False):
        assert detach_event_months.apply().get() == []

    assert attached() == {JANUARY: True, FEBRUARY: True}


@pytest.mark.postgres
def test_more_months_attached_keep_january(billed_january, settings):
    # March 2032 and the 14 whole months before it: from January 2031 on
    settings.BILLING_EVENT_MONTHS_ATTACHED = 14

    with time_machine.travel(LATER, tick=False):
        assert ours(detach_event_months.apply().get()) == []

    settings.BILLING_EVENT_MONTHS_ATTACHED = 13
    with time_machine.travel(LATER, tick=False):
        assert detach_event_months.apply().get() == [JANUARY]


@pytest.mark.postgres
def test_a_meter_rebuild_after_a_detach_keeps_the_detached_months_rollups(billed_january):
    meter_id = meter_cache.by_code("prompts").id
    before = rollups()
    period = Invoice.objects.get(reason="period", period_start=JAN_1)
    billed = (period.total, list(period.lines.values_list("kind", "quantity", "amount")))
    billed_period = BilledPeriod.objects.get(period_start=JAN_1).billed
    with time_machine.travel(LATER, tick=False):
        assert ours(detach_event_months.apply().get()) == [JANUARY]

    # when
    counted = meter_usage_rebuild(meter_id=meter_id)

    # then: February's 30 events counted again; January's rollups as they were
    assert counted == 30
    assert rollups() == before
    acme = billed_january.pk
    assert quantity(meter_id, acme, JAN_1, FEB_1) == 400
    assert quantity(meter_id, acme, FEB_1, MAR_1) == 30
    # January's invoice and what its period billed: 400 prompts, 200 beyond the
    # included ones at 0.05
    period.refresh_from_db()
    assert (period.total, list(period.lines.values_list("kind", "quantity", "amount"))) == billed
    assert billed[0] == D("29.99")
    assert BilledPeriod.objects.get(period_start=JAN_1).billed == billed_period


@pytest.mark.postgres
def test_the_command_can_drop_the_months_it_detaches_and_those_detached_before(billed_january):
    with time_machine.travel(LATER, tick=False):
        detach_event_months.apply().get()
        out = io.StringIO()
        call_command("detach_event_months", "--drop", stdout=out)

    assert "dropped: billing_usageevent_y2031m01 (detached before)" in out.getvalue()
    assert attached() == {FEBRUARY: True}


def test_on_sqlite_the_command_has_nothing_to_do(db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's answer")
    out = io.StringIO()

    call_command("detach_event_months", stdout=out)

    assert out.getvalue() == (
        "This database (sqlite) keeps the events in one table, without monthly "
        "partitions: nothing to detach\n"
    )
