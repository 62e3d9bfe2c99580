"""An open hold counts as used by every later check and hold, under each
consumption model and limit: a hard cap's included units, a credit wallet's
balance, the customer's spend limit and the budget it set itself; /entitlements
stands as check does; released, it counts for nothing again."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.limits import limits_set
from customers.models import Customer
from plans.models import Meter
from plans.pricing import GRADUATED, PER_UNIT, PricingSpec, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.services import meter_create
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    credits,
    hard_cap,
    llm_tokens_meter,
    overage,
    published_version,
    subscribe,
)
from wallets.ledger import credits_grant
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


@pytest.fixture
def runs(db):
    return meter_create(
        code="gpu_seconds",
        name="GPU seconds",
        event_name="gpu",
        aggregation=Meter.SUM,
        value_property="seconds",
    )


def on_plan(charge, **customer) -> Customer:
    published_version("gpu", charges=(charge,))
    found = CustomerFactory(external_id="acme", **customer)
    subscribe(found, "gpu", NOV_1)
    return found


def ask(api, path: str, body: dict) -> dict:
    with time_machine.travel(NOW, tick=False):
        return api.post(path, body, format="json").json()


def hold(api, quantity: str, key: str) -> dict:
    body = {"meter": "gpu_seconds", "quantity": quantity, "key": key}
    return ask(api, "/api/v1/customers/acme/holds", body)


def check(api, quantity: str) -> dict:
    return ask(api, "/api/v1/customers/acme/check", {"meter": "gpu_seconds", "quantity": quantity})


def entitled(api) -> dict:
    """The meter's standing on /entitlements."""
    with time_machine.travel(NOW, tick=False):
        return api.get("/api/v1/customers/acme/entitlements").json()["meters"]["gpu_seconds"]


def release(api, held: dict) -> None:
    ask(api, f"/api/v1/holds/{held['id']}/release", {"reason": "cancelled"})


def test_a_hard_caps_included_units(api, runs):
    on_plan(hard_cap("gpu_seconds", 100))

    first = hold(api, "60", "a")
    assert (first["status"], first["amount"]) == ("open", None)
    refused = check(api, "50")
    assert (refused["allowed"], refused["reason"], refused["used"], refused["remaining"]) == (
        False,
        "cap_reached",
        "60",
        "40",
    )
    assert hold(api, "50", "b")["reason"] == "cap_reached"
    # /entitlements stands as check does: the hold used.
    assert {k: entitled(api)[k] for k in ("used", "remaining", "allowed")} == {
        "used": "60",
        "remaining": "40",
        "allowed": True,
    }
    release(api, first)
    assert check(api, "100")["allowed"] is True
    assert (entitled(api)["used"], entitled(api)["remaining"]) == ("0", "100")


def test_a_credit_wallets_balance(api, runs):
    acme = on_plan(credits("gpu_seconds", 2))
    credits_grant(customer=acme, credits=D(100), now=NOV_1)

    first = hold(api, "35", "a")  # 70 credits
    assert first["status"] == "open"
    refused = hold(api, "20", "b")  # 40 more: 30 left
    assert (refused["reason"], refused["balance"], refused["remaining"]) == (
        "insufficient_credits",
        "30",
        "15",
    )
    assert check(api, "15")["allowed"] is True
    assert (entitled(api)["used"], entitled(api)["balance"]) == ("35", "30")
    release(api, first)
    assert check(api, "50")["allowed"] is True
    assert (entitled(api)["used"], entitled(api)["balance"]) == ("0", "100")


def test_the_spend_limit_and_the_customers_budget(api, runs):
    acme = on_plan(overage("gpu_seconds", 0, "0.10"), spend_limit=D("10.00"))
    Customer.objects.filter(pk=acme.pk).update(spend_limit_mode="hard")

    first = hold(api, "60", "a")  # 6.00
    refused = check(api, "50")  # 5.00 more: past 10.00
    assert (refused["reason"], refused["spend_remaining"]) == ("spend_limit_reached", "4.00")
    release(api, first)
    assert check(api, "50")["allowed"] is True

    limits_set(
        customer=acme,
        document={"budget": {"amount": "3.00", "action": "stop"}},
        by="tests",
        via="api",
        now=NOW,
    )
    assert hold(api, "20", "c")["status"] == "open"  # 2.00
    assert check(api, "15")["reason"] == "customer_budget_reached"  # 1.50 more
    assert check(api, "10")["allowed"] is True


def test_a_rate_card_row_in_tiers_counts_the_holds_it_prices_whatever_their_values(api, db):
    llm_tokens_meter()
    graduated = PricingSpec(
        GRADUATED, tiers=(TierSpec(D(100), D("1.00")), TierSpec(None, D("0.10")))
    )
    rates = (
        RateSpec(when=(("model", "o3"),), pricing=PricingSpec(PER_UNIT, unit_price=D("2.00"))),
        RateSpec(when=(), pricing=graduated),
    )
    card = ChargeSpec("llm_tokens", "balance", price_by=("model",), rates=rates)
    published_version("tokens", charges=(card,))
    acme = CustomerFactory(external_id="acme")
    subscribe(acme, "tokens", NOV_1)
    money_top_up(customer=acme, amount=D("200.00"), currency="USD", now=NOV_1)

    def hold_of(model: str, quantity: str, key: str) -> dict:
        body = {"meter": "llm_tokens", "quantity": quantity, "key": key}
        return ask(api, "/api/v1/customers/acme/holds", body | {"properties": {"model": model}})

    # Both priced by the default row: the second's 40 start where the first's 80 end
    # (20 at 1.00, 20 at 0.10), whatever model each names.
    assert hold_of("llama", "80", "a")["amount"] == "80.00"
    assert hold_of("mistral", "40", "b")["amount"] == "22.00"
    # o3's own row counts neither.
    assert hold_of("o3", "10", "c")["amount"] == "20.00"


def test_a_spend_limit_counts_what_a_held_run_leaves_for_a_dry_credit_wallet_to_bill(api, runs):
    # given: 4 credits, a second at 1 credit, what the credits cannot pay billed at
    # 0.50 a second, a hard spend limit of 10.00
    charge = ChargeSpec(
        "gpu_seconds",
        "credits",
        credits_per_unit=D(1),
        when_exhausted="bill",
        pricing=PricingSpec(PER_UNIT, unit_price=D("0.50")),
    )
    acme = on_plan(charge, spend_limit=D("10.00"))
    Customer.objects.filter(pk=acme.pk).update(spend_limit_mode="hard")
    credits_grant(customer=acme, credits=D(4), now=NOV_1)

    # when: a run holds 16 seconds: 4 paid by the credits, 12 billed (6.00)
    first = hold(api, "16", "a")

    # then: 8 seconds more (4.00) reach the limit, 9 (4.50) pass it
    assert first["status"] == "open"
    assert check(api, "8")["allowed"] is True
    refused = check(api, "9")
    assert (refused["reason"], refused["spend_remaining"]) == ("spend_limit_reached", "4.00")
    release(api, first)
    assert check(api, "20")["allowed"] is True
