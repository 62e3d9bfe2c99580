"""The finished partial hours of usage reads kept per process
(billing.usage.edge_cache): a read through kept aggregates equals a brute-force
metering of the raw events whatever arrives late, in the ranges or elsewhere in
their hours, folded or left in the tail (both databases); a range is kept from
its second read on, and used only while its hour's counts are unchanged: never
when an event was stored while it was being aggregated, never after a rebuild of
the meter's rollups, and never kept from a read inside a transaction."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.usage import edges
from billing.usage.edge_cache import EdgeCache, edge_cache, finished
from billing.usage.folding import fold_clock
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import Tally, usage_quantities
from billing.usage.rebuild import meter_usage_rebuild
from customers.services import customer_create
from tests.billing.test_edge_reads import (
    assert_reads_equal_brute_force,
    brute_force,
    meter_set,
)

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 10, 10, tzinfo=UTC)
NOW = BASE + timedelta(hours=5)
# The read: from 00:20:00.5 into the first hour to 02:40:00.25 into the third; its
# edges, both in hours that have ended by NOW.
START = BASE + timedelta(minutes=20, microseconds=500_000)
END = BASE + timedelta(hours=2, minutes=40, microseconds=250_000)
LEADING = (START, BASE + timedelta(hours=1))
TRAILING = (BASE + timedelta(hours=2), END)
CUSTOMERS = itertools.count()


@pytest.fixture
def definitions(db):
    return [meter_cache.by_code(m.code) for m in meter_set("", "act")]


@pytest.fixture
def computed(monkeypatch):
    """The ranges aggregated from the raw events, in order."""
    spans = []
    aggregate = edges._edges_add

    def recording(tally, *, ranges, **kwargs):
        spans.extend(ranges)
        aggregate(tally, ranges=ranges, **kwargs)

    monkeypatch.setattr(edges, "_edges_add", recording)
    return spans


def event(n: int, moment: datetime, properties: dict, name: str = "act", code: str = "") -> dict:
    return {
        "id": f"e{n}",
        "customer": code,
        "event_name": name,
        "timestamp": moment.isoformat(),
        "properties": properties,
    }


def props(n: int) -> dict:
    """Properties every meter of meter_set reads."""
    return {"v": n, "u": f"u{n}", "level": "x", "g": "a"}


def stored(events: list[dict]) -> list[dict]:
    """Ingest at NOW; the events it accepted."""
    refused = {events[r.index]["id"] for r in events_ingest(events=events, now=NOW).rejected}
    return [e for e in events if e["id"] not in refused]


def assert_reads_exact(customer, definitions, events) -> None:
    """The read of [START, END) and its breakdowns equal the brute force of the
    `act` events (what the meters read)."""
    acts = [e for e in events if e["event_name"] == "act"]
    assert_reads_equal_brute_force(customer, definitions, acts, START, END)


def test_only_a_range_inside_an_hour_that_has_ended_is_kept():
    hour = BASE
    assert finished(
        (hour + timedelta(minutes=20), hour + timedelta(hours=1)), hour + timedelta(hours=1)
    )
    assert not finished(
        (hour + timedelta(minutes=20), hour + timedelta(hours=1)), hour + timedelta(minutes=59)
    )
    assert not finished((hour + timedelta(minutes=20), hour + timedelta(hours=1, seconds=1)), NOW)


# Properties: values any meter reads, some it refuses (ingestion refuses the event).
# Every value of every kind is tested in test_edge_reads; here sums stay within the
# 15 digits SQLite keeps.
PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(
            st.integers(0, 10**6),
            st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False),
            st.sampled_from(["12", "3.25", -1, "abc", None]),
        ),
        "level": st.sampled_from(["x", "y", "1.5", 2, True, False, None]),
        "u": st.sampled_from(["a", "b", "c", 1, "1", True]),
        "g": st.sampled_from(["a", "b", "", 1, None]),
    },
)

# Late events: minute offset from BASE (the read's edge is 00:20:00.5-01:00, the
# rest of that hour before it), and properties of every kind.
LATE = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 59), st.sampled_from([20, 21]), st.integers(60, 179)),
        PROPERTIES,
        st.sampled_from(["act", "act", "other"]),
    ),
    min_size=1,
    max_size=8,
)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("folded", [True, False], ids=["folded", "left in the tail"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.lists(st.tuples(st.integers(0, 179), PROPERTIES), min_size=1, max_size=30),
    late=st.lists(LATE, min_size=1, max_size=3),
)
def test_reads_through_kept_edges_equal_a_brute_force_as_events_arrive_late(
    definitions, computed, monkeypatch, folded, first, late
):
    if not folded:
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL only: SQLite writes the rollups with the batch")
        monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)
    code = f"c{next(CUSTOMERS)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    numbers = itertools.count()
    events = stored(
        [event(next(numbers), BASE + timedelta(minutes=m), p, code=code) for m, p in first]
    )
    for _ in range(3):  # seen, kept, used
        assert_reads_exact(customer, definitions, events)

    for arrivals in late:
        computed.clear()
        # when: events arrive late, then the same reads run twice
        new = stored(
            [
                event(next(numbers), BASE + timedelta(minutes=m, seconds=7), p, name, code)
                for m, p, name in arrivals
            ]
        )
        events += new
        assert_reads_exact(customer, definitions, events)
        first_reads = list(computed)
        assert_reads_exact(customer, definitions, events)
        second_reads = list(computed)
        assert_reads_exact(customer, definitions, events)

        # then: an edge was aggregated again only if a stored event landed in its
        # hour (every `act` event counts for the `calls` meter of the plain read),
        # and by the third reads every edge with events was kept and used
        for edge in (LEADING, TRAILING):
            hour = edge[0].replace(minute=0, microsecond=0)
            landed = any(
                e["event_name"] == "act"
                and hour <= datetime.fromisoformat(e["timestamp"]) < hour + timedelta(hours=1)
                for e in new
            )
            assert (edge in first_reads) == landed
        assert computed == second_reads


@time_machine.travel(NOW, tick=False)
def test_an_event_stored_while_the_edge_is_aggregated_makes_the_next_read_aggregate_again(
    definitions, computed, monkeypatch
):
    customer = customer_create(external_id="acme", name="acme", currency="USD")
    events = stored(
        [event(i, BASE + timedelta(minutes=30 + i), props(i), code="acme") for i in range(5)]
    )
    read = {"customer_id": customer.pk, "meters": definitions, "start": START, "end": END}
    usage_quantities(**read)  # the first read: seen, not kept
    aggregate = edges._edges_add
    arriving = [event(99, BASE + timedelta(minutes=45), props(7), code="acme")]

    def event_arrives_first(tally, **kwargs):
        # the hour's counts are read; an event is stored; the events are aggregated
        if arriving:
            events.extend(stored([arriving.pop()]))
        aggregate(tally, **kwargs)

    monkeypatch.setattr(edges, "_edges_add", event_arrives_first)
    first = usage_quantities(**read)
    assert first[definitions[0].id] == 6  # the calls counted: it saw the event
    assert len(edge_cache) == 1  # the trailing edge has no events: skipped

    monkeypatch.setattr(edges, "_edges_add", aggregate)
    computed.clear()
    second = usage_quantities(**read)
    # the entry's counts were read before the event: never used; aggregated again
    assert computed == [LEADING]
    assert second == first
    expected = brute_force(events, definitions, START, END)
    assert second == {d.id: expected.get(d.id, D(0)) for d in definitions}


@time_machine.travel(NOW, tick=False)
def test_a_read_inside_a_transaction_keeps_nothing(definitions, computed):
    customer = customer_create(external_id="acme", name="acme", currency="USD")
    stored([event(i, BASE + timedelta(minutes=30 + i), props(i), code="acme") for i in range(5)])
    read = {"customer_id": customer.pk, "meters": definitions, "start": START, "end": END}

    seen = usage_quantities(**read)
    with transaction.atomic():
        inside = usage_quantities(**read)
    assert len(edge_cache) == 0
    outside = usage_quantities(**read)
    again = usage_quantities(**read)

    assert seen == inside == outside == again
    assert len(edge_cache) == 1
    # the trailing edge's hour holds no event: never aggregated
    assert computed == [LEADING] * 3


@time_machine.travel(NOW, tick=False)
def test_a_rebuild_of_a_meters_rollups_is_a_new_key(definitions, computed):
    customer = customer_create(external_id="acme", name="acme", currency="USD")
    stored([event(i, BASE + timedelta(minutes=30 + i), props(i), code="acme") for i in range(5)])
    read = {"customer_id": customer.pk, "start": START, "end": END}
    for _ in range(3):
        usage_quantities(meters=definitions, **read)
    assert computed.count(LEADING) == 2  # seen, then kept, then used

    meter_usage_rebuild(meter_id=definitions[0].id)

    rebuilt = [meter_cache.by_id()[d.id] for d in definitions]
    assert rebuilt[0].revision != definitions[0].revision
    assert rebuilt[1:] == definitions[1:]
    computed.clear()
    assert usage_quantities(meters=rebuilt, **read) == usage_quantities(meters=definitions, **read)
    assert computed == [LEADING]  # the new key: seen, aggregated


@time_machine.travel(NOW, tick=False)
def test_a_size_of_zero_keeps_nothing(definitions, computed, settings):
    settings.BILLING_EDGE_CACHE_SIZE = 0
    customer = customer_create(external_id="acme", name="acme", currency="USD")
    stored([event(i, BASE + timedelta(minutes=30 + i), props(i), code="acme") for i in range(5)])
    for _ in range(3):
        usage_quantities(customer_id=customer.pk, meters=definitions, start=START, end=END)
    assert len(edge_cache) == 0
    assert computed == [LEADING] * 3


def test_the_least_recently_used_entries_go_first_by_weight(settings):
    """An entry weighs 1 plus its keys plus its distinct values."""
    settings.BILLING_EDGE_CACHE_SIZE = 10
    cache = EdgeCache()

    def piece(values: int) -> Tally:
        kept = Tally()
        if values:
            kept.counts[1] = values
            kept.uniques[1] = {f"u{i}" for i in range(values - 1)}
        return kept

    cache.put("a", {1: 1}, piece(3))  # weighs 4
    cache.put("b", {1: 1}, piece(0))  # 1
    cache.put("c", {1: 1}, piece(4))  # 5: 10 in all
    assert cache.get("a", {1: 1}) is not None  # now the most recently used
    cache.put("d", {1: 1}, piece(1))  # 2: "b" then "c" go
    assert [k for k in "abcd" if cache.get(k, {1: 1}) is not None] == ["a", "d"]
    cache.put("a", {1: 2}, piece(0))  # replaced: weighs 1 now
    assert cache.get("a", {1: 1}) is None
    assert cache.get("a", {1: 2}) is not None
    cache.put("e", {1: 1}, piece(6))  # 7: 1 + 2 + 7 = 10, nothing goes
    assert len(cache) == 3
    cache.put("f", {1: 1}, piece(20))  # heavier than the whole budget: all go
    assert len(cache) == 0


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "minutes",
    [(30, 75), (30, 59), (61, 75), (5, 10), (130, 140)],
    ids=["both hours", "first", "second", "before the range", "neither hour"],
)
def test_one_range_over_two_hours_counts_the_events_of_both(definitions, minutes):
    """A read shorter than an hour across an hour's end is one range touching two
    hours: counted in either, it is read; in neither, skipped."""
    customer = customer_create(external_id="acme", name="acme", currency="USD")
    moments = [BASE + timedelta(minutes=m) for m in minutes]
    events = stored([event(i, m, props(i), code="acme") for i, m in enumerate(moments)])
    start, end = BASE + timedelta(minutes=20), BASE + timedelta(minutes=80)
    for _ in range(3):
        read = usage_quantities(customer_id=customer.pk, meters=definitions, start=start, end=end)
        expected = brute_force(events, definitions, start, end)
        assert read == {d.id: expected.get(d.id, D(0)) for d in definitions}
