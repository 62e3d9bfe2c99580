"""A wrong cost rate is corrected for the hours it already covers (issue 73):
POST /api/v1/cost-rates/{id}/supersede adds a correction from the wrong rate's
own start, margins cost those hours at it, and the wrong rate stays in the
history marked superseded. Refusals change nothing."""

from decimal import Decimal as D

import pytest

from plans.models import CostRate
from tests.factories import api_client
from tests.margins.test_margins_api import (  # noqa: F401 (s26: a fixture)
    _s26_once,
    s26,
    s26_usage,
)
from tests.margins.test_margins_uncomputable import broken_rate  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01"
INPUT = {"model": "gpt-4o", "token_type": "input"}


def input_rate_from_the_16th() -> CostRate:
    return CostRate.objects.get(when=INPUT, effective_from__day=16)


def supersede(rate_id: int, body: dict, scope: str = "admin"):
    return api_client(scope).post(f"/api/v1/cost-rates/{rate_id}/supersede", body, format="json")


def cost_of_november(group_by: str = "customer") -> list:
    response = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}&group_by={group_by}")
    assert response.status_code == 200, response.json()
    return [(r["cost"], r["uncosted_quantity"], r.get("error")) for r in response.json()["results"]]


def test_a_correction_costs_the_hours_the_wrong_rate_covered_and_the_history_stays(s26):  # noqa: F811
    s26_usage()
    wrong = input_rate_from_the_16th()
    # 1.25 (Nov 10's input) + 1.00 (Nov 20's, at the wrong 1.00) + 1.00 (the output)
    assert cost_of_november() == [("3.25", "0", None)]

    response = supersede(wrong.pk, {"unit_cost": "0.80", "per": "1000000"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("id", "created_at")} == {
        "meter": "llm_tokens",
        "when": INPUT,
        "unit_cost": "0.80",
        "per": "1000000",
        "currency": "USD",
        "effective_from": "2026-11-16T00:00:00Z",
        "supersedes": wrong.pk,
        "superseded_by": None,
    }
    assert cost_of_november() == [("3.05", "0", None)]  # Nov 20's input at 0.80
    listed = api_client("finance:read").get("/api/v1/cost-rates?meter=llm_tokens").json()["results"]
    assert [
        (r["unit_cost"], r["effective_from"], r["supersedes"], r["superseded_by"])
        for r in listed
        if r["when"] == INPUT
    ] == [
        ("1.25", "2026-11-01T00:00:00Z", None, None),
        ("1.00", "2026-11-16T00:00:00Z", None, body["id"]),
        ("0.80", "2026-11-16T00:00:00Z", wrong.pk, None),
    ]

    # A correction is corrected in turn; the first one is kept too.
    again = supersede(body["id"], {"unit_cost": "0.90", "per": "1000000"})
    assert again.status_code == 201, again.json()
    assert cost_of_november() == [("3.15", "0", None)]
    assert CostRate.objects.filter(when=INPUT).count() == 4


def test_a_correction_without_per_keeps_the_wrong_rates_per(s26):  # noqa: F811
    s26_usage()
    wrong = input_rate_from_the_16th()

    # when: only the unit cost is corrected, of a rate per 1,000,000 tokens
    response = supersede(wrong.pk, {"unit_cost": "0.80"})

    # then: per 1,000,000 still (per 1 would have cost Nov 20's input a million times more)
    assert response.status_code == 201, response.json()
    assert (response.json()["unit_cost"], response.json()["per"]) == ("0.80", "1000000")
    assert cost_of_november() == [("3.05", "0", None)]


def test_the_broken_rate_is_superseded_and_the_report_computes_all_again(broken_rate):  # noqa: F811
    ((cost, uncosted, error),) = cost_of_november()
    assert (cost, uncosted) == ("2.25", "1000000")
    assert error.startswith(f"cost rate {broken_rate.pk} ")

    response = supersede(broken_rate.pk, {"unit_cost": "0.50", "per": "1000000"})

    assert response.status_code == 201, response.json()
    assert cost_of_november() == [("2.75", "0", None)]  # 1.25 + 0.50 + 1.00
    assert cost_of_november("token_type") == [("1.75", "0", None), ("1.00", "0", None)]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"unit_cost": "99999999999999.99", "per": "0.0000000001"}, 400, "unit_cost"),
        ({"unit_cost": "-1"}, 400, "unit_cost"),
        ({"per": "1000000"}, 400, "unit_cost"),
        ({"unit_cost": "1", "effective_from": "2026-11-17T00:00:00Z"}, 400, "effective_from"),
    ],
)
def test_a_refused_correction_changes_nothing(s26, body, status, field):  # noqa: F811
    wrong = input_rate_from_the_16th()
    before = list(CostRate.objects.order_by("id").values_list("id", "unit_cost"))

    response = supersede(wrong.pk, body)

    assert response.status_code == status, response.json()
    assert field in response.json()["error"]["fields"], response.json()
    assert list(CostRate.objects.order_by("id").values_list("id", "unit_cost")) == before
    assert not CostRate.objects.filter(supersedes__isnull=False).exists()


def test_a_rate_is_superseded_once_unknown_ones_are_404_and_reading_keys_may_not(s26):  # noqa: F811
    wrong = input_rate_from_the_16th()
    assert supersede(wrong.pk, {"unit_cost": "0.80", "per": "1000000"}).status_code == 201

    twice = supersede(wrong.pk, {"unit_cost": "0.70", "per": "1000000"})
    assert twice.status_code == 409, twice.json()
    correction = CostRate.objects.get(supersedes=wrong)
    assert f"supersede {correction.pk} to correct it again" in twice.json()["error"]["message"]
    assert supersede(999999, {"unit_cost": "1"}).status_code == 404
    assert supersede(correction.pk, {"unit_cost": "0.70"}, scope="read").status_code == 403
    assert CostRate.objects.filter(when=INPUT).count() == 3


def test_finance_supersedes_a_rate_in_the_admin_and_a_refusal_is_on_its_field(s26, admin_client):  # noqa: F811
    s26_usage()
    wrong = input_rate_from_the_16th()
    page = f"/admin/plans/costrate/{wrong.pk}/supersede/"
    assert admin_client.get(page).status_code == 200

    refused = admin_client.post(page, {"unit_cost": "99999999999999.99", "per": "0.0000000001"})

    assert refused.status_code == 200
    errors = refused.context["form"].errors
    assert list(errors) == ["unit_cost"]
    assert errors["unit_cost"][0].startswith("One unit would cost 999999999999999900000000")
    assert not CostRate.objects.filter(supersedes__isnull=False).exists()

    saved = admin_client.post(page, {"unit_cost": "0.80", "per": "1000000"}, follow=True)

    correction = CostRate.objects.get(supersedes=wrong)
    assert (correction.unit_cost, correction.per, correction.effective_from) == (
        D("0.80"),
        D("1000000"),
        wrong.effective_from,
    )
    assert saved.redirect_chain[-1][0] == "/admin/plans/costrate/"
    assert f"superseded by rate {correction.pk}" in saved.content.decode()
    assert cost_of_november() == [("3.05", "0", None)]  # Nov 20's input at 0.80
