"""Folding: on PostgreSQL a batch does not upsert the rollups itself. It appends
its aggregates per (customer, meter, hour), and per group for meters with
group_by, to the rollup tails (billing_usagerolluptail and
billing_usagepropertyrolluptail: plain inserts that no other batch contends
for), and a fold moves the tails into the rollups: one statement a tail deletes
the rows it sees and adds them, aggregated, to the rollup table, in one
transaction.
So a unit is in the tail or in the rollups, never both and never neither, also
when the folder is killed mid-fold (its transaction rolls back), and a read that
adds the rollups and the tail in one statement (billing.usage.reads) sees every
committed batch exactly once: read-your-writes without the batch writing a
single contended rollup row.

The tail row set is the fold's watermark: what it holds is exactly what is not
folded yet. (A watermark on event ids would not do: ids are drawn before commit,
so a batch that commits late can hold ids below one already folded.)

The fold runs in the ingesting process after its batch commits, at most every
BILLING_FOLD_MS per process, one folder at a time (a try-lock: a busy
folder is not waited for); the beat runs it every minute for when ingestion
stops, and `manage.py fold_usage` by hand. The tail stays small by construction:
a fold moves up to FOLD_CHUNK rows a transaction. SQLite, the embedded default,
writes the rollups directly at ingestion and has nothing to fold."""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from billing.usage.rollups import (
    DAILY_ROLLUP_COLUMNS,
    DAILY_ROLLUP_ON_CONFLICT,
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
    day_of,
    rollup_lock,
)

logger = logging.getLogger(__name__)

# Rows one fold transaction moves from each tail; a longer tail takes several.
FOLD_CHUNK = 50_000

# An arbitrary, fixed key for the advisory lock that lets one folder run at a time.
FOLD_LOCK_KEY = 7_310_624_002


def _add_up(
    table: str, columns: str, key: str, select_key: str, on_conflict: str, source: str = "moved"
) -> str:
    """An INSERT adding the rows of `source` (the moved tail rows), grouped by `key`
    (selected as `select_key`), to `table`, in key order."""
    latest = "ORDER BY latest_at DESC, latest_event_id DESC"
    return f"""
    INSERT INTO {table} ({columns})
    SELECT {select_key}, sum(event_count), sum(value_sum), max(value_max),
        (array_agg(latest_at {latest}))[1],
        (array_agg(latest_event_id {latest}))[1],
        (array_agg(latest_value {latest}))[1]
    FROM {source}
    GROUP BY {key}
    ORDER BY {key}
    {on_conflict}"""  # noqa: S608 (constants only)


@dataclass(frozen=True)
class Folded:
    """A rollup table and its tail; `daily`: whether the fold also adds the tail
    to the daily rollups (billing.models.UsageDailyRollup)."""

    table: str
    tail: str
    key: str
    columns: str
    on_conflict: str
    daily: bool = False

    def fold_sql(self) -> str:
        """Some tail rows (ctid: their physical addresses, taken in one snapshot)
        deleted and added to the rollups in one statement, in key order; returns
        how many tail rows it moved."""
        by_day = ""
        if self.daily:
            by_day = ", by_day AS (" + days_added_up(DAILY_ROLLUP_ON_CONFLICT) + "\n)"
        return f"""
WITH moved AS (
    DELETE FROM {self.tail}
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM {self.tail} LIMIT %s))
    RETURNING {self.columns}
), folded AS ({_add_up(self.table, self.columns, self.key, self.key, self.on_conflict)}
){by_day}
SELECT count(*) FROM moved"""  # noqa: S608 (constants only)

    def rows(self, columns: str, where: str) -> str:
        """A SELECT of `columns` of the rows matching `where` in the rollups and in
        the tail: one statement, so one snapshot, in which each committed batch is
        in exactly one of the two. Its parameters are those of `where`, twice."""
        return (
            f"SELECT {columns} FROM {self.table} WHERE {where} "  # noqa: S608
            f"UNION ALL SELECT {columns} FROM {self.tail} WHERE {where}"
        )


DAILY_TABLE = "billing_usagedailyrollup"


def days_added_up(on_conflict: str, source: str = "moved") -> str:
    """An INSERT adding hourly rows (of `source`) to the daily rollups, a row per
    customer, meter and UTC day."""
    day = "customer_id, meter_id, date_trunc('day', hour, 'UTC')"
    return _add_up(DAILY_TABLE, DAILY_ROLLUP_COLUMNS, "1, 2, 3", day, on_conflict, source)


HOURLY = Folded(
    "billing_usagerollup",
    "billing_usagerolluptail",
    "customer_id, meter_id, hour",
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
    daily=True,
)
GROUPS = Folded(
    "billing_usagepropertyrollup",
    "billing_usagepropertyrolluptail",
    "customer_id, meter_id, hour, position, group_value",
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
)

DAY = timedelta(days=1)


def whole_hours_rows(columns: str, where: str = "") -> str:
    """A SELECT of `columns` of one customer's rollup rows of the hours in a range
    and their tail rows, ANDed with `where`; both texts may name `{bucket}`, the
    row's hour (a daily row: its day). The whole UTC days inside the range are read
    from the daily rollups, a row a day, and only the hours around them from the
    hourly ones. One statement, so one snapshot (see Folded.rows); its parameters:
    whole_hours_params."""
    branches = []
    for table, bucket in (
        (HOURLY.table, "hour"),
        (HOURLY.table, "hour"),
        (DAILY_TABLE, "day"),
        (HOURLY.tail, "hour"),
    ):
        condition = f"customer_id = %s AND {{bucket}} >= %s AND {{bucket}} < %s{where}"
        branches.append(
            f"SELECT {columns} FROM {table} WHERE {condition}".replace("{bucket}", bucket)  # noqa: S608
        )
    return " UNION ALL ".join(branches)


def whole_hours_params(
    customer_id: int, start: datetime, end: datetime, rest=(), *, days_in=None
) -> list:
    """The parameters of whole_hours_rows for the rows in [start, end), an hour's
    start each (`rest`: those of its `where`). `days_in`: a narrower (first, last)
    range the daily rows must lie in, for a read that lists rows around the hours
    it adds up."""
    first, last = days_in or (start, end)
    first_day = day_of(first) if first == day_of(first) else day_of(first) + DAY
    last_day = day_of(last)
    if first_day >= last_day:  # no whole day: the hours only
        first_day = last_day = end
    return [
        *(customer_id, start, first_day, *rest),
        *(customer_id, last_day, end, *rest),
        *(customer_id, first_day, last_day, *rest),
        *(customer_id, start, end, *rest),
    ]


def folds() -> bool:
    """Whether this database folds (PostgreSQL) or writes rollups directly."""
    return connection.vendor == "postgresql"


def usage_fold(*, wait: bool = False, once: bool = False) -> int:
    """Fold the whole of both tails into the rollups (`once`: at most FOLD_CHUNK
    rows of each, one transaction). Returns the tail rows moved; 0 when another
    folder holds the lock and `wait` is False."""
    if not folds():
        return 0
    moved = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
            else:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    return moved
            # Shared, as ingestion takes it: a meter rebuild (exclusive) neither
            # overlaps a fold nor leaves tail rows of the meter it recomputes.
            rollup_lock(shared=True)
            longest = 0
            for folded in (HOURLY, GROUPS):
                cursor.execute(folded.fold_sql(), [FOLD_CHUNK])
                (chunk,) = cursor.fetchone()
                moved += chunk
                longest = max(longest, chunk)
        if once or longest < FOLD_CHUNK:
            return moved


class FoldClock:
    """When this process last folded: ingestion folds after a batch when at least
    BILLING_FOLD_MS have passed (0: after every batch)."""

    def __init__(self):
        self._last = float("-inf")

    def due(self) -> bool:
        return (time.monotonic() - self._last) * 1000 >= settings.BILLING_FOLD_MS

    def fold_if_due(self) -> None:
        """Fold if due. Runs after the batch has committed, so a database that
        fails now must not fail the batch's answer: the next fold takes the tail."""
        if not folds() or not self.due():
            return
        self._last = time.monotonic()
        try:
            # One chunk: a backlog (after a stall) is left to the beat and
            # `fold_usage`, not to the answer of this batch.
            usage_fold(once=True)
        except DatabaseError:
            logger.warning("usage fold failed; the next one folds the tail", exc_info=True)


fold_clock = FoldClock()


def tail_discard(*, meter_id: int) -> None:
    """Drop one meter's unfolded rows, for a rebuild that recomputes its rollups
    from the events (under the exclusive rollup lock)."""
    with connection.cursor() as cursor:
        for folded in (HOURLY, GROUPS):
            cursor.execute(f"DELETE FROM {folded.tail} WHERE meter_id = %s", [meter_id])  # noqa: S608
