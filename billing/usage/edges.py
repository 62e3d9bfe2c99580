"""The partial hours at the edges of a usage read (billing.usage.reads): the raw
events of those ranges, added to a read's tally (count, sum, max, latest and
distinct values per meter, or per meter and group for a breakdown).

On PostgreSQL one statement aggregates the edges in SQL: the meters' filters,
values, distinct values and groups read the properties with the semantics of
billing.usage.metering (`as_text`, `as_quantity`, `group_value`), so an
anniversary period's edge costs about what a whole hour's rollup does. The few
events SQL cannot read exactly as Python does (a string that is no plain decimal,
which `as_quantity` refuses, a value beyond the limits it checks, a number of
more than 28 digits compared as text) come back whole and are metered in Python
by `contributions`, as is every edge event on SQLite."""

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.db import connection
from django.utils import timezone

from billing.models import UsageEvent
from billing.usage.edge_cache import (
    edge_cache,
    edge_counts,
    edge_key,
    finished,
    kept_edge_add,
)
from billing.usage.metering import (
    MAX_UNIQUE_VALUE_LENGTH,
    PROPERTIES_DECODER,
    EventRejected,
    MeterDef,
    as_text,
    contributions,
)
from common import rawsql
from common.groups import OTHER_VALUE
from common.money import MAX_INTEGER_DIGITS, MAX_PLACES
from plans.models import Meter

# The raw events of the ranges (one query for both edges, each a range scan of
# the (customer, event name, timestamp) index).
_EDGE_EVENTS = (
    'SELECT event_name, CAST(properties AS TEXT), "timestamp", event_id '
    "FROM billing_usageevent WHERE customer_id = %s AND event_name IN ({names}) "
    'AND "timestamp" >= %s AND "timestamp" < %s'
)


_TIMESTAMP = UsageEvent._meta.get_field("timestamp")
_EDGE_FIELDS = (
    UsageEvent._meta.get_field("event_name"),
    None,  # the properties as JSON text, decoded exactly by PROPERTIES_DECODER
    _TIMESTAMP,
    UsageEvent._meta.get_field("event_id"),
)


def _by_event(meters: list[MeterDef]) -> dict[str, list[MeterDef]]:
    by_event: dict[str, list[MeterDef]] = {}
    for meter in meters:
        by_event.setdefault(meter.event_name, []).append(meter)
    return by_event


def edge_contributions(customer_id: int, meters: list[MeterDef], ranges: list[tuple]):
    """(contribution, timestamp, event_id) of the raw events in the ranges, each
    event metered in Python."""
    # No meters (a customer without a subscription or rollups): nothing to read, and
    # `IN ()` is a syntax error on PostgreSQL.
    if not ranges or not meters:
        return
    by_event = _by_event(meters)
    one = _EDGE_EVENTS.format(names=", ".join(["%s"] * len(by_event)))
    sql = " UNION ALL ".join([one] * len(ranges))
    params = [p for span in ranges for p in (customer_id, *by_event, *span)]
    yield from _metered(by_event, rawsql.rows(sql, params, _EDGE_FIELDS))


def _metered(by_event: dict[str, list[MeterDef]], events):
    for event_name, raw, timestamp, event_id in events:
        try:
            found = contributions(by_event[event_name], PROPERTIES_DECODER.decode(raw))
        except EventRejected:
            continue  # stored events passed this check when they arrived
        for contribution in found:
            yield contribution, timestamp, event_id


def edges_add(
    tally,
    *,
    customer_id: int,
    meters: list[MeterDef],
    ranges: list[tuple[datetime, datetime]],
    by: dict[int, int] | None = None,
    kept: Mapping[int, frozenset[str] | None] | None = None,
) -> None:
    """Add the raw events of `ranges` to `tally` (billing.usage.reads.Tally):
    keyed by meter id; with `by` (meter id -> the position in its group_by of
    the one property grouped by), by (meter id, the event's value of it); with
    `kept` too (billing.usage.group_limits.edge_values_kept), a value no meter
    keeps is counted under OTHER_VALUE by the statement, not as a group of its
    own (the caller bounds the groups as ever: only what it costs changes). The
    rollups' counts of the ranges' hours are read first (one statement): a range
    none of the meters counts an event in is skipped, and a range in an hour
    that has ended, read before, is read through the edge cache
    (billing.usage.edge_cache)."""
    if not ranges or not meters:
        return
    now = timezone.now()
    rest = []
    kept_before = edge_cache.kept_before()
    counted = edge_counts(customer_id, [m.id for m in meters], ranges)
    for span, counts in zip(ranges, counted, strict=True):
        if not any(counts.values()):
            continue  # no event any of the meters counts
        key = edge_key(customer_id, meters, span, by) if finished(span, now) else None
        if key is None or not edge_cache.read_before(key):
            rest.append(span)
            continue

        def compute(piece, span=span):
            _edges_add(
                piece, customer_id=customer_id, meters=meters, ranges=[span], by=by, kept=kept
            )

        kept_edge_add(tally, compute, key=key, counts=counts, kept_before=kept_before)
    if rest:
        _edges_add(tally, customer_id=customer_id, meters=meters, ranges=rest, by=by, kept=kept)


def _edges_add(
    tally,
    *,
    customer_id: int,
    meters: list[MeterDef],
    ranges: list[tuple[datetime, datetime]],
    by: dict[int, int] | None,
    kept: Mapping[int, frozenset[str] | None] | None = None,
) -> None:
    """edges_add without the counts and the cache: one statement for the ranges."""
    if not ranges or not meters:
        return
    # SQLite, and a read of the combinations of several properties (rate cards),
    # which the statement's one grouping expression does not compute.
    if connection.vendor != "postgresql" or (
        by is not None and any(by[m.id] >= len(m.group_by) for m in meters)
    ):
        edges_add_metered(tally, customer_id=customer_id, meters=meters, ranges=ranges, by=by)
        return
    if by is not None:
        # The statement groups by one property: meters grouped by others (rate
        # cards' one-property meters, each by its own) are read a property at a time.
        by_name: dict[str, list[MeterDef]] = {}
        for meter in meters:
            by_name.setdefault(meter.group_by[by[meter.id]], []).append(meter)
        if len(by_name) > 1:
            for same in by_name.values():
                _edges_add(
                    tally, customer_id=customer_id, meters=same, ranges=ranges, by=by, kept=kept
                )
            return
    grouped = None if by is None else meters[0].group_by[by[meters[0].id]]
    keep = [(kept or {}).get(meter.id) for meter in meters]
    bounded = grouped is not None and kept is not None and None not in keep
    sql, before, after = _aggregate_sql(tuple(meters), len(ranges), grouped, bounded)
    names = list(_by_event(meters))
    params = [*(p for span in ranges for p in (customer_id, *names, *span)), *before]
    if bounded:
        params += [sorted(frozenset().union(*keep)), OTHER_VALUE]
    params += after
    left_to_python = []
    width = len(_PER_METER)
    for group, *row in rawsql.rows(sql, params, (None,) * (1 + len(meters) * width + 4)):
        for index, meter in enumerate(meters):
            n, total, top, at, event_id, value, uniques = row[index * width : (index + 1) * width]
            if not n:
                continue
            key = meter.id if by is None else (meter.id, group)
            tally.add_hours(key, n, total, top)
            if at is not None:
                tally.add_latest(key, at, event_id, value)
            if uniques:
                tally.uniques.setdefault(key, set()).update(uniques)
        event_names, properties, timestamps, event_ids = row[len(meters) * width :]
        if event_names:
            left_to_python.extend(zip(event_names, properties, timestamps, event_ids, strict=True))
    if left_to_python:
        _add_events(tally, _metered(_by_event(meters), left_to_python), by)


def edges_add_metered(
    tally,
    *,
    customer_id: int,
    meters: list[MeterDef],
    ranges: list[tuple[datetime, datetime]],
    by: dict[int, int] | None = None,
) -> None:
    """edges_add with every event metered in Python by `contributions` (SQLite's
    way, on any database)."""
    _add_events(tally, edge_contributions(customer_id, meters, ranges), by)


def _add_events(tally, found, by: dict[int, int] | None) -> None:
    for contribution, timestamp, event_id in found:
        meter_id = contribution.meter_id
        if by is None:
            key = meter_id
        else:
            key = (meter_id, contribution.group[by[meter_id]] if contribution.group else "")
        tally.add_event(key, contribution, timestamp, event_id)


# A piece of the statement: its text and its parameters, in the order written.
Sql = tuple[str, tuple]

# The columns of each meter in the statement's row (NULL where its aggregation
# has none); after them all, the events left to Python (names, properties as
# JSON text, timestamps, event ids, as arrays).
_PER_METER = ("count", "sum", "max", "latest at", "latest event id", "latest value", "uniques")


# A number whose text is longer is left to Python: Decimal.normalize() rounds to
# the context's precision (28 digits by default), PostgreSQL never.
_EXACT_DIGITS = 28


def _text(j: str) -> str:
    """metering.as_text of the JSON value in column `j`: NULL for null, an
    object, a list, no value, or a number longer than _EXACT_DIGITS."""
    return (
        f"CASE jsonb_typeof({j}) WHEN 'string' THEN {j} #>> '{{}}' "
        f"WHEN 'boolean' THEN {j}::text WHEN 'number' THEN CASE WHEN "
        f"length({j}::text) <= {_EXACT_DIGITS} THEN trim_scale({j}::numeric)::text END END"
    )


def _text_known(j: str) -> str:
    """Whether _text(j) is as_text's answer (a long number is left to Python)."""
    return f"COALESCE(length({j}::text) <= {_EXACT_DIGITS} OR jsonb_typeof({j}) <> 'number', TRUE)"


# The form of a number's as_text: digits, a sign, a point (never an exponent).
_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _matching(allowed: frozenset[str]) -> tuple[list[str], bool]:
    """The JSON values whose as_text is one of the filter's texts (each text as a
    string; 'true' and 'false' as booleans; a number's text as that number, which
    PostgreSQL compares by value), and whether a number's text is among them
    (then a number too long for SQL to compare as Python does is left to Python)."""
    found = []
    numbers = False
    for text in sorted(allowed):
        found.append(json.dumps(text))
        if text in ("true", "false"):
            found.append(text)
        elif _NUMBER_TEXT.fullmatch(text):
            numbers = True
            if as_text(Decimal(text)) == text:
                found.append(text)
    return found, numbers


# A string as_quantity reads as PostgreSQL does: plain digits, at most as many as
# it takes (common.money.PLAIN_DECIMAL, a minus sign aside, which as_quantity
# refuses; any other string is left to Python, which refuses it too: an event stored
# before the rule, with " 7 " or "1_000", is left out as a meter created now leaves it).
_PLAIN_NUMBER = f"^[0-9]{{1,{MAX_INTEGER_DIGITS}}}([.][0-9]{{1,{MAX_PLACES}}})?$"


def _quantity(j: str) -> str:
    """The JSON value in column `j` as a number: a JSON number, or a string of
    plain digits; NULL for anything else (left to Python, which may refuse it)."""
    return (
        f"CASE jsonb_typeof({j}) WHEN 'number' THEN {j}::numeric WHEN 'string' THEN "
        f"CASE WHEN {j} #>> '{{}}' ~ '{_PLAIN_NUMBER}' THEN ({j} #>> '{{}}')::numeric END END"
    )


def _readable(q: str) -> str:
    """metering.as_quantity takes the number in column `q` as it is (PostgreSQL
    has it exactly): not negative, under 10^MAX_INTEGER_DIGITS, at most
    MAX_PLACES places as written (more, even zeros, are left to Python)."""
    return (
        f"COALESCE({q} >= 0 AND {q} < 1e{MAX_INTEGER_DIGITS} AND scale({q}) <= {MAX_PLACES}, FALSE)"
    )


class _Columns:
    """What the meters read of each event's properties, computed once an event:
    each property's JSON value (j0), and as the meters need them its text (t0,
    with k0: whether SQL knows it), its number (q0, see _quantity) and whether
    it passes a filter (p0; when a long number could pass it, k0 says whether
    SQL can tell)."""

    def __init__(self):
        self.properties: dict[str, str] = {}
        self.derived: dict[tuple, tuple[str, Sql]] = {}

    def _json(self, prop: str) -> str:
        return self.properties.setdefault(prop, f"j{len(self.properties)}")

    def _derive(self, key: tuple, name: str, sql: Sql) -> str:
        if key not in self.derived:
            self.derived[key] = (name, sql)
        return self.derived[key][0]

    def text(self, prop: str) -> tuple[str, str]:
        j = self._json(prop)
        name = self._derive(("t", j), f"t{j[1:]}", (_text(j), ()))
        return name, self._derive(("k", j), f"k{j[1:]}", (_text_known(j), ()))

    def quantity(self, prop: str) -> str:
        j = self._json(prop)
        return self._derive(("q", j), f"q{j[1:]}", (_quantity(j), ()))

    def passes(self, prop: str, allowed: frozenset[str]) -> tuple[str, str | None]:
        j = self._json(prop)
        values, numbers = _matching(allowed)
        test: Sql = ("FALSE", ())
        if values:
            placeholders = ", ".join(["%s::jsonb"] * len(values))
            test = (f"COALESCE({j} IN ({placeholders}), FALSE)", tuple(values))
        name = self._derive(("p", j, tuple(values)), f"p{len(self.derived)}", test)
        if not numbers:
            return name, None
        return name, self._derive(("k", j), f"k{j[1:]}", (_text_known(j), ()))

    def extracted(self) -> Sql:
        """The properties' JSON values, as the select list's tail."""
        return "".join(f", p -> %s AS {j}" for j in self.properties.values()), tuple(
            self.properties
        )

    def typed(self) -> Sql:
        """The values derived, as the select list's tail."""
        return "".join(f", {text} AS {name}" for name, (text, _) in self.derived.values()), tuple(
            p for _, (_, params) in self.derived.values() for p in params
        )


_LATEST = 'ORDER BY ts DESC, id COLLATE "C" DESC'


def _meter_sql(columns: _Columns, meter: MeterDef, grouped: str | None, index: int):
    """The meter's flag (whether an event counts for it: h<index>), its condition
    for an event Python must meter instead, and its columns (_PER_METER)."""
    known, passes, needs = [], [], []
    for prop, allowed in meter.filters:
        passed, passed_known = columns.passes(prop, allowed)
        passes.append(passed)
        if passed_known:
            known.append(passed_known)
    hit = f"ok AND h{index}"
    total = top = unique = "NULL"
    latest = "NULL, NULL, NULL"
    if meter.aggregation == Meter.UNIQUE_COUNT:
        text, text_known = columns.text(meter.unique_property)
        needs.append(
            f"{text_known} AND COALESCE(length({text}) <= {MAX_UNIQUE_VALUE_LENGTH}, FALSE)"
        )
        unique = f"ARRAY_AGG(DISTINCT {text}) FILTER (WHERE {hit})"
    elif meter.aggregation != Meter.COUNT:
        value = columns.quantity(meter.value_property)
        needs.append(_readable(value))
        if meter.aggregation == Meter.SUM:
            total = f"SUM({value}) FILTER (WHERE {hit})"
        elif meter.aggregation == Meter.MAX:
            top = f"MAX({value}) FILTER (WHERE {hit})"
        else:
            latest = ", ".join(
                f"(ARRAY_AGG({column} {_LATEST}) FILTER (WHERE {hit}))[1]"
                for column in ("ts", "id", value)
            )
    if grouped is not None:
        needs.append(columns.text(grouped)[1])
    known_all = " AND ".join(known) or "TRUE"
    passes_all = " AND ".join(passes) or "TRUE"
    flag = (" AND ".join(["n = %s", *known, *passes]) + f" AS h{index}", (meter.event_name,))
    # An event Python must meter: a filter SQL cannot compare, or a value it
    # cannot read, of a meter the event passes (Python may then refuse it).
    # None for a meter that reads every event (a count without such a filter).
    python = None
    if known or needs:
        python = (
            f"(n = %s AND NOT ({known_all} AND (NOT ({passes_all}) "
            f"OR ({' AND '.join(needs) or 'TRUE'}))))",
            (meter.event_name,),
        )
    aggregates = f"COUNT(*) FILTER (WHERE {hit}), {total}, {top}, {latest}, {unique}"
    return flag, python, aggregates


@lru_cache(maxsize=256)
def _aggregate_sql(
    meters: tuple[MeterDef, ...], ranges: int, grouped: str | None, bounded: bool = False
) -> tuple[str, tuple, tuple]:
    """The statement for these meters over `ranges` ranges (by the values of
    the property `grouped`, if given), and its parameters after the ranges'
    (customer, event names, start, end): those before and after, `bounded`, the
    values kept (an array) and OTHER_VALUE, which the rest of the values become."""
    columns = _Columns()
    group = "NULL"
    if grouped is not None:
        text, _ = columns.text(grouped)
        value = f"CASE WHEN {text} = ANY(%s::text[]) THEN {text} ELSE %s END" if bounded else text
        group = (
            f"CASE WHEN length({text}) BETWEEN 1 AND {MAX_UNIQUE_VALUE_LENGTH} "
            f"THEN {value} ELSE '' END"
        )
    flags, pythons, aggregates = [], [], []
    for index, meter in enumerate(meters):
        flag, python, aggregated = _meter_sql(columns, meter, grouped, index)
        flags.append(flag)
        if python is not None:
            pythons.append(python)
        aggregates.append(aggregated)
    names = list(_by_event(list(meters)))
    one = (  # noqa: S608 (placeholders only)
        'SELECT event_name AS n, "timestamp" AS ts, event_id AS id, properties AS p '
        "FROM billing_usageevent WHERE customer_id = %s AND event_name IN ({names}) "
        'AND "timestamp" >= %s AND "timestamp" < %s'
    ).format(names=", ".join(["%s"] * len(names)))
    extracted, typed = columns.extracted(), columns.typed()
    flag_list = ", ".join(text for text, _ in flags)
    python = " OR ".join(text for text, _ in pythons) or "FALSE"
    left = "FILTER (WHERE NOT ok)"
    # Column names, placeholders and numbers only: every value is a parameter.
    ranges_sql = " UNION ALL ".join([one] * ranges)
    select = "NULL" if grouped is None else "g"
    group_by = "" if grouped is None else " GROUP BY g"
    statement = (
        f"WITH raw AS ({ranges_sql}), "  # noqa: S608
        f"props AS (SELECT *{extracted[0]} FROM raw OFFSET 0), "
        f"typed AS (SELECT *{typed[0]} FROM props OFFSET 0), "
        f"flagged AS (SELECT *, {group} AS g, {flag_list}, NOT ({python}) AS ok "
        "FROM typed OFFSET 0) "
        f"SELECT {select}, {', '.join(aggregates)}, ARRAY_AGG(n) {left}, "
        f"ARRAY_AGG(p::text) {left}, ARRAY_AGG(ts) {left}, ARRAY_AGG(id) {left} "
        f"FROM flagged{group_by}"
    )
    before = (*extracted[1], *typed[1])
    after = (*(p for _, ps in flags for p in ps), *(p for _, ps in pythons for p in ps))
    return statement, before, after
