"""The events table's monthly partitions (billing.usage.partitions): made ahead of
the clock by an hourly task, and the events the default partition took for want of
one moved into their month's partition as it is made, still counted once and still
deduplicated."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.models import UsageEvent
from billing.tasks import ensure_event_partitions
from billing.usage import partitions as partitions_module
from billing.usage.folding import (
    committed_bound,
    fold_clock,
    fold_through,
    unfolded_events,
    usage_fold,
)
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.partitions import MONTHS_AHEAD, MONTHS_BACK, event_partitions_ensure
from billing.usage.reads import usage_quantities
from billing.usage.rollups import rollup_lock
from plans.services import meter_create
from tests.beat import scheduled
from tests.factories import CustomerFactory
from tests.threads import run_at_once

pytestmark = pytest.mark.postgres

# Years after the months the migration made: its events go to the default partition.
LATER = datetime(2031, 5, 14, 9, tzinfo=UTC)


def month(name: str) -> str:
    return f"billing_usageevent_{name}"


def held() -> dict[str, int]:
    """Events per partition that holds any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM billing_usageevent GROUP BY 1"
        )
        return dict(cursor.fetchall())


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'billing_usageevent'::regclass"
        )
        return {name for (name,) in cursor.fetchall()}


def index_columns(table: str) -> list[str]:
    """The table's indexes, each as its definition without its name and table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexdef", [table]
        )
        return sorted(
            definition.split(f"ON public.{table} ", 1)[1] for (definition,) in cursor.fetchall()
        )


def prompt(event_id: str, at: datetime) -> dict:
    return {
        "id": event_id,
        "customer": "acme",
        "event_name": "prompt",
        "timestamp": at.isoformat(),
        "properties": {},
    }


@pytest.fixture
def prompts(db):
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    return meter_cache.by_code("prompts")


def test_the_months_around_a_moment_are_made_once(db):
    made = event_partitions_ensure(around=LATER)

    assert made == [month(f"y2031m{m:02d}") for m in (3, 4, 5, 6, 7)]
    assert (MONTHS_BACK, MONTHS_AHEAD) == (2, 2)
    assert set(made) <= partitions()
    assert event_partitions_ensure(around=LATER) == []
    # Each new month has the indexes every month has.
    assert index_columns(month("y2031m05")) == index_columns(month("y2031m04"))
    assert index_columns(month("y2031m05")) == index_columns("billing_usageevent_default")


def test_events_the_default_partition_took_move_into_their_month(acme, prompts):
    events = [prompt(f"may_{i}", LATER - timedelta(hours=i + 1)) for i in range(3)]
    events.append(prompt("april", LATER - timedelta(days=20)))
    assert events_ingest(events=events, now=LATER).accepted == 4
    ids = dict(UsageEvent.objects.values_list("event_id", "id"))
    assert held() == {"billing_usageevent_default": 4}
    may = (datetime(2031, 5, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC))

    def may_prompts() -> Decimal:
        return usage_quantities(customer_id=acme.pk, meters=[prompts], start=may[0], end=may[1])[
            prompts.id
        ]

    assert may_prompts() == 3  # read from the events: not folded yet

    assert event_partitions_ensure(around=LATER, back=0, ahead=0) == [month("y2031m05")]

    # May's events moved, with their ids; April's stays until April's month is made.
    assert held() == {month("y2031m05"): 3, "billing_usageevent_default": 1}
    assert dict(UsageEvent.objects.values_list("event_id", "id")) == ids
    assert may_prompts() == 3
    usage_fold(wait=True)
    assert may_prompts() == 3
    # Sent again, every one is a duplicate: the keys did not move.
    again = events_ingest(events=events, now=LATER)
    assert (again.accepted, again.duplicates) == (0, 4)

    assert event_partitions_ensure(around=LATER, back=1, ahead=0) == [month("y2031m04")]
    assert held() == {month("y2031m05"): 3, month("y2031m04"): 1}


def test_events_stored_after_the_month_was_found_empty_move_too(acme, prompts, monkeypatch):
    """A batch that stores events of the month between the look at the default
    partition and the lock: the month is made again, with the lock that moves them."""
    assert events_ingest(events=[prompt("may", LATER)], now=LATER).accepted == 1
    looks = []
    holds = partitions_module._default_holds

    def first_look_finds_none(first, after):
        looks.append(holds(first, after))
        return len(looks) > 1 and looks[-1]

    monkeypatch.setattr(partitions_module, "_default_holds", first_look_finds_none)

    assert event_partitions_ensure(around=LATER, back=0, ahead=0) == [month("y2031m05")]

    assert looks == [True, True]  # the look before the lock, then the one under it
    assert held() == {month("y2031m05"): 1}


def test_a_month_detached_from_the_table_is_left_alone(db):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {month('y2031m05')} (LIKE billing_usageevent)")

    made = event_partitions_ensure(around=LATER, back=0, ahead=1)

    assert made == [month("y2031m06")]
    assert month("y2031m05") not in partitions()


def test_the_beat_makes_the_months_ahead_every_hour(db):
    assert scheduled("Create the usage events' monthly partitions ahead") == (
        "billing.tasks.ensure_event_partitions",
        60,
        "minutes",
    )
    assert ensure_event_partitions.apply().get() == []  # the migration made this hour's


@pytest.fixture
def later_months_dropped():
    """The months this test makes outlive its transaction (DDL in a test that
    commits): dropped after it, so that the other tests find them missing."""
    yield
    with connection.cursor() as cursor:
        for name in [month(f"y2031m{m:02d}") for m in range(1, 13)]:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.django_db(transaction=True)
def test_batches_stored_while_a_month_is_made_all_land(later_months_dropped):
    """Four clients store batches of the new month (in the default partition, then in
    the month's) while one makes the month: without the lock on the events table, a
    batch that began before the attach sent its events to the default partition after
    it, and failed."""
    acme = CustomerFactory(external_id="acme")
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    prompts = meter_cache.by_code("prompts")
    batches, size = 40, 200

    def work(index: int):
        if index == 0:
            time.sleep(0.3)  # the clients' first batches in the default partition
            return event_partitions_ensure(around=LATER, back=0, ahead=0)
        accepted = 0
        for batch in range(batches):
            events = [
                prompt(f"{index}_{batch}_{i}", LATER - timedelta(minutes=i + 1))
                for i in range(size)
            ]
            accepted += events_ingest(events=events, now=LATER).accepted
        return accepted

    made, *accepted = run_at_once(work, clients=4)

    assert made == [month("y2031m05")]
    assert accepted == [batches * size] * 3
    assert held() == {month("y2031m05"): 3 * batches * size}
    may = usage_quantities(
        customer_id=acme.pk,
        meters=[prompts],
        start=datetime(2031, 5, 1, tzinfo=UTC),
        end=datetime(2031, 6, 1, tzinfo=UTC),
    )
    assert may == {prompts.id: 3 * batches * size}


def _waiting_on_a_lock(pids: list[int]) -> int:
    """How many of these database sessions wait for a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE pid = ANY(%s) AND NOT granted",
            [pids],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_fold_and_a_read_while_a_month_is_attached_count_every_moved_event(
    later_months_dropped, monkeypatch
):
    """A fold's statement and a read that begin while the month is being made (its
    events moved out of the default partition, the month attached) wait for it, and
    then count the moved events: not planned on the partitions as they were (the
    default partition, emptied) and run on the rows as they are, which lost them."""
    monkeypatch.setattr(fold_clock, "due", lambda: False)  # the fold is this test's
    acme = CustomerFactory(external_id="acme")
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    prompts = meter_cache.by_code("prompts")
    events = [prompt(f"may_{i}", LATER - timedelta(minutes=i + 1)) for i in range(50)]
    assert events_ingest(events=events, now=LATER).accepted == 50
    assert held() == {"billing_usageevent_default": 50}
    bound = committed_bound()
    may = (datetime(2031, 5, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC))
    made, pids = threading.Event(), {}

    def work(index: int):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids[index] = cursor.fetchone()[0]
        if index == 0:
            with transaction.atomic():
                created = event_partitions_ensure(around=LATER, back=0, ahead=0)
                made.set()
                # Commits once the fold and the read wait for it.
                deadline = time.monotonic() + 10
                while len(pids) < 3 or _waiting_on_a_lock([pids[1], pids[2]]) < 2:
                    assert time.monotonic() < deadline, "the fold and the read did not wait"
                    time.sleep(0.02)
            return created
        assert made.wait(timeout=10)
        if index == 1:
            with transaction.atomic():
                rollup_lock(shared=True)
                return fold_through(bound)
        return usage_quantities(customer_id=acme.pk, meters=[prompts], start=may[0], end=may[1])

    created, (folded, reached), read = run_at_once(work, clients=3)

    assert created == [month("y2031m05")]
    assert held() == {month("y2031m05"): 50}
    assert (folded, reached) == (50, True)
    assert read == {prompts.id: 50}
    assert unfolded_events() == 0
    total = usage_quantities(customer_id=acme.pk, meters=[prompts], start=may[0], end=may[1])
    assert total == {prompts.id: 50}
