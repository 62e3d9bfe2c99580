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

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from billing.usage.rollups import (
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
    rollup_lock,
)

logger = logging.getLogger(__name__)

# Rows one fold transaction moves from each tail; a longer tail takes several.
FOLD_CHUNK = 50_000

# An arbitrary, fixed key for the advisory lock that lets one folder run at a time.
FOLD_LOCK_KEY = 7_310_624_002


@dataclass(frozen=True)
class Folded:
    """A rollup table and its tail."""

    table: str
    tail: str
    key: str
    columns: str
    on_conflict: str

    def fold_sql(self) -> str:
        """Some tail rows (ctid: their physical addresses, taken in one snapshot)
        deleted and added to the rollups in one statement, in key order; returns
        how many tail rows it moved."""
        latest = "ORDER BY latest_at DESC, latest_event_id DESC"
        return f"""
WITH moved AS (
    DELETE FROM {self.tail}
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM {self.tail} LIMIT %s))
    RETURNING {self.columns}
), folded AS (
    INSERT INTO {self.table} ({self.columns})
    SELECT {self.key}, sum(event_count), sum(value_sum), max(value_max),
        (array_agg(latest_at {latest}))[1],
        (array_agg(latest_event_id {latest}))[1],
        (array_agg(latest_value {latest}))[1]
    FROM moved
    GROUP BY {self.key}
    ORDER BY {self.key}
    {self.on_conflict}
)
SELECT count(*) FROM moved"""  # noqa: S608 (constants only)

    def rows(self, columns: str, where: str) -> str:
        """A SELECT of `columns` of the rows matching `where` in the rollups and in
        the tail: one statement, so one snapshot, in which each committed batch is
        in exactly one of the two. Its parameters are those of `where`, twice."""
        return (
            f"SELECT {columns} FROM {self.table} WHERE {where} "  # noqa: S608
            f"UNION ALL SELECT {columns} FROM {self.tail} WHERE {where}"
        )


HOURLY = Folded(
    "billing_usagerollup",
    "billing_usagerolluptail",
    "customer_id, meter_id, hour",
    ROLLUP_COLUMNS,
    ROLLUP_ON_CONFLICT,
)
GROUPS = Folded(
    "billing_usagepropertyrollup",
    "billing_usagepropertyrolluptail",
    "customer_id, meter_id, hour, position, group_value",
    GROUP_ROLLUP_COLUMNS,
    GROUP_ROLLUP_ON_CONFLICT,
)


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
