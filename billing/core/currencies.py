"""Currencies as a finance person picks them in a form: "USD — US Dollar", the
common ones first, then every other currency in use today, by name."""

import functools

from babel import Locale
from babel.numbers import get_currency_name, get_territory_currencies

from billing.core.money import is_known_currency

# The currencies most customers bill in, offered before the rest.
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY")


def currency_label(code: str) -> str:
    """'USD — US Dollar'."""
    return f"{code} — {get_currency_name(code, locale='en')}"


@functools.cache
def currency_choices() -> tuple[tuple[str, str], ...]:
    """(code, "USD — US Dollar") pairs for a select: the common currencies, then
    the others legal tender somewhere today (not Zimbabwe's 1980 dollar), by name."""
    in_use: set[str] = set()
    for territory in Locale("en").territories:
        if len(territory) == 2 and territory.isalpha():
            in_use.update(get_territory_currencies(territory, tender=True))
    others = sorted(
        (code for code in in_use if is_known_currency(code) and code not in COMMON_CURRENCIES),
        key=lambda code: get_currency_name(code, locale="en"),
    )
    return tuple((code, currency_label(code)) for code in (*COMMON_CURRENCIES, *others))
