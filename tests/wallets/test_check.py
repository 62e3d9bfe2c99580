"""POST /api/v1/customers/{external_id}/check: every consumption model and every
reason, with the exact JSON the product reads (SCENARIOS S2 for the hard cap);
bad input, scopes and spend limits. A check writes nothing, except the one
soft-limit alert a period. Time is set with time_machine."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import Alert, WebhookDelivery, WebhookEndpoint
from billing.usage.alerts import usage_alerts_check
from customers.models import Customer
from customers.services import customer_create
from invoices.models import Invoice
from plans.models import CreditPack
from tests.factories import balance, check_v1, published_version, subscribe
from tests.wallets.support import (
    assert_all_wallets_consistent,
    client,
    event,
    ingest,
    repeat,
    state,
)
from wallets.ledger import credits_grant
from wallets.models import Wallet
from wallets.purchases import auto_top_up_set, money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
URL = "/api/v1/customers/acme/check"


def check(api, meter: str, quantity=1, *, at: datetime = NOW, customer: str = "acme"):
    with time_machine.travel(at, tick=False):
        return api.post(
            f"/api/v1/customers/{customer}/check",
            {"meter": meter, "quantity": quantity},
            format="json",
        )


def answer(api, meter: str, quantity=1, *, at: datetime = NOW) -> dict:
    before = state()
    response = check(api, meter, quantity, at=at)
    assert response.status_code == 200, response.content
    # A check only reads.
    assert state() == before
    return check_v1(response.json())


def result(allowed, model, reason, used=None, included=None, remaining=None, balance=None):
    return {
        "allowed": allowed,
        "model": model,
        "reason": reason,
        "used": used,
        "included": included,
        "remaining": remaining,
        "balance": balance,
    }


# S2: the hard cap


def test_s2_hard_cap_through_a_period_and_into_the_next(api, catalog, acme):
    subscribe(acme, "sms_starter", NOV_1)
    ingest(repeat(499, "sms.sent", NOW, prefix="a"), now=NOW)

    # With 499 used, 1 more is allowed and 2 are not.
    assert answer(api, "sms", 1) == result(True, "hard_cap", "ok", "499", "500", "1")
    assert answer(api, "sms", "2") == result(False, "hard_cap", "cap_reached", "499", "500", "1")

    # With 500 used, even one is refused: API.md's example, exactly.
    ingest(repeat(1, "sms.sent", NOW, prefix="b"), now=NOW)
    assert answer(api, "sms", "1") == {
        "allowed": False,
        "model": "hard_cap",
        "reason": "cap_reached",
        "used": "500",
        "included": "500",
        "remaining": "0",
        "balance": None,
    }

    # Messages posted past the cap are stored and shown as used, never billed.
    results = ingest(repeat(30, "sms.sent", NOW, prefix="c"), now=NOW)
    assert results[0].accepted == 30
    with time_machine.travel(NOW, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
    assert [
        (line["meter"], line["quantity"], line["included"], line["billable"], line["amount"])
        for line in usage["lines"]
    ] == [("sms", "530", "500", "0", "0.00")]
    assert (usage["base_fee"], usage["subtotal"]) == ("9.99", "9.99")
    assert answer(api, "sms", 1)["used"] == "530"

    # The close at the end of November: the capped usage costs nothing, the
    # invoice is December's 9.99 in advance.
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(customer=acme, reason=Invoice.PERIOD)
    assert invoice.status == Invoice.FINALIZED
    assert invoice.total == D("9.99")
    assert [
        (line.kind, line.meter, line.quantity, line.amount) for line in invoice.lines.all()
    ] == [
        ("usage", "sms", D(530), D(0)),
        ("base_fee", "", D(1), D("9.99")),
    ]
    # November cost 9.99 whatever the count: the start invoice.
    assert Invoice.objects.get(customer=acme, reason=Invoice.START).total == D("9.99")

    # December starts at 0 used and the check allows again.
    december = DEC_1 + timedelta(hours=12)
    assert answer(api, "sms", 500, at=december) == result(True, "hard_cap", "ok", "0", "500", "500")
    assert answer(api, "sms", 501, at=december)["reason"] == "cap_reached"


def test_the_next_period_allows_again_before_the_close_has_run(api, catalog, acme):
    """Between a period's end and the close that advances the subscription, the
    check counts the period the clock is in, not the one that ended."""
    subscribe(acme, "sms_starter", NOV_1)
    ingest(repeat(500, "sms.sent", NOW, prefix="a"), now=NOW)

    assert answer(api, "sms", 1, at=DEC_1 + timedelta(minutes=5)) == result(
        True, "hard_cap", "ok", "0", "500", "500"
    )


def test_after_a_period_that_ends_the_subscription_there_is_none(api, catalog, acme):
    from billing.subscriptions.lifecycle import subscription_cancel

    subscription = subscribe(acme, "sms_starter", NOV_1)
    subscription_cancel(subscription=subscription, effective="period_end", at=NOW)
    assert answer(api, "sms", 1)["reason"] == "ok"
    assert answer(api, "sms", 1, at=DEC_1 + timedelta(minutes=5)) == result(
        False, None, "no_subscription"
    )


def test_a_soft_limit_alert_before_the_close_belongs_to_the_new_period(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "20.00", "soft")

    # In December, before the close: 201 prompts are 19.99 + 0.05 = 20.04.
    response = check(api, "prompts", 201, at=DEC_1 + timedelta(minutes=5))

    assert check_v1(response.json()) == result(True, "overage", "ok", "0", "200", "200")
    assert list(Alert.objects.values_list("kind", "period_start")) == [("spend_limit", DEC_1)]


# The other models


def test_overage_is_always_allowed(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    ingest(repeat(150, "prompt", NOW, prefix="p"), now=NOW)
    assert answer(api, "prompts", 10) == result(True, "overage", "ok", "150", "200", "50")

    ingest(repeat(100, "prompt", NOW, prefix="q"), now=NOW)
    assert answer(api, "prompts", 1_000_000) == result(True, "overage", "ok", "250", "200", "0")


def test_credits_enough_and_not_enough(api, catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(5), now=NOV_1)

    # 2 credits a run: 5 credits pay for 2.5 runs.
    assert answer(api, "agent_runs", 2) == result(True, "credits", "ok", "0", None, "2.5", "5")
    assert answer(api, "agent_runs", "2.5") == result(True, "credits", "ok", "0", None, "2.5", "5")
    assert answer(api, "agent_runs", 3) == result(
        False, "credits", "insufficient_credits", "0", None, "2.5", "5"
    )

    ingest(repeat(2, "agent.run", NOW, prefix="r"), now=NOW)
    assert answer(api, "agent_runs", 1) == result(
        False, "credits", "insufficient_credits", "2", None, "0.5", "1"
    )
    assert_all_wallets_consistent()


def test_credits_at_zero_with_auto_top_up_on_are_allowed(api, catalog, acme):
    """An auto top-up buys a pack when an event finds the balance short: the check
    counts on it, up to one pack's worth."""
    subscribe(acme, "runner", NOV_1)
    pack = CreditPack.objects.get(code="runs_100")
    auto_top_up_set(customer=acme, enabled=True, threshold=D(20), pack=pack)
    assert Wallet.objects.get(customer=acme, kind="credits").balance == 0

    assert answer(api, "agent_runs", 1) == result(True, "credits", "ok", "0", None, "0", "0")
    assert answer(api, "agent_runs", 50) == result(True, "credits", "ok", "0", None, "0", "0")
    # 51 runs are 102 credits: more than one pack.
    assert answer(api, "agent_runs", 51)["reason"] == "insufficient_credits"

    # Switched off, the same balance refuses.
    auto_top_up_set(customer=acme, enabled=False, threshold=D(20), pack=pack)
    assert answer(api, "agent_runs", 1) == result(
        False, "credits", "insufficient_credits", "0", None, "0", "0"
    )


def test_credits_with_auto_top_up_of_a_pack_no_longer_sold(api, catalog, acme):
    """Draw-down does not buy a withdrawn pack, so the check does not count on it."""
    from plans.services import credit_pack_update

    subscribe(acme, "runner", NOV_1)
    pack = CreditPack.objects.get(code="runs_100")
    auto_top_up_set(customer=acme, enabled=True, threshold=D(20), pack=pack)
    credit_pack_update(pack=pack, active=False)

    assert answer(api, "agent_runs", 1)["reason"] == "insufficient_credits"


def test_credits_with_no_wallet_yet(api, catalog, acme):
    subscribe(acme, "runner", NOV_1)
    assert answer(api, "agent_runs", 1) == result(
        False, "credits", "insufficient_credits", "0", None, "0", "0"
    )


@pytest.mark.parametrize(
    "block",
    [{"effective_at": DEC_1}, {"expires_at": NOV_1 + timedelta(days=2)}],
    ids=["not yet in effect", "past expiry, not yet expired by the task"],
)
def test_credits_draw_down_cannot_use_do_not_count(api, catalog, acme, block):
    """Draw-down skips a block not in effect yet or past its expiry, so the check
    must not count on it (the stored balance still does)."""
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(100), now=NOV_1, **block)
    credits_grant(customer=acme, credits=D(3), now=NOV_1)
    assert Wallet.objects.get(customer=acme).balance == 103

    assert answer(api, "agent_runs", 1) == result(True, "credits", "ok", "0", None, "1.5", "3")
    assert answer(api, "agent_runs", 2) == result(
        False, "credits", "insufficient_credits", "0", None, "1.5", "3"
    )


def test_balance_enough_and_not_enough(api, catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)
    ingest([event("t1", "llm.completion", NOW, input_tokens=1_000_000)], now=NOW)  # 2.50

    # 97.50 pays for 39,000,000 tokens at 0.0000025.
    assert answer(api, "gpt4o_input_tokens", 39_000_000) == {
        "allowed": True,
        "model": "balance",
        "reason": "ok",
        "used": "1000000",
        "included": None,
        "remaining": "39000000",
        "balance": "97.50",
    }
    assert answer(api, "gpt4o_input_tokens", 39_000_001) == result(
        False, "balance", "insufficient_balance", "1000000", None, "39000000", "97.50"
    )
    assert_all_wallets_consistent()


def test_balance_at_a_price_per_million_counts_the_tokens_it_pays_for(api, catalog, acme):
    # given: tokens at 2.50 per 1,000,000, and 10.00 on the balance
    published_version("per_million", charges=(balance("tokens", "2.50", "1000000"),))
    subscribe(acme, "per_million", NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    # when / then: 10.00 pays for 4,000,000 tokens
    assert answer(api, "tokens", 4_000_000) == result(
        True, "balance", "ok", "0", None, "4000000", "10.00"
    )
    assert answer(api, "tokens", 4_000_001) == result(
        False, "balance", "insufficient_balance", "0", None, "4000000", "10.00"
    )


def test_balance_priced_in_graduated_tiers(api, catalog, acme):
    """The check prices what the quantity adds to the period's amount: from 900
    used, 300 more cost 100 x 0.01 + 200 x 0.005 + the second tier's 1.00 = 3.00."""
    subscribe(acme, "graduated", NOV_1)
    money_top_up(customer=acme, amount=D("12.00"), currency="USD", now=NOV_1)
    ingest([event("t1", "tokens", NOW, n=900)], now=NOW)  # 9.00: 3.00 left

    # No unit count to report: the price per unit changes along the tiers.
    assert answer(api, "tokens", 300) == result(True, "balance", "ok", "900", None, None, "3.00")
    assert answer(api, "tokens", 301) == result(
        False, "balance", "insufficient_balance", "900", None, None, "3.00"
    )


def test_balance_with_no_money_wallet(api, catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    assert answer(api, "gpt4o_input_tokens", 1) == result(
        False, "balance", "insufficient_balance", "0", None, "0", "0.00"
    )


def test_no_subscription(api, catalog, acme):
    assert answer(api, "sms", 1) == result(False, None, "no_subscription")


@pytest.mark.parametrize("meter", ["prompts", "no_such_meter"])
def test_a_meter_the_plan_does_not_charge(api, catalog, acme, meter):
    subscribe(acme, "sms_starter", NOV_1)
    assert answer(api, meter, 1) == result(False, None, "meter_not_in_plan")


def test_an_ended_subscription_is_no_subscription(api, catalog, acme):
    from billing.subscriptions.lifecycle import subscription_cancel

    subscription = subscribe(acme, "sms_starter", NOV_1)
    subscription_cancel(subscription=subscription, effective="immediate", at=NOW)
    assert answer(api, "sms", 1, at=NOW + timedelta(hours=1)) == result(
        False, None, "no_subscription"
    )


def test_quantity_defaults_to_one(api, catalog, acme):
    subscribe(acme, "sms_starter", NOV_1)
    ingest(repeat(499, "sms.sent", NOW, prefix="a"), now=NOW)
    with time_machine.travel(NOW, tick=False):
        response = api.post(URL, {"meter": "sms"}, format="json")
    assert check_v1(response.json()) == result(True, "hard_cap", "ok", "499", "500", "1")


# Refusals


def test_unknown_customer_is_404(api, catalog):
    response = check(api, "sms", 1, customer="nobody")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


BAD_BODIES = {
    "missing meter": json.dumps({"quantity": "1"}),
    "blank meter": json.dumps({"meter": "", "quantity": "1"}),
    "null meter": json.dumps({"meter": None, "quantity": "1"}),
    "quantity abc": json.dumps({"meter": "sms", "quantity": "abc"}),
    "negative": json.dumps({"meter": "sms", "quantity": "-1"}),
    "negative number": json.dumps({"meter": "sms", "quantity": -5}),
    "zero": json.dumps({"meter": "sms", "quantity": 0}),
    "zero string": json.dumps({"meter": "sms", "quantity": "0.000"}),
    "NaN string": json.dumps({"meter": "sms", "quantity": "NaN"}),
    "NaN literal": '{"meter": "sms", "quantity": NaN}',
    "Infinity": '{"meter": "sms", "quantity": Infinity}',
    "huge": json.dumps({"meter": "sms", "quantity": "1e30"}),
    "too many places": json.dumps({"meter": "sms", "quantity": "0.00000000001"}),
    "boolean": json.dumps({"meter": "sms", "quantity": True}),
    "list quantity": json.dumps({"meter": "sms", "quantity": [1]}),
    "malformed": '{"meter": "sms", "quantity": 1',
    "not an object": json.dumps(["sms", 1]),
    "empty body": "",
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_bad_input_is_a_400_and_changes_nothing(api, catalog, acme, body):
    subscribe(acme, "sms_starter", NOV_1)
    before = state()
    with time_machine.travel(NOW, tick=False):
        response = api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["type"] == "invalid_request"
    assert state() == before


# Scopes


# `admin` alone may not (tests/customers/test_api_scopes.py): it writes, it does not read.
@pytest.mark.parametrize("scopes", [("events:write",), ("read",)])
def test_keys_that_may_check(catalog, acme, scopes):
    subscribe(acme, "sms_starter", NOV_1)
    response = check(client(*scopes), "sms", 1)
    assert response.status_code == 200, response.content
    assert response.json()["reason"] == "ok"


def test_a_key_without_any_of_those_scopes_is_403(catalog, acme):
    subscribe(acme, "sms_starter", NOV_1)
    before = state()
    response = check(client(), "sms", 1)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_denied"
    assert state() == before


def test_no_key_is_401(catalog, acme):
    from rest_framework.test import APIClient

    response = check(APIClient(), "sms", 1)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_failed"


# Spend limits: the period's rated spend (the /usage subtotal) plus what this use adds


# The spend_limit alert of a soft limit of 30.00 passed with 30.04 in November.
SPEND_LIMIT_30_04 = {
    "spend": "30.04",
    "spend_limit": "30.00",
    "currency": "USD",
    "mode": "soft",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
}


def limit(customer: Customer, amount: str, mode: str) -> None:
    Customer.objects.filter(pk=customer.pk).update(spend_limit=D(amount), spend_limit_mode=mode)


def test_a_hard_spend_limit_refuses_what_would_pass_it(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "30.04", "hard")
    ingest(repeat(400, "prompt", NOW, prefix="p"), now=NOW)
    with time_machine.travel(NOW, tick=False):
        assert api.get("/api/v1/customers/acme/usage").json()["subtotal"] == "29.99"

    # 29.99 + 0.05 = 30.04: at the limit, allowed.
    assert answer(api, "prompts", 1) == result(True, "overage", "ok", "400", "200", "0")
    # 29.99 + 0.10 passes it
    assert answer(api, "prompts", 2) == result(
        False, "overage", "spend_limit_reached", "400", "200", "0"
    )
    assert Alert.objects.count() == 0


def test_a_spend_limit_refusal_says_whether_it_is_reached_and_what_is_left(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "30.04", "hard")
    ingest(repeat(400, "prompt", NOW, prefix="p"), now=NOW)

    # 29.99 spent: 2 more prompts (0.10) would exceed the limit, 0.05 is left.
    would_exceed = check(api, "prompts", 2).json()
    assert (would_exceed["remaining"], would_exceed["spend_remaining"]) == ("0", "0.05")
    assert would_exceed["message"] == (
        "this use would exceed the customer's spend limit for this period (30.04 USD): "
        "0.05 USD left under it"
    )

    # 30.04 spent: the limit is reached, nothing is left.
    ingest(repeat(1, "prompt", NOW, prefix="q"), now=NOW)
    reached = check(api, "prompts", 1).json()
    assert (reached["reason"], reached["spend_remaining"]) == ("spend_limit_reached", "0.00")
    assert reached["message"] == (
        "the customer's spend limit for this period (30.04 USD) is reached: 0.00 USD left"
    )


def test_a_hard_spend_limit_counts_the_allowance_as_free(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "19.99", "hard")
    ingest(repeat(100, "prompt", NOW, prefix="p"), now=NOW)

    assert answer(api, "prompts", 100)["reason"] == "ok"
    assert answer(api, "prompts", 101)["reason"] == "spend_limit_reached"


def test_a_hard_spend_limit_below_the_base_fee_refuses_everything(api, catalog, acme):
    subscribe(acme, "sms_starter", NOV_1)
    limit(acme, "9.99", "hard")
    assert answer(api, "sms", 1)["reason"] == "ok"
    limit(acme, "9.98", "hard")
    assert answer(api, "sms", 1) == result(
        False, "hard_cap", "spend_limit_reached", "0", "500", "500"
    )


def test_a_cap_is_reported_before_the_spend_limit(api, catalog, acme):
    subscribe(acme, "sms_starter", NOV_1)
    limit(acme, "0", "hard")
    assert answer(api, "sms", 501)["reason"] == "cap_reached"


def test_a_soft_spend_limit_allows_and_alerts_once_a_period(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "30.00", "soft")
    ingest(repeat(400, "prompt", NOW, prefix="p"), now=NOW)

    # 29.99 + 0.05 = 30.04 passes 30.00: allowed, and finance is alerted.
    assert check_v1(check(api, "prompts", 1).json()) == result(
        True, "overage", "ok", "400", "200", "0"
    )
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.period_start) == ("spend_limit", "spend_limit", NOV_1)
    assert alert.payload == SPEND_LIMIT_30_04

    # Again, further past it: allowed, and no second alert this period.
    later = check(api, "prompts", 100, at=NOW + timedelta(days=1))
    assert check_v1(later.json()) == result(True, "overage", "ok", "400", "200", "0")
    assert Alert.objects.count() == 1

    # December arms it again.
    periods_close(as_of=DEC_1)
    december = DEC_1 + timedelta(days=2)
    assert check(api, "prompts", 300, at=december).json()["reason"] == "ok"  # 19.99 + 5.00
    assert Alert.objects.count() == 1
    assert check(api, "prompts", 400, at=december).json()["reason"] == "ok"  # 19.99 + 10.00
    assert Alert.objects.count() == 1
    assert check(api, "prompts", 401, at=december).json()["reason"] == "ok"  # 30.04
    assert list(Alert.objects.order_by("id").values_list("kind", "period_start")) == [
        ("spend_limit", NOV_1),
        ("spend_limit", DEC_1),
    ]


def test_the_check_and_the_usage_alerts_announce_a_spend_limit_alike(api, catalog, acme):
    """The same situation, reached by two customers: acme's check of one more
    prompt is what passes its limit; globex has used that prompt and its usage
    check (after ingestion) finds the limit passed. A webhook consumer gets the
    same data from either."""
    # given: two customers on 19.99 with 200 prompts included, 0.05 a prompt over
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    for customer in (acme, globex):
        subscribe(customer, "ai_assistant", NOV_1)
        limit(customer, "30.00", "soft")
    WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/hooks", event_types=["alert.spend_limit"]
    )
    ingest(repeat(400, "prompt", NOW, prefix="a"), now=NOW)
    ingest(repeat(401, "prompt", NOW, prefix="g", customer="globex"), now=NOW)

    # when: 29.99 + 0.05 by each path
    assert check(api, "prompts", 1).json()["allowed"] is True
    usage_alerts_check(customer_ids=[globex.pk], now=NOW)

    # then
    by_check = Alert.objects.get(customer=acme)
    # (globex's usage also passed thresholds of its included prompts)
    by_usage = Alert.objects.get(customer=globex, kind="spend_limit")
    for alert in (by_check, by_usage):
        assert (alert.kind, alert.key, alert.period_start) == ("spend_limit", "spend_limit", NOV_1)
    assert by_check.payload == by_usage.payload == SPEND_LIMIT_30_04
    sent = {
        body["customer"]: (body["type"], body["data"])
        for body in (json.loads(d.body) for d in WebhookDelivery.objects.all())
    }
    assert sent == {
        "acme": ("alert.spend_limit", SPEND_LIMIT_30_04),
        "globex": ("alert.spend_limit", SPEND_LIMIT_30_04),
    }


def test_a_soft_spend_limit_within_the_limit_raises_nothing(api, catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    limit(acme, "30.00", "soft")
    ingest(repeat(400, "prompt", NOW, prefix="p"), now=NOW)
    assert answer(api, "prompts", 0.2) == result(True, "overage", "ok", "400", "200", "0")
