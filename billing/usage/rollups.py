"""How usage is stored: the events whose key is new and their hourly rollups.

On PostgreSQL one statement per batch writes the event keys (`INSERT ... ON
CONFLICT DO NOTHING RETURNING`) and the events whose key was new, each with its
contributions (the meters it feeds, with its values), from which a fold adds
them to the rollups (billing.usage.folding); the batch travels as one JSON
document.
SQLite, the embedded default, writes the rollups themselves, row by row through
executemany (writer() picks). Also the rollup lock, taken shared by ingestion
and exclusive by a rebuild, and the hour a rollup row covers."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from django.db import connection

from billing.usage.metering import Contribution
from billing.usage.rollup_sql import (
    DAILY_ROLLUP_COLUMNS,
    DAILY_ROLLUP_INSERT,
    DAILY_ROLLUP_ON_CONFLICT,
    GROUP_DAILY_ROLLUP_COLUMNS,
    GROUP_DAILY_ROLLUP_INSERT,
    GROUP_DAILY_ROLLUP_ON_CONFLICT,
    GROUP_DAILY_TABLE,
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_INSERT,
    GROUP_ROLLUP_ON_CONFLICT,
    ROLLUP_COLUMNS,
    ROLLUP_INSERT,
    ROLLUP_ON_CONFLICT,
)

ZERO = Decimal(0)


@dataclass(slots=True)
class PreparedEvent:
    customer_id: int
    event_id: str
    event_name: str
    timestamp: datetime
    properties: dict
    contributions: list[Contribution]
    # Its place in the batch (what the 202 names it by).
    index: int = -1


# Decimals written as the numbers they are (json.dumps refuses them, and floats
# would lose digits); msgspec also writes datetimes as RFC 3339 text.
_EXACT_ENCODER = msgspec.json.Encoder(decimal_format="number")


def exact_json(value) -> str:
    """JSON text with Decimals written as the exact numbers they are."""
    return _EXACT_ENCODER.encode(value).decode()


# An arbitrary, fixed key for PostgreSQL's advisory lock between ingestion (shared)
# and rollup rebuilds (exclusive).
ROLLUP_LOCK_KEY = 7_310_624_001


def rollup_lock(*, shared: bool) -> None:
    """Take the rollup lock for the current transaction. On SQLite a writing
    transaction already excludes every other writer."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [ROLLUP_LOCK_KEY])


HOUR = timedelta(hours=1)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment is in. An aware moment in another zone is read in UTC
    first: in a zone a half or quarter hour off UTC (+05:30, +05:45) its own hour
    starts in the middle of a UTC hour."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The UTC day a rollup hour is in (billing.models.UsageDailyRollup)."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _groups(c, grouped: bool) -> list[tuple]:
    """The keys a contribution adds to beyond (customer, meter, hour): none for
    the hourly rollups (one row); with `grouped`, (position, value) of each of
    its meter's group_by properties (billing.breakdown_models), or only the
    combination's for a meter that keeps combinations only
    (metering.combinations_only)."""
    if not grouped:
        return [()]
    if c.group is None:
        return []
    if c.combination_only:
        return [(len(c.group) - 1, c.group[-1])]
    return list(enumerate(c.group))


def unique_values(events: list[PreparedEvent], *, grouped: bool = False) -> list[tuple]:
    """The distinct (customer, meter, hour, value) of unique_count meters, sorted;
    `grouped`: (customer, meter, hour, position, group value, value) of those
    with group_by."""
    return sorted(
        {
            (event.customer_id, c.meter_id, hour_of(event.timestamp), *group, c.unique)
            for event in events
            for c in event.contributions
            if c.unique is not None
            for group in _groups(c, grouped)
        }
    )


def _add_to(row: list, n, total, top, at, event_id, latest) -> None:
    """Add aggregates (count, sum, max, and the latest value by (at, event id)) to
    a rollup row being built, [count, sum, max, latest_at, latest_event_id, latest_value]."""
    row[0] += n
    row[1] += total
    if top is not None and (row[2] is None or top > row[2]):
        row[2] = top
    if at is not None and (row[3] is None or (at, event_id) > (row[3], row[4])):
        row[3], row[4], row[5] = at, event_id, latest


def rollup_deltas(events: list[PreparedEvent], *, grouped: bool = False) -> list[tuple]:
    """Per (customer, meter, hour): count, sum, max and latest of the new events,
    sorted by key (what _postgres.STORE computes in SQL); `grouped`: per
    (customer, meter, hour, position, group value) of the meters with group_by."""
    rollups: dict[tuple, list] = {}
    for event in events:
        hour = hour_of(event.timestamp)
        for c, group in ((x, g) for x in event.contributions for g in _groups(x, grouped)):
            key = (event.customer_id, c.meter_id, hour, *group)
            # ZERO, not 0: a numeric[] array must not mix int and Decimal.
            aggregates = (1, ZERO if c.value is None else c.value, c.value)
            aggregates += (event.timestamp, event.event_id, c.value)
            row = rollups.get(key)
            if row is None:
                rollups[key] = list(aggregates)
            else:
                _add_to(row, *aggregates)
    return [(*key, *values) for key, values in sorted(rollups.items())]


def daily_deltas(rows: list[tuple]) -> list[tuple]:
    """Hourly rollup rows (rollup_deltas) added up per (customer, meter, UTC day),
    sorted by key: what the same events add to the daily rollups; group rows
    (rollup_deltas with `grouped`) per (customer, meter, UTC day, position, group
    value), for the daily group rollups."""
    days: dict[tuple, list] = {}
    for c, m, hour, *rest in rows:
        # The aggregates are a row's last six columns, after its group, if any.
        key, aggregates = (c, m, day_of(hour), *rest[:-6]), rest[-6:]
        row = days.get(key)
        if row is None:
            days[key] = list(aggregates)
        else:
            _add_to(row, *aggregates)
    return [(*key, *values) for key, values in sorted(days.items())]


def _server_side_cursor():
    """A cursor that sends parameters separately (Django's default for psycopg
    quotes them into the SQL text, slow for a batch). Runs in Django's
    transaction on the same connection."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def contributions_json(event: PreparedEvent) -> list | None:
    """What an event is stored with for the fold (billing.usage.folding), per meter
    it feeds: [meter id, value or null], and the group values of a meter with
    group_by; None for an event no meter counts."""
    return [
        [c.meter_id, c.value] if c.group is None else [c.meter_id, c.value, c.group]
        for c in event.contributions
    ] or None


def _new_events(*, contributions: bool) -> str:
    """The batch, its new keys and its new events (with their contributions, as
    JSON text): the statement that stores a batch on PostgreSQL. Without
    `contributions`, the raw events alone: the ceiling bench/ingest.py measures."""
    column, value = (", contributions", ", b.m::text") if contributions else ("", "")
    return f"""
WITH batch AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS b(c bigint, e text, n text, t timestamptz, p jsonb, m json)
), new_keys AS (
    INSERT INTO billing_eventkey (customer_id, event_id, "timestamp")
    SELECT c, e, t FROM batch ORDER BY c, e
    ON CONFLICT DO NOTHING
    RETURNING customer_id, event_id
), new_events AS (
    INSERT INTO billing_usageevent
        (customer_id, event_id, event_name, "timestamp", properties, received_at{column})
    SELECT b.c, b.e, b.n, b.t, b.p, %s{value}
    FROM batch b JOIN new_keys k ON k.customer_id = b.c AND k.event_id = b.e
    RETURNING customer_id, event_id
)
SELECT customer_id, event_id FROM new_events"""  # noqa: S608 (constants only)


class _postgres:
    """Each write is one statement over the whole batch, sent as one JSON document:
    the keys and the events with their contributions together."""

    # The rollups and the group rollups come from the fold (billing.usage.folding):
    # store_groups writes only the distinct values.
    FOLDS = True
    STORE = _new_events(contributions=True)
    # The raw ceiling bench/ingest.py measures: the events alone.
    INSERT_EVENTS = _new_events(contributions=False)

    @staticmethod
    def batch_json(events: list[PreparedEvent]) -> str:
        return exact_json(
            [
                {
                    "c": e.customer_id,
                    "e": e.event_id,
                    "n": e.event_name,
                    "t": e.timestamp,
                    "p": e.properties,
                    "m": contributions_json(e),
                }
                for e in events
            ]
        )

    @classmethod
    def store(cls, events: list[PreparedEvent], *, received_at: datetime) -> set:
        """Store the events whose key is new, with their contributions; returns
        those keys."""
        with _server_side_cursor() as cursor:
            cursor.execute(cls.STORE, [cls.batch_json(events), received_at])
            return set(cursor.fetchall())

    @staticmethod
    def rollup_json(rows: list[tuple]) -> str:
        return exact_json(
            [
                [c, m, h.isoformat(), n, total, top, at.isoformat() if at else None, eid, latest]
                for c, m, h, n, total, top, at, eid, latest in rows
            ]
        )

    @classmethod
    def upsert_rollups(cls, rows: list[tuple]) -> None:
        """Add hourly rollup rows (rollup_deltas) to the hourly and daily rollups."""
        with _server_side_cursor() as cursor:
            cursor.execute(ROLLUP_INSERT, [cls.rollup_json(rows)])
        cls.upsert_daily(daily_deltas(rows))

    @classmethod
    def upsert_daily(cls, rows: list[tuple]) -> None:
        """Add daily rollup rows (daily_deltas) to the daily rollups."""
        with _server_side_cursor() as cursor:
            cursor.execute(DAILY_ROLLUP_INSERT, [cls.rollup_json(rows)])

    @staticmethod
    def insert_uniques(rows: list[tuple]) -> None:
        document = json.dumps([[c, m, h.isoformat(), v] for c, m, h, v in rows])
        with _server_side_cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_usageuniquevalue (customer_id, meter_id, hour, value) "
                "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, r->>3 "
                "FROM json_array_elements(%s::json) AS r ORDER BY 1, 2, 3, 4 "
                "ON CONFLICT DO NOTHING",
                [document],
            )

    @staticmethod
    def group_rollup_json(rows: list[tuple]) -> str:
        return exact_json(
            [
                [c, m, h.isoformat(), *groups, n, total, top, at and at.isoformat(), eid, latest]
                for c, m, h, *groups, n, total, top, at, eid, latest in rows
            ]
        )

    @classmethod
    def upsert_group_rollups(cls, rows: list[tuple], *, days: bool = True) -> None:
        """Add group rollup rows (rollup_deltas with `grouped`) to the hourly group
        rollups and, with `days`, their days' sums to the daily ones."""
        with _server_side_cursor() as cursor:
            cursor.execute(GROUP_ROLLUP_INSERT, [cls.group_rollup_json(rows)])
        if days:
            cls.upsert_group_daily(daily_deltas(rows))

    @classmethod
    def upsert_group_daily(cls, rows: list[tuple]) -> None:
        """Add daily group rows (daily_deltas of group rows) to the daily group rollups."""
        with _server_side_cursor() as cursor:
            cursor.execute(GROUP_DAILY_ROLLUP_INSERT, [cls.group_rollup_json(rows)])

    @staticmethod
    def insert_group_uniques(rows: list[tuple]) -> None:
        document = json.dumps([[c, m, h.isoformat(), *rest] for c, m, h, *rest in rows])
        with _server_side_cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_usagepropertyuniquevalue "
                "(customer_id, meter_id, hour, position, group_value, value) "
                "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, "
                "(r->>3)::smallint, r->>4, r->>5 FROM json_array_elements(%s::json) AS r "
                "ORDER BY 1, 2, 3, 4, 5, 6 ON CONFLICT DO NOTHING",
                [document],
            )


_NINE_VALUES = "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_ELEVEN_VALUES = "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


class _generic:
    """The same writes, row by row through executemany (SQLite, the embedded default)."""

    FOLDS = False

    @classmethod
    def store(cls, events: list[PreparedEvent], *, received_at: datetime) -> set:
        new = cls.insert_events(events, received_at=received_at)
        rollups = rollup_deltas([e for e in events if (e.customer_id, e.event_id) in new])
        if rollups:
            cls.upsert_rollups(rollups)
        return new

    @staticmethod
    def insert_events(events: list[PreparedEvent], *, received_at: datetime) -> set:
        new = set()
        with connection.cursor() as cursor:
            for e in sorted(events, key=lambda e: (e.customer_id, e.event_id)):
                cursor.execute(
                    'INSERT INTO billing_eventkey (customer_id, event_id, "timestamp") '
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [e.customer_id, e.event_id, e.timestamp],
                )
                if cursor.rowcount == 1:
                    new.add((e.customer_id, e.event_id))
            cursor.executemany(
                "INSERT INTO billing_usageevent (customer_id, event_id, event_name, "
                '"timestamp", properties, received_at, contributions) '
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.customer_id,
                        e.event_id,
                        e.event_name,
                        e.timestamp,
                        exact_json(e.properties),
                        received_at,
                        exact_json(contributions_json(e)) if e.contributions else None,
                    )
                    for e in events
                    if (e.customer_id, e.event_id) in new
                ],
            )
        return new

    @classmethod
    def upsert_rollups(cls, rows: list[tuple]) -> None:
        """Add hourly rollup rows (rollup_deltas) to the hourly and daily rollups."""
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO billing_usagerollup ({ROLLUP_COLUMNS}) {_NINE_VALUES}"
                + ROLLUP_ON_CONFLICT,
                rows,
            )
        cls.upsert_daily(daily_deltas(rows))

    @staticmethod
    def upsert_daily(rows: list[tuple]) -> None:
        """Add daily rollup rows (daily_deltas) to the daily rollups."""
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO billing_usagedailyrollup ({DAILY_ROLLUP_COLUMNS}) {_NINE_VALUES}"
                + DAILY_ROLLUP_ON_CONFLICT,
                rows,
            )

    @staticmethod
    def insert_uniques(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO billing_usageuniquevalue (customer_id, meter_id, hour, value) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )

    @classmethod
    def upsert_group_rollups(cls, rows: list[tuple], *, days: bool = True) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO billing_usagepropertyrollup ({GROUP_ROLLUP_COLUMNS}) "
                f"{_ELEVEN_VALUES}{GROUP_ROLLUP_ON_CONFLICT}",
                rows,
            )
        if days:
            cls.upsert_group_daily(daily_deltas(rows))

    @staticmethod
    def upsert_group_daily(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {GROUP_DAILY_TABLE} ({GROUP_DAILY_ROLLUP_COLUMNS}) "
                f"{_ELEVEN_VALUES}{GROUP_DAILY_ROLLUP_ON_CONFLICT}",
                rows,
            )

    @staticmethod
    def insert_group_uniques(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO billing_usagepropertyuniquevalue "
                "(customer_id, meter_id, hour, position, group_value, value) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )


def store_groups(events: list[PreparedEvent], *, rollups: bool = True) -> None:
    """The breakdowns of stored events: their meters with group_by, per group (the
    distinct values only, without `rollups`)."""
    # A list, not a generator, inside any(): a generator costs twice as much here.
    grouped = [e for e in events if any([c.group is not None for c in e.contributions])]  # noqa: C419
    if not grouped:
        return
    write = writer()
    if rollups:
        write.upsert_group_rollups(rollup_deltas(grouped, grouped=True))
    uniques = unique_values(grouped, grouped=True)
    if uniques:
        write.insert_group_uniques(uniques)


def writer() -> type[_postgres] | type[_generic]:
    """The writer of events and rollups for this database."""
    return _postgres if connection.vendor == "postgresql" else _generic
