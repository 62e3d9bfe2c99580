"""Finished edge hours of usage reads, kept per process.

A period that starts mid-hour (every anniversary subscription) begins with a
partial hour that the rollups cannot answer: its raw events are aggregated on
every read (billing.usage.edges), about 10 microseconds an event, so 10 ms for a
customer with a thousand events in that half hour, on every usage read and
every check of the period. Once the hour has ended, that answer only changes
when a late event lands in it, and every stored event that counts for a meter
adds one to that meter's count in the hour, in the rollup or among the events
not folded yet, from the transaction that stores it on. Events are never deleted.

So a finished edge range's aggregates are kept here with the hour's per-meter
counts, read in a statement before the events were aggregated; a read first
reads those counts again (one indexed statement for both edges) and uses the
kept aggregates only if they are unchanged. The same counts spare a read the
aggregation of an edge none of its meters counts an event in (the end of a
period still to come, say). A late event changes a count, so the next read
aggregates the range afresh. An event stored between the counts and the
aggregation makes the kept counts lower than any later ones: that entry is never
used. Only reads of committed rows keep what they aggregated (see
reads_committed_rows). The key holds the meters' whole definitions, with their
revision (billing.usage.metering.MeterDef: an edit, and each rebuild of a
meter's rollups, is a new one, so counts from before a rebuild are never
compared with counts after it), and what the read groups by."""

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection

from billing.usage.folding import HOURLY
from billing.usage.metering import MeterDef
from billing.usage.rollups import HOUR, hour_of
from common import rawsql


def finished(span: tuple[datetime, datetime], now: datetime) -> bool:
    """Whether the range lies within one hour that has ended."""
    start, end = span
    hour_end = hour_of(start) + HOUR
    return end <= hour_end <= now


# Per range of a read's edges (at most two: 0 and 1), each meter's count of events
# in the hours the range touches: their rollup rows and their events not folded yet
# (one statement, so one snapshot). An hour H touches [start, end) when
# hour_of(start) <= H < end. A branch a range, each bounding the hour on its own,
# so that the rollups' key index (customer, meter, hour) bounds the hours too: one
# condition ORing the two ranges is a filter over every hour of the customer's
# meters in the plan a prepared statement settles on.
_EDGE_RANGE = HOURLY.rows(
    "{index} AS edge, meter_id, event_count",
    "customer_id = %s AND meter_id IN ({ids}) AND hour >= %s AND hour < %s",
)


def _edge_counts_sql(ranges: int, meters: int) -> str:
    ids = ", ".join(["%s"] * meters)
    branches = " UNION ALL ".join(
        _EDGE_RANGE.format(index=index, ids=ids) for index in range(ranges)
    )
    return f"SELECT edge, meter_id, SUM(event_count) FROM ({branches}) AS r GROUP BY 1, 2"  # noqa: S608 (constants only)


def edge_counts(customer_id: int, meter_ids: list[int], ranges: list) -> list[dict[int, int]]:
    """For each range (one or two), each meter's number of counted events in the
    hours the range touches (0 for none). Every stored event a meter counts adds
    one to its hour's count in the transaction that stores it, so a range whose
    counts are all 0 holds no event any of these meters counts."""
    if len(ranges) > 2:
        raise ValueError("a read has two edges at most")
    found = [dict.fromkeys(meter_ids, 0) for _ in ranges]
    params = []
    for start, end in ranges:
        where = [customer_id, *meter_ids, hour_of(start), end]
        params += where + where  # the rollups' branch and the unfolded events'
    sql = _edge_counts_sql(len(ranges), len(meter_ids))
    # Read ahead at most earlier than asked: still before the aggregate kept with them;
    # but not inside a transaction, whose read must take kept_before before its counts.
    ahead = reads_committed_rows()
    for index, meter_id, n in rawsql.rows(sql, params, (None,) * 3, ahead=ahead):
        found[index][meter_id] += int(n)
    return found


class EdgeCache:
    """The aggregates of finished edge ranges (a Tally each, never changed once
    kept), with the counts they were read at (another one keeps the closed days'
    group sums with theirs: billing.usage.closed_days). An entry weighs 1 plus its keys
    (meters, or meters and groups) plus its distinct values; beyond
    BILLING_EDGE_CACHE_SIZE in all, the least recently used are dropped first.
    A range is kept from the second read of it on: a read whose start moves
    with the clock (the last hour, say) never repeats, and costs nothing here."""

    def __init__(self):
        self._entries: OrderedDict = OrderedDict()
        self._seen: OrderedDict = OrderedDict()  # keys read once, not kept
        self._weight = 0
        self._kept = 0  # entries kept so far: each entry's number
        self._lock = threading.Lock()

    def kept_before(self) -> int | None:
        """What a read takes before reading its counts, for `get`: None for a read
        of committed rows (any entry kept with the same counts holds the same
        rows); else how many entries were kept so far. A read that may see its own
        uncommitted events may use only an entry kept before its counts were read:
        that entry's counts, read before it was kept, are then at most the
        committed ones the read sees, which its own events add to. One kept later
        (by another thread) may hold counts read after more events committed,
        equal to the committed ones and its own that the read counts."""
        return None if reads_committed_rows() else self._kept

    def read_before(self, key) -> bool:
        """Whether the key was read before (kept or seen); records it as seen."""
        with self._lock:
            if key in self._entries or key in self._seen:
                return True
            self._seen[key] = None
            while len(self._seen) > settings.BILLING_EDGE_CACHE_SIZE:
                self._seen.popitem(last=False)
            return False

    def get(self, key, counts: dict[int, int], kept_before: int | None = None):
        """The entry's piece if it was kept with these counts (and, given
        `kept_before`, kept before it: see kept_before)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != counts:
                return None
            if kept_before is not None and entry[3] > kept_before:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def kept(self, key, counts, kept_before: int | None, make: Callable[[], object]):
        """The entry's piece if it was kept with these counts (`get`), else
        `make()`'s, then kept with them, unless the read may see its own
        uncommitted events (reads_committed_rows): aggregates a rollback would
        undo are not kept."""
        piece = self.get(key, counts, kept_before)
        if piece is None:
            piece = make()
            if reads_committed_rows():
                self.put(key, counts, piece)
        return piece

    def put(self, key, counts: dict[int, int], piece) -> None:
        weight = 1 + len(piece.counts) + sum(len(values) for values in piece.uniques.values())
        with self._lock:
            self._seen.pop(key, None)
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[2]
            self._kept += 1
            self._entries[key] = (counts, piece, weight, self._kept)
            self._weight += weight
            while self._weight > settings.BILLING_EDGE_CACHE_SIZE:
                _, (_, _, dropped, _) = self._entries.popitem(last=False)
                self._weight -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)


edge_cache = EdgeCache()


def edge_key(customer_id: int, meters: list[MeterDef], span, by: dict[int, int] | None) -> tuple:
    """A range's key: the meters' whole definitions (revision included) and
    what the read groups by."""
    return (customer_id, tuple(meters), span, None if by is None else tuple(sorted(by.items())))


def kept_edge_add(
    tally, compute, *, key: tuple, counts: dict[int, int], kept_before: int | None
) -> None:
    """Add a finished range's aggregates to `tally`: kept ones if its hour's
    counts (edge_counts, read now, after edge_cache.kept_before gave
    `kept_before`) are those they were kept with, else `compute(piece)` into a new
    tally, then kept with these counts."""

    def make():
        piece = type(tally)()
        compute(piece)
        return piece

    tally.add_tally(edge_cache.kept(key, counts, kept_before, make))


def reads_committed_rows() -> bool:
    """Whether this connection reads committed rows only: no transaction of the
    application's own is open (a test's wrapping transaction stands for the
    committed state, as Django's durable blocks see it). A read inside a
    transaction may see its own uncommitted events (ingestion's draw-down reads
    usage after storing the batch): aggregates that a rollback would undo are not
    kept. Using ones kept before its counts were read is safe: its own events make
    the counts differ (EdgeCache.kept_before)."""
    return all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
