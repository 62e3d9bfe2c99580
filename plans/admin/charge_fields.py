"""Which of a charge's fields mean something, given its consumption model, its
pricing scheme, what it does when its wallet runs out and whether a rate card
prices it. The charge form shows only these (its script reads the table made
here), and a published version's charge lists only these.

It follows plans.validation's rules: a field shown here is one validation asks
for or allows, and a hidden one is one it refuses when filled
(tests/plans/test_charge_fields.py checks every combination against it)."""

import json
from itertools import product

from common.vocabulary import DRAWN_MODELS, ConsumptionModel, WhenExhausted
from plans.pricing import PACKAGE, PER_UNIT, SCHEMES, TIERED_SCHEMES
from plans.validation import PRICED_MODELS

# The fields the form shows or hides; the meter and the model are always shown.
INCLUDED_UNITS = "included_units"
CREDITS_PER_UNIT = "credits_per_unit"
WHEN_EXHAUSTED = "when_exhausted"
PRICING_SCHEME = "pricing_scheme"
UNIT_PRICE = "unit_price"
PER = "per"
PACKAGE_SIZE = "package_size"
PACKAGE_PRICE = "package_price"
TIERS = "tiers"
RATE_CARD = "rate_card"
SWITCHED = (
    INCLUDED_UNITS,
    CREDITS_PER_UNIT,
    WHEN_EXHAUSTED,
    PRICING_SCHEME,
    UNIT_PRICE,
    PER,
    PACKAGE_SIZE,
    PACKAGE_PRICE,
    TIERS,
    RATE_CARD,
)

SCHEME_FIELDS = {
    "": (),
    PER_UNIT: (UNIT_PRICE, PER),
    PACKAGE: (PACKAGE_SIZE, PACKAGE_PRICE),
    **dict.fromkeys(TIERED_SCHEMES, (TIERS,)),
}


def charge_fields(*, model: str, scheme: str, when_exhausted: str, rated: bool) -> frozenset[str]:
    """The fields of SWITCHED that apply to such a charge. No model picked yet:
    none (the form asks for the model first)."""
    if model not in ConsumptionModel.values:
        return frozenset()
    shown: set[str] = set()
    if model in (ConsumptionModel.OVERAGE, ConsumptionModel.HARD_CAP):
        shown.add(INCLUDED_UNITS)
    if model == ConsumptionModel.CREDITS and not rated:
        shown.add(CREDITS_PER_UNIT)
    if model in DRAWN_MODELS:
        shown.add(WHEN_EXHAUSTED)
    # A hard cap only caps: it bills nothing, so it has neither price nor card.
    if model != ConsumptionModel.HARD_CAP:
        shown.add(RATE_CARD)
    bills_uncovered = model in DRAWN_MODELS and when_exhausted == WhenExhausted.BILL
    # A rate card's rows carry the prices, except the money price of a credits
    # charge's uncovered units.
    if (model in PRICED_MODELS and not rated) or (
        model == ConsumptionModel.CREDITS and bills_uncovered
    ):
        shown.add(PRICING_SCHEME)
        shown.update(SCHEME_FIELDS.get(scheme, ()))
    return frozenset(shown)


def charge_fields_of(charge) -> frozenset[str]:
    """The fields that apply to a stored charge (plans.models.Charge)."""
    return charge_fields(
        model=charge.model,
        scheme=charge.pricing_scheme,
        when_exhausted=charge.when_exhausted,
        rated=bool(charge.price_by) or bool(charge.rates.all()),
    )


def field_table() -> dict[str, list[str]]:
    """Every combination the form can hold, keyed 'model|scheme|when_exhausted|rated'
    (rated 0 or 1), with the fields it shows: what the form's script looks up."""
    return {
        f"{model}|{scheme}|{when}|{int(rated)}": sorted(
            charge_fields(model=model, scheme=scheme, when_exhausted=when, rated=rated)
        )
        for model, scheme, when, rated in product(
            ("", *ConsumptionModel.values), ("", *SCHEMES), WhenExhausted.values, (False, True)
        )
    }


def field_table_json() -> str:
    return json.dumps(field_table(), separators=(",", ":"))
