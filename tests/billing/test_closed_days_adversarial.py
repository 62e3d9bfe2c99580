"""The closed days' kept group sums (billing.usage.closed_days) against the whole range
read afresh: every read through the cache, after each of a random sequence of what
changes those days (late events of any kind, for one meter of several; folds or
none; rebuilds; meter edits; reads whose end and clock move), answers what one read
of the whole range would. PostgreSQL only."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from billing.usage import breakdowns
from billing.usage.breakdowns import usage_combinations, usage_groups_of
from billing.usage.closed_days import closed_days_cache
from billing.usage.folding import fold_clock, usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import MAX_UNIQUE_VALUE_LENGTH, meter_cache
from billing.usage.rebuild import meter_usage_rebuild
from customers.services import customer_create
from plans.models import Meter
from plans.services import meter_create, meter_update

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOV_17 = datetime(2026, 11, 17, tzinfo=UTC)
START = NOV_17 + timedelta(minutes=30)
MONTH_END = datetime(2026, 12, 1, tzinfo=UTC)
MODELS = ["gpt-4o", "o1", "", None, "x" * (MAX_UNIQUE_VALUE_LENGTH + 1)]
TYPES = ["input", "output", None]


def meters() -> list:
    made = []
    for code, aggregation, event_name in (
        ("sum_a", "sum", "a"),
        ("max_a", "max", "a"),
        ("count_b", "count", "b"),
        ("uniq_b", "unique_count", "b"),
    ):
        made.append(
            meter_create(
                code=code,
                name=code,
                event_name=event_name,
                aggregation=aggregation,
                value_property="n" if aggregation in ("sum", "max") else "",
                unique_property="u" if aggregation == "unique_count" else "",
                group_by=["model", "token_type"],
            ).id
        )
    return made


def defs(ids):
    found = meter_cache.by_id()
    return [found[i] for i in ids]


def fresh(monkeypatch):
    """A context in which _quantities_read reads the whole range as one statement."""

    def whole(tally, add_sums, *, span, **_):
        add_sums(tally, span[0], span[1])

    patch = pytest.MonkeyPatch()
    patch.setattr(breakdowns, "closed_days_add", whole)
    return patch


def answers(customer_id, ids, end, by):
    ms = defs(ids)
    return (
        usage_combinations(customer_id=customer_id, meters=ms, start=START, end=end),
        usage_groups_of(customer_id=customer_id, meters=ms, by=by, start=START, end=end),
    )


def check(customer_id, ids, end, now, monkeypatch):
    with time_machine.travel(now, tick=False):
        for by in ("model", "token_type"):
            patch = fresh(monkeypatch)
            try:
                expected = answers(customer_id, ids, end, by)
            finally:
                patch.undo()
            for _ in range(3):
                assert answers(customer_id, ids, end, by) == expected


def event(rng, i, at):
    properties = {"n": str(rng.choice([1, 2, D("0.5"), 100, D("1e-10")])), "u": rng.randrange(5)}
    model, kind = rng.choice(MODELS), rng.choice(TYPES)
    if model is not None:
        properties["model"] = model
    if kind is not None:
        properties["token_type"] = kind
    return {
        "id": f"e{i}",
        "customer": "acme",
        "event_name": rng.choice(["a", "b"]),
        "timestamp": at.isoformat(),
        "properties": properties,
    }


@pytest.mark.parametrize("seed", range(2))
def test_kept_sums_are_the_whole_ranges_after_any_change(db, seed, monkeypatch):
    rng = random.Random(seed)
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    ids = meters()
    monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)
    counter = iter(range(10_000))

    def moment():
        # Any minute of the range, or one of the current day's hours before NOW's (a
        # third of the time): the kept hours of that day must count it too.
        if rng.random() < 1 / 3:
            return NOW - timedelta(minutes=rng.randrange(1, 12 * 60))
        return NOV_17 + timedelta(minutes=rng.randrange(4 * 24 * 60 + 700))

    def ingest(n):
        batch = [event(rng, next(counter), moment()) for _ in range(n)]
        with time_machine.travel(NOW, tick=False):
            events_ingest(events=batch)

    ingest(80)
    usage_fold(wait=True)
    for step in range(10):
        action = rng.choice(["late", "late", "fold", "rebuild", "edit", "daily", "none"])
        if action == "late":
            ingest(rng.randrange(1, 4))
        elif action == "fold":
            usage_fold(wait=True)
        elif action == "rebuild":
            meter_usage_rebuild(meter_id=rng.choice(ids))
        elif action == "edit":
            meter = Meter.objects.get(pk=rng.choice(ids))
            meter_update(meter=meter, name=f"{meter.code} {step}")
        elif action == "daily":
            with time_machine.travel(NOW, tick=False):
                call_command("rebuild_daily_rollups", stdout=StringIO())
        # The same read every step (kept from the first on), and one of its kind:
        # some of the meters, to now, the month's end or a past hour, the process's
        # clock on time, behind or ahead.
        check(customer.pk, ids, MONTH_END, NOW, monkeypatch)
        some = rng.sample(ids, rng.randrange(1, len(ids) + 1))
        end = rng.choice([NOW, MONTH_END, NOW - timedelta(days=1, hours=5)])
        now = NOW + rng.choice([timedelta(0), -timedelta(hours=13), timedelta(hours=20)])
        check(customer.pk, some, end, now, monkeypatch)
    assert len(closed_days_cache) > 0


def test_a_read_inside_a_transaction_counts_its_own_late_event(db, monkeypatch):
    """A draw-down reads usage after storing its batch, in the batch's transaction:
    kept sums of the days its own late event lands in are not used."""
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    ids = meters()
    monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)
    rng = random.Random(1)
    with time_machine.travel(NOW, tick=False):
        events_ingest(events=[event(rng, i, NOV_17 + timedelta(hours=i)) for i in range(60)])
    usage_fold(wait=True)
    check(customer.pk, ids, NOW, NOW, monkeypatch)
    with transaction.atomic():
        late = event(rng, 999, NOV_17 + timedelta(days=1, hours=3))
        late["event_name"] = "a"
        late["properties"] |= {"n": "7", "model": "gpt-4o", "token_type": "input"}
        with time_machine.travel(NOW, tick=False):
            events_ingest(events=[late])
            got = answers(customer.pk, ids, NOW, "model")
            patch = fresh(monkeypatch)
            try:
                expected = answers(customer.pk, ids, NOW, "model")
            finally:
                patch.undo()
        assert got == expected


@pytest.mark.parametrize(
    "where", ["closed day", "edge"], ids=["closed day's sums", "finished edge's aggregates"]
)
@pytest.mark.django_db(transaction=True)
def test_a_read_in_a_transaction_never_takes_what_another_thread_kept_after_its_counts(
    monkeypatch, where
):
    """A batch's draw-down reads usage in the batch's transaction, its own late event
    counted. Another thread of the process may store a late event of the same day (or
    hour: of a read's finished edge), committed, and keep the sums it reads between
    this read's counts and its look-up: the same counts (one event more each), other
    events. Those sums are not this read's."""
    import threading

    from django.db import connection

    from billing.usage import closed_days, edges

    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    ids = meters()[:1]  # sum_a
    monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)
    if where == "edge":  # the read's first, partial hour
        at, module, name = NOV_17 + timedelta(minutes=40), edges, "edge_counts"
    else:
        at, module, name = NOV_17 + timedelta(days=1, hours=3), closed_days, "fingerprints"

    def stored(event_id, n, model):
        return {
            "id": event_id,
            "customer": "acme",
            "event_name": "a",
            "timestamp": at.isoformat(),
            "properties": {"n": n, "model": model, "token_type": "input"},
        }

    with time_machine.travel(NOW, tick=False):
        events_ingest(events=[stored(f"h{i}", "1", "gpt-4o") for i in range(5)])
    usage_fold(wait=True)

    def read():
        with time_machine.travel(NOW, tick=False):
            return usage_combinations(
                customer_id=customer.pk, meters=defs(ids), start=START, end=NOW
            )

    for _ in range(2):
        read()  # kept
    counted = getattr(module, name)
    other = []

    def another_thread_reads_meanwhile(*args):
        counts = counted(*args)
        if threading.current_thread() is threading.main_thread() and not other:

            def work():
                try:
                    with time_machine.travel(NOW, tick=False):
                        events_ingest(events=[stored("theirs", "3", "o1")])
                    other.append(read())
                finally:
                    connection.close()

            thread = threading.Thread(target=work)
            thread.start()
            thread.join(timeout=60)
            assert other, "the other thread did not read"
        return counts

    with transaction.atomic():
        with time_machine.travel(NOW, tick=False):
            events_ingest(events=[stored("mine", "7", "gpt-4o")])
        monkeypatch.setattr(module, name, another_thread_reads_meanwhile)
        got = read()
        monkeypatch.setattr(module, name, counted)
        patch = fresh(monkeypatch)
        try:
            expected = read()
        finally:
            patch.undo()
    # its own event counted (and theirs, committed by then)
    assert expected[ids[0]] == {
        (("model", "gpt-4o"), ("token_type", "input")): D(12),
        (("model", "o1"), ("token_type", "input")): D(3),
    }
    assert got == expected
