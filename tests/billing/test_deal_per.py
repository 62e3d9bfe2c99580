"""A deal's per-unit price in the admin keeps how many units the price it
replaces was for, and reads so (billing.admin.deals)."""

from decimal import Decimal as D

from billing.admin.deals import _pricing, deal_from
from plans.overrides import ChargeOverride, Overrides, overrides_to_json
from plans.pricing import PricingSpec


def stored_deal(pricing: PricingSpec) -> dict:
    return overrides_to_json(
        Overrides(charges=(ChargeOverride("tokens", included_units=None, pricing=pricing),))
    )


def test_a_new_price_for_a_deal_per_a_million_tokens_stays_per_a_million():
    stored = stored_deal(PricingSpec("per_unit", unit_price=D("2.50"), per=D(1_000_000)))

    deal = deal_from(
        {"deal_meter": "tokens", "deal_unit_price": D("2.00")},
        stored=stored,
        changed=["deal_unit_price"],
    )

    assert deal.charges[0].pricing == PricingSpec("per_unit", unit_price=D("2.00"), per=D(10**6))


def test_a_new_deal_price_is_a_price_a_unit():
    deal = deal_from(
        {"deal_meter": "tokens", "deal_unit_price": D("0.02")},
        stored={},
        changed=["deal_meter", "deal_unit_price"],
    )

    assert deal.charges[0].pricing == PricingSpec("per_unit", unit_price=D("0.02"))


def test_a_deal_price_reads_with_what_it_is_for():
    assert _pricing(PricingSpec("per_unit", unit_price=D("0.02"))) == "0.02 a unit"
    assert (
        _pricing(PricingSpec("per_unit", unit_price=D("2.00"), per=D(1_000_000)))
        == "2 per 1,000,000 units"
    )
