"""Money rules in one place: currencies, rounding, formatting, Stripe units.

Every amount is a Decimal. A line amount is computed exactly and rounded once,
half up, to the currency's minor unit (2 for USD and EUR, 0 for JPY).
"""

import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext
from functools import cache

import moneyed
from django.db import connection

# How every amount and quantity is stored: exact, 18 integer digits, 10 decimals.
AMOUNT = {"max_digits": 28, "decimal_places": 10}

# SQLite, the embedded default, stores decimals as floats: 15 significant digits.
SQLITE_EXACT_DIGITS = 15

# What AMOUNT holds: 18 digits before the point, 10 after it.
MAX_INTEGER_DIGITS = AMOUNT["max_digits"] - AMOUNT["decimal_places"]
MAX_PLACES = AMOUNT["decimal_places"]
# The most one unit may cost (a price divided by the units it is for: a cost
# rate's unit_cost / per, a unit price / per, a package's price / size), in the
# currency's units. An amount holds 18 integer digits: at this price a line
# still holds a billion units (10**9 x 10**9 = 10**18), and the dearest units
# sold in the weakest currencies (VND, IDR: ~25,000 to the dollar) stay far
# below it (10**9 VND is ~40,000 USD a unit).
MAX_UNIT_PRICE = Decimal(10**9)
# Below this, an integer fits every database exactly (SQLite's 15 digits included).
SMALL_INTEGER_LIMIT = 10**15

# How an amount or quantity may be written in a string: ASCII digits, a point with
# digits after it, a minus sign (where negatives are allowed, the caller says). No
# spaces, "+", "_", exponent, other scripts' digits, or "NaN": Decimal() takes all
# of those, and " 5 " billed 5, "1_000" billed 1,000.
PLAIN_DECIMAL = r"-?[0-9]+(\.[0-9]+)?"
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL)
# A string longer than this is refused unread (none that fits AMOUNT is, but for zeros).
MAX_DECIMAL_TEXT = 64
_NON_FINITE = {"nan", "snan", "inf", "infinity"}

DECIMAL_MESSAGE = "must be a decimal number like 12.50"


class DecimalRefused(ValueError):
    """An amount or quantity refused: `str()` says why, `code` names the rule."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def decimal_input(value: object, *, negative: bool = True) -> Decimal:
    """The one reading of an amount or quantity the API is sent (every serializer's
    DecimalString, common.rest_api, and the meters' values in ingested events): a JSON
    number (as read, an int or an exact Decimal: 1e3 is 1000) or a plain decimal
    string ("12.5", "-3"); anything else refused with DECIMAL_MESSAGE. Then refused
    when not finite, negative (unless `negative`), too large, or more precise than
    AMOUNT stores (or SQLite keeps exactly: storable_exactly). Raises DecimalRefused."""
    if type(value) is int and 0 <= value < SMALL_INTEGER_LIMIT:
        return Decimal(value)  # the common case, token counts: nothing more to check
    if isinstance(value, str):
        if len(value) <= MAX_DECIMAL_TEXT and _PLAIN_DECIMAL.fullmatch(value):
            number = Decimal(value)
        elif value.lstrip("+-").lower() in _NON_FINITE:
            raise DecimalRefused("must be a finite number", "non_finite")
        else:
            raise DecimalRefused(DECIMAL_MESSAGE, "invalid")
    elif isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # as written, not the binary fraction
    else:
        raise DecimalRefused(DECIMAL_MESSAGE, "invalid")
    if not number.is_finite():
        raise DecimalRefused("must be a finite number", "non_finite")
    if number == 0:
        # Whatever its exponent: "0E-20000" is no number PostgreSQL can hold.
        return Decimal(0)
    if number < 0 and not negative:
        raise DecimalRefused("must not be negative", "negative")
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        raise DecimalRefused("is too large", "too_large")
    # A digit beyond the last place; normalize() would round a tiny value
    # (2.1e-991779300462) to zero first and let it through.
    if number.adjusted() < -MAX_PLACES or number.normalize().as_tuple().exponent < -MAX_PLACES:
        raise DecimalRefused(f"must have at most {MAX_PLACES} decimal places", "max_places")
    if not storable_exactly(number):
        raise DecimalRefused(
            f"has more than {SQLITE_EXACT_DIGITS} significant digits, the most the embedded "
            "SQLite database keeps exactly; run on PostgreSQL for more",
            "too_precise",
        )
    return number


def unit_price_too_large(price: Decimal, per: Decimal) -> bool:
    """Whether one unit at `price` for `per` units costs more than MAX_UNIT_PRICE
    (compared without dividing: per is positive and the product is exact)."""
    return price > MAX_UNIT_PRICE * per


def is_known_currency(code: object) -> bool:
    if not isinstance(code, str) or len(code) != 3 or not code.isupper():
        return False
    try:
        currency = moneyed.get_currency(code)
    except moneyed.CurrencyDoesNotExist:
        return False
    # py-moneyed lists a few non-money codes (XXX, XTS); they have no minor unit.
    return currency.sub_unit is not None and code not in {"XXX", "XTS"}


@cache
def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (USD 2, JPY 0, BHD 3).
    Kept per code (an unknown one raises, and is not kept): a usage read formats
    every rate card row's amount."""
    sub_unit = moneyed.get_currency(currency).sub_unit
    return len(str(sub_unit)) - 1


# Where an exact amount is rounded (quantize_money): 100 digits, a context of its
# own passed to each operation. Entering a localcontext on every call was most of
# what a call cost, and a report rounds tens of thousands of lines. EXACT_DIGITS:
# the precision an exact product or share is computed at before it is rounded.
EXACT_DIGITS = 100
_EXACT = Context(prec=EXACT_DIGITS)


@cache
def _minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def quantize_money(amount: Decimal, currency: str, *, down: bool = False) -> Decimal:
    """Round an exact amount to the currency's minor unit, half up (`down`: towards zero)."""
    rounding = ROUND_DOWN if down else ROUND_HALF_UP
    rounded = amount.quantize(_minor_unit(currency), rounding=rounding, context=_EXACT)
    # plus() (0 + the amount) folds -0.00 into 0.00.
    return _EXACT.plus(rounded)


def split_money(
    total: Decimal, weights: Sequence[Decimal], currency: str, *, ties: Sequence = ()
) -> list[Decimal]:
    """`total` (whole in the currency's minor unit) shared in proportion to
    `weights`, each part in minor units and the parts adding up to `total`
    exactly: each part's exact share rounded towards minus infinity, then the
    minor units left over one each to the largest remainders, ties to the
    largest weight, then to the smallest of `ties` (one sort key a part; by
    default their order). Zero weights get nothing; when the weights add up to
    nothing the whole goes to the first part of largest weight."""
    if not weights:
        return []
    unit = _minor_unit(currency)
    whole = sum(weights, Decimal(0))
    if not whole:
        parts = [Decimal(0)] * len(weights)
        parts[max(range(len(weights)), key=lambda n: (weights[n], -n))] = total
        return parts
    keys = list(ties) or list(range(len(weights)))
    exact = [_EXACT.divide(_EXACT.multiply(total, weight), whole) for weight in weights]
    floors = [share.quantize(unit, rounding=ROUND_FLOOR, context=_EXACT) for share in exact]
    left = int(_EXACT.divide(total - sum(floors, Decimal(0)), unit))
    order = sorted(
        (n for n in range(len(weights)) if weights[n]),
        key=lambda n: (-(exact[n] - floors[n]), -abs(weights[n]), keys[n]),
    )
    for n in order[:left]:
        floors[n] += unit
    return [_EXACT.plus(part) for part in floors]


def quantize_amount(value: Decimal, *, down: bool = False) -> Decimal:
    """Round an exact quantity (credits, units) to what an AMOUNT column stores
    (its 10 decimals), half up; `down`: towards zero, for a share of what is
    left that must never create credits (a rollover)."""
    rounding = ROUND_DOWN if down else ROUND_HALF_UP
    with localcontext(prec=100):
        return value.quantize(Decimal(1).scaleb(-AMOUNT["decimal_places"]), rounding=rounding) + 0


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
        # In the exact context: the default one (28 digits) raised on a sum of
        # 10**26 or more, and a report failed on the row.
        return format(amount.quantize(_minor_unit(currency), context=_EXACT), "f")
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
