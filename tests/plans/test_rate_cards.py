"""Rate cards in the catalog (API.md "Rate cards"): a charge priced by event
properties, its rows' rules (a default row, no ties, properties of the meter's
group_by, text values), and the card as stored and read back."""

import pytest

from plans.models import ChargeRate, Plan
from plans.rate_card_pricing import (
    RateSpec,
    rated_quantities,
    row_finder,
    row_for,
    row_index,
    ties,
)
from tests.factories import MeterFactory, llm_tokens_meter

D = __import__("decimal").Decimal


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price}


S25_RATES = [
    {"when": {"model": "gpt-4o", "token_type": "input"}, "pricing": per_million("2.50")},
    {"when": {"model": "gpt-4o", "token_type": "output"}, "pricing": per_million("10.00")},
    {"when": {"model": "gpt-4o", "token_type": "cache_read"}, "pricing": per_million("1.25")},
    {"when": {"model": "claude-sonnet"}, "pricing": per_million("3.00")},
    {"when": {}, "pricing": per_million("4.00")},
]


def card_plan(rates=S25_RATES, **charge) -> dict:
    return {
        "code": "tokens",
        "name": "Tokens",
        "currency": "USD",
        "base_fee": "0",
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "price_by": ["model", "token_type"],
                "rates": rates,
            }
            | charge
        ],
    }


@pytest.fixture
def llm_tokens(db):
    return llm_tokens_meter()


def test_a_card_is_stored_and_read_back(api, llm_tokens):
    response = api.post("/api/v1/plans", card_plan(), format="json")
    assert response.status_code == 201, response.json()
    charge = response.json()["versions"][0]["charges"][0]
    assert charge["price_by"] == ["model", "token_type"]
    assert [rate["when"] for rate in charge["rates"]] == [r["when"] for r in S25_RATES]
    assert charge["rates"][3]["pricing"]["unit_price"] == "3.00"
    assert ChargeRate.objects.count() == 5
    read = api.get("/api/v1/plans/tokens").json()
    assert read["versions"][0]["charges"][0]["rates"] == charge["rates"]


@pytest.mark.parametrize(
    ("rates", "path", "words"),
    [
        (S25_RATES[:4], "charges.0.rates", "default row"),
        (
            [{"when": {"model": "gpt-4o"}, "pricing": per_million("1")}] * 2
            + [{"when": {}, "pricing": per_million("1")}],
            "charges.0.rates.1.when",
            "repeats row 1",
        ),
        (
            [
                {"when": {"model": "gpt-4o"}, "pricing": per_million("1")},
                {"when": {"token_type": "input"}, "pricing": per_million("2")},
                {"when": {}, "pricing": per_million("4")},
            ],
            "charges.0.rates.1.when",
            "Row 1 (model gpt-4o) and row 2 (token_type input) match the same usage",
        ),
        (
            [
                {"when": {"region": "eu"}, "pricing": per_million("1")},
                {"when": {}, "pricing": per_million("4")},
            ],
            "charges.0.rates.0.when",
            "region is not among the properties",
        ),
        (
            [
                {"when": {"model": 4}, "pricing": per_million("1")},
                {"when": {}, "pricing": per_million("4")},
            ],
            "charges.0.rates.0.when",
            "must be a text",
        ),
        (
            [{"when": {"model": "gpt-4o"}}, {"when": {}, "pricing": per_million("4")}],
            "charges.0.rates.0.pricing",
            "needs its price",
        ),
        (
            # U+FFFF, the value of usage counted as "other" (issue 73)
            [
                {"when": {"model": "\uffff"}, "pricing": per_million("1")},
                {"when": {}, "pricing": per_million("4")},
            ],
            "charges.0.rates.0.when",
            "the one usage counted as other has",
        ),
    ],
)
def test_a_card_that_cannot_price_usage_is_refused_naming_the_row(
    api, llm_tokens, rates, path, words
):
    response = api.post("/api/v1/plans", card_plan(rates), format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert path in fields, fields
    assert any(words in message for message in fields[path]), fields[path]
    assert not Plan.objects.exists()


def test_a_row_naming_both_values_resolves_a_tie(api, llm_tokens):
    rates = [
        {"when": {"model": "gpt-4o"}, "pricing": per_million("1")},
        {"when": {"token_type": "input"}, "pricing": per_million("2")},
        {"when": {"model": "gpt-4o", "token_type": "input"}, "pricing": per_million("3")},
        {"when": {}, "pricing": per_million("4")},
    ]
    assert api.post("/api/v1/plans", card_plan(rates), format="json").status_code == 201


def test_the_charge_and_meter_must_suit_a_card(api, llm_tokens):
    body = card_plan(included_units="1000", price_by=["model", "region"])
    fields = api.post("/api/v1/plans", body, format="json").json()["error"]["fields"]
    assert "allowance on a charge of its own" in fields["charges.0.included_units"][0]
    assert "does not group its usage by region" in fields["charges.0.price_by"][0]
    body = card_plan(model="hard_cap", included_units="10")
    fields = api.post("/api/v1/plans", body, format="json").json()["error"]["fields"]
    assert "hard cap charge takes no rate card" in fields["charges.0.rates"][0]
    MeterFactory(
        code="peak", event_name="x", aggregation="max", value_property="v", group_by=["model"]
    )
    body = card_plan(meter="peak", price_by=["model"], rates=[S25_RATES[4]])
    fields = api.post("/api/v1/plans", body, format="json").json()["error"]["fields"]
    assert "counts events or sums a property" in fields["charges.0.price_by"][0]
    assert not Plan.objects.exists()


def test_credits_rows_draw_credits_per_units():
    rates = (
        RateSpec(when=(("model", "gpt-4o"),), credits_per_unit=D(5), per=D(1000)),
        RateSpec(when=(), credits_per_unit=D(1), per=D(1000)),
    )
    rows = rated_quantities(
        rates,
        {
            (("model", "gpt-4o"), ("token_type", "input")): D(15000),
            (("model", "gpt-4o"), ("token_type", "output")): D(5000),
            (("model", "llama"), ("token_type", None)): D(30000),
        },
    )
    assert rows == [(0, D(20000)), (1, D(30000))]


def test_the_most_specific_row_prices_usage_and_absent_values_fall_to_the_default():
    rates = tuple(RateSpec(when=tuple(sorted(r["when"].items()))) for r in S25_RATES)
    assert row_for(rates, {"model": "gpt-4o", "token_type": "input"}) is rates[0]
    assert row_for(rates, {"model": "claude-sonnet", "token_type": "input"}) is rates[3]
    assert row_for(rates, {"model": "gpt-4o", "token_type": "reasoning"}) is rates[4]
    assert row_for(rates, {"model": None, "token_type": "input"}) is rates[4]
    assert ties([r.when for r in rates]) == []


def test_the_row_finder_finds_the_row_every_row_tried_finds():
    # Rows by model and type, by model, by type, and the default; a card without
    # a default; one the catalog has not checked (equal rows, tied rows, a row
    # naming a property twice, a value that is not text): the first matching row
    # of the most properties every time, as row_index trying every row.
    by = [(("model", m), ("token_type", t)) for m in ("a", "b") for t in ("in", "out")]
    cards = [
        tuple(RateSpec(when=w) for w in [*by, (("model", "a"),), (("token_type", "in"),), ()]),
        tuple(RateSpec(when=w) for w in [(("model", "a"),), (("token_type", "out"),)]),
        tuple(RateSpec(when=w) for w in [(), (("model", "b"),), (("model", "b"),), ()]),
        tuple(RateSpec(when=w) for w in [(("model", "a"), ("model", "a")), (("model", "a"),)]),
        tuple(RateSpec(when=w) for w in [(("model", None),), (("model", 1),), ()]),
    ]
    values = [
        {"model": m, "token_type": t}
        for m in ("a", "b", "c", None, 1)
        for t in ("in", "out", "x", None)
    ]
    for rates in cards:
        find = row_finder(rates)
        for asked in values:
            assert find(asked) == row_index(rates, asked), (rates, asked)
    # A tie on an unchecked card: the first of the rows as specific.
    tied = (RateSpec(when=(("token_type", "in"),)), RateSpec(when=(("model", "a"),)))
    assert row_finder(tied)({"model": "a", "token_type": "in"}) == 0
