"""Cost rates through the API (issue 51): a row per meter and `when`, from an
hour on, history kept; each refusal names its field and says why."""

import pytest

from plans.models import CostRate
from plans.services import meter_create
from tests.factories import api_client, llm_tokens_meter

pytestmark = pytest.mark.django_db

INPUT = {"model": "gpt-4o", "token_type": "input"}


@pytest.fixture
def tokens(db):
    llm_tokens_meter()


def cost_rate(**fields) -> dict:
    return {
        "meter": "llm_tokens",
        "when": INPUT,
        "unit_cost": "1.25",
        "per": "1000000",
        "currency": "USD",
        "effective_from": "2026-11-01T00:00:00Z",
    } | fields


def test_a_cost_rate_is_added_and_listed_with_its_history(tokens):
    admin = api_client("admin")
    first = admin.post("/api/v1/cost-rates", cost_rate(), format="json")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert {k: v for k, v in body.items() if k not in ("id", "created_at")} == {
        "meter": "llm_tokens",
        "when": INPUT,
        "unit_cost": "1.25",
        "per": "1000000",
        "currency": "USD",
        "effective_from": "2026-11-01T00:00:00Z",
        "supersedes": None,
        "superseded_by": None,
    }
    cut = admin.post(
        "/api/v1/cost-rates",
        cost_rate(unit_cost="1.00", effective_from="2026-11-16T00:00:00+00:00"),
        format="json",
    )
    assert cut.status_code == 201, cut.json()
    meter_create(code="calls", name="Calls", event_name="api.call", aggregation="count")
    calls = admin.post(
        "/api/v1/cost-rates",
        {
            "meter": "calls",
            "unit_cost": "0.001",
            "currency": "USD",
            "effective_from": "2026-11-01T00:00:00Z",
        },
        format="json",
    )
    assert calls.status_code == 201, calls.json()
    assert (calls.json()["when"], calls.json()["per"]) == ({}, "1")

    listed = api_client("finance:read").get("/api/v1/cost-rates?meter=llm_tokens").json()["results"]
    assert [(r["unit_cost"], r["effective_from"]) for r in listed] == [
        ("1.25", "2026-11-01T00:00:00Z"),
        ("1.00", "2026-11-16T00:00:00Z"),
    ]
    assert len(api_client("finance:read").get("/api/v1/cost-rates").json()["results"]) == 3


def test_writing_a_cost_rate_needs_the_admin_scope(tokens):
    response = api_client("read").post("/api/v1/cost-rates", cost_rate(), format="json")
    assert response.status_code == 403
    assert not CostRate.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        (
            {"effective_from": "2026-11-01T00:30:00Z"},
            "effective_from",
            "costs are computed per hour: effective_from must be on the hour "
            "(e.g. 2026-11-01T00:00:00Z)",
        ),
        # 00:00 in India is 18:30 UTC: not an hour of the rollups.
        ({"effective_from": "2026-11-01T00:00:00+05:30"}, "effective_from", "on the hour"),
        ({"meter": "gpu_seconds"}, "meter", "No meter 'gpu_seconds'"),
        ({"when": {"region": "eu"}}, "when", "region is not among the meter's group_by"),
        ({"when": {"model": 4}}, "when", "The value of model must be a text"),
        ({"when": ["gpt-4o"]}, "when", "as an object"),
        ({"currency": "XYZ"}, "currency", "Unknown currency 'XYZ'"),
        ({"unit_cost": "-1"}, "unit_cost", "Cannot be negative"),
        ({"per": "0"}, "per", "Must be more than zero"),
        ({"unit_cost": "NaN"}, "unit_cost", ""),
    ],
)
def test_refusals_name_the_field(tokens, fields, field, says):
    response = api_client("admin").post("/api/v1/cost-rates", cost_rate(**fields), format="json")
    assert response.status_code == 400, response.json()
    messages = response.json()["error"]["fields"][field]
    assert any(says in message for message in messages), messages
    assert not CostRate.objects.exists()


def test_a_meter_whose_quantities_do_not_add_up_takes_no_cost(db):
    meter_create(code="peak", name="Peak", event_name="peak", aggregation="max", value_property="n")
    response = api_client("admin").post(
        "/api/v1/cost-rates", cost_rate(meter="peak", when={}), format="json"
    )
    assert response.status_code == 400
    assert "add up" in response.json()["error"]["fields"]["meter"][0]


def test_the_same_usage_from_the_same_hour_twice_is_a_conflict(tokens):
    admin = api_client("admin")
    assert admin.post("/api/v1/cost-rates", cost_rate(), format="json").status_code == 201
    again = admin.post("/api/v1/cost-rates", cost_rate(unit_cost="2"), format="json")
    assert again.status_code == 409, again.json()
    assert (
        "already has a cost rate for model gpt-4o, token_type input"
        in again.json()["error"]["message"]
    )
    assert CostRate.objects.count() == 1


def test_rates_matching_the_same_usage_equally_are_refused(tokens):
    admin = api_client("admin")
    model = cost_rate(when={"model": "gpt-4o"})
    assert admin.post("/api/v1/cost-rates", model, format="json").status_code == 201
    kind = cost_rate(when={"token_type": "input"})
    response = admin.post("/api/v1/cost-rates", kind, format="json")
    assert response.status_code == 400
    assert "match the same usage equally" in response.json()["error"]["fields"]["when"][0]
    # With a rate naming both, each matches its own usage best.
    assert admin.post("/api/v1/cost-rates", cost_rate(), format="json").status_code == 201
    assert admin.post("/api/v1/cost-rates", kind, format="json").status_code == 201
