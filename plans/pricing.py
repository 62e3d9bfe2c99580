"""Pricing schemes as plain values, and the one walk that prices units.

`priced_pieces` splits a quantity into the pieces a scheme prices it as (one for
per_unit, package and volume, one per tier reached for graduated), each with its
exact amount. `price_units` is their sum, unrounded: the caller rounds a line
once with `common.money.quantize_money`, and plans.rating writes one line per
piece, so an amount and its lines come from the same walk. Tiers apply to
billable units (after included units); `up_to` is inclusive and the last tier is
open (`None`).

A per_unit price and each tier's unit price are for `per` units (default 1):
2.50 per 1,000,000 tokens is `unit_price=2.50, per=1000000`, and a piece's amount
is quantity x unit_price / per (a tier's flat fee is not divided). The division
is carried at EXACT_PRECISION significant digits, exact whenever `per` divides
evenly (any power of ten does), and the line is still rounded once.
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
    # How many units `unit_price` is for; `flat_fee` is per tier, not divided.
    per: Decimal = Decimal(1)


@dataclass(frozen=True)
class PricingSpec:
    scheme: str
    unit_price: Decimal | None = None
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    tiers: tuple[TierSpec, ...] = field(default_factory=tuple)
    # How many units a per_unit `unit_price` is for (tiers carry their own).
    per: Decimal = Decimal(1)


@dataclass(frozen=True)
class PricedPiece:
    """`quantity` at `unit_price` per `per` units, plus a tier's flat fee:
    `amount`, exact.

    For a package the quantity is whole packages; for a graduated tier it is the
    units in that tier, which starts after `after` units and ends at `up_to`
    (None for the open tier).
    """

    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    after: Decimal = ZERO
    up_to: Decimal | None = None
    per: Decimal = Decimal(1)


def price_units(units: Decimal, pricing: PricingSpec) -> Decimal:
    """The exact amount for `units` billable units under `pricing`: the sum of
    its priced pieces. Zero units cost nothing under every scheme, flat fees
    included."""
    pieces = priced_pieces(units, pricing)
    with localcontext(prec=EXACT_PRECISION):
        return sum((piece.amount for piece in pieces), ZERO)


def priced_pieces(units: Decimal, pricing: PricingSpec) -> tuple[PricedPiece, ...]:
    """The pieces `units` billable units are priced as under `pricing`, in order.

    No pieces for zero units. Assumes a pricing that passed catalog validation (see
    plans.validation).
    """
    # Wide enough that quantities and prices of the catalog's size (18 integer
    # digits, 10 decimals) multiply and divide without any rounding.
    with localcontext(prec=EXACT_PRECISION):
        return exact_pieces(units, pricing)


def exact_pieces(units: Decimal, pricing: PricingSpec) -> tuple[PricedPiece, ...]:
    """priced_pieces in the caller's context, which is `localcontext(prec=EXACT_PRECISION)`:
    a rate card prices its rows in one such context, not one a row."""
    if units < 0:
        raise ValueError("billable units cannot be negative")
    if units == 0:
        return ()
    return _pieces(units, pricing)


def _pieces(units: Decimal, pricing: PricingSpec) -> tuple[PricedPiece, ...]:
    if pricing.scheme == PER_UNIT:
        amount = _at(units, pricing.unit_price, pricing.per)
        return (PricedPiece(units, pricing.unit_price, amount, per=pricing.per),)
    if pricing.scheme == PACKAGE:
        # Partial packages round up: 70,500 tokens in packages of 1,000 is 71.
        packages = (units / pricing.package_size).to_integral_value(rounding=ROUND_CEILING)
        return (PricedPiece(packages, pricing.package_price, packages * pricing.package_price),)
    if pricing.scheme == GRADUATED:
        return _graduated(units, pricing.tiers)
    if pricing.scheme == VOLUME:
        return (_volume(units, pricing.tiers),)
    raise ValueError(f"unknown pricing scheme {pricing.scheme!r}")


def _at(units: Decimal, unit_price: Decimal, per: Decimal) -> Decimal:
    """`units` at `unit_price` per `per` units, in the caller's exact context:
    multiplied first, divided once (no division at all for per 1)."""
    amount = units * unit_price
    return amount if per == 1 else amount / per


def _graduated(units: Decimal, tiers: tuple[TierSpec, ...]) -> tuple[PricedPiece, ...]:
    """Each tier's units at that tier's price, plus the flat fee of every tier reached."""
    pieces = []
    lower = ZERO
    for tier in tiers:
        upper = units if tier.up_to is None else min(units, tier.up_to)
        in_tier = upper - lower
        if in_tier <= 0:
            break
        amount = _at(in_tier, tier.unit_price, tier.per) + tier.flat_fee
        pieces.append(PricedPiece(in_tier, tier.unit_price, amount, lower, tier.up_to, tier.per))
        lower = upper
        if tier.up_to is None or units <= tier.up_to:
            break
    return tuple(pieces)


def _volume(units: Decimal, tiers: tuple[TierSpec, ...]) -> PricedPiece:
    """All units at the price of the tier the total reaches, plus that tier's flat fee."""
    for tier in tiers:
        if tier.up_to is None or units <= tier.up_to:
            amount = _at(units, tier.unit_price, tier.per) + tier.flat_fee
            return PricedPiece(units, tier.unit_price, amount, per=tier.per)
    raise ValueError("tiers must end with an open tier (up_to null)")
