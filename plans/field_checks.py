"""The checks every catalog validator is made of: messages collected by dotted
field path (FieldErrors), numbers, codes and currencies. Messages are written
for the finance person who reads them beside the field in the admin."""

import re
from decimal import Decimal

from common.errors import InvalidRequest
from common.money import (
    MAX_UNIT_PRICE,
    currency_exponent,
    format_decimal,
    has_minor_unit_precision,
    is_known_currency,
    unit_price_too_large,
)

MAX_PRICE_PLACES = 10
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
CODE_HELP = "1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"


class FieldErrors:
    """Collects messages by dotted path, then raises them all at once."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.errors: dict[str, list[str]] = {}
        self.words: dict[str, list[str]] = {}

    def add(self, path: str, message: str, *, words: str = "") -> None:
        """`words`: what the admin shows instead of `message` (the API's), when
        the message names what finance does not see on the form (a code)."""
        key = f"{self.prefix}{path}" if path else self.prefix.rstrip(".") or "non_field_errors"
        self.errors.setdefault(key, []).append(message)
        self.words.setdefault(key, []).append(words or message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            first_path, messages = next(iter(self.errors.items()))
            raise InvalidRequest(
                f"{summary}: {first_path}: {messages[0]}",
                fields=self.errors,
                field_words={k: v for k, v in self.words.items() if v != self.errors[k]},
            )


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_number(
    errors: FieldErrors,
    path: str,
    value: Decimal | None,
    *,
    required: bool = False,
    positive: bool = False,
    max_places: int | None = MAX_PRICE_PLACES,
    currency: str | None = None,
    missing: str = "This field is required",
) -> None:
    """Finite, non-negative (or positive), and not more precise than allowed;
    `missing` says what a required value that is absent is needed for."""
    if value is None:
        if required:
            errors.add(path, missing)
        return
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        errors.add(path, "Enter a number")
        return
    value = Decimal(value)
    if not value.is_finite():
        errors.add(path, "Enter a finite number")
    elif positive and value <= 0:
        errors.add(path, "Must be more than zero")
    elif value < 0:
        errors.add(path, "Cannot be negative")
    elif currency is not None and is_known_currency(currency):
        if not has_minor_unit_precision(value, currency):
            places = currency_exponent(currency)
            errors.add(
                path,
                f"{currency} amounts are whole numbers"
                if places == 0
                else f"{currency} amounts have at most {places} decimal places",
            )
    elif max_places is not None and _places(value) > max_places:
        errors.add(path, f"At most {max_places} decimal places")


def check_unit_price(
    errors: FieldErrors, path: str, price: object, per: object, *, per_words: str = "per"
) -> None:
    """The one bound on what a unit may cost, for every price given for a number
    of units (a cost rate, a unit price, a tier's, a package's): `price` / `per`
    at most MAX_UNIT_PRICE (common.money says why), refused on `path` (the
    price). Checked only when both are numbers check_number took (positive per):
    their own refusals come first. `per_words`: what the form calls the units."""
    if not isinstance(price, Decimal) or not isinstance(per, Decimal | int):
        return
    if isinstance(per, bool) or not price.is_finite() or not Decimal(per).is_finite():
        return
    if per <= 0 or not unit_price_too_large(price, Decimal(per)):
        return
    errors.add(
        path,
        f"One unit would cost {format_decimal(price / Decimal(per))} ({format_decimal(price)} "
        f"for {per_words} {format_decimal(Decimal(per))}): at most "
        f"{format_decimal(MAX_UNIT_PRICE)} a unit, so that amounts stay within what "
        f"the books hold. Check the price and '{per_words}'",
    )


def check_absent(errors: FieldErrors, path: str, value: object, why: str) -> None:
    if value not in (None, "", (), [], {}):
        errors.add(path, why)


def check_code(errors: FieldErrors, path: str, code: object) -> None:
    if not isinstance(code, str) or not CODE_RE.match(code):
        errors.add(path, f"Use {CODE_HELP}")


def check_currency(errors: FieldErrors, path: str, currency: object) -> None:
    if not is_known_currency(currency):
        errors.add(path, f"Unknown currency {currency!r}: use a three-letter code such as USD")
