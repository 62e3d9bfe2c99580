"""Folding (billing.usage.folding): on PostgreSQL batches store their events with
their contributions, and a fold adds the events after its watermark to the
rollups. A read adds the rollups and the events after the watermark, so it equals
a brute-force count of the raw events whatever has been folded: before a fold,
during folds running beside ingestion, and after a folder killed with SIGKILL
mid-fold. The
events span two and a half days, so that reads add whole days from the daily
rollups and the hours around them from the hourly ones."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from billing.breakdown_models import UsagePropertyDailyRollup, UsagePropertyRollup
from billing.models import UsageDailyRollup, UsageEvent, UsageRollup
from billing.usage.folding import unfolded_events, usage_fold
from billing.usage.ingestion import batch_parse, events_ingest
from billing.usage.metering import PROPERTIES_DECODER, contributions, meter_cache
from billing.usage.reads import Tally, usage_quantities
from billing.usage.rollups import ROLLUP_COLUMNS
from customers.services import customer_create
from plans.services import meter_create

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = ("acme", "beta", "gamma")
# The events' span before NOW (12:00): from midnight two days before.
SPAN = timedelta(hours=60)


def make_meters():
    """One meter of each aggregation, two with a filter, three grouped (a sum and a
    max by two properties, the second missing from some events, and a latest by one)."""
    common = {"event_name": "llm"}
    return [
        meter_create(code="calls", name="Calls", aggregation="count", **common),
        meter_create(code="tokens", name="Tokens", aggregation="sum", value_property="n", **common),
        meter_create(
            code="o3_tokens",
            name="o3 tokens",
            aggregation="sum",
            value_property="n",
            filters={"model": ["o3"]},
            **common,
        ),
        meter_create(code="peak", name="Peak", aggregation="max", value_property="n", **common),
        meter_create(code="last", name="Last", aggregation="latest", value_property="n", **common),
        meter_create(
            code="users",
            name="Users",
            aggregation="unique_count",
            unique_property="user",
            **common,
        ),
        meter_create(
            code="by_model",
            name="By model",
            aggregation="sum",
            value_property="n",
            group_by=["model", "region"],
            **common,
        ),
        meter_create(
            code="peak_by_model",
            name="Peak by model",
            aggregation="max",
            value_property="n",
            group_by=["model", "region"],
            **common,
        ),
        meter_create(
            code="last_by_model",
            name="Last by model",
            aggregation="latest",
            value_property="n",
            group_by=["model"],
            **common,
        ),
    ]


def random_events(rng: random.Random, count: int, *, first: int = 0) -> list[dict]:
    """Events over the SPAN before NOW, some sharing a timestamp (latest's
    tie-break), with decimal values and repeated ids (duplicates)."""
    events = []
    for i in range(first, first + count):
        n = rng.randrange(count) if rng.random() < 0.1 and i > first else i
        stamp = NOW - timedelta(
            seconds=rng.choice([rng.randrange(int(SPAN.total_seconds())), 1800])
        )
        events.append(
            {
                "id": f"e{n}",
                "customer": rng.choice(CUSTOMERS),
                "event_name": "llm",
                "timestamp": stamp.isoformat(),
                "properties": {
                    "n": Decimal(rng.randrange(1, 10**6)) / Decimal(rng.choice([1, 100, 1000])),
                    "model": rng.choice(["o3", "gpt-4o", 1.50]),
                    "user": f"u{rng.randrange(20)}",
                    # None: no region, the group "" (null)
                    **({"region": region} if (region := rng.choice(["eu", "us", None])) else {}),
                },
            }
        )
    return events


def brute_force(customer_id: int, meters: list, start: datetime, end: datetime) -> dict:
    """Every meter's quantity from the raw events, one by one."""
    tally = Tally()
    rows = (
        UsageEvent.objects.filter(customer_id=customer_id, timestamp__gte=start, timestamp__lt=end)
        .annotate(raw=Cast("properties", TextField()))
        .values_list("raw", "timestamp", "event_id")
    )
    for raw, timestamp, event_id in rows:
        for c in contributions(meters, PROPERTIES_DECODER.decode(raw)):
            tally.add_event(c.meter_id, c, timestamp, event_id)
    return {
        m.id: tally.quantity(m.id, m.aggregation, distinct=len(tally.uniques.get(m.id, ())))
        for m in meters
    }


def read_and_count(customer_id: int, meters: list, start: datetime, end: datetime):
    """The usage read and the brute-force count in one snapshot (REPEATABLE READ on
    PostgreSQL), so that batches committing meanwhile cannot come between them.
    (Inside a test's own transaction nothing commits meanwhile.)"""
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        read = usage_quantities(customer_id=customer_id, meters=meters, start=start, end=end)
        return read, brute_force(customer_id, meters, start, end)


@pytest.fixture
def customers(db):
    return {c: customer_create(external_id=c, name=c, currency="USD").id for c in CUSTOMERS}


@pytest.mark.parametrize("seed", range(6))
def test_a_read_equals_the_raw_events_whether_folded_or_not(customers, settings, seed):
    """Batches ingested with no fold, then folded: the read of any range, on the
    hour or not, equals the brute-force count before the fold and after it."""
    settings.BILLING_FOLD_MS = 10**9  # ingestion never folds in this test
    rng = random.Random(seed)
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    with time_machine.travel(NOW, tick=False):
        for first in range(0, 600, 150):
            assert events_ingest(events=random_events(rng, 150, first=first)).rejected == []
        ranges = [
            (NOW - SPAN, NOW + timedelta(hours=1)),  # two whole days and 13 hours
            (NOW - timedelta(hours=50, minutes=31, seconds=7), NOW - timedelta(minutes=13)),
            (NOW - timedelta(hours=36), NOW - timedelta(hours=12)),  # one day exactly
            (NOW - timedelta(hours=30), NOW - timedelta(hours=6)),  # 24 hours, no whole day
            (NOW - timedelta(hours=2), NOW - timedelta(hours=1)),
        ]
        expected = {}
        for external_id, customer_id in customers.items():
            for start, end in ranges:
                read, counted = read_and_count(customer_id, meters, start, end)
                assert read == counted, (external_id, start, end)
                expected[customer_id, start] = read
        if connection.vendor == "postgresql":
            assert unfolded_events() > 0
            assert usage_fold() > 0
            assert unfolded_events() == 0
        for (customer_id, start), read in expected.items():
            end = next(e for s, e in ranges if s == start)
            assert read_and_count(customer_id, meters, start, end) == (read, read)
        assert_rollups_exact(meters)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reads_during_folds_beside_four_ingesting_clients_equal_the_raw_events(settings):
    """Four clients ingest overlapping random batches (duplicates included) while
    a folder folds in a loop and a reader compares, in one snapshot each time, the
    read with the brute-force count; at the end the rollups alone, fully folded,
    equal it too."""
    settings.BILLING_FOLD_MS = 10**9  # only the folder thread folds
    ids = {c: customer_create(external_id=c, name=c, currency="USD").id for c in CUSTOMERS}
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    start, end = NOW - timedelta(hours=40, minutes=17), NOW + timedelta(minutes=1)
    batches = [random_events(random.Random(seed), 120, first=seed * 60) for seed in range(24)]
    done = threading.Event()
    failures: list = []
    comparisons = []

    def reporting(work):
        """work, run in a thread: its failure reported, its connection closed."""

        def run(*args) -> None:
            try:
                work(*args)
            except Exception as exc:
                failures.append(exc)
            finally:
                connections.close_all()

        return run

    @reporting
    def ingest(index: int) -> None:
        with time_machine.travel(NOW, tick=False):
            for batch in batches[index::4]:
                events_ingest(events=batch)

    @reporting
    def fold() -> None:
        while not done.is_set():
            usage_fold(wait=True)

    @reporting
    def read() -> None:
        while not done.is_set():
            customer_id = ids[random.choice(CUSTOMERS)]
            got, counted = read_and_count(customer_id, meters, start, end)
            comparisons.append(got == counted or (got, counted))

    helpers = [threading.Thread(target=fold), threading.Thread(target=read)]
    clients = [threading.Thread(target=ingest, args=(i,)) for i in range(4)]
    for thread in helpers + clients:
        thread.start()
    for thread in clients:
        thread.join()
    done.set()
    for thread in helpers:
        thread.join()
    assert failures == []
    assert len(comparisons) > 0
    assert [c for c in comparisons if c is not True] == []
    usage_fold(wait=True)
    assert unfolded_events() == 0
    for customer_id in ids.values():
        read, counted = read_and_count(customer_id, meters, start, end)
        assert read == counted
    assert_rollups_exact(meters)


def assert_rollups_exact(meters) -> None:
    """Every hourly, daily, group and daily group rollup row equals the count, sum,
    maximum and (for a `latest` meter, the only kind that reads it) latest value of
    its hour's (its day's, its hour's and group value's, its day's and group
    value's) raw events."""
    latest_meters = {m.id for m in meters if m.aggregation == "latest"}
    combined = {m.id for m in meters if m.aggregation in ("count", "sum") and len(m.group_by) > 1}
    if connection.vendor == "postgresql":
        # Folded from empty tables: the other meters' rows never had a latest event.
        for model in (
            UsageRollup,
            UsageDailyRollup,
            UsagePropertyRollup,
            UsagePropertyDailyRollup,
        ):
            assert (
                not model.objects.exclude(meter_id__in=latest_meters)
                .filter(latest_at__isnull=False)
                .exists()
            )
    tallies = {"hour": Tally(), "day": Tally(), "group": Tally(), "group_day": Tally()}
    rows = UsageEvent.objects.annotate(raw=Cast("properties", TextField())).values_list(
        "customer_id", "raw", "timestamp", "event_id"
    )
    for customer_id, raw, timestamp, event_id in rows:
        hour = timestamp.replace(minute=0, second=0, microsecond=0)
        for c in contributions(meters, PROPERTIES_DECODER.decode(raw)):
            groups = [
                (position, value)
                for position, value in enumerate(c.group or ())
                # A count or sum meter of two or more properties: its combination only.
                if position == len(c.group) - 1 or c.meter_id not in combined
            ]
            day = hour.replace(hour=0)
            keys = [
                ("hour", (customer_id, c.meter_id, hour)),
                ("day", (customer_id, c.meter_id, day)),
                *(("group", (customer_id, c.meter_id, hour, *group)) for group in groups),
                *(("group_day", (customer_id, c.meter_id, day, *group)) for group in groups),
            ]
            for bucket, key in keys:
                tallies[bucket].add_event(key, c, timestamp, event_id)
    stored_keys = {
        "hour": lambda r: (r.customer_id, r.meter_id, r.hour),
        "day": lambda r: (r.customer_id, r.meter_id, r.day),
        "group": lambda r: (r.customer_id, r.meter_id, r.hour, r.position, r.group_value),
        "group_day": lambda r: (r.customer_id, r.meter_id, r.day, r.position, r.group_value),
    }
    for model, bucket in (
        (UsageRollup, "hour"),
        (UsageDailyRollup, "day"),
        (UsagePropertyRollup, "group"),
        (UsagePropertyDailyRollup, "group_day"),
    ):
        tally = tallies[bucket]
        stored = {
            stored_keys[bucket](r): (
                r.event_count,
                r.value_sum,
                r.value_max,
                r.latest_value if r.latest_at and r.meter_id in latest_meters else None,
            )
            for r in model.objects.all()
        }
        assert stored == {
            key: (
                count,
                tally.sums.get(key, Decimal(0)),
                tally.maxima.get(key),
                tally.latest[key][2] if key in tally.latest and key[1] in latest_meters else None,
            )
            for key, count in tally.counts.items()
        }, bucket


def folder_env() -> dict:
    """The environment of a `manage.py fold_usage` process on the test database."""
    database = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_folder_killed_mid_fold_loses_and_doubles_nothing(settings):
    """A real `manage.py fold_usage` process is killed with SIGKILL inside its fold
    statement, after the statement has added up rows and written some rollup rows
    (it waits on a rollup row the test holds locked); the watermark has not moved
    and no rollup row changed, and the next fold leaves every rollup exact."""
    settings.BILLING_FOLD_MS = 10**9
    customer_id = customer_create(external_id="acme", name="acme", currency="USD").id
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    rng = random.Random(5)

    def ingest(first: int) -> None:
        with time_machine.travel(NOW, tick=False):
            for start in range(first, first + 1500, 500):
                batch = [e | {"customer": "acme"} for e in random_events(rng, 500, first=start)]
                events_ingest(events=batch)

    ingest(0)
    usage_fold(wait=True)
    ingest(1500)  # the same hours again: the fold updates existing rollup rows
    before = unfolded_events()
    assert before > 0
    rollups_before = sorted(UsageRollup.objects.values_list(*ROLLUP_COLUMNS.split(", ")))
    env = folder_env()
    killed = False
    with transaction.atomic():
        locked = UsageRollup.objects.select_for_update().order_by("hour").first()
        assert locked is not None
        folder = subprocess.Popen([sys.executable, "manage.py", "fold_usage"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        with connection.cursor() as cursor:
            while time.monotonic() < deadline and folder.poll() is None:
                # Inside a transaction the statistics views keep their first snapshot.
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    ["%WITH unfolded AS MATERIALIZED%"],  # the fold statement (FOLD_SQL)
                )
                if cursor.fetchone()[0]:
                    folder.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.05)
        folder.wait(timeout=30)
    assert killed
    assert folder.returncode == -signal.SIGKILL
    assert unfolded_events() == before
    assert sorted(UsageRollup.objects.values_list(*ROLLUP_COLUMNS.split(", "))) == rollups_before
    assert usage_fold(wait=True) >= before
    assert unfolded_events() == 0
    assert_rollups_exact(meters)
    read, counted = read_and_count(
        customer_id, meters, NOW - SPAN - timedelta(hours=1), NOW + timedelta(hours=1)
    )
    assert read == counted


def test_a_fold_that_fails_after_the_batch_committed_does_not_fail_the_batch(
    customers, settings, monkeypatch
):
    """The fold runs after the batch's commit: a database error there is logged and
    left to the next fold, and the batch is still answered as stored."""
    from django.db import OperationalError

    from billing.usage import folding

    def broken(**kwargs):
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(folding, "usage_fold", broken)
    monkeypatch.setattr(folding, "folds", lambda: True)
    make_meters()
    with time_machine.travel(NOW, tick=False):
        result = events_ingest(events=random_events(random.Random(1), 20))
    assert result.accepted + result.duplicates == 20
    assert result.accepted == UsageEvent.objects.count() > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_still_open_holds_back_the_fold_so_its_lower_ids_are_not_passed_over(
    settings, monkeypatch
):
    """Batch A draws its ids and stays open; batch B draws higher ids and commits.
    A fold now must not move the watermark past A's ids while A may still commit:
    it waits for A (the rollup lock, exclusive for its bound), and once A has
    committed every event of both is in the rollups exactly once. A fold in the
    request path waits at most BOUND_WAIT_MS and then gives way."""
    from billing.usage import folding, ingestion

    settings.BILLING_FOLD_MS = 10**9
    for external_id in ("acme", "beta"):
        customer_create(external_id=external_id, name=external_id, currency="USD")
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    rng = random.Random(9)
    batch_a = [e | {"customer": "acme"} for e in random_events(rng, 50, first=0)]
    # Another customer: A's draw-down holds acme's rows locked until it commits.
    batch_b = [e | {"customer": "beta"} for e in random_events(rng, 50, first=0)]
    a_stored, a_release = threading.Event(), threading.Event()
    draw = ingestion.usage_draw_for_events

    def draw_then_hold(**kwargs):
        draw(**kwargs)
        if threading.current_thread() is not threading.main_thread():
            a_stored.set()  # A's events are written: its ids are drawn
            assert a_release.wait(30)

    monkeypatch.setattr(ingestion, "usage_draw_for_events", draw_then_hold)
    failures = []

    def run(work):
        try:
            work()
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    def ingest_a():
        with time_machine.travel(NOW, tick=False):
            events_ingest(events=batch_a)

    a = threading.Thread(target=run, args=(ingest_a,))
    a.start()
    assert a_stored.wait(30)
    with time_machine.travel(NOW, tick=False):
        assert events_ingest(events=batch_b).accepted > 0
    # In the request path the fold gives way after BOUND_WAIT_MS.
    started = time.monotonic()
    assert usage_fold() == 0
    assert time.monotonic() - started < 5
    folder = threading.Thread(target=run, args=(lambda: usage_fold(wait=True),))
    folder.start()
    folder.join(timeout=1)
    assert failures == []
    assert folder.is_alive()  # waiting for A
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {folding.FOLDED_THROUGH}")
        assert cursor.fetchone()[0] == 0
    a_release.set()
    a.join(timeout=30)
    folder.join(timeout=30)
    assert not folder.is_alive()
    assert failures == []
    assert unfolded_events() == 0
    assert UsageEvent.objects.count() == sum(len({e["id"] for e in b}) for b in (batch_a, batch_b))
    assert_rollups_exact(meters)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migration_0018_adds_the_rollup_tails_to_the_rollups_and_starts_the_watermark():
    """Tail rows written by the code before (two for one hour, one for a new hour)
    are in the rollups after the migration, the daily rollups too, and the
    watermark is the highest event id, so the events stored before are not
    counted again."""
    from django.db.migrations.executor import MigrationExecutor

    from billing.models import UsageFoldWatermark

    # The customer first: migrating billing back unapplies the customers
    # migrations that follow its later ones (the columns dunning added).
    customer_id = customer_create(external_id="acme", name="acme", currency="USD").id
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0017_daily_rollups")])
    meter = make_meters()[1]  # tokens, a sum
    hour = NOW - timedelta(hours=3)
    columns = (
        "customer_id, meter_id, hour, event_count, value_sum, value_max, "
        "latest_at, latest_event_id, latest_value"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_usageevent (customer_id, event_id, event_name, "
            '"timestamp", properties, received_at) VALUES '
            "(%s, 'e1', 'llm', %s, '{\"n\": 1}', %s), (%s, 'e2', 'llm', %s, '{\"n\": 2}', %s)",
            [customer_id, hour, NOW, customer_id, hour, NOW],
        )
        cursor.execute("SELECT max(id) FROM billing_usageevent")
        (highest,) = cursor.fetchone()
        cursor.execute(
            f"INSERT INTO billing_usagerollup ({columns}) VALUES "  # noqa: S608
            "(%s, %s, %s, 1, 5, 5, %s, 'r', 5)",
            [customer_id, meter.id, hour, hour],
        )
        for values in (
            (hour, 2, "3.5", "3"),
            (hour, 1, "1", "1"),
            (hour + timedelta(hours=1), 1, "7", "7"),
        ):
            at, n, total, top = values
            cursor.execute(
                f"INSERT INTO billing_usagerolluptail ({columns}) VALUES "  # noqa: S608
                "(%s, %s, %s, %s, %s, %s, %s, 't', %s)",
                [customer_id, meter.id, at, n, total, top, at + timedelta(minutes=n), top],
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert UsageFoldWatermark.objects.get().folded_through == highest
    assert unfolded_events() == 0
    rows = list(
        UsageRollup.objects.filter(customer_id=customer_id)
        .order_by("hour")
        .values_list("hour", "event_count", "value_sum", "value_max")
    )
    assert rows == [
        (hour, 4, Decimal("9.5"), Decimal(5)),
        (hour + timedelta(hours=1), 1, Decimal(7), Decimal(7)),
    ]
    assert list(
        UsageDailyRollup.objects.filter(customer_id=customer_id).values_list(
            "event_count", "value_sum"
        )
    ) == [(4, Decimal("11.5"))]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('billing_usagerolluptail')")
        assert cursor.fetchone()[0] is None


@pytest.mark.postgres
def test_a_fold_after_a_batch_waits_its_turn_across_processes(customers, settings, monkeypatch):
    """The folds after batches share one clock, the time the last fold took its
    bound (in the database): a process whose own clock is due still leaves the
    events to the next turn when another process folded less than
    BILLING_FOLD_MS ago."""
    from billing.models import UsageFoldWatermark
    from billing.usage.folding import WATERMARK_TABLE, fold_clock

    settings.BILLING_FOLD_MS = 60_000
    make_meters()
    rng = random.Random(3)

    def ingest_with_the_process_clock_due(first: int) -> None:
        monkeypatch.setattr(fold_clock, "_last", float("-inf"))
        with time_machine.travel(NOW, tick=False):
            events_ingest(events=random_events(rng, 10, first=first))

    def turn_taken(ago: timedelta) -> None:
        with connection.cursor() as cursor:  # by another process, `ago` before now
            cursor.execute(
                f"UPDATE {WATERMARK_TABLE} SET bound_taken_at = now() - %s",  # noqa: S608
                [ago],
            )

    usage_fold(wait=True)
    turn_taken(timedelta(seconds=5))
    ingest_with_the_process_clock_due(0)
    assert unfolded_events() > 0  # not this process's turn
    turn_taken(timedelta(seconds=61))
    ingest_with_the_process_clock_due(10)
    assert unfolded_events() == 0  # its turn: every event folded, the last batch's too
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    assert UsageFoldWatermark.objects.get(pk=1).bound_taken_at == now  # the turn it took
    ingest_with_the_process_clock_due(20)
    assert unfolded_events() > 0


def test_a_zero_with_any_exponent_is_read_as_zero_and_folds(customers):
    """A number holding zero with an exponent no numeric column can hold (0E+20000;
    once also as a string, which is no longer read: a plain decimal only) counts as 0:
    stored as that, the fold and every read of the customer would fail on it."""
    meters = make_meters()
    tokens = next(m for m in meters if m.code == "tokens")
    at = (NOW - timedelta(hours=3)).isoformat()
    body = json.dumps(
        {
            "events": [
                {"id": f"z{i}", "customer": "acme", "event_name": "llm", "timestamp": at}
                | {"properties": {"n": "NUMBER", "user": "u1"}}
                for i in range(3)
            ]
        }
    )
    for number in ("0E-16000", "0E+20000", "2.5"):
        body = body.replace('"NUMBER"', number, 1)
    events = batch_parse(body.encode())["events"]
    with time_machine.travel(NOW, tick=False):
        result = events_ingest(events=events)
    assert result.accepted == 3 and not result.rejected
    usage_fold(wait=True)
    assert unfolded_events() == 0
    read = usage_quantities(
        customer_id=customers["acme"],
        meters=[meter_cache.by_id()[tokens.id]],
        start=NOW - timedelta(days=1),
        end=NOW,
    )
    assert read == {tokens.id: Decimal("2.5")}


@pytest.mark.postgres
def test_the_rollups_leave_room_on_their_pages_for_the_folds_updates(db):
    """The fold rewrites rollup rows (migrations 0022 and 0031): with room on their pages the
    new versions are heap-only tuples, which write no index entry."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname IN "
            "('billing_usagerollup', 'billing_usagedailyrollup', 'billing_usagepropertyrollup', "
            "'billing_usagepropertydailyrollup')"
        )
        options = dict(cursor.fetchall())

    assert options == {
        table: ["fillfactor=50"]
        for table in (
            "billing_usagerollup",
            "billing_usagedailyrollup",
            "billing_usagepropertyrollup",
            "billing_usagepropertydailyrollup",
        )
    }
