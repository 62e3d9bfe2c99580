"""What ops pick or type on admin forms, in words: currencies and countries as
choices and list filters, a date and time with the admin's pickers labelled with its time zone,
and a moment as read-only text naming that zone. The domain still validates
every value; these only offer and show them."""

import functools
from datetime import datetime, tzinfo

from babel import Locale
from babel.numbers import get_territory_currencies
from django import forms
from django.contrib.admin import AllValuesFieldListFilter
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone, translation
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common import customer_text
from common.countries import COUNTRY_CODES
from common.money import is_known_currency

# The admin's language when no user's is active (config.user_language).
ADMIN_LANGUAGE = "en"


def _language() -> str:
    """The admin user's language: currencies and countries named in it."""
    return customer_text.language(translation.get_language() or ADMIN_LANGUAGE)


# Offered first: most customers pay in one of these.
COMMON_CURRENCIES = ("USD", "EUR", "GBP")


@functools.cache
def _currencies_in_use() -> tuple[str, ...]:
    """The ISO 4217 codes some country pays in today (babel's CLDR data), that
    the money rules know; the historic codes (FRF, DEM) are left out."""
    codes = {
        code
        for country in COUNTRY_CODES
        for code in get_territory_currencies(country, tender=True)
        if is_known_currency(code)
    }
    return tuple(sorted(codes))


def currency_name(code: str) -> str:
    """'US Dollar' for 'USD'; the code itself when unknown."""
    return Locale.parse(_language()).currencies.get(code, code)


def currency_choices(*, current: str = "") -> list[tuple[str, str]]:
    """(code, 'USD — US Dollar') for the currencies in use, USD, EUR and GBP first,
    then the rest by code; `current` (a stored value no longer offered) is kept."""
    codes = [
        *COMMON_CURRENCIES,
        *(c for c in _currencies_in_use() if c not in COMMON_CURRENCIES),
    ]
    if current and current not in codes:
        codes.append(current)
    return [(code, f"{code} — {currency_name(code)}") for code in codes]


def country_choices(*, current: str = "") -> list[tuple[str, str]]:
    """(code, 'Germany') for every ISO 3166-1 country, by name; `current` (a stored
    value that is no country) is kept, so that the domain names what is wrong."""
    names = Locale.parse(_language()).territories
    choices = sorted(((code, names.get(code, code)) for code in COUNTRY_CODES), key=_by_name)
    if current and current not in COUNTRY_CODES:
        choices.append((current, current))
    return choices


def country_name(code: str) -> str:
    """'Germany' for 'DE'; the code itself when unknown."""
    return Locale.parse(_language()).territories.get(code, code)


class _NamedValuesFilter(AllValuesFieldListFilter):
    """A list filter of the values a column holds (not every choice its field
    offers), each shown by its name in the admin user's language."""

    @staticmethod
    def named(code: str) -> str:
        raise NotImplementedError

    def choices(self, changelist):
        choices = super().choices(changelist)
        yield next(choices)  # All
        held = [str(value) for value in self.lookup_choices if value is not None]
        for code, choice in zip(held, choices, strict=False):  # then the empty one
            yield {**choice, "display": choice["display"].replace(code, self.named(code), 1)}
        yield from choices  # the empty value's, if any


class CurrencyFilter(_NamedValuesFilter):
    """The currencies in use, by name ('US Dollar', 'dollar des États-Unis'),
    under "currency" (a money field's currency column has an English name)."""

    named = staticmethod(currency_name)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("currency")


class CountryFilter(_NamedValuesFilter):
    """The countries in use, by name ('Germany', 'Allemagne')."""

    named = staticmethod(country_name)


def _by_name(choice: tuple[str, str]) -> str:
    return choice[1].casefold()


def zone_name() -> str:
    """The time zone the admin's dates are typed and shown in ('UTC')."""
    return timezone.get_current_timezone_name()


def _with_zone_named(label: str, zone: str) -> str:
    return f"{label} ({zone})"


def _with_zone(label: str) -> str:
    return _with_zone_named(label, zone_name())


# A label naming the zone active when the page is drawn: 'Start (UTC)'.
label_with_zone = lazy(_with_zone, str)


def local_moment_text(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """'1 Nov 2026, 00:00' in `zone` (the admin's by default), for a table whose
    header names the zone; '—' for none."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment, zone)
    return f"{customer_text.day(local.date())}, {local:%H:%M}"


def moment_text(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """A moment as ops read it: '1 Nov 2026, 00:00 (UTC)', in `zone` (the admin's
    by default), which it names; '—' for none."""
    if moment is None:
        return "—"
    return customer_text.named_zone(local_moment_text(moment, zone), zone or zone_name())


def period_text(
    start: datetime | None, end: datetime | None, zone: tzinfo, anchor: datetime | None = None
) -> str:
    """'1 Nov - 30 Nov 2026 (Asia/Tokyo)': the days of [start, end) in `zone` (a
    customer's or an invoice's), inclusive, as the customer's invoices print them
    (an invoice's with its schedule's `anchor`); '—' for none."""
    if start is None or end is None:
        return "—"
    dates = customer_text.date_range(start, end, zone, anchor)
    return customer_text.named_zone(dates, zone)


def period_cell(start: datetime | None, end: datetime | None, zone: tzinfo) -> str:
    """A period's days in a list, its zone under them: a list mixes customers' zones."""
    if start is None or end is None:
        return "—"
    return format_html(
        '{}<br><span class="zone">{}</span>', customer_text.date_range(start, end, zone), zone
    )


class ZonedDateTimeField(forms.SplitDateTimeField):
    """A date and a time, each with the admin's picker, labelled with the zone
    they are read in: 'Start (UTC)' in the admin's zone, or 'Start (Asia/Tokyo)'
    once the form gives it a customer's (`read_in`): what ops type for a customer
    is in that customer's zone, as their invoices' days are."""

    widget = AdminSplitDateTime

    def __init__(self, *, label: str, **kwargs):
        self.base_label = label
        self.zone: tzinfo | None = None
        super().__init__(label=label_with_zone(label), **kwargs)

    def read_in(self, zone: tzinfo | None, *, unknown: str = "") -> None:
        """Read (and label) the value in `zone`; with none, in the words `unknown`
        ('the customer's time zone') if given, else the admin's zone."""
        self.zone = zone
        if zone is not None:
            self.label = _with_zone_named(self.base_label, str(zone))
        elif unknown:
            self.label = _with_zone_named(self.base_label, unknown)

    def compress(self, data_list):
        if self.zone is None:
            return super().compress(data_list)
        # Django's own reading (it refuses a time the zone skips or repeats), in the zone.
        with timezone.override(self.zone):
            return super().compress(data_list)

    def prepare_value(self, value):
        if isinstance(value, datetime) and self.zone is not None:
            return timezone.localtime(value, self.zone).replace(tzinfo=None)
        return value
