"""Calendar arithmetic for billing periods, in the customer's time zone."""

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo


def month_start(moment: datetime, *, months: int = 0) -> datetime:
    """Midnight on the first of the month `months` after the month of `moment`, in
    `moment`'s own time zone, returned in UTC (DST-correct through zoneinfo)."""
    index = moment.year * 12 + moment.month - 1 + months
    local = datetime(index // 12, index % 12 + 1, 1, tzinfo=moment.tzinfo)
    return local.astimezone(UTC)


INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def add_months_clamped(moment: datetime, months: int, *, day: int) -> datetime:
    """`moment` moved by whole months onto `day`, clamped to the month's last day
    (an anniversary on the 31st falls on Feb 28 and back on Mar 31), keeping the
    local wall-clock time in `moment`'s zone."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(day, last_day))


def period_boundary(
    anchor: datetime, zone: ZoneInfo, *, interval: str, calendar_aligned: bool, k: int
) -> datetime:
    """The k-th period boundary (k = 0 is the anchor itself) of a schedule, in UTC.

    Anniversary: every interval from the anchor's local date and time.
    Calendar: the anchor, then the first of each interval's month at local midnight.
    """
    local = anchor.astimezone(zone)
    if k == 0:
        return anchor
    step = INTERVAL_MONTHS[interval]
    if calendar_aligned:
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return add_months_clamped(first, k * step, day=1).astimezone(UTC)
    return add_months_clamped(local, k * step, day=local.day).astimezone(UTC)


def period_containing(
    anchor: datetime, zone: ZoneInfo, *, interval: str, calendar_aligned: bool, moment: datetime
) -> tuple[datetime, datetime]:
    """The [start, end) period of the schedule that contains `moment` (>= anchor)."""
    if moment < anchor:
        raise ValueError("the moment is before the schedule starts")
    step = INTERVAL_MONTHS[interval]
    local_anchor, local_moment = anchor.astimezone(zone), moment.astimezone(zone)
    months = (local_moment.year - local_anchor.year) * 12 + local_moment.month - local_anchor.month
    k = max(0, months // step - 1)
    boundary = partial(
        period_boundary, anchor, zone, interval=interval, calendar_aligned=calendar_aligned
    )
    while boundary(k=k + 1) <= moment:
        k += 1
    return boundary(k=k), boundary(k=k + 1)


def whole_period(
    start: datetime, end: datetime, zone: ZoneInfo, *, interval: str, calendar_first: bool
) -> tuple[datetime, datetime]:
    """The whole period that the period [start, end) is a part of, for prorating
    (period_share).

    `calendar_first`: [start, end) is the first period of a calendar-aligned
    schedule, which starts whenever the subscription does (mid-month, say), and
    ends a whole interval after the local start of that month (period_boundary):
    the whole one runs from that month start for `interval`. Any other period is
    whole itself."""
    if not calendar_first:
        return start, end
    local = start.astimezone(zone)
    return month_start(local), month_start(local, months=INTERVAL_MONTHS[interval])


def interval_end(start: datetime, zone: ZoneInfo, *, interval: str) -> datetime:
    """One billing interval after `start`: the same local day and time in `zone`
    `interval` later (the 31st clamps to a short month's last day), in UTC."""
    local = start.astimezone(zone)
    return add_months_clamped(local, INTERVAL_MONTHS[interval], day=local.day).astimezone(UTC)


def whole_months(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """How many calendar months of `zone` [start, end) is exactly, else 0."""
    local, local_end = start.astimezone(zone), end.astimezone(zone)
    if month_start(local) != start:
        return 0
    months = (local_end.year - local.year) * 12 + local_end.month - local.month
    return months if months >= 1 and month_start(local, months=months) == end else 0


def period_fraction(
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    interval: str,
    whole: tuple[datetime, datetime] | None = None,
) -> Decimal:
    """The part of a whole period of `interval` that [start, end) is, where no
    subscription's schedule says (a simulation's or the price sandbox's period):
    whole calendar months (in UTC or `zone`) count as months, 1/3 of a quarter;
    anything else by the second (period_share) against `whole` when given, else
    against the interval from `start` (interval_end)."""
    for z in (UTC, zone):
        months = whole_months(start, end, z)
        if months:
            return Decimal(months) / Decimal(INTERVAL_MONTHS[interval])
    if whole is None or whole == (start, end):
        whole = (start, interval_end(start, zone, interval=interval))
    return period_share(start, end, whole=whole)


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def period_share(start: datetime, end: datetime, *, whole: tuple[datetime, datetime]) -> Decimal:
    """The part of the whole period `whole` that [start, end) covers, by the second
    (exactly: whole microseconds, one division)."""
    whole_start, whole_end = whole
    return Decimal(_microseconds(end - start)) / Decimal(_microseconds(whole_end - whole_start))


# The times a request may name. Far enough inside datetime's own range (years 1 to
# 9999) that the periods around them and their local times are datetimes too.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)


# A date as ISO 8601 writes one (extended, basic or a week date), then what parts it
# from the time: T, or t or a space as RFC 3339 allows. fromisoformat takes any
# character there (a NUL, an X, a digit), so the shape is checked first.
_DATE_THEN_TIME = re.compile(
    r"[0-9]{4}(?:-[0-9]{2}-[0-9]{2}|[0-9]{4}|-?W[0-9]{2}(?:-?[0-9])?)[Tt ]", re.ASCII
)


def on_the_hour(moment: datetime) -> bool:
    """Whether a moment begins a UTC hour, as the hourly rollups' hours do."""
    utc = moment.astimezone(UTC)
    return (utc.minute, utc.second, utc.microsecond) == (0, 0, 0)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with an offset, in UTC. ValueError says what is wrong, as the
    end of a sentence ("is not ISO 8601", "needs an offset, ...", "is out of range")."""
    if not isinstance(text, str):
        raise ValueError("is not ISO 8601")
    if not _DATE_THEN_TIME.match(text):
        # A date alone (it has no offset) is answered as before.
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text, re.ASCII):
            raise ValueError("needs an offset, e.g. Z or +02:00")
        raise ValueError("is not ISO 8601")
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValueError("is not ISO 8601") from exc
    if moment.tzinfo is None:
        raise ValueError("needs an offset, e.g. Z or +02:00")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    if not EARLIEST_INSTANT <= moment < LATEST_INSTANT:
        raise ValueError("is out of range")
    return moment


def iso(moment: datetime) -> str:
    """An instant as the API and webhooks write it: ISO 8601 in UTC, with "Z"."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lines_span(lines) -> tuple[datetime | None, datetime | None]:
    """The span a document's lines bill: from the earliest start to the latest
    end of the lines that name a period ([start, end), as they do: anything
    with period_start and period_end); (None, None) when none does. The one
    rule for every document's period: an invoice stores it when written
    (Invoice.service_start/service_end, invoices.services) and says it as its
    period (Invoice.document_period): a closing invoice spans its usage and the
    next period's fees billed in advance, a cancellation's its usage up to the
    cancel; a credit note says the span of what it credits
    (CreditNote.document_period)."""
    periods = [
        (line.period_start, line.period_end)
        for line in lines
        if line.period_start is not None and line.period_end is not None
    ]
    if not periods:
        return None, None
    return min(start for start, _ in periods), max(end for _, end in periods)
