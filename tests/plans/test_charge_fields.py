"""What the charge form shows (plans.admin.charge_fields) against what validation asks
for: for every consumption model, scheme and 'When exhausted', a charge with
every shown field filled is valid (nothing hidden is needed), and filling any
hidden field is refused on that field (nothing hidden would be kept)."""

from decimal import Decimal as D
from itertools import product

import pytest

from common.errors import BillingError
from common.vocabulary import ConsumptionModel, WhenExhausted
from plans.admin.charge_fields import SWITCHED, charge_fields, field_table
from plans.pricing import SCHEMES, PricingSpec, TierSpec
from plans.validation import ChargeSpec, VersionSpec, validate_version

TIERS = (TierSpec(up_to=D(100), unit_price=D("0.5")), TierSpec(up_to=None, unit_price=D("0.4")))
# Where validation reports a filled field that does not apply.
REFUSED_AT = {
    "included_units": "included_units",
    "credits_per_unit": "credits_per_unit",
    "when_exhausted": "when_exhausted",
    "pricing_scheme": "pricing",
    "unit_price": "pricing",
    "per": "pricing",
    "package_size": "pricing",
    "package_price": "pricing",
    "tiers": "pricing",
}
# A scheme that uses the field, for a field filled where no price applies.
SCHEME_OF = {"unit_price": "per_unit", "per": "per_unit", "tiers": "graduated"}


def charge(model: str, scheme: str, when: str, filled: set[str]) -> ChargeSpec:
    pricing = None
    if filled & {"pricing_scheme", "unit_price", "per", "package_size", "package_price", "tiers"}:
        pricing = PricingSpec(
            scheme=scheme or "package",
            unit_price=D("0.05") if "unit_price" in filled else None,
            per=D(1000) if "per" in filled else D(1),
            package_size=D(10) if "package_size" in filled else None,
            package_price=D("1.50") if "package_price" in filled else None,
            tiers=TIERS if "tiers" in filled else (),
        )
    return ChargeSpec(
        meter="calls",
        model=model,
        included_units=D(100) if "included_units" in filled else None,
        credits_per_unit=D(2) if "credits_per_unit" in filled else None,
        when_exhausted=when if "when_exhausted" in filled else WhenExhausted.BLOCK,
        pricing=pricing,
    )


def refusals(spec: ChargeSpec) -> dict[str, list[str]]:
    try:
        validate_version(
            VersionSpec(currency="USD", charges=(spec,)), known_meters={"calls": "count"}
        )
    except BillingError as error:
        return error.admin_fields
    return {}


COMBINATIONS = list(product(ConsumptionModel.values, SCHEMES, WhenExhausted.values))


@pytest.mark.parametrize(("model", "scheme", "when"), COMBINATIONS)
def test_a_charge_with_every_shown_field_filled_is_valid(model, scheme, when):
    shown = charge_fields(model=model, scheme=scheme, when_exhausted=when, rated=False)
    filled = set(shown) - {"rate_card"}

    assert refusals(charge(model, scheme, when, filled)) == {}


@pytest.mark.parametrize(("model", "scheme", "when"), COMBINATIONS)
def test_each_hidden_field_filled_is_refused_on_that_field(model, scheme, when):
    shown = charge_fields(model=model, scheme=scheme, when_exhausted=when, rated=False)
    shown_filled = set(shown) - {"rate_card"}
    for hidden in set(SWITCHED) - set(shown) - {"rate_card"}:
        # 'When exhausted' hidden is Block: filling it means Bill.
        filled = shown_filled | {hidden}
        bill = WhenExhausted.BILL if hidden == "when_exhausted" else when
        if "pricing_scheme" not in shown and hidden != "pricing_scheme":
            uses = SCHEME_OF.get(hidden, scheme)
        else:
            uses = scheme

        found = refusals(charge(model, uses, bill, filled))

        assert any(path.startswith(f"charges.0.{REFUSED_AT[hidden]}") for path in found), (
            hidden,
            found,
        )


def test_a_priced_charge_without_a_scheme_shows_the_scheme_alone_and_is_asked_for_it():
    shown = charge_fields(model="overage", scheme="", when_exhausted="block", rated=False)

    assert shown == {"included_units", "pricing_scheme", "rate_card"}
    assert "charges.0.pricing" in refusals(charge("overage", "", "block", set()))


def test_a_rate_card_takes_the_price_and_the_credits_of_its_rows():
    overage = charge_fields(model="overage", scheme="per_unit", when_exhausted="block", rated=True)
    credits = charge_fields(model="credits", scheme="per_unit", when_exhausted="bill", rated=True)

    assert overage == {"included_units", "rate_card"}
    # What a unit no credit covers costs is still the charge's own price.
    assert credits == {"when_exhausted", "rate_card", "pricing_scheme", "unit_price", "per"}


def test_no_model_picked_shows_nothing_but_the_meter_and_the_model():
    assert charge_fields(model="", scheme="per_unit", when_exhausted="bill", rated=True) == set()


def test_the_table_the_script_reads_holds_every_combination():
    table = field_table()

    assert len(table) == 5 * 5 * 2 * 2
    assert table["hard_cap|per_unit|block|0"] == ["included_units"]
    assert table["credits||block|0"] == ["credits_per_unit", "rate_card", "when_exhausted"]
