"""The rows of whole hours of a range as the reads add them up: the whole UTC days
from the daily rollups, the hours around them from the hourly ones, and the events
not folded yet (billing.usage.folding), in one statement; the meters' rollups, or
the group rollups (billing.breakdown_models) alike."""

from datetime import datetime, timedelta

from billing.usage.folding import DAILY_TABLE, GROUPS, HOURLY, WATERMARK_TABLE
from billing.usage.rollups import GROUP_DAILY_TABLE, day_of

DAY = timedelta(days=1)

# Where a grouped read's whole days end: at the range's last whole day, or before,
# at the day the daily group rollups are whole before (a fold rolls each day up
# once it has passed: billing.usage.folding.group_days_roll), but not before the
# range's first whole day. Its parameters: the last whole day, twice, and the first,
# twice, then the last again (a CASE, as SQLite, whose rollups are written whole at
# ingestion and which has no such day, has no LEAST or GREATEST).
_GROUP_DAYS_END = (
    f"coalesce((SELECT CASE WHEN d >= %s THEN %s WHEN d <= %s THEN %s ELSE d END "  # noqa: S608
    f"FROM (SELECT max(group_days_before) AS d FROM {WATERMARK_TABLE}) AS w "
    "WHERE d IS NOT NULL), %s)"
)


def whole_hours_rows(columns: str, where: str = "", *, grouped: bool = False) -> str:
    """A SELECT of `columns` of one customer's rollup rows of the hours in a range
    and their unfolded events, ANDed with `where`; both texts may name `{bucket}`, the
    row's hour (a daily row: its day). The whole UTC days inside the range are read
    from the daily rollups, a row a day, and only the hours around them from the
    hourly ones (`grouped`: of the group rollups, a row a day and group, the days
    the daily group rollups are whole for: the later ones from the hourly rows). One
    statement, so one snapshot (see Folded.rows), which reads the whole days' end
    with the rows; its parameters: whole_hours_params."""
    hourly, daily = (GROUPS, GROUP_DAILY_TABLE) if grouped else (HOURLY, DAILY_TABLE)
    days_end = _GROUP_DAYS_END if grouped else "%s"
    branches = []
    for table, bucket, since, until in (
        (hourly.table, "hour", "%s", "%s"),
        (hourly.table, "hour", days_end, "%s"),
        (daily, "day", "%s", days_end),
        (hourly.unfolded, "hour", "%s", "%s"),
    ):
        condition = f"customer_id = %s AND {bucket} >= {since} AND {bucket} < {until}{where}"
        branches.append(
            f"SELECT {columns} FROM {table} WHERE {condition}".replace("{bucket}", bucket)  # noqa: S608
        )
    return " UNION ALL ".join(branches)


def whole_hours_params(
    customer_id: int,
    start: datetime,
    end: datetime,
    rest=(),
    *,
    days_in=None,
    grouped: bool = False,
) -> list:
    """The parameters of whole_hours_rows (`grouped` as it was made) for the rows
    in [start, end), an hour's start each (`rest`: those of its `where`). `days_in`:
    a narrower (first, last) range the daily rows must lie in, for a read that lists
    rows around the hours it adds up."""
    first, last = days_in or (start, end)
    first_day = day_of(first) if first == day_of(first) else day_of(first) + DAY
    last_day = day_of(last)
    if first_day >= last_day:  # no whole day: the hours only
        first_day = last_day = end
    days_end = (last_day, last_day, first_day, first_day, last_day) if grouped else (last_day,)
    return [
        *(customer_id, start, first_day, *rest),
        *(customer_id, *days_end, end, *rest),
        *(customer_id, first_day, *days_end, *rest),
        *(customer_id, start, end, *rest),
    ]
