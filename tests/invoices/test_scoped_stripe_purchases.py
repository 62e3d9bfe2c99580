"""Credits and money for some meters, paid through Stripe before they are granted:
the purchase keeps the meters it was sold for, and its block applies to them."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from invoices.models import Purchase
from plans.models import CreditPack
from tests.wallets.support import assert_all_wallets_consistent, build_catalog
from wallets.models import CreditBlock

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
BASE = "/api/v1/customers/acme/wallets"


@pytest.fixture
def acme(db):
    build_catalog()
    return customer_create(
        external_id="acme", name="Acme Inc", currency="USD", email="billing@acme.test"
    )


def charged(api, capture, path: str, body: dict) -> tuple[dict, CreditBlock]:
    """POST, charged at once to the saved payment method once it commits."""
    with time_machine.travel(NOW, tick=False), capture(execute=True):
        response = api.post(f"{BASE}{path}", body, format="json")
    assert response.status_code == 202, response.content
    purchase = Purchase.objects.get(pk=response.json()["purchase"]["id"])
    assert purchase.status == Purchase.PAID
    assert_all_wallets_consistent()
    return response.json()["purchase"], purchase.block


def test_a_money_top_up_for_some_meters_paid_through_stripe(
    api, acme, fake_stripe, django_capture_on_commit_callbacks
):
    body = {"amount": "20.00", "currency": "USD", "applies_to": ["gpt4o_input_tokens"]}
    purchase, block = charged(api, django_capture_on_commit_callbacks, "/money", body)
    assert purchase["applies_to"] == ["gpt4o_input_tokens"]
    assert (block.source, block.amount, block.applies_to) == (
        CreditBlock.TOP_UP,
        D(20),
        ["gpt4o_input_tokens"],
    )


def test_a_pack_for_some_meters_paid_through_stripe_keeps_them_as_sold(
    api, acme, fake_stripe, django_capture_on_commit_callbacks
):
    CreditPack.objects.filter(code="runs_100").update(applies_to=["agent_runs"])
    purchase, block = charged(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100"}
    )
    assert purchase["applies_to"] == ["agent_runs"]
    assert (block.source, block.amount, block.applies_to) == (
        CreditBlock.PACK,
        D(100),
        ["agent_runs"],
    )


def test_a_bad_applies_to_with_stripe_is_a_400_and_asks_stripe_nothing(
    api, acme, fake_stripe, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"{BASE}/money",
            {"amount": "20.00", "currency": "USD", "applies_to": ["nope"]},
            format="json",
        )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["applies_to"] == [
        "there is no meter 'nope': name meters by their codes"
    ]
    assert not Purchase.objects.exists()
    assert fake_stripe.to("POST", "/v1/payment_intents") == []
