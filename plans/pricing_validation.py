"""The rules of a charge's price (plans.pricing's PricingSpec): the
scheme's own fields, and tiers that rise and end open. Messages name the
admin's fields ('Up to', 'Unit price')."""

from decimal import Decimal

from common.money import format_decimal
from plans.field_checks import FieldErrors, check_absent, check_number, check_unit_price
from plans.pricing import PACKAGE, PER_UNIT, SCHEMES, TIERED_SCHEMES, PricingSpec, TierSpec

SCHEME_WORDS = {
    PER_UNIT: "per unit",
    PACKAGE: "package",
    "graduated": "graduated",
    "volume": "volume",
}


def check_tiers(errors: FieldErrors, path: str, tiers: tuple[TierSpec, ...]) -> None:
    """Tiers ascending and contiguous (each starts where the last ended), the last one open."""
    if not tiers:
        errors.add(path, "A graduated or volume price needs at least one tier")
        return
    previous: Decimal = Decimal(0)
    for index, tier in enumerate(tiers):
        tier_path = f"{path}.{index}"
        check_number(
            errors,
            f"{tier_path}.unit_price",
            tier.unit_price,
            required=True,
            missing="Each tier needs a unit price (0 for free units)",
        )
        check_per(errors, f"{tier_path}.per", tier.per)
        _check_bound(
            errors, f"{tier_path}.unit_price", tier.unit_price, f"{tier_path}.per", tier.per
        )
        check_number(errors, f"{tier_path}.flat_fee", tier.flat_fee)
        is_last = index == len(tiers) - 1
        if tier.up_to is None:
            if not is_last:
                errors.add(
                    f"{tier_path}.up_to",
                    "Only the last tier has no upper limit: fill in 'Up to' for this one",
                )
            continue
        if is_last:
            errors.add(
                f"{tier_path}.up_to", "The last tier needs no upper limit: leave 'Up to' empty"
            )
            continue
        before = len(errors.errors)
        check_number(errors, f"{tier_path}.up_to", tier.up_to, positive=True)
        if len(errors.errors) == before and tier.up_to <= previous:
            errors.add(
                f"{tier_path}.up_to",
                "Tiers must rise: each 'Up to' must be above the one before "
                f"({format_decimal(previous)})",
            )
        elif len(errors.errors) == before:
            previous = tier.up_to


def check_per(errors: FieldErrors, path: str, per: Decimal | None) -> None:
    """How many units a price is for: a number above zero (1 unless given)."""
    check_number(
        errors,
        path,
        per,
        required=True,
        positive=True,
        missing="Say how many units the price is for: 1 for a price per unit",
    )


def _check_bound(
    errors: FieldErrors, path: str, price, per_path: str, per, *, per_words: str = "per"
) -> None:
    """check_unit_price once the price and its per passed their own checks."""
    key = f"{errors.prefix}{path}"
    if key not in errors.errors and f"{errors.prefix}{per_path}" not in errors.errors:
        check_unit_price(errors, path, price, per, per_words=per_words)


def check_pricing(errors: FieldErrors, path: str, pricing: PricingSpec) -> None:
    if pricing.scheme not in SCHEMES:
        errors.add(
            f"{path}.scheme", "Pick a pricing scheme: per unit, package, graduated or volume"
        )
        return
    scheme = SCHEME_WORDS[pricing.scheme]
    if pricing.scheme == PER_UNIT:
        check_number(
            errors,
            f"{path}.unit_price",
            pricing.unit_price,
            required=True,
            missing="A per unit price needs its unit price",
        )
        check_per(errors, f"{path}.per", pricing.per)
        _check_bound(errors, f"{path}.unit_price", pricing.unit_price, f"{path}.per", pricing.per)
    else:
        if pricing.per is not None and pricing.per != 1:
            errors.add(
                f"{path}.per",
                "'Per' applies to per unit prices and tiers: a package's size says how many "
                "units its price is for"
                if pricing.scheme == PACKAGE
                else f"A {scheme} price has no 'Per' here: put it on each tier",
            )
        check_absent(
            errors,
            f"{path}.unit_price",
            pricing.unit_price,
            f"A {scheme} price has no unit price here: "
            + (
                "put the prices in its tiers"
                if pricing.scheme in TIERED_SCHEMES
                else "leave it empty"
            ),
        )
    if pricing.scheme == PACKAGE:
        check_number(
            errors,
            f"{path}.package_size",
            pricing.package_size,
            required=True,
            positive=True,
            missing="A package price needs its package size: how many units a package holds",
        )
        check_number(
            errors,
            f"{path}.package_price",
            pricing.package_price,
            required=True,
            missing="A package price needs the price of one package",
        )
        _check_bound(
            errors,
            f"{path}.package_price",
            pricing.package_price,
            f"{path}.package_size",
            pricing.package_size,
            per_words="package size",
        )
    else:
        for name in ("package_size", "package_price"):
            check_absent(
                errors,
                f"{path}.{name}",
                getattr(pricing, name),
                f"Only a package price takes this: leave it empty for a {scheme} price",
            )
    if pricing.scheme in TIERED_SCHEMES:
        check_tiers(errors, f"{path}.tiers", pricing.tiers)
    else:
        check_absent(
            errors,
            f"{path}.tiers",
            pricing.tiers,
            f"Only graduated and volume prices have tiers: remove them for a {scheme} price",
        )
