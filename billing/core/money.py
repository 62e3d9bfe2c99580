"""Money rules in one place: currencies, rounding, formatting, Stripe units.

Every amount is a Decimal. A line amount is computed exactly and rounded once,
half up, to the currency's minor unit (2 for USD and EUR, 0 for JPY).
"""

from decimal import ROUND_HALF_UP, Decimal, localcontext

import moneyed
from django.db import connection

# How every amount and quantity is stored: exact, 18 integer digits, 10 decimals.
AMOUNT = {"max_digits": 28, "decimal_places": 10}

# SQLite, the embedded default, stores decimals as floats: 15 significant digits.
SQLITE_EXACT_DIGITS = 15


def is_known_currency(code: object) -> bool:
    if not isinstance(code, str) or len(code) != 3 or not code.isupper():
        return False
    try:
        currency = moneyed.get_currency(code)
    except moneyed.CurrencyDoesNotExist:
        return False
    # py-moneyed lists a few non-money codes (XXX, XTS); they have no minor unit.
    return currency.sub_unit is not None and code not in {"XXX", "XTS"}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (USD 2, JPY 0, BHD 3)."""
    sub_unit = moneyed.get_currency(currency).sub_unit
    return len(str(sub_unit)) - 1


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round an exact amount to the currency's minor unit, half up."""
    exponent = currency_exponent(currency)
    with localcontext(prec=100):
        # `+ 0` folds -0.00 into 0.00.
        return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP) + 0


def quantize_amount(value: Decimal) -> Decimal:
    """Round an exact quantity (credits, units) to what an AMOUNT column stores
    (its 10 decimals), half up."""
    with localcontext(prec=100):
        return (
            value.quantize(Decimal(1).scaleb(-AMOUNT["decimal_places"]), rounding=ROUND_HALF_UP) + 0
        )


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Stripe's integer amount: 29.99 USD -> 2999, 500 JPY -> 500.

    Refuses an amount that is not already whole in minor units, so that a
    rounding never happens silently on the way to a payment.
    """
    exponent = currency_exponent(currency)
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(minor)


def has_minor_unit_precision(amount: Decimal, currency: str) -> bool:
    """True when the amount has no more decimals than the currency's minor unit."""
    return amount == quantize_money(amount, currency)


def format_decimal(value: Decimal) -> str:
    """A quantity or price as a plain string: no exponent, no trailing zeros ('150000')."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def format_money(amount: Decimal, currency: str) -> str:
    """An amount with at least the currency's minor digits: '20.00', '0.0000025', '500' (JPY)."""
    exponent = currency_exponent(currency)
    amount = amount + 0  # folds -0 into 0
    normalized = amount.normalize()
    if -normalized.as_tuple().exponent <= exponent:
        return format(amount.quantize(Decimal(1).scaleb(-exponent)), "f")
    return format(normalized, "f")


def storable_exactly(value: Decimal) -> bool:
    """False for a value the database in use would not store exactly (SQLite only)."""
    if connection.vendor != "sqlite":
        return True
    return len(value.normalize().as_tuple().digits) <= SQLITE_EXACT_DIGITS


def format_percentage(value: Decimal) -> str:
    """A percentage with at least two decimal places: 20 -> "20.00", 8.875 -> "8.875"."""
    text = format(Decimal(value).normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"
