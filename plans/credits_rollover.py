"""Rollover of a plan's credits per period: the share of a period's unused
credits that becomes a block of its own, expiring some periods later
(wallets.ledger.credits_expire makes it). A plan version's terms
`credits_rollover_percent` and `credits_rollover_periods`, which the API reads
and writes as one object, `credits_rollover`:
`{"rollover_percent": "50", "expires_after_periods": 2}` (null: they all
expire at the period's end, as before)."""

from decimal import Decimal

from common.money import format_decimal
from plans.field_checks import FieldErrors, check_number

# The version's fields the object stands for, named alike on the model and VersionSpec.
ROLLOVER_TERMS = ("credits_rollover_percent", "credits_rollover_periods")
ROLLOVER_PERCENT_PLACES = 4
# A rollover lasts at most ten years of monthly periods.
MAX_ROLLOVER_PERIODS = 120
# Refusals name the API's fields; the admin's form maps them onto its own (ADMIN_FIELDS).
PERCENT_PATH = "credits_rollover.rollover_percent"
PERIODS_PATH = "credits_rollover.expires_after_periods"
ADMIN_FIELDS = {
    "credits_rollover": "credits_rollover_percent",
    PERCENT_PATH: "credits_rollover_percent",
    PERIODS_PATH: "credits_rollover_periods",
}


def check_rollover(
    errors: FieldErrors,
    *,
    credits_per_period: Decimal | None,
    percent: Decimal | None,
    periods: int | None,
) -> None:
    """A percent in (0, 100] and a whole number of periods of at least 1, both
    or neither, and only with credits per period."""
    if percent is None and periods is None:
        return
    if not credits_per_period:
        errors.add(
            "credits_rollover",
            "Only credits granted each period roll over: set the credits per period, "
            "or leave the rollover empty",
        )
    if percent is None:
        errors.add(
            PERCENT_PATH,
            "Give the percent of the unused credits that rolls over (more than 0, at most 100)",
        )
    else:
        check_number(
            errors,
            PERCENT_PATH,
            percent,
            positive=True,
            max_places=ROLLOVER_PERCENT_PLACES,
        )
        if isinstance(percent, Decimal) and percent.is_finite() and percent > 100:
            errors.add(PERCENT_PATH, "At most 100: all the unused credits")
    if periods is None:
        errors.add(
            PERIODS_PATH,
            "Give after how many periods the rolled-over credits expire (1 or more)",
        )
    elif isinstance(periods, bool) or not isinstance(periods, int):
        errors.add(PERIODS_PATH, "Enter a whole number of periods")
    elif not 1 <= periods <= MAX_ROLLOVER_PERIODS:
        errors.add(PERIODS_PATH, f"Enter 1 to {MAX_ROLLOVER_PERIODS} periods")


def rollover_to_json(percent: Decimal | None, periods: int | None) -> dict | None:
    """The API's `credits_rollover` of a version's two fields."""
    if percent is None and periods is None:
        return None
    return {
        "rollover_percent": None if percent is None else format_decimal(percent),
        "expires_after_periods": periods,
    }
