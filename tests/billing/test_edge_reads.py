"""The partial hours at a read's edges (billing.usage.edges) are exact for any
property values: a read whose edges fall mid-hour equals a brute-force metering
of the raw events with metering.contributions (both databases), and on
PostgreSQL the edges aggregated in SQL equal the same edges metered event by
event in Python, also for meters created after their events arrived (events
some meter of the read cannot read, which Python leaves out whole)."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from billing.usage import edges
from billing.usage.breakdowns import usage_groups
from billing.usage.edges import edges_add_metered
from billing.usage.ingestion import events_ingest
from billing.usage.metering import as_quantity, contributions, meter_cache
from billing.usage.reads import Tally, exact_quantity, hour_edges, usage_quantities
from common.money import SQLITE_EXACT_DIGITS
from customers.services import customer_create
from plans.models import Meter
from plans.services import meter_create

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 10, 10, tzinfo=UTC)
LONG = D("12345678901234567890123456789.5")
# More digits than Decimal's default context keeps: as_text rounds it to "1".
LONG_ONE = D("1.00000000000000000000000000001")

# Values a meter reads (as_quantity): numbers of every form, strings holding one,
# and values it refuses (ingestion then refuses the event; a meter created later
# leaves the event out when reading the raw events).
QUANTITIES = st.one_of(
    st.integers(0, 10**6),
    st.integers(10**15, 10**18 - 1),
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0, D("0.0"), D("-0.0"), D("1.50"), D("2.5000000000"), D("3.50000000000"), D("1E+3")]
    ),
    st.sampled_from([D("0.0000000001"), "12", "3.25", "1_000", " 7 ", "4e2", "0012.50"]),
    st.sampled_from([-1, D("-0.5"), "abc", "NaN", True, None, {"a": 1}, D("1E-11"), 10**18]),
)
# Values filters, distinct counts and groups compare as text (as_text).
TEXTS = st.one_of(
    st.sampled_from(["x", "y", "1.5", "1", "true", "", "Ünï", "z" * 600, str(LONG)]),
    st.sampled_from([1, 2, D("1.0"), D("1.50"), D("15E-1"), D("-0.0"), LONG, LONG_ONE]),
    st.sampled_from([True, False, None, {"a": 1}, [1], []]),
)


def property_values():
    return st.fixed_dictionaries(
        {}, optional={"v": QUANTITIES, "level": TEXTS, "u": TEXTS, "g": TEXTS}
    )


# minute offset from BASE (some shared, for ties), second, the event id's case,
# properties
EVENTS = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 3 * 60 - 1), st.sampled_from([30, 150])),
        st.one_of(st.just(0), st.integers(0, 59)),
        st.booleans(),
        property_values(),
    ),
    min_size=5,
    max_size=60,
)
# Every kind of value above, twice over, in both edges of the range 00:05-02:55.
SPECIAL_VALUES = [
    0, D("0.0"), D("-0.0"), D("1.50"), D("2.5000000000"), D("3.50000000000"), D("1E+3"),
    D("0.0000000001"), "12", "3.25", "1_000", " 7 ", "4e2", "0012.50",
    -1, D("-0.5"), "abc", "NaN", True, None, {"a": 1}, D("1E-11"), 10**18, 10**18 - 1,
]  # fmt: skip
SPECIAL_TEXTS = [
    "x", "y", "1.5", "1", "true", "", "Ünï", "z" * 600, str(LONG),
    1, 2, D("1.0"), D("1.50"), D("15E-1"), D("-0.0"), LONG, LONG_ONE,
    True, False, None, {"a": 1}, [1], [],
]  # fmt: skip
SPECIAL_ROWS = [
    (minute + index % 40, index % 3, index % 2 == 0, properties)
    for minute in (10, 125)
    for index, properties in enumerate(
        [
            {"v": v, "level": t, "u": t, "g": t}
            for v, t in zip(SPECIAL_VALUES, SPECIAL_TEXTS * 2, strict=False)
        ]
        + [{"v": 5, "level": t, "u": t, "g": t} for t in SPECIAL_TEXTS]
        + [{"v": v} for v in SPECIAL_VALUES]
    )
]
SPECIAL_START, SPECIAL_END = 5 * 60 * 10**6, 175 * 60 * 10**6

# A range starting in the first hour and ending in the third, at any microsecond.
START = st.integers(0, 3600 * 10**6 - 1)
END = st.integers(2 * 3600 * 10**6, 3 * 3600 * 10**6)
CUSTOMERS = itertools.count()


def meter_set(prefix: str, event_name: str) -> list[Meter]:
    """Every aggregation, with filters on numbers, booleans, strings and a long
    number, grouped by `g`."""
    common = {"event_name": event_name, "group_by": ["g"]}
    return [
        meter_create(code=f"{prefix}calls", name="Calls", aggregation="count", **common),
        meter_create(
            code=f"{prefix}levels",
            name="Levels",
            aggregation="count",
            filters={"level": ["1.5", "x", True]},
            **common,
        ),
        meter_create(
            code=f"{prefix}longs",
            name="Longs",
            aggregation="count",
            filters={"level": [str(LONG), 1]},  # 1: also LONG_ONE, to Python
            **common,
        ),
        meter_create(
            code=f"{prefix}total", name="Total", aggregation="sum", value_property="v", **common
        ),
        meter_create(
            code=f"{prefix}peak",
            name="Peak",
            aggregation="max",
            value_property="v",
            filters={"level": ["y", 2, False]},
            **common,
        ),
        meter_create(
            code=f"{prefix}last", name="Last", aggregation="latest", value_property="v", **common
        ),
        meter_create(
            code=f"{prefix}users",
            name="Users",
            aggregation="unique_count",
            unique_property="u",
            **common,
        ),
    ]


@pytest.fixture
def meters(db):
    return meter_set("", "act")


def posted(code: str, rows, event_name: str = "act") -> list[dict]:
    events = []
    for index, (minute, second, upper, properties) in enumerate(rows):
        events.append(
            {
                "id": f"{'E' if upper else 'e'}{index}",
                "customer": code,
                "event_name": event_name,
                "timestamp": (BASE + timedelta(minutes=minute, seconds=second)).isoformat(),
                "properties": properties,
            }
        )
    return events


def ingested(code: str, rows, event_name: str = "act") -> list[dict]:
    """Post the events in two batches; the ones ingestion accepted."""
    events = posted(code, rows, event_name)
    refused = set()
    now = BASE + timedelta(hours=5)
    for part in (events[: len(events) // 2], events[len(events) // 2 :]):
        for rejection in events_ingest(events=part, now=now).rejected:
            refused.add(part[rejection.index]["id"])
    return [e for e in events if e["id"] not in refused]


def sqlite_keeps_exactly(events: list[dict]) -> bool:
    """Whether the embedded SQLite keeps every sum of these events' values exactly
    (config.sqlite3, docs/billing.md): a whole sum below 2**63 is an INTEGER, a sum
    with a fraction a REAL, exact to 15 significant digits. PostgreSQL keeps all."""
    if connection.vendor != "sqlite":
        return True
    values = [as_quantity(e["properties"]["v"]) for e in events if "v" in e["properties"]]
    total = sum(values, D(0))
    places = max((-v.normalize().as_tuple().exponent for v in values), default=0)
    if places <= 0:
        return total < 2**63
    return len(str(int(total))) + places <= SQLITE_EXACT_DIGITS


def brute_force(events: list[dict], definitions, start, end, position=None) -> dict:
    """Meter every event in [start, end) with contributions; each meter's
    quantity (by group value when `position` is given)."""
    found: dict = {}
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"])
        if not start <= moment < end:
            continue
        for c in contributions(definitions, event["properties"]):
            key = c.meter_id if position is None else (c.meter_id, c.group[position])
            found.setdefault(key, []).append((moment, event["id"], c))
    by_id = {d.id: d for d in definitions}
    out = {}
    for key, rows in found.items():
        aggregation = by_id[key if position is None else key[0]].aggregation
        values = [c.value for _, _, c in rows]
        if aggregation == Meter.COUNT:
            quantity = D(len(rows))
        elif aggregation == Meter.SUM:
            quantity = sum(values, D(0))
        elif aggregation == Meter.MAX:
            quantity = max(values)
        elif aggregation == Meter.LATEST:
            quantity = max(rows, key=lambda r: (r[0], r[1]))[2].value
        else:
            quantity = D(len({c.unique for _, _, c in rows}))
        out[key] = exact_quantity(quantity)
    return out


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=EVENTS, start=START, end=END)
@example(rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END)
def test_a_read_with_mid_hour_edges_equals_a_brute_force_metering(meters, rows, start, end):
    # given: a customer of its own per example and events of every kind of value
    code = f"c{next(CUSTOMERS)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    events = ingested(code, rows)
    assume(sqlite_keeps_exactly(events))
    definitions = [meter_cache.by_code(m.code) for m in meters]

    # when: a range starting and ending at any microsecond
    begin, end = BASE + timedelta(microseconds=start), BASE + timedelta(microseconds=end)

    # then: every meter equals the brute force; groups too
    assert_reads_equal_brute_force(customer, definitions, events, begin, end)


def assert_reads_equal_brute_force(customer, definitions, events, start, end) -> None:
    """The usage read of [start, end), and each meter's breakdown by `g`, equal
    the brute force of the events."""
    read = usage_quantities(customer_id=customer.pk, meters=definitions, start=start, end=end)
    expected = brute_force(events, definitions, start, end)
    assert read == {d.id: expected.get(d.id, D(0)) for d in definitions}
    grouped = brute_force(events, definitions, start, end, position=0)
    for definition in definitions:
        groups = usage_groups(
            customer_id=customer.pk, meter=definition, by="g", start=start, end=end
        )
        found = {(definition.id, g.key["g"] or ""): g.quantity for g in groups}
        assert found == {k: q for k, q in grouped.items() if k[0] == definition.id}


def tally_quantities(tally: Tally, definitions, keys) -> dict:
    by_id = {d.id: d for d in definitions}
    return {
        key: tally.quantity(
            key,
            by_id[key if isinstance(key, int) else key[0]].aggregation,
            distinct=len(tally.uniques.get(key, ())),
        )
        for key in keys
    }


@pytest.mark.postgres
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=EVENTS,
    start=START,
    end=END,
    chosen=st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
    grouped=st.booleans(),
)
@example(
    rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=list(range(7)), grouped=False
)
@example(
    rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=list(range(7)), grouped=True
)
@example(rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=[1], grouped=False)
@example(rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=[2], grouped=False)
@example(rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=[0, 3, 5], grouped=False)
@example(rows=SPECIAL_ROWS, start=SPECIAL_START, end=SPECIAL_END, chosen=[4, 6], grouped=True)
def test_edges_aggregated_in_sql_equal_the_edges_metered_in_python(
    db, rows, start, end, chosen, grouped
):
    # given: events that arrived before any meter (nothing refused them), then
    # meters, some of which cannot read some of the events
    code = f"late{next(CUSTOMERS)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    event_name = f"late_{code}"
    ingested(code, rows, event_name)
    meters = meter_set(f"{code}_", event_name)
    definitions = [meter_cache.by_code(meters[i].code) for i in chosen]

    # when: the edges of a range, once in SQL and once in Python
    begin, end = BASE + timedelta(microseconds=start), BASE + timedelta(microseconds=end)
    _, _, ranges = hour_edges(begin, end)
    by = {d.id: 0 for d in definitions} if grouped else None
    in_sql, in_python = Tally(), Tally()
    # (the aggregation itself: edges_add would skip ranges without rollup counts,
    # and these meters' rollups are built by a rebuild after the test's commit)
    edges._edges_add(in_sql, customer_id=customer.pk, meters=definitions, ranges=ranges, by=by)
    edges_add_metered(in_python, customer_id=customer.pk, meters=definitions, ranges=ranges, by=by)

    # then: the same keys (groups), distinct values and quantities
    keys = set(in_python.counts) | set(in_python.uniques)
    assert set(in_sql.counts) | set(in_sql.uniques) == keys
    assert in_sql.uniques == in_python.uniques
    assert tally_quantities(in_sql, definitions, keys) == tally_quantities(
        in_python, definitions, keys
    )
