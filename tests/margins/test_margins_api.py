"""Margins through the API (issue 51): S26 exactly, a cost rate's change
splitting the cost at its hour, usage before the first cost rate uncosted, and
the refusals of a bad question; without a currency, the one the window is billed
in."""

import os
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from billing.invoicing.close import periods_close
from billing.usage.folding import unfolded_events, usage_fold
from customers.models import Customer
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
# Before November closes: its usage accruing, nothing invoiced for it yet.
NOV_25 = datetime(2026, 11, 25, tzinfo=UTC)
MILLION = "1000000"
NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01"


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": MILLION}


def tokens_event(event_id: str, at: str, tokens: int, token_type: str) -> dict:
    return {
        "id": event_id,
        "customer": "acme",
        "event_name": "llm.tokens",
        "timestamp": at,
        "properties": {"tokens": tokens, "model": "gpt-4o", "token_type": token_type},
    }


def post_events(events: list[dict]) -> None:
    posted = api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    assert posted.status_code == 202, posted.json()
    assert posted.json()["accepted"] == len(events), posted.json()


def post_cost(token_type: str, cost: str, effective_from: str) -> None:
    response = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "llm_tokens",
            "when": {"model": "gpt-4o", "token_type": token_type},
            "unit_cost": cost,
            "per": MILLION,
            "currency": "USD",
            "effective_from": effective_from,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def margins(query: str) -> dict:
    response = api_client("finance:read").get(f"/api/v1/margins?{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def made_s26():
    """S26: a rate card on tokens, acme on it, provider costs with a price cut on the
    16th; acme's subscription."""
    llm_tokens_meter()
    card = {
        "meter": "llm_tokens",
        "model": "overage",
        "included_units": "0",
        "price_by": ["model", "token_type"],
        "rates": [
            {"when": {"model": "gpt-4o", "token_type": "input"}, "pricing": per_million("2.50")},
            {"when": {"model": "gpt-4o", "token_type": "output"}, "pricing": per_million("10.00")},
            {"when": {}, "pricing": per_million("4.00")},
        ],
    }
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    post_cost("input", "1.25", "2026-11-01T00:00:00Z")
    post_cost("input", "1.00", "2026-11-16T00:00:00Z")
    post_cost("output", "5.00", "2026-11-01T00:00:00Z")
    return subscribe(customer, "tokens")


@pytest.fixture(scope="module")
def _s26_once(module_transaction):
    return module_transaction.once(made_s26, "s26")


@pytest.fixture
def s26(_s26_once, db):
    """made_s26, made once for the module where all its tests ask (tests/shared_rows.py)."""
    return _s26_once.for_test()


def s26_usage() -> None:
    post_events(
        [
            tokens_event("nov10", "2026-11-10T09:15:00Z", 1_000_000, "input"),
            tokens_event("nov20-in", "2026-11-20T14:00:00Z", 1_000_000, "input"),
            tokens_event("nov20-out", "2026-11-20T14:05:00Z", 200_000, "output"),
        ]
    )


def test_s26_margin_through_a_provider_price_cut(s26):
    s26_usage()
    periods_close(as_of=DEC_1)

    body = margins(f"{NOVEMBER}&group_by=customer")
    assert body == {
        "currency": "USD",
        "results": [
            {
                "key": {"customer": "acme"},
                "revenue": "7.00",
                "cost": "3.25",
                "margin": "3.75",
                "margin_percent": "53.57",
                "uncosted_quantity": "0",
            }
        ],
    }
    by_type = margins(f"{NOVEMBER}&group_by=token_type&currency=USD")["results"]
    assert [(r["key"], r["revenue"], r["cost"], r["margin_percent"]) for r in by_type] == [
        ({"token_type": "input"}, "5.00", "2.25", "55.00"),
        ({"token_type": "output"}, "2.00", "1.00", "50.00"),
    ]
    for view, key in (("plan", "tokens"), ("meter", "llm_tokens"), ("model", "gpt-4o")):
        (row,) = margins(f"{NOVEMBER}&group_by={view}")["results"]
        assert (row["key"], row["revenue"], row["cost"], row["margin"]) == (
            {view: key},
            "7.00",
            "3.25",
            "3.75",
        )


def test_the_cost_reads_folded_rollups_and_the_events_not_folded_yet(s26, settings):
    # On PostgreSQL the first events are folded into the rollups, the last not
    # yet (SQLite writes the rollups at ingestion).
    settings.BILLING_FOLD_MS = 10**9  # ingestion folds no more after its first batch
    post_events([tokens_event("nov10", "2026-11-10T09:15:00Z", 1_000_000, "input")])
    usage_fold(wait=True)
    post_events(
        [
            tokens_event("nov10-later", "2026-11-10T09:45:00Z", 1_000_000, "input"),
            tokens_event("nov20", "2026-11-20T14:00:00Z", 1_000_000, "input"),
        ]
    )
    if connection.vendor == "postgresql":
        assert unfolded_events() == 2
    (row,) = margins(f"{NOVEMBER}&group_by=token_type")["results"]
    assert (row["key"], row["cost"]) == ({"token_type": "input"}, "3.50")  # 1.25 * 2 + 1.00


def test_before_the_close_the_revenue_is_accruing_with_the_cost(s26):
    s26_usage()
    with time_machine.travel(NOV_25, tick=False):
        (row,) = margins(f"{NOVEMBER}&group_by=customer")["results"]
    # Earned as the usage happened, from the open period's statement: 1M input
    # at 2.50 (Nov 10), 1M input at 2.50 and 200,000 output at 10.00 per 1M
    # (Nov 20) = 2.50 + 2.50 + 2.00 = 7.00, as the close will bill it.
    assert (row["revenue"], row["cost"], row["margin"], row["margin_percent"]) == (
        "7.00",
        "3.25",
        "3.75",
        "53.57",
    )


def test_a_cost_change_splits_the_cost_at_its_hour(s26):
    # 1M input tokens either side of 15:00 on Nov 18, when input costs 0.50.
    post_cost("input", "0.50", "2026-11-18T15:00:00Z")
    post_events(
        [
            tokens_event("before", "2026-11-18T14:59:59Z", 1_000_000, "input"),
            tokens_event("after", "2026-11-18T15:00:00Z", 1_000_000, "input"),
        ]
    )
    (row,) = margins(f"{NOVEMBER}&group_by=customer")["results"]
    assert row["cost"] == "1.50"  # 1.00 + 0.50
    # A window of the one hour after the change costs it at the new rate alone.
    hour = "period_start=2026-11-18T15:00:00Z&period_end=2026-11-18T16:00:00Z"
    (row,) = margins(f"{hour}&group_by=customer")["results"]
    assert row["cost"] == "0.50"


def test_usage_before_the_first_cost_rate_is_uncosted(s26):
    post_events(
        [
            tokens_event("october", "2026-10-31T23:30:00Z", 300_000, "input"),
            tokens_event("november", "2026-11-01T00:30:00Z", 1_000_000, "input"),
            # No cost rate matches gpt-4o cache reads at all.
            tokens_event("cache", "2026-11-02T08:00:00Z", 40_000, "cache_read"),
        ]
    )
    with time_machine.travel(NOV_25, tick=False):
        body = margins("period_start=2026-10-01&period_end=2026-12-01&group_by=token_type")
    # Revenue accruing in November (October's input came before acme's
    # subscription, from Nov 1: billed by no period): 1M input at 2.50 per 1M =
    # 2.50; 40,000 cache reads at the card's default 4.00 per 1M = 0.16. Largest
    # revenue first.
    assert [
        (r["key"], r["revenue"], r["cost"], r["uncosted_quantity"]) for r in body["results"]
    ] == [
        ({"token_type": "input"}, "2.50", "1.25", "300000"),
        ({"token_type": "cache_read"}, "0.16", "0.00", "40000"),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period_start=2026-11-01&period_end=2026-11-01", "period_end"),
        ("period_start=2026-12-01&period_end=2026-11-01", "period_end"),
        ("period_start=2026-13-01&period_end=2026-12-01", "period_start"),
        ("period_start=yesterday&period_end=2026-12-01", "period_start"),
        ("period_start=2026-11-01T00:30:00Z&period_end=2026-12-01", "period_start"),
        ("period_end=2026-12-01", "period_start"),
        (f"{NOVEMBER}&group_by=region", "group_by"),
        (f"{NOVEMBER}&currency=XYZ", "currency"),
        (f"{NOVEMBER}&customer=acme", "customer"),
    ],
)
def test_a_bad_question_is_a_400_naming_its_field(s26, query, field):
    response = api_client("finance:read").get(f"/api/v1/margins?{query}")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()


def test_without_a_currency_the_windows_one_currency_is_taken(s26):
    # Customers in EUR and GBP with no subscription and no invoice in November
    # (as load_demo's Initech): November is billed in USD alone.
    customer_create(external_id="initech", name="Initech", currency="EUR")
    customer_create(external_id="hooli", name="Hooli", currency="GBP")
    s26_usage()
    periods_close(as_of=DEC_1)

    body = margins(f"{NOVEMBER}&group_by=customer")
    assert body["currency"] == "USD"
    assert [(r["key"], r["revenue"], r["cost"]) for r in body["results"]] == [
        ({"customer": "acme"}, "7.00", "3.25")
    ]


def test_without_a_currency_a_window_billed_in_two_is_a_400_naming_them(s26):
    initech = customer_create(external_id="initech", name="Initech", currency="EUR")
    euro = {"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "10.00"}
    created = api_client("admin").post("/api/v1/plans", euro | {"publish": True}, format="json")
    assert created.status_code == 201, created.json()
    subscribe(initech, "euro")

    response = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "(EUR, USD)" in error["message"], error
    assert error["fields"]["currency"] == ["One currency per answer: one of EUR, USD"]
    assert margins(f"{NOVEMBER}&currency=EUR")["currency"] == "EUR"


def test_the_demos_customers_alone_answer_in_the_plans_currency(db):
    # load_demo: customers in USD and EUR, plans in USD, nobody subscribed yet.
    call_command("load_demo", "--catalog-only", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert sorted(Customer.objects.order_by().values_list("currency", flat=True).distinct()) == [
        "EUR",
        "USD",
    ]
    assert margins(NOVEMBER) == {"currency": "USD", "results": []}
