"""Folding: on PostgreSQL a batch writes no rollup row. Each event is stored
with its contributions (the meters it feeds and its values and group values,
billing.usage.rollups), and a fold adds the events after the watermark to the
rollups in one statement a table, moving the watermark in the same transaction.

A read is the rollups plus the events after the watermark, aggregated in the
same statement (the views `billing_usageunfolded` and
`billing_usagepropertyunfolded`, by the customer's (customer, id) index), so one
snapshot: an event is in the rollups (id at most the watermark) or read from the
events (id above it), never both and never neither, also when the folder is
killed mid-fold (its transaction rolls back, watermark and all). So an event
acknowledged with 202 counts in the very next read, without a batch writing a
single contended rollup row, and a fold writes one rollup row per customer,
meter and hour for all the batches since the last fold.

The watermark is an event id, and ids are drawn before commit: a batch that
commits late can hold ids below one already committed. So the fold takes its
bound, the highest stored id, while holding the rollup lock exclusively for a
moment: ingestion holds it shared from before it draws an id until it commits,
so every batch with an id up to that bound has ended, and every later batch
draws higher ids.

Events also move: those the default partition took for want of their month move
into it as it is made (billing.usage.partitions), ids and all, so the watermark still
holds. A statement planned while the month is attached would run on the partitions
without it and on the rows after the move, and find the moved events nowhere: a fold
would move the watermark past them, out of every read for good. So the move and the
attach lock the events table exclusively, and a fold or a read waits for them before
it is planned.

The fold runs in the folder service (`manage.py fold_usage --every 1`, in
production) or, without one, in an ingesting process after its batch commits, at
most once every BILLING_FOLD_MS across all processes (the turn is the time the last
fold took its bound: a process that finds it taken waits for its own clock again, so
while the folder folds more often than that, batches do not), one folder at a time
(a try-lock: a busy folder is not waited for); the beat runs it every minute for when
ingestion stops, and `manage.py fold_usage` by hand. A fold takes up to FOLD_CHUNK
events a transaction; the folder folds every chunk up to its bound, a fold after a
batch one: without the folder, ingestion beyond FOLD_CHUNK events a turn (50,000 a
second by default: a chunk every BILLING_FOLD_MS, two seconds) leaves a backlog to the
beat. SQLite, the embedded default, writes the rollups directly at ingestion: its views
are empty and it has nothing to fold."""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from psycopg.errors import LockNotAvailable

from billing.usage.partitions import EVENTS_TABLE
from billing.usage.rollup_sql import GROUP_DAILY_ROLLUP_REPLACE
from billing.usage.rollups import (
    DAILY_ROLLUP_COLUMNS,
    DAILY_ROLLUP_ON_CONFLICT,
    GROUP_DAILY_ROLLUP_COLUMNS,
    GROUP_DAILY_ROLLUP_ON_CONFLICT,
    GROUP_DAILY_TABLE,
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
    rollup_lock,
)
from billing.usage.summing import added_up, sums_per_key
from plans.models import Meter

logger = logging.getLogger(__name__)

# Events one fold transaction takes; a longer backlog takes several.
FOLD_CHUNK = 100_000

# How long a fold in the request path waits for the batches in flight to end
# before it takes its bound (a batch waiting on a wallet's lock, say).
BOUND_WAIT_MS = 250

# The memory each sort of a fold may take, for the rest of the fold's transaction
# (PostgreSQL's default, 4MB, spilled a fold of a second's events, some 25,000 at
# full speed, to temporary files: about 5% of its time).
FOLD_WORK_MEM = "32MB"

# An arbitrary, fixed key for the advisory lock that lets one folder run at a time.
FOLD_LOCK_KEY = 7_310_624_002

WATERMARK_TABLE = "billing_usagefoldwatermark"
# The watermark, in SQL: 0 (nothing folded) without its row, as after a flush
# of every table, the events included.
FOLDED_THROUGH = f"coalesce((SELECT max(folded_through) FROM {WATERMARK_TABLE}), 0)"  # noqa: S608

# A UTC midnight, for date_bin: whole hours and days from it are UTC hours and days.
HOUR_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

# The day the daily group rollups are whole before (WATERMARK_TABLE.group_days_before;
# null: every day), in SQL; and it with the database's day, as the folder reads them.
GROUP_DAYS_BEFORE = f"(SELECT max(group_days_before) FROM {WATERMARK_TABLE})"  # noqa: S608
_GROUP_DAYS = f"SELECT {GROUP_DAYS_BEFORE}, date_bin('1 day', now(), {HOUR_ORIGIN})"

# The stored events' contributions, a row each: the event's customer, the meter, the
# event's hour, the contribution's value (null for count meters), the event's time, id
# and row id, and the contribution's group values. `contributions` is the JSON text
# ingestion stores: [[meter id, value or null, [group values] if the meter has
# group_by], ...], read as jsonb: parsed once an event, where each json operator parses
# its text again. An event's hour is binned from a UTC midnight (date_trunc with a time
# zone converts every timestamp; a fifth of the view's cost).
CONTRIBUTION_ROWS = f"""
SELECT e.customer_id, (x->>0)::bigint AS meter_id,
    date_bin('1 hour', e."timestamp", {HOUR_ORIGIN}) AS hour, (x->>1)::numeric AS value,
    e."timestamp" AS at, e.event_id, x->2 AS group_values, e.id AS event_row
FROM {EVENTS_TABLE} e
CROSS JOIN LATERAL jsonb_array_elements(e.contributions::jsonb) AS x"""  # noqa: S608

# A contribution row (CONTRIBUTION_ROWS) as a rollup row of one event, in the rollups'
# columns.
AS_ROLLUP_ROW = (
    "customer_id, meter_id, hour, 1::bigint AS event_count, coalesce(value, 0) AS value_sum, "
    "value AS value_max, at AS latest_at, event_id AS latest_event_id, value AS latest_value"
)

# The events after the watermark, a rollup row of one event per contribution, with the
# contribution's group values and the event's row id.
UNFOLDED_VIEW = f"""
SELECT {AS_ROLLUP_ROW}, group_values, event_row
FROM ({CONTRIBUTION_ROWS}) AS c
WHERE event_row > {FOLDED_THROUGH}"""  # noqa: S608 (constants only)


# The same per group value of each group_by property (position: its place in the
# meter's group_by).
def by_group_value(source: str, *, event_row: bool) -> str:
    """A SELECT of the rows of `source` (the unfolded view's columns), one per
    group value, in the group rollups' columns (and the event's id)."""
    return f"""
SELECT u.customer_id, u.meter_id, u.hour, (g.n - 1)::smallint AS position,
    g.value AS group_value, u.event_count, u.value_sum, u.value_max, u.latest_at,
    u.latest_event_id, u.latest_value{", u.event_row" if event_row else ""}
FROM {source} u
CROSS JOIN LATERAL jsonb_array_elements_text(u.group_values) WITH ORDINALITY AS g(value, n)"""  # noqa: S608


PROPERTY_UNFOLDED_VIEW = by_group_value("billing_usageunfolded", event_row=True)


@dataclass(frozen=True)
class Folded:
    """A rollup table and the view of its rows not folded yet."""

    table: str
    unfolded: str
    key: str
    columns: str
    on_conflict: str

    def insert_from(self, source: str) -> str:
        """An INSERT adding the rows of `source` (in this table's columns), added up
        per key, to the rollups."""
        return added_up(self.table, self.columns, self.key, self.on_conflict, source)

    def rows(self, columns: str, where: str) -> str:
        """A SELECT of `columns` of the rows matching `where` in the rollups and
        among the unfolded events: one statement, so one snapshot, in which each
        event is in exactly one of the two. Its parameters are those of `where`,
        twice."""
        return (
            f"SELECT {columns} FROM {self.table} WHERE {where} "  # noqa: S608
            f"UNION ALL SELECT {columns} FROM {self.unfolded} WHERE {where}"
        )


DAILY_TABLE = "billing_usagedailyrollup"


def days_added_up(
    on_conflict: str, source: str, *, latest_meters_only: bool = False, grouped: bool = False
) -> str:
    """An INSERT adding hourly rows (of `source`) to the daily rollups, a row per
    customer, meter and UTC day (`latest_meters_only`: sums_per_key); `grouped`:
    group rows to the daily group rollups, a row per customer, meter, UTC day,
    position and group value."""
    group = ", position, group_value" if grouped else ""
    by_day = (
        f"(SELECT customer_id, meter_id, date_bin('1 day', hour, {HOUR_ORIGIN}) AS day{group}, "  # noqa: S608
        f"event_count, value_sum, value_max, latest_at, latest_event_id, latest_value "
        f"FROM {source}) AS hours"
    )
    return added_up(
        GROUP_DAILY_TABLE if grouped else DAILY_TABLE,
        GROUP_DAILY_ROLLUP_COLUMNS if grouped else DAILY_ROLLUP_COLUMNS,
        f"customer_id, meter_id, day{group}",
        on_conflict,
        by_day,
        latest_meters_only=latest_meters_only,
    )


HOURLY = Folded(
    "billing_usagerollup",
    "billing_usageunfolded",
    "customer_id, meter_id, hour",
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
)
GROUPS = Folded(
    "billing_usagepropertyrollup",
    "billing_usagepropertyunfolded",
    "customer_id, meter_id, hour, position, group_value",
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
)

# The views' definitions, by name (migration billing 0018 creates them).
VIEWS = {HOURLY.unfolded: UNFOLDED_VIEW, GROUPS.unfolded: PROPERTY_UNFOLDED_VIEW}

# The meters whose group rollups keep only the combination of their group_by values
# when they group by two or more (metering.combinations_only), as the meters table
# says in the fold's snapshot: a contribution's group values are its properties' then,
# for two or more, their combination, last.
COMBINED_METERS = (
    f"SELECT id FROM plans_meter WHERE aggregation IN ('{Meter.COUNT}', '{Meter.SUM}')"  # noqa: S608
)


def group_sums(source: str) -> str:
    """The group rows a fold adds from `source` (its unfolded contributions), added up
    per group rollup key, in key order. A count or sum meter (COMBINED_METERS) adds
    its last group value only, at its position (its combination's, or its one
    property's), added up straight from the contributions (no latest columns: neither
    aggregation reads them); any other meter a row per group value (by_group_value),
    added up by sums_per_key. For bench/ingest.py --rated's card, a row per group value
    cost 40% of this step, and a row per contribution before adding up 9% of the fold."""
    last = "jsonb_array_length(group_values) - 1"
    contributions = f"(SELECT {AS_ROLLUP_ROW}, group_values FROM {source})"  # noqa: S608
    expanded = (
        f"({by_group_value(contributions, event_row=False)}\n"
        f"WHERE u.group_values IS NOT NULL AND u.meter_id NOT IN ({COMBINED_METERS})) AS expanded"
    )
    return f"""
    SELECT customer_id, meter_id, hour, ({last})::smallint AS position,
        group_values->>({last}) AS group_value, count(*) AS event_count,
        sum(coalesce(value, 0)) AS value_sum, max(value) AS value_max,
        NULL::timestamptz AS latest_at, ''::varchar AS latest_event_id,
        NULL::numeric AS latest_value
    FROM {source}
    WHERE jsonb_array_length(group_values) > 0 AND meter_id IN ({COMBINED_METERS})
    GROUP BY customer_id, meter_id, hour, position, group_value
    UNION ALL ({sums_per_key(GROUPS.key, expanded, latest_meters_only=True)})
    ORDER BY {GROUPS.key}"""  # noqa: S608 (constants only)


def _fold_sql() -> str:
    """The unfolded rows of the events with ids in (watermark, bound] added to the
    rollups in one statement: to the hourly ones, the hours' sums to the daily
    ones, and the contributions' group values to the group rollups (group_sums) and,
    for the days before GROUP_DAYS_BEFORE (late events), their hours' sums to the
    daily group rollups, each in key order; a later day's group rows are rolled up
    once it has passed (group_days_roll). Each event is read and its contributions
    parsed once for all, and each contribution kept once, its value parsed once: its
    rollup columns (AS_ROLLUP_ROW) are computed from it as the rows are added up
    (some 7% of a fold's time, against keeping them all). Returns how many rows it
    added up (contributions and group values: a group row counts the values it
    adds). Its parameters: the watermark and the bound (written out, so that the
    planner reads the few events between them by their id index)."""
    hours = f"(SELECT {AS_ROLLUP_ROW} FROM unfolded) AS u"  # noqa: S608 (constants only)
    group_days = days_added_up(
        GROUP_DAILY_ROLLUP_ON_CONFLICT,
        f"group_added WHERE hour < coalesce({GROUP_DAYS_BEFORE}, 'infinity')",
        latest_meters_only=True,
        grouped=True,
    )
    return f"""
WITH unfolded AS MATERIALIZED (
    SELECT customer_id, meter_id, hour, value, at, event_id, group_values
    FROM ({CONTRIBUTION_ROWS}) AS c WHERE event_row > %s AND event_row <= %s
), added AS MATERIALIZED ({sums_per_key(HOURLY.key, hours, latest_meters_only=True)}
), folded AS (
    INSERT INTO {HOURLY.table} ({HOURLY.columns}) SELECT * FROM added {HOURLY.on_conflict}
), by_day AS ({days_added_up(DAILY_ROLLUP_ON_CONFLICT, "added", latest_meters_only=True)}
), group_added AS MATERIALIZED ({group_sums("unfolded")}
), group_folded AS (
    INSERT INTO {GROUPS.table} ({GROUPS.columns}) SELECT * FROM group_added {GROUPS.on_conflict}
), group_by_day AS ({group_days}
)
SELECT (SELECT count(*) FROM unfolded)
    + (SELECT coalesce(sum(event_count), 0) FROM group_added)"""  # noqa: S608


FOLD_SQL = _fold_sql()


def folds() -> bool:
    """Whether this database folds (PostgreSQL) or writes rollups directly."""
    return connection.vendor == "postgresql"


def _fold_lock(cursor, *, wait: bool) -> bool:
    """Take the folders' lock for the current transaction (before the rollup lock,
    always, so that two folders cannot wait on each other); False when another
    folder holds it and `wait` is False."""
    if wait:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
    return cursor.fetchone()[0]


def fold_through(bound: int, *, chunk: int | None = None) -> tuple[int, bool]:
    """Fold the events after the watermark up to id `bound` (at most `chunk` of
    them) and move the watermark, in the caller's transaction, which holds the
    rollup lock (shared with the folders' lock, or exclusively for a rebuild).
    `bound` must be a committed bound (see the module's docstring). Returns the
    rows added up and whether the watermark reached `bound`."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {FOLDED_THROUGH}")
        (mark,) = cursor.fetchone()
        upto = bound
        # Ids are distinct integers, so at most bound - mark events lie between: the
        # chunk's end is looked up only when more than a chunk may.
        if chunk is not None and bound - mark > chunk:
            # The chunk-th event after the watermark (ids have gaps: batches rolled
            # back, and the ids each database connection has drawn).
            cursor.execute(
                f"SELECT max(id) FROM (SELECT id FROM {EVENTS_TABLE} "  # noqa: S608
                "WHERE id > %s AND id <= %s ORDER BY id LIMIT %s) AS chunk",
                [mark, bound, chunk],
            )
            upto = cursor.fetchone()[0] or bound
        if upto <= mark:
            return 0, True
        cursor.execute("SELECT set_config('work_mem', %s, true)", [FOLD_WORK_MEM])
        cursor.execute(FOLD_SQL, [mark, upto])
        (moved,) = cursor.fetchone()
        cursor.execute(
            f"INSERT INTO {WATERMARK_TABLE} (id, folded_through) VALUES (1, %s) "  # noqa: S608
            "ON CONFLICT (id) DO UPDATE SET folded_through = excluded.folded_through",
            [upto],
        )
    return moved, upto == bound


def group_days_roll(cursor) -> None:
    """Make the daily group rollups whole before the database's UTC day once it
    has passed GROUP_DAYS_BEFORE: the days since rolled up from their hourly group
    rows (found by their hours' BRIN index, billing 0032), replacing what they held
    (a rebuild's rows, of the same keys as its hourly ones), in the caller's
    transaction, which holds the folders' lock and the rollup lock shared.
    So a token event adds to one group row an hour, not to its day's row as well
    (a third of a rate card's fold, its most contended rows), and each day's rows
    are written once, by the first fold after it. From null (every day's rows, as
    folds wrote them before billing 0032): no day to roll."""
    cursor.execute(_GROUP_DAYS)
    since, today = cursor.fetchone()
    if since is not None and since >= today:
        return
    if since is not None:
        cursor.execute(
            days_added_up(
                GROUP_DAILY_ROLLUP_REPLACE,
                f"{GROUPS.table} WHERE hour >= %s AND hour < %s",
                latest_meters_only=True,
                grouped=True,
            ),
            [since, today] * 2,
        )
    cursor.execute(
        f"INSERT INTO {WATERMARK_TABLE} (id, folded_through, group_days_before) "  # noqa: S608
        "VALUES (1, 0, %s) "
        "ON CONFLICT (id) DO UPDATE SET group_days_before = excluded.group_days_before",
        [today],
    )


def _bound_taken_within(cursor, every_ms: int) -> bool:
    """Whether a fold took its bound less than `every_ms` ago."""
    cursor.execute(
        f"SELECT bound_taken_at > now() - make_interval(secs => %s) "  # noqa: S608
        f"FROM {WATERMARK_TABLE} WHERE id = 1",
        [every_ms / 1000],
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def committed_bound() -> int:
    """The highest stored event id, for a caller holding the rollup lock
    exclusively: every batch holding an id up to it has ended, and every batch
    after it draws higher ids."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}")  # noqa: S608
        return cursor.fetchone()[0]


def usage_fold(*, wait: bool = False, once: bool = False, every_ms: int | None = None) -> int:
    """Fold every event stored so far into the rollups (`once`: at most FOLD_CHUNK
    events, one transaction). Returns the rows added up; 0 when another folder
    is at work and `wait` is False, or when a fold took its bound less than
    `every_ms` ago (in any process)."""
    if not folds():
        return 0
    # The bound: the rollup lock is exclusive only in this short transaction, and
    # taken only by the one folder, so it waits for the batches in flight alone
    # (and batches arriving meanwhile wait for it): without `wait`, for at most
    # BOUND_WAIT_MS, and then this fold gives way to the next.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not _fold_lock(cursor, wait=wait):
                return 0
            if every_ms and _bound_taken_within(cursor, every_ms):  # 0: every batch
                return 0
            if not wait:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)", [f"{BOUND_WAIT_MS}ms"]
                )
            rollup_lock(shared=False)
            bound = committed_bound()
            cursor.execute(
                f"INSERT INTO {WATERMARK_TABLE} (id, folded_through, bound_taken_at) "  # noqa: S608
                "VALUES (1, 0, now()) "
                "ON CONFLICT (id) DO UPDATE SET bound_taken_at = excluded.bound_taken_at"
            )
    except OperationalError as exc:
        if isinstance(exc.__cause__, LockNotAvailable):
            return 0
        raise
    moved = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Another folder may have come between: the watermark, read under
            # the lock, tells what is left.
            if not _fold_lock(cursor, wait=wait):
                return moved
            # Shared, as ingestion takes it: a meter rebuild (exclusive) does not
            # overlap a fold.
            rollup_lock(shared=True)
            group_days_roll(cursor)
            chunk, reached = fold_through(bound, chunk=FOLD_CHUNK)
        moved += chunk
        if once or reached:
            return moved


def unfolded_events() -> int:
    """How many stored events the fold has not added to the rollups yet."""
    if not folds():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} "  # noqa: S608 (constants only)
            f"WHERE id > {FOLDED_THROUGH}"
        )
        return cursor.fetchone()[0]


def fold_lag_seconds() -> float:
    """How far the fold is behind the newest stored event: the seconds from the
    arrival of the oldest event not folded yet to that of the newest event, 0 when
    every event is folded (and on SQLite, which does not fold). Two reads by the
    events' id index, whatever the backlog."""
    if not folds():
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM "  # noqa: S608 (constants only)
            f"(SELECT received_at FROM {EVENTS_TABLE} ORDER BY id DESC LIMIT 1) - "
            f"(SELECT received_at FROM {EVENTS_TABLE} WHERE id > {FOLDED_THROUGH} "
            "ORDER BY id LIMIT 1))"
        )
        (lag,) = cursor.fetchone()
    # A batch's arrival is its time before it draws its ids: one slow to draw them
    # holds ids above a batch that arrived after it (a lag below 0 is none).
    return max(0.0, float(lag or 0))


class FoldClock:
    """When this process last folded: ingestion folds after a batch when at least
    BILLING_FOLD_MS have passed (0: after every batch)."""

    def __init__(self):
        self._last = float("-inf")

    def due(self) -> bool:
        return (time.monotonic() - self._last) * 1000 >= settings.BILLING_FOLD_MS

    def fold_if_due(self) -> None:
        """Fold if due. Runs after the batch has committed, so a database that
        fails now must not fail the batch's answer: the next fold takes it."""
        if not folds() or not self.due():
            return
        self._last = time.monotonic()
        try:
            # One chunk: a backlog (after a stall) is left to the beat and
            # `fold_usage`, not to the answer of this batch. Every process's clock
            # comes due: the first to fold takes the turn of them all.
            usage_fold(once=True, every_ms=settings.BILLING_FOLD_MS)
        except DatabaseError:
            logger.warning("usage fold failed; the next one folds the events", exc_info=True)


fold_clock = FoldClock()
