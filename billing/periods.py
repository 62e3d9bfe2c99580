"""Calendar arithmetic for billing periods, in the customer's time zone."""

from datetime import UTC, datetime


def month_start(moment: datetime, *, months: int = 0) -> datetime:
    """Midnight on the first of the month `months` after the month of `moment`, in
    `moment`'s own time zone, returned in UTC (DST-correct through zoneinfo)."""
    index = moment.year * 12 + moment.month - 1 + months
    local = datetime(index // 12, index % 12 + 1, 1, tzinfo=moment.tzinfo)
    return local.astimezone(UTC)
