"""Pricing schemes as plain values, and the one pure function that prices units.

`price_units` returns the exact amount, unrounded: the caller rounds a line
once with `billing.money.quantize_money`. Tiers apply to billable units (after
included units); `up_to` is inclusive and the last tier is open (`None`).
"""

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext

PER_UNIT = "per_unit"
PACKAGE = "package"
GRADUATED = "graduated"
VOLUME = "volume"
SCHEMES = (PER_UNIT, PACKAGE, GRADUATED, VOLUME)
TIERED_SCHEMES = (GRADUATED, VOLUME)

ZERO = Decimal(0)
EXACT_PRECISION = 100


@dataclass(frozen=True)
class TierSpec:
    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class PricingSpec:
    scheme: str
    unit_price: Decimal | None = None
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    tiers: tuple[TierSpec, ...] = field(default_factory=tuple)


def price_units(units: Decimal, pricing: PricingSpec) -> Decimal:
    """The exact amount for `units` billable units under `pricing`.

    Zero units cost nothing under every scheme, flat fees included. Assumes a
    pricing that passed catalog validation (see plans.validation).
    """
    if units < 0:
        raise ValueError("billable units cannot be negative")
    if units == 0:
        return ZERO
    # Wide enough that quantities and prices of the catalog's size (18 integer
    # digits, 10 decimals) multiply and divide without any rounding.
    with localcontext(prec=EXACT_PRECISION):
        return _price(units, pricing)


def _price(units: Decimal, pricing: PricingSpec) -> Decimal:
    if pricing.scheme == PER_UNIT:
        return units * pricing.unit_price
    if pricing.scheme == PACKAGE:
        # Partial packages round up: 70,500 tokens in packages of 1,000 is 71.
        packages = (units / pricing.package_size).to_integral_value(rounding=ROUND_CEILING)
        return packages * pricing.package_price
    if pricing.scheme == GRADUATED:
        return _graduated(units, pricing.tiers)
    if pricing.scheme == VOLUME:
        return _volume(units, pricing.tiers)
    raise ValueError(f"unknown pricing scheme {pricing.scheme!r}")


def _graduated(units: Decimal, tiers: tuple[TierSpec, ...]) -> Decimal:
    """Each tier's units at that tier's price, plus the flat fee of every tier reached."""
    total = ZERO
    lower = ZERO
    for tier in tiers:
        upper = units if tier.up_to is None else min(units, tier.up_to)
        in_tier = upper - lower
        if in_tier <= 0:
            break
        total += in_tier * tier.unit_price + tier.flat_fee
        lower = upper
        if tier.up_to is None or units <= tier.up_to:
            break
    return total


def _volume(units: Decimal, tiers: tuple[TierSpec, ...]) -> Decimal:
    """All units at the price of the tier the total reaches, plus that tier's flat fee."""
    for tier in tiers:
        if tier.up_to is None or units <= tier.up_to:
            return units * tier.unit_price + tier.flat_fee
    raise ValueError("tiers must end with an open tier (up_to null)")
