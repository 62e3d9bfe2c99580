"""One bound on what a unit may cost (issue 73): a price given for a number of
units (a cost rate's unit_cost / per, a charge's unit price / per, a tier's, a
rate card row's, a package's price / size) is at most 1,000,000,000 a unit
(common.money.MAX_UNIT_PRICE), refused on its field in the API and on the
admin's forms alike, and nothing is saved."""

import pytest

from plans.models import CostRate, Plan
from tests.factories import api_client, llm_tokens_meter

pytestmark = pytest.mark.django_db

IMPORT = "/admin/plans/costrate/import/"


@pytest.fixture
def tokens(db):
    return llm_tokens_meter()


def cost_rate(unit_cost: str, per: str) -> dict:
    return {
        "meter": "llm_tokens",
        "when": {"model": "gpt-4o", "token_type": "input"},
        "unit_cost": unit_cost,
        "per": per,
        "currency": "USD",
        "effective_from": "2026-11-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("unit_cost", "one_unit"),
    [
        # The attacker's row (16 digits: more than SQLite keeps, refused there already).
        pytest.param("99999999999999.99", "999999999999999900000000", marks=pytest.mark.postgres),
        ("9999999999999.99", "99999999999999900000000"),
    ],
)
def test_the_overflowing_cost_rate_is_refused(tokens, unit_cost, one_unit):
    response = api_client("admin").post(
        "/api/v1/cost-rates", cost_rate(unit_cost, "0.0000000001"), format="json"
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["fields"] == {
        "unit_cost": [
            f"One unit would cost {one_unit} ({unit_cost} for per 0.0000000001): at most "
            "1000000000 a unit, so that amounts stay within what the books hold. Check the "
            "price and 'per'"
        ]
    }
    assert not CostRate.objects.exists()


def test_a_cost_rate_at_the_bound_is_taken_and_a_cent_above_it_is_not(tokens):
    admin = api_client("admin")
    at = admin.post("/api/v1/cost-rates", cost_rate("1000", "0.000001"), format="json")
    assert at.status_code == 201, at.json()
    above = cost_rate("1000000000.01", "1") | {"effective_from": "2026-11-02T00:00:00Z"}
    refused = admin.post("/api/v1/cost-rates", above, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["unit_cost"]
    assert CostRate.objects.count() == 1


def test_the_admin_import_refuses_the_row_with_the_same_words(admin_client, tokens):
    lines = "gpt-4o,input,2.50\ngpt-4o,output,99999999999999.99,0.0000000001\n"
    response = admin_client.post(
        IMPORT,
        {
            "meter": "llm_tokens",
            "currency": "USD",
            "effective_from": "2026-11-01T00:00",
            "default_per": "1000000",
            "lines": lines,
            "_save": "1",
        },
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-problem-row="2"' in page
    assert "One unit would cost 999999999999999900000000" in page
    assert "Refused rows: 2." in page
    assert not CostRate.objects.exists()


def plan_with(charge: dict) -> dict:
    return {
        "code": "tokens",
        "name": "Tokens",
        "currency": "USD",
        "base_fee": "0",
        "charges": [{"meter": "llm_tokens", "model": "overage", "included_units": "0"} | charge],
    }


@pytest.mark.parametrize(
    ("charge", "field"),
    [
        (
            {"pricing": {"scheme": "per_unit", "unit_price": "1", "per": "0.0000000001"}},
            "charges.0.pricing.unit_price",
        ),
        (
            {
                "pricing": {
                    "scheme": "package",
                    "package_size": "0.001",
                    "package_price": "1000000.01",
                }
            },
            "charges.0.pricing.package_price",
        ),
        (
            {
                "pricing": {
                    "scheme": "graduated",
                    "tiers": [
                        {"up_to": "10", "unit_price": "1"},
                        {"up_to": None, "unit_price": "5", "per": "0.000000001"},
                    ],
                }
            },
            "charges.0.pricing.tiers.1.unit_price",
        ),
        (
            {
                "price_by": ["model"],
                "rates": [
                    {
                        "when": {},
                        "pricing": {"scheme": "per_unit", "unit_price": "2000000000"},
                    }
                ],
            },
            "charges.0.rates.0.pricing.unit_price",
        ),
    ],
)
def test_a_charge_price_above_the_bound_is_refused_on_its_field(tokens, charge, field):
    response = api_client("admin").post("/api/v1/plans", plan_with(charge), format="json")

    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert list(fields) == [field], fields
    assert fields[field][0].startswith("One unit would cost "), fields
    assert not Plan.objects.exists()
