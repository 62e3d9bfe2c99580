"""How documents a customer reads (invoice and credit note PDFs) write numbers,
amounts, percentages, dates and country names in the customer's language.

One rule for all of them: Django's locale formats under the customer's language,
with thousands always grouped ("1,234.50" in English, "1 234,50" in French,
"1.234,50" in German), amounts with at least their currency's minor digits
(billing.core.money.format_money), and a day-month-year date that no reader can
take for another ("2 Dec 2026", "02/12/2026", "02.12.2026": French and German
invoices date by numbers, day first).
"""

from datetime import datetime, tzinfo
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from django.utils import translation
from django.utils.formats import date_format, number_format

from billing.core.money import format_decimal, format_money

# The languages invoices are written in; anything else reads as the first one.
DOCUMENT_LOCALES = ("en", "fr", "de")
DEFAULT_LOCALE = DOCUMENT_LOCALES[0]

# Day, month, year in each language's usual written form (Django's format characters).
DATE_FORMATS = {"en": "j M Y", "fr": "d/m/Y", "de": "d.m.Y"}
# French and German put a (no-break) space before the percent sign.
PERCENT_SPACE = {"fr": "\N{NO-BREAK SPACE}", "de": "\N{NO-BREAK SPACE}"}


def document_locale(value: object) -> str:
    """The language a document is written in: the customer's if supported ("fr",
    "fr-CA" -> "fr"), otherwise English."""
    if isinstance(value, str):
        language = value.strip().lower().replace("_", "-").split("-", 1)[0]
        if language in DOCUMENT_LOCALES:
            return language
    return DEFAULT_LOCALE


def format_number(value: Decimal, *, locale: str) -> str:
    """A quantity or price without trailing zeros, grouped by thousands: 1250000 ->
    '1,250,000' (en), '1 250 000' (fr), '1.250.000' (de)."""
    text = format_decimal(Decimal(value))
    with translation.override(document_locale(locale)):
        return number_format(Decimal(text), use_l10n=True, force_grouping=True)


def format_amount(amount: Decimal, currency: str, *, locale: str) -> str:
    """An amount with at least its currency's minor digits, in the locale's
    writing: '1,234.50' (en), '1 234,50' (fr), '1.234,50' (de), '6,700' (JPY, en)."""
    text = format_money(Decimal(amount), currency)
    with translation.override(document_locale(locale)):
        return number_format(Decimal(text), use_l10n=True, force_grouping=True)


def format_money_text(amount: Decimal, currency: str, *, locale: str) -> str:
    """An amount followed by its currency: '1,234.50 USD', '1 234,50 EUR'."""
    return f"{format_amount(amount, currency, locale=locale)}\N{NO-BREAK SPACE}{currency}"


def format_percent(value: Decimal, *, locale: str) -> str:
    """A tax percentage without needless zeros: '20%' (en), '5,5 %' (fr), '19 %' (de)."""
    locale = document_locale(locale)
    return f"{format_number(Decimal(value), locale=locale)}{PERCENT_SPACE.get(locale, '')}%"


def format_date(moment: datetime | None, zone: tzinfo, *, locale: str) -> str:
    """The calendar day of a moment in the customer's time zone ('' for none)."""
    if moment is None:
        return ""
    locale = document_locale(locale)
    with translation.override(locale):
        return date_format(moment.astimezone(zone).date(), DATE_FORMATS[locale])


def country_name(code: str, *, locale: str) -> str:
    """An ISO 3166-1 alpha-2 code's country name in the locale ('DE' -> 'Germany',
    'Allemagne', 'Deutschland'); the code itself when unknown."""
    try:
        names = Locale.parse(document_locale(locale)).territories
    except (UnknownLocaleError, ValueError):
        return code
    return names.get(code.upper(), code)
