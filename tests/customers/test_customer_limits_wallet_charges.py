"""Caps on usage paid from a wallet (issue 78, a second reader's findings): an
amount cap on a meter the plan draws from the prepaid money balance counts what the
usage drew; one on a meter paid in credits or stopped at a hard cap has no amount
to count, so it is refused when set, naming the field."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from customers.models import Customer
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MILLION = 1_000_000


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": str(MILLION)}


def plan(code: str, charge: dict) -> None:
    body = {"code": code, "name": code, "currency": "USD", "base_fee": "0", "publish": True}
    created = api_client("admin").post("/api/v1/plans", body | {"charges": [charge]}, format="json")
    assert created.status_code == 201, created.json()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def customer_on(code: str) -> Customer:
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, code, start=datetime(2026, 11, 1, tzinfo=UTC))
    return customer


def use(model: str, tokens: int, n: int) -> None:
    event = {
        "id": f"call-{n}",
        "customer": "acme",
        "event_name": "llm.tokens",
        "timestamp": (NOW - timedelta(minutes=30)).isoformat(),
        "properties": {"tokens": tokens, "model": model, "token_type": "input"},
    }
    posted = api_client("events:write").post("/api/v1/events", {"events": [event]}, format="json")
    assert posted.status_code == 202, posted.json()


def check(model: str, tokens: int) -> dict:
    return (
        api_client("read")
        .post(
            "/api/v1/customers/acme/check",
            {"meter": "llm_tokens", "quantity": str(tokens), "properties": {"model": model}},
            format="json",
        )
        .json()
    )


def test_an_amount_cap_counts_what_the_prepaid_balance_drew(clock):
    llm_tokens_meter()
    plan(
        "prepaid",
        {
            "meter": "llm_tokens",
            "model": "balance",
            "price_by": ["model"],
            "rates": [
                {"when": {"model": "gpt-4o"}, "pricing": per_million("5.00")},
                {"when": {"model": "o3"}, "pricing": per_million("20.00")},
                {"when": {}, "pricing": per_million("5.00")},
            ],
        },
    )
    customer = customer_on("prepaid")
    money_top_up(customer=customer, amount=Decimal("100.00"), currency="USD", now=NOW)
    cap = {"meter": "llm_tokens", "when": {"model": "o3"}, "amount": "25.00"}
    client = api_client("admin", "read")
    assert (
        client.put("/api/v1/customers/acme/limits", {"caps": [cap]}, format="json").status_code
        == 200
    )
    use("o3", MILLION, 1)  # 20.00 drawn
    use("gpt-4o", 4 * MILLION, 2)  # 20.00 drawn, not o3's

    (read,) = client.get("/api/v1/customers/acme/limits").json()["caps"]
    assert (read["spent"], read["remaining"]) == ("20.00", "5.00")
    refused = check("o3", 500_000)  # 10.00 more: 30.00
    assert (refused["allowed"], refused["reason"], refused["remaining"]) == (
        False,
        "customer_cap_reached",
        "5.00",
    )
    assert check("o3", 250_000)["allowed"] is True  # 5.00 more: exactly 25.00
    assert check("gpt-4o", MILLION)["allowed"] is True


@pytest.mark.parametrize(
    ("charge", "why"),
    [
        (
            {"meter": "llm_tokens", "model": "credits", "credits_per_unit": "0.001"},
            "is paid in credits on your plan",
        ),
        (
            {"meter": "llm_tokens", "model": "hard_cap", "included_units": "1000000"},
            "is never billed past its included units on your plan",
        ),
    ],
)
def test_an_amount_cap_on_usage_without_an_amount_is_refused(clock, charge, why):
    llm_tokens_meter()
    plan("wallet", charge)
    customer_on("wallet")
    client = api_client("admin", "read")
    body = {"caps": [{"meter": "llm_tokens", "amount": "5.00"}]}
    answer = client.put("/api/v1/customers/acme/limits", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"] == {
        "caps.0.amount": [f"meter llm_tokens {why}: cap it by quantity"]
    }
    assert Customer.objects.get(external_id="acme").limits == {}
    # By quantity, it is taken.
    body = {"caps": [{"meter": "llm_tokens", "quantity": "500000"}]}
    assert client.put("/api/v1/customers/acme/limits", body, format="json").status_code == 200
