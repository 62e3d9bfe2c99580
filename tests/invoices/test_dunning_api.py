"""Dunning policies and a customer's dunning settings through the API (issue 53):
what is refused is refused in words and changes nothing."""

from datetime import UTC, datetime

import pytest
import time_machine

from customers.models import Customer
from invoices.dunning_models import DunningPolicy, DunningStep
from tests.factories import CustomerFactory, api_client

pytestmark = pytest.mark.django_db

STANDARD = {
    "code": "standard",
    "name": "Standard",
    "default": True,
    "steps": [
        {"days_after_due": -3, "action": "remind"},
        {"days_after_due": 1, "action": "remind"},
        {"days_after_due": 1, "action": "retry_payment"},
        {"days_after_due": 7, "action": "restrict"},
        {"days_after_due": 14, "action": "suspend"},
    ],
}


@pytest.fixture
def api():
    return api_client()


def test_a_policy_is_created_read_and_replaced(api):
    made = api.post("/api/v1/dunning-policies", STANDARD, format="json")
    assert made.status_code == 201, made.content
    assert made.json() == STANDARD
    assert api.get("/api/v1/dunning-policies/standard").json() == STANDARD
    # a second default takes the mark
    gentle = {"code": "gentle", "name": "Gentle", "default": True, "steps": STANDARD["steps"][:2]}
    assert api.post("/api/v1/dunning-policies", gentle, format="json").status_code == 201
    assert list(DunningPolicy.objects.filter(is_default=True).values_list("code", flat=True)) == [
        "gentle"
    ]
    replaced = api.put(
        "/api/v1/dunning-policies/standard",
        {
            "name": "Strict",
            "default": False,
            "steps": [{"days_after_due": 3, "action": "restrict"}],
        },
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["steps"] == [{"days_after_due": 3, "action": "restrict"}]
    listed = api.get("/api/v1/dunning-policies").json()["results"]
    assert sorted(p["code"] for p in listed) == ["gentle", "standard"]


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ([{"days_after_due": 1, "action": "shout"}], "is not a valid choice"),
        ([{"days_after_due": 0, "action": "restrict"}], "only after the due date"),
        (
            [
                {"days_after_due": 9, "action": "restrict"},
                {"days_after_due": 5, "action": "suspend"},
            ],
            "suspended before it is restricted",
        ),
        (
            [{"days_after_due": 1, "action": "remind"}, {"days_after_due": 1, "action": "remind"}],
            "remind on day 1 twice",
        ),
        ([{"days_after_due": 400, "action": "remind"}], "from -90 to 365"),
        ([{"days_after_due": "soon", "action": "remind"}], "A valid integer is required"),
    ],
)
def test_bad_steps_are_refused_and_nothing_is_written(api, steps, words):
    answer = api.post("/api/v1/dunning-policies", {**STANDARD, "steps": steps}, format="json")
    assert answer.status_code == 400, answer.content
    assert words in answer.json()["error"]["message"]
    assert not DunningPolicy.objects.exists()
    assert not DunningStep.objects.exists()


def test_none_is_not_a_code_and_codes_are_unique(api):
    none = api.post("/api/v1/dunning-policies", {**STANDARD, "code": "none"}, format="json")
    assert none.status_code == 400
    assert "means no dunning" in none.json()["error"]["message"]
    assert api.post("/api/v1/dunning-policies", STANDARD, format="json").status_code == 201
    again = api.post("/api/v1/dunning-policies", STANDARD, format="json")
    assert again.status_code == 409
    assert DunningPolicy.objects.count() == 1


def test_a_customer_takes_a_policy_none_or_the_default(api):
    api.post("/api/v1/dunning-policies", STANDARD, format="json")
    body = {"external_id": "acme", "name": "Acme", "currency": "EUR", "dunning_policy": "standard"}
    made = api.post("/api/v1/customers", body, format="json")
    assert made.status_code == 201, made.content
    shown = made.json()
    assert (shown["dunning_policy"], shown["standing"], shown["standing_invoice"]) == (
        "standard",
        "good",
        None,
    )
    off = api.patch("/api/v1/customers/acme", {"dunning_policy": "none"}, format="json")
    assert off.json()["dunning_policy"] == "none"
    assert Customer.objects.get(external_id="acme").dunning_off is True
    default = api.patch("/api/v1/customers/acme", {"dunning_policy": None}, format="json")
    assert default.json()["dunning_policy"] is None
    # an unknown policy: refused, nothing changes (the name neither)
    unknown = api.patch(
        "/api/v1/customers/acme", {"name": "Acme 2", "dunning_policy": "nope"}, format="json"
    )
    assert unknown.status_code == 400
    assert "no dunning policy 'nope'" in unknown.json()["error"]["message"]
    assert Customer.objects.get(external_id="acme").name == "Acme"
    refused = api.post(
        "/api/v1/customers", {**body, "external_id": "beta", "dunning_policy": "x"}, format="json"
    )
    assert refused.status_code == 400
    assert not Customer.objects.filter(external_id="beta").exists()
    # a policy followed cannot be deleted
    api.patch("/api/v1/customers/acme", {"dunning_policy": "standard"}, format="json")
    assert api.delete("/api/v1/dunning-policies/standard").status_code == 409
    assert api.get("/api/v1/dunning-policies/nope").status_code == 404


def test_a_pause_in_the_past_or_not_a_time_is_refused(api):
    CustomerFactory(external_id="acme")
    with time_machine.travel(datetime(2026, 12, 1, tzinfo=UTC), tick=False):
        for until in ("2026-11-30T00:00:00Z", "tomorrow", "2026-12-05T00:00:00"):
            answer = api.post(
                "/api/v1/customers/acme/dunning/pause", {"until": until}, format="json"
            )
            assert answer.status_code == 400, (until, answer.content)
        assert Customer.objects.get(external_id="acme").dunning_paused_until is None
        resumed = api.post("/api/v1/customers/acme/dunning/pause", {"until": None}, format="json")
        assert resumed.json() == {"until": None, "by": None}
        missing = api.post("/api/v1/customers/nobody/dunning/pause", {"until": None}, format="json")
        assert missing.status_code == 404
