"""The rows of whole hours of a range as the reads add them up: the whole UTC days
from the daily rollups, the hours around them from the hourly ones, and the events
not folded yet (billing.usage.folding), in one statement; the meters' rollups, or
the group rollups (billing.breakdown_models) alike."""

from datetime import datetime, timedelta

from billing.usage.folding import DAILY_TABLE, GROUPS, HOURLY
from billing.usage.rollups import GROUP_DAILY_TABLE, day_of

DAY = timedelta(days=1)


def whole_hours_rows(columns: str, where: str = "", *, grouped: bool = False) -> str:
    """A SELECT of `columns` of one customer's rollup rows of the hours in a range
    and their unfolded events, ANDed with `where`; both texts may name `{bucket}`, the
    row's hour (a daily row: its day). The whole UTC days inside the range are read
    from the daily rollups, a row a day, and only the hours around them from the
    hourly ones (`grouped`: of the group rollups, a row a day and group). One
    statement, so one snapshot (see Folded.rows); its parameters: whole_hours_params."""
    hourly, daily = (GROUPS, GROUP_DAILY_TABLE) if grouped else (HOURLY, DAILY_TABLE)
    branches = []
    for table, bucket in (
        (hourly.table, "hour"),
        (hourly.table, "hour"),
        (daily, "day"),
        (hourly.unfolded, "hour"),
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
