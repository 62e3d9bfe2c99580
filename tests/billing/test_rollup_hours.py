"""The UTC hour a moment falls in, whatever zone the moment is written in: the hourly
rollups are keyed by UTC hours, and a zone a half or quarter hour off UTC starts its
own hours in the middle of one."""

from datetime import UTC, datetime, timedelta, timezone

from billing.usage.reads import hour_edges
from billing.usage.rollups import hour_of

KOLKATA = timezone(timedelta(hours=5, minutes=30))
KATHMANDU = timezone(timedelta(hours=5, minutes=45))


def test_hour_of_reads_an_offset_moment_in_utc():
    # 00:10 in Kolkata is 18:40 UTC the day before: the 18:00 UTC hour.
    moment = datetime(2026, 11, 1, 0, 10, tzinfo=KOLKATA)
    assert hour_of(moment) == datetime(2026, 10, 31, 18, tzinfo=UTC)
    nepal = datetime(2026, 11, 1, 0, 10, tzinfo=KATHMANDU)
    assert hour_of(nepal) == datetime(2026, 10, 31, 18, tzinfo=UTC)
    assert hour_of(datetime(2026, 11, 1, 0, 10, tzinfo=UTC)) == datetime(2026, 11, 1, tzinfo=UTC)


def test_hour_edges_are_the_same_whichever_zone_the_range_is_written_in():
    # A Kolkata customer's month starts at local midnight, 18:30 UTC: the whole UTC
    # hours start at 19:00 and the half hour before them is an edge.
    start = datetime(2026, 11, 1, tzinfo=KOLKATA)
    end = datetime(2026, 11, 3, 12, 15, tzinfo=KOLKATA)
    first, last, edges = hour_edges(start, end)
    assert first == datetime(2026, 10, 31, 19, tzinfo=UTC)
    assert last == datetime(2026, 11, 3, 6, tzinfo=UTC)
    assert edges == [(start, first), (last, end)]
    assert hour_edges(start.astimezone(UTC), end.astimezone(UTC)) == (first, last, edges)
