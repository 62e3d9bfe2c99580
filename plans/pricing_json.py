"""A pricing (plans.pricing.PricingSpec) as JSON, with its numbers as
plain decimal text: how deals and rate-card rows keep prices."""

from decimal import Decimal

from plans.pricing import PricingSpec, TierSpec


def number_text(value: Decimal | None) -> str | None:
    """As given, in plain notation: '99.00' stays '99.00'."""
    return None if value is None else format(value, "f")


def decimal_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def per_of(data: dict) -> Decimal:
    """A price's or tier's `per`; 1 for one stored before prices had one."""
    per = decimal_or_none(data.get("per"))
    return Decimal(1) if per is None else per


def pricing_to_json(pricing: PricingSpec) -> dict:
    return {
        "scheme": pricing.scheme,
        "unit_price": number_text(pricing.unit_price),
        "per": number_text(pricing.per),
        "package_size": number_text(pricing.package_size),
        "package_price": number_text(pricing.package_price),
        "tiers": [
            {
                "up_to": number_text(tier.up_to),
                "unit_price": number_text(tier.unit_price),
                "per": number_text(tier.per),
                "flat_fee": number_text(tier.flat_fee),
            }
            for tier in pricing.tiers
        ],
    }


def pricing_from_json(data: dict) -> PricingSpec:
    return PricingSpec(
        scheme=data["scheme"],
        unit_price=decimal_or_none(data.get("unit_price")),
        per=per_of(data),
        package_size=decimal_or_none(data.get("package_size")),
        package_price=decimal_or_none(data.get("package_price")),
        tiers=tuple(
            TierSpec(
                up_to=decimal_or_none(tier.get("up_to")),
                unit_price=decimal_or_none(tier["unit_price"]),
                per=per_of(tier),
                flat_fee=decimal_or_none(tier.get("flat_fee")) or Decimal(0),
            )
            for tier in data.get("tiers", ())
        ),
    )
