"""How a customer reads numbers, days and periods: on invoice lines and in the
portal. One rule per function, in the active language (callers write a
customer's text under `in_customer_language`) and in the customer's time zone.

Periods are half-open instants [start, end); a person reads them as inclusive
days. The day holding `end` belongs to the next period, so consecutive periods
never share a day in print: a period ending on 1 Dec 00:00 ends "30 Nov", and
one ending on 20 Nov 14:00 ends "19 Nov" (the next one starts "20 Nov")."""

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import dateformat, formats, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from billing.core.periods import month_start
from billing.core.vocabulary import LineKind

LANGUAGES = ("en", "fr", "de")


@contextmanager
def in_customer_language(locale: str | None):
    """The customer's language for the text written inside (English for a
    locale the project does not write)."""
    with translation.override(locale if locale in LANGUAGES else "en"):
        yield


def quantity(value: Decimal | int) -> str:
    """A count or quantity with the locale's thousands separator and decimal
    mark, exact, no trailing zeros: 1,000,000 (en), 1 000 000 (fr), 1.000.000 (de)."""
    value = Decimal(value)
    value = value.normalize() if value else Decimal(0)
    # normalize() writes 1E+6 for a million; quantize back to whole units then.
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return formats.number_format(value, use_l10n=True, force_grouping=True)


def money(amount: Decimal, exponent: int) -> str:
    """An amount with at least the currency's minor digits (`exponent`), grouped."""
    amount = Decimal(amount) + 0  # folds -0 into 0
    digits = max(exponent, -amount.normalize().as_tuple().exponent)
    return formats.number_format(amount, decimal_pos=digits, use_l10n=True, force_grouping=True)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def last_day(start: datetime, end: datetime, zone: ZoneInfo) -> date:
    """The last day a person reads in [start, end): the day before the one
    holding `end`, never before the first day."""
    return max(local_day(start, zone), local_day(end, zone) - timedelta(days=1))


def day(moment: datetime | date, zone: ZoneInfo | None = None) -> str:
    """A day: '16 Nov 2026' (in `zone` for an instant)."""
    if isinstance(moment, datetime):
        moment = local_day(moment, zone)
    return dateformat.format(moment, pgettext("a day: day, month, year", "j M Y"))


def day_range(first: date, last: date) -> str:
    """Inclusive days: '16 Nov - 30 Nov 2026', '20 Dec 2026 - 19 Jan 2027', or one day."""
    if first == last:
        return day(first)
    if first.year == last.year:
        text = dateformat.format(first, pgettext("a day in a range, its year follows", "j M"))
    else:
        text = day(first)
    return _("{first} – {last}").format(first=text, last=day(last))  # noqa: RUF001 (a date range takes an en dash)


def date_range(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """The period [start, end) as inclusive days in `zone`."""
    return day_range(local_day(start, zone), last_day(start, end, zone))


def period(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """'Nov 2026' for a whole calendar month in `zone`, its days otherwise."""
    local_start = start.astimezone(zone)
    if month_start(local_start) == start and month_start(local_start, months=1) == end:
        return dateformat.format(local_start, pgettext("a calendar month", "M Y"))
    return date_range(start, end, zone)


def in_zone(text: str, zone: ZoneInfo) -> str:
    """A date or period saying which time zone it is read in."""
    return _("{dates} ({zone})").format(dates=text, zone=str(zone))


def day_count(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """The number of days date_range prints for [start, end)."""
    return (last_day(start, end, zone) - local_day(start, zone)).days + 1


def proration(start: datetime, end: datetime, *, whole: tuple[datetime, datetime], zone) -> str:
    """The part [start, end) of the whole period `whole`, as days: '15 of 30 days
    (16 Nov - 30 Nov 2026)'. Words only: the amount is prorated by the second."""
    whole_days = day_count(*whole, zone)
    days = min(day_count(start, end, zone), whole_days)
    return ngettext(
        "{days} of {whole_days} day ({dates})",
        "{days} of {whole_days} days ({dates})",
        whole_days,
    ).format(
        days=quantity(days), whole_days=quantity(whole_days), dates=date_range(start, end, zone)
    )


def proration_description(*, fee_kind: str, sign: int, name: str, seats: int, days: str) -> str:
    """'Unused time on Chat Growth (v1), 15 of 30 days (16 Nov - 30 Nov 2026)', or
    the same for the seats of that version."""
    if fee_kind == LineKind.SEATS:
        if sign < 0:
            text = ngettext(
                "Unused time on {count} seat of {plan}, {days}",
                "Unused time on {count} seats of {plan}, {days}",
                seats,
            )
        else:
            text = ngettext(
                "Remaining time on {count} seat of {plan}, {days}",
                "Remaining time on {count} seats of {plan}, {days}",
                seats,
            )
        return text.format(count=quantity(seats), plan=name, days=days)
    if sign < 0:
        return _("Unused time on {plan}, {days}").format(plan=name, days=days)
    return _("Remaining time on {plan}, {days}").format(plan=name, days=days)
