"""The group sums of a read's closed days, kept per process (PostgreSQL).

A rate card's usage read (billing.usage.breakdowns) adds up every group row of its
period: a month is some 25 daily rows per combination of values, read and summed on
every /usage, statement and check. Only the current day's rows move while it is read
again and again; the days before it change when a late event lands in one of them,
when a fold moves their events from the unfolded view to the rollups (their sums
unchanged), and when a meter's rollups are rebuilt.

So the sums of the whole hours before the current day (or before the day of the
read's last whole hour, if earlier: the "closed" part, [first, cut)) are kept with a
fingerprint of that range read from the database: per meter, its revision
(plans_meter.updated_at, which a meter's edit and every rebuild of its rollups
renews: billing.usage.rebuild) and its number of events in the range, from the
meters' rollups and their unfolded events (one statement, so one snapshot). Every
event a meter counts adds one to that number in the transaction that stores it,
whichever process stores it, and no event leaves the rollups but by a rebuild; so
while the fingerprint reads the same, the range holds the same events and the same
sums. A later read reads the fingerprint again (a few rows a meter: the daily
rollups') and the current day's rows, and uses the kept sums only if the
fingerprint is unchanged; else it reads the range afresh and keeps that. The
current day's whole hours are kept the same way, from their second read on: the
closed days' sums plus theirs, with both ranges' fingerprints (the hours' a few
hourly rows a meter), so a repeated read reads two fingerprints and no group row;
each new hour, or an event landing in those hours, makes it read them afresh. The
fingerprint is read before the sums it is kept with: an event stored between the
two makes the kept count lower than every later one, so that entry is never used
(billing.usage.edge_cache argues the same for the edges, and keeps these entries in
the same kind of cache). The clock only chooses the cut: a "closed" day that still
receives events (a process whose clock is behind, an event of yesterday arriving
late) is only read afresh more often, never wrongly.

PostgreSQL only: its numeric sums are exact, so a closed range's sum plus the
current day's is the sum one statement would give (while a group's sum has at most
28 digits, Python's precision, as the edges' addition to the hours' sums assumes).
SQLite's are floating point (and it runs in one process, with few events): it reads
the whole range, as before.
"""

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from billing.usage.edge_cache import EdgeCache, reads_committed_rows
from billing.usage.folding import folds
from billing.usage.metering import MeterDef
from billing.usage.rollups import day_of, hour_of
from billing.usage.whole_hours import whole_hours_params, whole_hours_rows
from common import rawsql
from plans.models import Meter

# Per meter: its revision and its numbers of events in the range's whole hours
# before and from the cut (the meters' rollups: the whole days from the daily ones,
# and the unfolded events), one statement so one snapshot.
_FINGERPRINT = (
    "SELECT m.id, m.updated_at, "  # noqa: S608 (constants only)
    "coalesce(SUM(r.event_count) FILTER (WHERE r.at < %s), 0), "
    "coalesce(SUM(r.event_count) FILTER (WHERE r.at >= %s), 0) FROM plans_meter m "
    "LEFT JOIN ("
    + whole_hours_rows("meter_id, event_count, {bucket} AS at", " AND meter_id IN ({ids})")
    + ") AS r ON r.meter_id = m.id WHERE m.id IN ({ids}) GROUP BY m.id, m.updated_at"
)
_FINGERPRINT_FIELDS = (None, Meter._meta.get_field("updated_at"), None, None)

# The closed ranges' sums (a Tally each, keyed as the read keys them), with their
# fingerprints; a range is kept from its second read on (EdgeCache.read_before).
closed_days_cache = EdgeCache()


def fingerprints(
    customer_id: int, meter_ids: list[int], first: datetime, cut: datetime, until: datetime
) -> tuple[dict[int, tuple], dict[int, int]]:
    """Per meter, its revision and its number of events in the whole hours
    [first, cut), and its number in [cut, until): what changes whenever their
    group sums may."""
    ids = ", ".join(["%s"] * len(meter_ids))
    found = rawsql.rows(
        _FINGERPRINT.replace("{ids}", ids),
        [cut, cut, *whole_hours_params(customer_id, first, until, meter_ids), *meter_ids],
        _FINGERPRINT_FIELDS,
        # Read ahead at most earlier than asked: still before the sums kept with it;
        # but not inside a transaction, whose read must take kept_before before its
        # counts (EdgeCache.kept_before).
        ahead=reads_committed_rows(),
    )
    days = {meter_id: (revision, int(n)) for meter_id, revision, n, _ in found}
    return days, {meter_id: int(n) for meter_id, _, _, n in found}


def closed_days_add(
    tally,
    add_sums: Callable[..., None],
    *,
    customer_id: int,
    meters: list[MeterDef],
    position: dict[int, int],
    span: tuple[datetime, datetime],
) -> None:
    """Add the group sums of the whole hours `span` to `tally`, as
    `add_sums(tally, start, end, ahead)` adds those of [start, end) (`ahead`: read
    ahead, common.rawsql): the hours before the current day (or the day of the
    span's last hour) through closed_days_cache, then the current day's hours before
    the current one through it too (from their second read on), the rest afresh."""
    first, last = span
    now = timezone.now()
    # The current day's events (or a later day's) leave the kept days as they are,
    # and the current hour's (or a later one's) the kept hours.
    cut, hours = day_of(min(last, now)), min(last, hour_of(now))
    if first >= cut or not folds():
        add_sums(tally, first, last)
        return
    key = (customer_id, tuple((meter, position[meter.id]) for meter in meters), first, cut)
    through = (*key, hours)
    if not closed_days_cache.read_before(key):
        if cut < hours:
            closed_days_cache.read_before(through)  # seen with its days: kept with them
        add_sums(tally, first, last)
        return
    kept_before = closed_days_cache.kept_before()
    hours_kept = cut < hours and closed_days_cache.read_before(through)
    counts, today = fingerprints(
        customer_id, [meter.id for meter in meters], first, cut, hours if hours_kept else cut
    )

    def days_read():
        piece = type(tally)()
        add_sums(piece, first, cut)
        return piece

    piece = closed_days_cache.kept(key, counts, kept_before, days_read)
    if hours_kept:
        # The closed days' sums and the current day's whole hours', kept with both
        # counts: a new hour makes a new key (read afresh once more, then kept), and
        # an event landing in those hours makes them read again; the current
        # hour's leave them.
        def hours_read(days=piece, since=cut):
            piece = type(tally)()
            piece.add_tally(days)
            add_sums(piece, since, hours)  # after their counts, as the days' are
            return piece

        piece = closed_days_cache.kept(through, (counts, today), kept_before, hours_read)
        cut = hours
    tally.add_tally(piece)
    if cut < last:
        # Its rows mean the same whenever read; not so the kept ones' above, which
        # must be read after their fingerprint.
        add_sums(tally, cut, last, True)
