"""A bound on the groups a customer's events open: per customer, meter, UTC month
and grouped property (and, for a meter grouping by two or more, their
combination), the first BILLING_GROUP_VALUES_LIMIT distinct values get a group of
their own; an event's later values count under OTHER_VALUE. Nothing is refused and
nothing is lost: the event is stored as sent, its quantity counts in full, only
the group it counts under is "other"; ingestion's 202 says so per event.

The invoice stays right: a value a rate card row or a cost rate names (the
catalog's, or the customer's deal) always keeps its own group, and matching a row
compares named values only, so usage under "other" is priced by the row that would
have priced its own value (the default row, or a row naming its other properties).

OTHER_VALUE is U+FFFF, a Unicode noncharacter (kept for a program's internal
use): an event that sends it as a value counts under "other" as well, which is what
it says; the catalog refuses it in a `when`.

The values given a group are rows of UsageGroupValue. Each process keeps the
values it has read per key (they only ever grow within a month), so a batch whose
values are all known reads nothing; a batch with a value not known reads which of
its values have a group, and how many values its keys have, in one query each. A
count this process cached is trusted only once it reached the limit: below it,
other processes may have given places since, so it is counted again. No lock: a
lock per key held to commit made batches of many customers wait on each other
(ingestion's rate fell to a fraction), so batches in flight at once may each give
a key's last free places, and a key can end past the limit by what they give
together (at most a batch's events each): still bounded."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction

from billing.breakdown_models import UsageGroupValue
from billing.models import Subscription
from billing.usage.metering import MeterDef, combination_text, combination_values, meter_cache
from billing.usage.reads import Tally
from billing.usage.rollups import PreparedEvent
from common.groups import OTHER_VALUE
from plans.models import ChargeRate, CostRate

# Keys a process keeps the values of; past it, it forgets them all (they are read
# again: a batch of a customer it forgot costs one query).
CACHE_KEYS = 50_000

Key = tuple[int, int, datetime, int]


@dataclass(slots=True)
class OtherGroups:
    """An event whose values of `properties` count under "other" for `meter`."""

    index: int
    id: str
    meter: str
    properties: list[str]


class GroupValueCache:
    """(customer, meter, month, position) -> (values known to have a group, how many
    have one), as last read: the values this process met, not all of them; or, for
    a key an edge read read whole (`complete`), all of them as they were then."""

    def __init__(self):
        self._keys: dict[Key, tuple[set[str], int]] = {}
        self._complete: set[Key] = set()

    def clear(self) -> None:
        self._keys, self._complete = {}, set()

    def get(self, key: Key) -> tuple[set[str], int] | None:
        return self._keys.get(key)

    def complete(self, key: Key) -> bool:
        return key in self._complete

    def put(self, key: Key, values: set[str], count: int, *, complete: bool = False) -> None:
        if len(self._keys) >= CACHE_KEYS:
            self.clear()
        self._keys[key] = (values, count)
        if complete:
            self._complete.add(key)
        else:
            self._complete.discard(key)


group_value_cache = GroupValueCache()


def month_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


_COLUMNS = "billing_usagegroupvalue (customer_id, meter_id, month, position, group_value)"
_INSERT_JSON = (
    f"INSERT INTO {_COLUMNS} SELECT (r->>0)::bigint, (r->>1)::bigint, "  # noqa: S608 (constants only)
    "(r->>2)::timestamptz, (r->>3)::smallint, r->>4 FROM json_array_elements(%s::json) AS r "
    "ORDER BY 1, 2, 3, 4, 5 ON CONFLICT DO NOTHING"
)
_INSERT_ROWS = f"INSERT INTO {_COLUMNS} VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"  # noqa: S608


def _insert(rows: list[tuple]) -> None:
    """Give these (customer, meter, month, position, value) a group: one statement on
    PostgreSQL, in one order (two batches giving the same values wait, never in a
    cycle)."""
    rows.sort()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps([[c, m, mo.isoformat(), p, v] for c, m, mo, p, v in rows])
            cursor.execute(_INSERT_JSON, [document])
        else:
            # The month as the ORM writes it (sqlite3's own adapter writes another text).
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(_INSERT_ROWS, [(c, m, adapt(mo), p, v) for c, m, mo, p, v in rows])


def _superset(keys) -> dict:
    """A filter of the rows of these keys, by each column's few values (a superset of
    the keys: read off by key)."""
    return {
        "customer_id__in": {key[0] for key in keys},
        "meter_id__in": {key[1] for key in keys},
        "month__in": {key[2] for key in keys},
        "position__in": {key[3] for key in keys},
    }


# PostgreSQL: how many values each key has, and which (key, value) pairs have a group,
# by exact keys sent as one JSON document (a key's index in it comes back).
_COUNTS = (
    "SELECT k.i, (SELECT count(*) FROM billing_usagegroupvalue g WHERE (g.customer_id, "
    "g.meter_id, g.month, g.position) = (k.c, k.m, k.mo, k.p)) FROM json_to_recordset(%s::json) "
    "AS k(i int, c bigint, m bigint, mo timestamptz, p smallint)"
)
_FOUND = (
    "SELECT k.i, k.v FROM json_to_recordset(%s::json) AS k(i int, c bigint, m bigint, "
    "mo timestamptz, p smallint, v text) WHERE EXISTS (SELECT 1 FROM billing_usagegroupvalue g "
    "WHERE (g.customer_id, g.meter_id, g.month, g.position, g.group_value) "
    "= (k.c, k.m, k.mo, k.p, k.v))"
)


_VALUES = (
    "SELECT k.i, g.group_value FROM json_to_recordset(%s::json) AS k(i int, c bigint, "
    "m bigint, mo timestamptz, p smallint) JOIN billing_usagegroupvalue g ON (g.customer_id, "
    "g.meter_id, g.month, g.position) = (k.c, k.m, k.mo, k.p)"
)


def _values_of(keys: list[Key]) -> dict[Key, set[str]]:
    """Every value of these keys that has a group (a key's are at most the limit's,
    and what batches in flight at once gave past it), in one query."""
    values: dict[Key, set[str]] = {key: set() for key in keys}
    if connection.vendor == "postgresql":
        document = [
            {"i": i, "c": c, "m": m, "mo": mo.isoformat(), "p": p}
            for i, (c, m, mo, p) in enumerate(keys)
        ]
        with connection.cursor() as cursor:
            cursor.execute(_VALUES, [json.dumps(document)])
            for i, value in cursor.fetchall():
                values[keys[i]].add(value)
        return values
    rows = UsageGroupValue.objects.filter(**_superset(keys)).values_list(
        "customer_id", "meter_id", "month", "position", "group_value"
    )
    for c, m, mo, p, v in rows:
        key = (c, m, month_of(mo), p)
        if key in values:
            values[key].add(v)
    return values


def _read(
    keys: list[Key], wanted: dict[Key, dict[str, None]]
) -> tuple[dict[Key, int], dict[Key, set[str]]]:
    """How many values have a group for each key whose count this process does not
    know to be full (see the module), and which of the wanted values of each key
    have one: two queries, by exact keys and values."""
    uncached = [key for key in keys if not _known_full(key)]
    counts: dict[Key, int] = {}
    found: dict[Key, set[str]] = {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if uncached:
                document = [
                    {"i": i, "c": c, "m": m, "mo": mo.isoformat(), "p": p}
                    for i, (c, m, mo, p) in enumerate(uncached)
                ]
                cursor.execute(_COUNTS, [json.dumps(document)])
                counts = {uncached[i]: n for i, n in cursor.fetchall()}
            document = [
                {"i": i, "c": c, "m": m, "mo": mo.isoformat(), "p": p, "v": v}
                for i, (c, m, mo, p) in enumerate(keys)
                for v in wanted[(c, m, mo, p)]
            ]
            cursor.execute(_FOUND, [json.dumps(document)])
            for i, value in cursor.fetchall():
                found.setdefault(keys[i], set()).add(value)
        return counts, found
    # SQLite (the embedded default): by each column's few values, read off by key.
    rows = UsageGroupValue.objects.filter(**_superset(keys)).values_list(
        "customer_id", "meter_id", "month", "position", "group_value"
    )
    for c, m, mo, p, v in rows:
        key = (c, m, month_of(mo), p)
        if key in wanted:
            counts[key] = counts.get(key, 0) + 1
            if v in wanted[key]:
                found.setdefault(key, set()).add(v)
    return {key: counts.get(key, 0) for key in uncached}, found


def _known_full(key: Key) -> bool:
    """Whether this process knows the key to have the limit's values (a count that
    only grows: another process cannot make it wrong)."""
    entry = group_value_cache.get(key)
    return entry is not None and entry[1] >= settings.BILLING_GROUP_VALUES_LIMIT


def _count(key: Key, counts: dict[Key, int], known: set[str], seen: set[str]) -> int:
    """A key's count after a read: the one read, else (a key known full) the cached
    count grown by the values other processes gave that this read met."""
    if key in counts:
        return counts[key]
    return group_value_cache.get(key)[1] + len(seen - known)


def _admitted(wanted: dict[Key, dict[str, None]]) -> dict[Key, set[str]]:
    """The values of each key that have a group, giving one to each new value (in
    order) while its key has fewer than the limit."""
    limit = settings.BILLING_GROUP_VALUES_LIMIT
    out: dict[Key, set[str]] = {}
    unknown: list[Key] = []
    for key, values in wanted.items():
        entry = group_value_cache.get(key)
        # A full key still reads the values it does not know: another process (or an
        # earlier one) may have given them their groups.
        if entry is not None and all(v in entry[0] for v in values):
            out[key] = entry[0]
        else:
            unknown.append(key)
    if not unknown:
        return out
    counts, found = _read(unknown, wanted)
    new = []
    for key in unknown:
        entry = group_value_cache.get(key)
        known = set(entry[0]) if entry else set()
        seen = found.get(key, set())
        count = _count(key, counts, known, seen)
        known |= seen
        for value in wanted[key]:
            if value not in known and count < limit:
                known.add(value)
                count += 1
                new.append((*key, value))
        # Kept once committed: a batch rolled back gave no value a group.
        transaction.on_commit(partial(group_value_cache.put, key, known, count))
        out[key] = known
    if new:
        _insert(new)
    return out


def _named_values(meter_ids: set[int], customer_ids: set[int]) -> set[tuple]:
    """(meter id, property, value) that a rate card row or a cost rate of the
    catalog names, and (customer id, meter id, property, value) that a deal of one
    of these customers names: values that always keep their own group."""
    named: set[tuple] = set()
    rows = list(
        ChargeRate.objects.filter(charge__meter_id__in=meter_ids).values_list(
            "charge__meter_id", "when"
        )
    ) + list(CostRate.objects.filter(meter_id__in=meter_ids).values_list("meter_id", "when"))
    for meter_id, when in rows:
        named.update((meter_id, name, str(value)) for name, value in (when or {}).items())
    for customer_id, *documents in Subscription.objects.filter(
        customer_id__in=customer_ids
    ).values_list("customer_id", "overrides", "next_overrides"):
        for document in documents:
            for charge in (document or {}).get("charges", ()):
                meter = meter_cache.by_code(charge.get("meter"))
                for rate in charge.get("rates") or () if meter else ():
                    named.update(
                        (customer_id, meter.id, name, str(value))
                        for name, value in (rate.get("when") or {}).items()
                    )
    return named


def group_values_limit(events: list[PreparedEvent]) -> list[OtherGroups]:
    """Bound the groups the events open (see the module): each contribution's
    group values past the limit become OTHER_VALUE, in place, before the events
    are stored. Returns, per event and meter, the properties counted as "other"."""
    meters = meter_cache.by_id()
    grouped = [
        (event, c, meters[c.meter_id])
        for event in events
        for c in event.contributions
        if c.group is not None and c.meter_id in meters
    ]
    if not grouped:
        return []
    # The properties first, then the combinations of the values they kept.
    wanted: dict[Key, dict[str, None]] = {}
    for event, c, meter in grouped:
        if c.combination_only:
            # Only the combination is stored (and read, for one property too): its
            # bound bounds the properties'.
            continue
        month = month_of(event.timestamp)
        for position in range(len(meter.group_by)):
            value = c.group[position]
            if value and value != OTHER_VALUE:
                wanted.setdefault((event.customer_id, c.meter_id, month, position), {})[value] = (
                    None
                )
    admitted = _admitted(wanted)
    named: set[tuple] | None = None
    folded: dict[tuple[int, int], set[str]] = {}
    combos: dict[Key, dict[str, None]] = {}
    for event, c, meter in grouped:
        month = month_of(event.timestamp)
        values = list(c.group[: len(meter.group_by)])
        for position, value in enumerate(values):
            key = (event.customer_id, c.meter_id, month, position)
            if c.combination_only or not value or value == OTHER_VALUE or value in admitted[key]:
                continue
            if named is None:
                named = _named_values(
                    {m.id for _, _, m in grouped}, {e.customer_id for e, _, _ in grouped}
                )
            if _is_named(named, event.customer_id, meter, position, value):
                continue
            values[position] = OTHER_VALUE
            folded.setdefault((event.index, c.meter_id), set()).add(meter.group_by[position])
        _regroup(c, meter, values)
        if len(meter.group_by) > 1 and c.group[-1] and not _all_other(values):
            key = (event.customer_id, c.meter_id, month, len(meter.group_by))
            combos.setdefault(key, {})[c.group[-1]] = None
    if combos:
        admitted = _admitted(combos)
        for event, c, meter in grouped:
            count = len(meter.group_by)
            key = (event.customer_id, c.meter_id, month_of(event.timestamp), count)
            if count < 2 or not c.group[-1] or c.group[-1] in admitted.get(key, (c.group[-1],)):
                continue
            if named is None:
                named = _named_values(
                    {m.id for _, _, m in grouped}, {e.customer_id for e, _, _ in grouped}
                )
            # A combination past the limit keeps only the values a row names.
            values = list(c.group[:count])
            for position, value in enumerate(values):
                if (
                    value
                    and value != OTHER_VALUE
                    and not _is_named(named, event.customer_id, meter, position, value)
                ):
                    values[position] = OTHER_VALUE
                    folded.setdefault((event.index, c.meter_id), set()).add(
                        meter.group_by[position]
                    )
            _regroup(c, meter, values)
    by_index = {event.index: event for event in events}
    return [
        OtherGroups(
            index=index,
            id=by_index[index].event_id,
            meter=meters[meter_id].code,
            properties=[name for name in meters[meter_id].group_by if name in names],
        )
        for (index, meter_id), names in sorted(folded.items())
    ]


def _is_named(
    named: set[tuple], customer_id: int, meter: MeterDef, position: int, value: str
) -> bool:
    name = meter.group_by[position]
    return (meter.id, name, value) in named or (customer_id, meter.id, name, value) in named


def _all_other(values: list[str]) -> bool:
    return all(value in ("", OTHER_VALUE) for value in values)


def _regroup(c, meter: MeterDef, values: list[str]) -> None:
    """Set a contribution's group texts (metering.group_of) to these values."""
    c.group = (*values, combination_text(values)) if len(values) > 1 else tuple(values)


def _kept_values(wanted: dict[Key, dict[str, None]]) -> dict[Key, set[str]]:
    """Of each key's wanted values, those that have a group, or all of them while the
    key has room (an edge's values counted as ingestion would have). A key whose
    values this process does not all know is read whole, all the keys in one query:
    at most the limit's values each, however many an edge holds past it. A full key
    read whole is answered from memory from then on (a full key gains no value
    but those batches in flight at once give past it, see the module); one with
    room is read again when it meets a value it does not know."""
    limit = settings.BILLING_GROUP_VALUES_LIMIT
    out: dict[Key, set[str]] = {}
    unknown: list[Key] = []
    for key, values in wanted.items():
        entry = group_value_cache.get(key)
        if entry is None:
            unknown.append(key)
        elif (entry[1] >= limit and group_value_cache.complete(key)) or all(
            value in entry[0] for value in values
        ):
            out[key] = {value for value in values if value in entry[0]}
        else:
            unknown.append(key)
    for key, known in _values_of(unknown).items() if unknown else ():
        group_value_cache.put(key, known, len(known), complete=True)
        out[key] = set(wanted[key]) if len(known) < limit else known & wanted[key].keys()
    return out


def edge_values_kept(
    *, customer_id: int, meters: list[MeterDef], position: dict[int, int], month
) -> dict[int, frozenset[str] | None]:
    """Per meter, when its key (at its `position`) is full, the values an edge may
    count under a group of their own: those given a group, and those a row names;
    every other value counts under "other". None where the key has room, or the
    position is a combination: any value may keep its own. The edge's statement
    counts the rest under "other" itself, so that a customer's values past the
    limit cost it no group each (edge_groups_bounded then decides the kept ones as
    before: what it answers is the same)."""
    limit = settings.BILLING_GROUP_VALUES_LIMIT
    keys = {
        meter.id: (customer_id, meter.id, month, position[meter.id])
        for meter in meters
        if position[meter.id] < len(meter.group_by)
    }
    unread = [
        key
        for key in keys.values()
        if not group_value_cache.complete(key) or group_value_cache.get(key) is None
    ]
    for key, known in _values_of(unread).items() if unread else ():
        group_value_cache.put(key, known, len(known), complete=True)
    kept: dict[int, frozenset[str] | None] = {meter.id: None for meter in meters}
    full = {}
    for meter_id, key in keys.items():
        entry = group_value_cache.get(key)
        if entry is not None and entry[1] >= limit:
            full[meter_id] = entry[0]
    if full:
        named = _named_values(set(full), {customer_id})
        for meter in meters:
            if meter.id in full:
                name = meter.group_by[position[meter.id]]
                # (meter, property, value) of the catalog, (customer, ...) of the deal
                kept[meter.id] = frozenset(full[meter.id]) | {
                    entry[-1] for entry in named if entry[-3:-1] == (meter.id, name)
                }
    return kept


def edge_groups_bounded(
    tally: Tally, *, customer_id: int, meters: list[MeterDef], position: dict[int, int], month
) -> Tally:
    """A tally of raw events' groups (the partial hours at a read's edges, metered
    from the events as sent: billing.usage.edges), keyed (meter id, group text) at
    each meter's `position`, with each value as ingestion counted it: past a full
    key's values, and named by no row, as OTHER_VALUE. Unchanged when nothing is past.
    The values are read in two queries at most (the properties', then their
    combinations'), whatever their number."""
    by_id = {meter.id: meter for meter in meters}
    named: set[tuple] | None = None

    def kept_named(meter: MeterDef, at: int, value: str) -> bool:
        nonlocal named
        if not value or value == OTHER_VALUE:
            return True
        if named is None:
            named = _named_values({m.id for m in meters}, {customer_id})
        return _is_named(named, customer_id, meter, at, value)

    def bounded(pairs: list[tuple[MeterDef, int, str]]):
        """kept(meter, at, value) for these values, read at once."""
        wanted: dict[Key, dict[str, None]] = {}
        for meter, at, value in pairs:
            if value and value != OTHER_VALUE:
                wanted.setdefault((customer_id, meter.id, month, at), {})[value] = None
        have = _kept_values(wanted) if wanted else {}

        def kept(meter: MeterDef, at: int, value: str) -> bool:
            if not value or value == OTHER_VALUE:
                return True
            if value in have.get((customer_id, meter.id, month, at), ()):
                return True
            return at < len(meter.group_by) and kept_named(meter, at, value)

        return kept

    keys = set(tally.counts) | set(tally.latest) | set(tally.uniques)
    split: dict[tuple, list[str]] = {}
    pairs = []
    for key in keys:
        meter_id, text = key
        meter, at = by_id[meter_id], position[meter_id]
        if at < len(meter.group_by):
            pairs.append((meter, at, text))
        else:
            split[key] = [value or "" for _, value in combination_values(meter, text)]
            pairs += [(meter, i, v) for i, v in enumerate(split[key])]
    kept = bounded(pairs)
    for key, values in split.items():
        meter = by_id[key[0]]
        split[key] = [v if kept(meter, i, v) else OTHER_VALUE for i, v in enumerate(values)]
    combined = {
        key: combination_text(values) if key[1] else key[1] for key, values in split.items()
    }
    kept_combined = bounded(
        [(by_id[key[0]], len(by_id[key[0]].group_by), text) for key, text in combined.items()]
    )
    mapping = {}
    for key in keys:
        meter_id, text = key
        meter = by_id[meter_id]
        if key not in split:
            mapping[key] = (
                meter_id,
                text if kept(meter, position[meter_id], text) else OTHER_VALUE,
            )
            continue
        text = combined[key]
        if not kept_combined(meter, len(meter.group_by), text):
            values = [
                v if kept_named(meter, i, v) else OTHER_VALUE for i, v in enumerate(split[key])
            ]
            text = combination_text(values)
        mapping[key] = (meter_id, text)
    if all(mapping[key] == key for key in mapping):
        return tally
    out = Tally()
    for key, n in tally.counts.items():
        out.add_hours(mapping[key], n, tally.sums.get(key), tally.maxima.get(key))
    for key, latest in tally.latest.items():
        out.add_latest(mapping[key], *latest)
    for key, values in tally.uniques.items():
        out.uniques.setdefault(mapping[key], set()).update(values)
    return out
