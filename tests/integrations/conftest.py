"""S35's rate card (../shared/SCENARIOS.md) on `llm_tokens`, by model and
token_type, per 1M tokens, and its customer: what every test of the gateway
ingestion bills against."""

from datetime import UTC

import pytest

from billing.integrations.unpriced_alerts import announced
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe

MILLION = "1000000"


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": MILLION}


def row(price: str, **when: str) -> dict:
    return {"when": when, "pricing": per_million(price)}


S35_CARD = {
    "meter": "llm_tokens",
    "model": "overage",
    "included_units": "0",
    "price_by": ["model", "token_type"],
    "rates": [
        row("2.50", model="gpt-4o", token_type="input"),
        row("1.25", model="gpt-4o", token_type="cached_input"),
        row("10.00", model="gpt-4o", token_type="output"),
        row("2.00", model="o3", token_type="input"),
        row("8.00", model="o3", token_type="output"),
        row("8.00", model="o3", token_type="reasoning"),
        row("1.00"),
    ],
}


@pytest.fixture
def s35(db):
    """The S35 plan published, customer `acme` (USD) subscribed: its subscription."""
    llm_tokens_meter()
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [S35_CARD]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    return subscribe(customer, "tokens")


def usage_rates(period_start: str = "2026-11-01T00:00:00Z") -> tuple[str, list]:
    """acme's llm_tokens line on /usage: its amount and its rows."""
    body = (
        api_client("read").get(f"/api/v1/customers/acme/usage?period_start={period_start}").json()
    )
    (line,) = [line for line in body["lines"] if line["meter"] == "llm_tokens"]
    return line["amount"], line["rates"]


# S35's six rows on /usage, a gpt-4o and an o3 call (7.15): what a client that sent
# them both must read.
S35_TWO_CALLS = [
    ({"model": "gpt-4o", "token_type": "input"}, "2.50"),
    ({"model": "gpt-4o", "token_type": "cached_input"}, "0.25"),
    ({"model": "gpt-4o", "token_type": "output"}, "1.00"),
    ({"model": "o3", "token_type": "input"}, "1.00"),
    ({"model": "o3", "token_type": "output"}, "0.40"),
    ({"model": "o3", "token_type": "reasoning"}, "2.00"),
]


def month_usage_rates(moment) -> tuple[str, list]:
    """usage_rates of the UTC month `moment` falls in, each row (group, amount)."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    amount, rates = usage_rates(start.isoformat().replace("+00:00", "Z"))
    return amount, [(r["group"], r["amount"]) for r in rates]


@pytest.fixture(autouse=True)
def _preview_at_once(settings):
    """Every request writes its source's preview (a process writes it at most every
    BILLING_INTEGRATION_PREVIEW_SECONDS otherwise): the tests read it after each.
    tests/integrations/test_preview_buffer.py tests the wait."""
    settings.BILLING_INTEGRATION_PREVIEW_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_model_announced_yet():
    """A process remembers the unpriced models finance was told of (the database
    rows it read are gone after a test): each test starts knowing none."""
    announced.clear()
    yield
    announced.clear()
