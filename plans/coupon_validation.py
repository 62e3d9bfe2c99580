"""The rules of a coupon (plans.validation's style: plain values in, an
`InvalidRequest` whose `fields` maps each field to its messages out). Called by
the API's and the admin's writes through plans.coupons."""

from datetime import datetime
from decimal import Decimal

from common.money import is_known_currency
from common.vocabulary import CouponDuration
from plans.validation import FieldErrors, check_code, check_currency, check_number

MAX_PERCENT_OFF = Decimal(100)
PERCENT_PLACES = 4
# A repeating coupon runs for at most 100 years of monthly periods.
MAX_DURATION_PERIODS = 1200
MAX_REDEMPTIONS = 1_000_000_000
NAME_MAX_LENGTH = 100


def _check_count(errors: FieldErrors, path: str, value: object, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "must be a whole number")
    elif value <= 0:
        errors.add(path, "must be greater than zero")
    elif value > most:
        errors.add(path, f"must be at most {most}")


def validate_coupon(
    *,
    code: object,
    name: object,
    percent_off: Decimal | None,
    amount_off: Decimal | None,
    currency: object,
    duration: object,
    duration_periods: object,
    max_redemptions: object,
    redeem_by: datetime | None,
) -> None:
    """Exactly one of percent_off (0 < p <= 100, at most 4 places) and
    amount_off (> 0, in `currency`'s minor unit); duration_periods iff repeating."""
    errors = FieldErrors()
    check_code(errors, "code", code)
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "must not be empty")
    elif len(name.strip()) > NAME_MAX_LENGTH:
        errors.add("name", f"must be at most {NAME_MAX_LENGTH} characters")
    if (percent_off is None) == (amount_off is None):
        errors.add("percent_off", "give exactly one of percent_off and amount_off")
    elif percent_off is not None:
        check_number(errors, "percent_off", percent_off, positive=True, max_places=PERCENT_PLACES)
        finite = isinstance(percent_off, Decimal) and percent_off.is_finite()
        if finite and percent_off > MAX_PERCENT_OFF:
            errors.add("percent_off", f"must be at most {MAX_PERCENT_OFF}")
        if currency not in (None, ""):
            errors.add("currency", "only an amount_off coupon has a currency")
    else:
        check_currency(errors, "currency", currency)
        check_number(
            errors,
            "amount_off",
            amount_off,
            positive=True,
            currency=currency if is_known_currency(currency) else None,
        )
    if duration not in CouponDuration.values:
        errors.add("duration", f"must be one of {', '.join(CouponDuration.values)}")
    elif duration == CouponDuration.REPEATING:
        if duration_periods is None:
            errors.add("duration_periods", "required for a repeating coupon")
        else:
            _check_count(errors, "duration_periods", duration_periods, MAX_DURATION_PERIODS)
    elif duration_periods is not None:
        errors.add("duration_periods", "only a repeating coupon has duration_periods")
    if max_redemptions is not None:
        _check_count(errors, "max_redemptions", max_redemptions, MAX_REDEMPTIONS)
    if redeem_by is not None and (not isinstance(redeem_by, datetime) or redeem_by.tzinfo is None):
        errors.add("redeem_by", "must be an instant with an offset")
    errors.raise_if_any("invalid coupon")
