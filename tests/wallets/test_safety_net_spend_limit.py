"""Safety net for the spend limit: the period's spend counts the money the prepaid
balance paid for usage (billing.usage.priced.period_spend reading
wallets.selectors.money_drawn), for the check endpoint and for the spend limit
alert. A balance charge writes no invoice line, so without that money a customer
spending only from its balance would never reach a limit. S7's plan: input tokens
at 0.0000025 drawn from money. Time is set explicitly."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.models import Alert
from billing.usage.alerts import usage_alerts_check
from customers.models import Customer
from tests.factories import check_v1, subscribe
from tests.wallets.support import (
    assert_all_wallets_consistent,
    event,
    ingest,
    state,
    wallet_of,
)
from wallets.purchases import money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def limit(customer: Customer, amount: str, mode: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(spend_limit=D(amount), spend_limit_mode=mode)


def check(api, quantity: int) -> dict:
    before = state()
    with time_machine.travel(NOW, tick=False):
        response = api.post(
            "/api/v1/customers/acme/check",
            {"meter": "gpt4o_input_tokens", "quantity": quantity},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert state() == before
    return check_v1(response.json())


@pytest.fixture
def drawn_2_50(catalog, acme):
    """acme on the prepaid plan with 100.00 deposited, of which 1,000,000 input
    tokens drew 2.50 this period."""
    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)
    ingest([event("t1", "llm.completion", NOW, input_tokens=1_000_000)], now=NOW)
    assert wallet_of(acme, "money", "USD").balance == D("97.50")
    return acme


def test_a_hard_spend_limit_counts_money_drawn_from_the_balance(api, drawn_2_50):
    """Rule: spend = fixed fees + rated usage + money drawn this period + what the
    use would add. 2.50 drawn + 0.50 for 200,000 tokens = 3.00: at the limit; 1.00
    for 400,000 tokens makes 3.50: refused, although the balance could pay it."""
    # given
    limit(drawn_2_50, "3.00", "hard")

    # when / then
    assert check(api, 200_000) == {
        "allowed": True,
        "model": "balance",
        "reason": "ok",
        "used": "1000000",
        "included": None,
        "remaining": "39000000",
        "balance": "97.50",
    }
    assert check(api, 400_000) == {
        "allowed": False,
        "model": "balance",
        "reason": "spend_limit_reached",
        "used": "1000000",
        "included": None,
        "remaining": "39000000",
        "balance": "97.50",
    }
    assert Alert.objects.count() == 0
    assert_all_wallets_consistent()


def test_a_soft_spend_limit_reached_by_money_drawn_alerts(api, drawn_2_50):
    """Rule: the alert counts spend as the check does: 2.50 drawn reaches a limit of
    2.50 with nothing added."""
    # given
    limit(drawn_2_50, "2.50", "soft")

    # when
    raised = usage_alerts_check(customer_ids=[drawn_2_50.pk], now=NOW)

    # then
    assert [(a.kind, a.key, a.period_start) for a in raised] == [
        ("spend_limit", "spend_limit", NOV_1)
    ]
    assert raised[0].payload == {
        "spend": "2.50",
        "spend_limit": "2.50",
        "currency": "USD",
        "mode": "soft",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
    }


def test_a_stop_budget_counts_money_drawn_from_the_balance_as_the_spend_limit(api, drawn_2_50):
    """Rule: a budget the customer set counts what the prepaid balance paid, as the
    spend limit does: 2.50 drawn, a stop budget of 3.00 takes 200,000 tokens more
    (0.50, at it) and refuses 400,000 (1.00) with 0.50 left; the portal's and the
    API's budget says 2.50 spent."""
    # given
    with time_machine.travel(NOW, tick=False):
        response = api.put(
            "/api/v1/customers/acme/limits",
            {"budget": {"amount": "3.00", "action": "stop"}},
            format="json",
        )
        assert response.status_code == 200, response.content
        spent = api.get("/api/v1/customers/acme/limits").json()["budget"]

    # when
    allowed = check(api, 200_000)
    with time_machine.travel(NOW, tick=False):
        refused = api.post(
            "/api/v1/customers/acme/check",
            {"meter": "gpt4o_input_tokens", "quantity": 400_000},
            format="json",
        ).json()

    # then
    assert (spent["spent"], spent["remaining"]) == ("2.50", "0.50")
    assert allowed["allowed"] is True
    assert (refused["allowed"], refused["reason"]) == (False, "customer_budget_reached")
    assert refused["limit"] == {
        "kind": "budget",
        "amount": "3.00",
        "spent": "2.50",
        "action": "stop",
    }
    assert refused["remaining"] == "0.50"
