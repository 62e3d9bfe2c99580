"""A gateway's calls go through the ingestion of POST /events, draw-down
included: on S35's card as a prepaid money balance, LiteLLM's S35 call (3.75) and
the OpenTelemetry span (1.50) are drawn from the customer's balance as their
events are stored, a resend drawing nothing more."""

import json
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe
from tests.integrations.conftest import S35_CARD
from tests.integrations.test_litellm_ingest import NOW, payload, post
from tests.integrations.test_s35_three_sources import OTLP_EXPORT
from wallets.models import Wallet
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def prepaid(db):
    llm_tokens_meter()
    card = S35_CARD | {"model": "balance"}
    card.pop("included_units")
    plan = {"code": "prepaid", "name": "Prepaid", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "prepaid")
    money_top_up(customer=customer, amount=D("100.00"), currency="USD", now=NOW)
    return customer


def balance(customer) -> D:
    return Wallet.objects.get(customer=customer, kind="money").balance


def test_gateway_calls_draw_the_prepaid_balance_once(prepaid):
    assert post([payload()]).json()["accepted"] == 3
    assert balance(prepaid) == D("96.25")
    post([payload()])
    assert balance(prepaid) == D("96.25")

    response = api_client("admin").put(
        "/api/v1/integrations/otlp", {"models": {"gpt-4o-2024-08-06": "gpt-4o"}}, format="json"
    )
    assert response.status_code == 200
    with time_machine.travel(NOW, tick=False):
        traces = api_client("events:write").post(
            "/v1/traces", data=json.dumps(OTLP_EXPORT), content_type="application/json"
        )
    assert traces.status_code == 200, traces.content
    assert balance(prepaid) == D("94.75")
