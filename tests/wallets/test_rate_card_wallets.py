"""Rate cards on wallet-drawn charges (issue 50, S25): a credits card draws each
event's row (5 credits per 1,000 gpt-4o tokens, 1 per 1,000 otherwise: 130
credits for 20,000 + 30,000 tokens); a balance card draws each row's price,
its tiers counting that row's usage alone; `check` prices a question with the
row of its properties (the default row without them)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.usage.ingestion import events_ingest
from plans.pricing import GRADUATED, PER_UNIT, PricingSpec, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.services import meter_create
from plans.validation import ChargeSpec
from tests.factories import llm_tokens_meter, published_version, subscribe
from wallets.ledger import credits_grant
from wallets.models import Wallet
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
GPT = (("model", "gpt-4o"),)


@pytest.fixture
def llm_tokens(db):
    return llm_tokens_meter()


def tokens(*sent: tuple[str | None, int], prefix: str = "e") -> None:
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": NOW.isoformat(),
            "properties": {"tokens": n} | ({"model": model} if model else {}),
        }
        for i, (model, n) in enumerate(sent)
    ]
    result = events_ingest(events=events, now=NOW)
    assert (result.rejected, result.duplicates) == ([], 0)


def card(model: str, rates: tuple, **terms) -> ChargeSpec:
    return ChargeSpec("llm_tokens", model, price_by=("model",), rates=rates, **terms)


def check(api, body: dict) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api.post("/api/v1/customers/acme/check", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_s25_a_credits_card_draws_130_credits(api, acme, llm_tokens):
    published_version(
        "tokens",
        charges=(
            card(
                "credits",
                (
                    RateSpec(when=GPT, credits_per_unit=D(5), per=D(1000)),
                    RateSpec(when=(), credits_per_unit=D(1), per=D(1000)),
                ),
            ),
        ),
    )
    subscribe(acme, "tokens")
    credits_grant(customer=acme, credits=D(1000), now=NOW)

    tokens(("gpt-4o", 12_000), ("gpt-4o", 8_000), ("llama-3", 25_000), (None, 5_000))

    assert Wallet.objects.get(customer=acme, kind="credits").balance == D(1000 - 130)
    # 870 credits cover 174,000 gpt-4o tokens (5 per 1,000), 870,000 of another model.
    gpt = check(api, {"meter": "llm_tokens", "quantity": 1000, "properties": {"model": "gpt-4o"}})
    assert (gpt["allowed"], gpt["remaining"]) == (True, "174000")
    other = check(api, {"meter": "llm_tokens", "quantity": 1000})
    assert (other["allowed"], other["remaining"]) == (True, "870000")


def test_a_credits_card_refuses_the_row_the_balance_cannot_pay(api, acme, llm_tokens):
    published_version(
        "tokens",
        charges=(
            card(
                "credits",
                (
                    RateSpec(when=GPT, credits_per_unit=D(5), per=D(1000)),
                    RateSpec(when=(), credits_per_unit=D(1), per=D(1000)),
                ),
            ),
        ),
    )
    subscribe(acme, "tokens")
    credits_grant(customer=acme, credits=D(3), now=NOW)
    asked = {"meter": "llm_tokens", "quantity": 1000}
    assert check(api, asked | {"properties": {"model": "gpt-4o"}})["allowed"] is False
    assert check(api, asked | {"properties": {"model": "llama-3"}})["allowed"] is True


def test_a_balance_card_draws_each_rows_price_its_tiers_counting_its_own_usage(
    api, acme, llm_tokens
):
    # gpt-4o: 0.01 a token for the first 1,000, then 0.005; others 0.002 a token.
    graduated = PricingSpec(
        scheme=GRADUATED,
        tiers=(TierSpec(D(1000), D("0.01")), TierSpec(None, D("0.005"))),
    )
    flat = PricingSpec(scheme=PER_UNIT, unit_price=D("0.002"))
    published_version(
        "tokens",
        charges=(card("balance", (RateSpec(when=GPT, pricing=graduated), RateSpec(pricing=flat))),),
    )
    subscribe(acme, "tokens")
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOW)

    # 5,000 other tokens first: they do not use up gpt-4o's first tier.
    tokens((None, 5_000), prefix="a")
    tokens(("gpt-4o", 800), prefix="b")
    tokens(("gpt-4o", 400), prefix="c")

    # 10.00 + 8.00 + (2.00 + 1.00) = 21.00
    assert Wallet.objects.get(customer=acme, kind="money").balance == D("79.00")
    # 79.00 pays 39,500 more tokens of another model (0.002 each); 15,800 more
    # gpt-4o tokens (0.005 each, its second tier) and not 15,801.
    other = check(api, {"meter": "llm_tokens", "quantity": 39_500})
    assert (other["allowed"], other["remaining"]) == (True, "39500")
    asked = {"meter": "llm_tokens", "properties": {"model": "gpt-4o"}}
    assert check(api, asked | {"quantity": 15_800})["allowed"] is True
    assert check(api, asked | {"quantity": 15_801})["allowed"] is False
    assert check(api, {"meter": "llm_tokens", "quantity": 39_501})["allowed"] is False


def entitlements(api) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api.get("/api/v1/customers/acme/entitlements")
    assert response.status_code == 200, response.content[:300]
    return response.json()["meters"]["llm_tokens"]


def test_entitlements_show_a_card_as_check_answers_without_properties(api, acme, llm_tokens):
    # The default row in tiers (0.01 a token for the first 1,000, then 0.005),
    # gpt-4o's flat: entitlements read the default row, its tiers counting its
    # own usage, as a check without properties does.
    graduated = PricingSpec(
        scheme=GRADUATED,
        tiers=(TierSpec(D(1000), D("0.01")), TierSpec(None, D("0.005"))),
    )
    flat = PricingSpec(scheme=PER_UNIT, unit_price=D("0.002"))
    published_version(
        "tokens",
        charges=(card("balance", (RateSpec(when=GPT, pricing=flat), RateSpec(pricing=graduated))),),
    )
    subscribe(acme, "tokens")
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOW)
    # gpt-4o 10,000 tokens: 20.00; others 800 at 0.01: 8.00. 72.00 left.
    tokens(("gpt-4o", 10_000), (None, 800))

    standing = entitlements(api)
    asked = check(api, {"meter": "llm_tokens", "quantity": 1})
    # The default row's usage (800, not the 10,800 of the meter) and the balance.
    assert (standing["used"], standing["balance"], standing["allowed"]) == ("800", "72.00", True)
    assert {k: asked[k] for k in standing} == standing


def test_a_spend_limit_prices_a_tiered_row_at_that_rows_own_usage(api, acme, llm_tokens):
    # given: gpt-4o graduated (0.01 a token for the first 1,000, then 0.005), others
    # 0.002; 5,000 other tokens drew 10.00 (gpt-4o's row untouched); a hard limit
    graduated = PricingSpec(
        scheme=GRADUATED, tiers=(TierSpec(D(1000), D("0.01")), TierSpec(None, D("0.005")))
    )
    flat = PricingSpec(scheme=PER_UNIT, unit_price=D("0.002"))
    published_version(
        "tokens",
        charges=(card("balance", (RateSpec(when=GPT, pricing=graduated), RateSpec(pricing=flat))),),
    )
    subscribe(acme, "tokens")
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOW)
    tokens((None, 5_000), prefix="a")
    asked = {"meter": "llm_tokens", "quantity": 500, "properties": {"model": "gpt-4o"}}

    # then: 500 gpt-4o tokens are in their row's first tier, 5.00: a spend of 15.00
    acme.spend_limit, acme.spend_limit_mode = D("14.00"), "hard"
    acme.save()
    refused = check(api, asked)
    assert (refused["allowed"], refused["reason"]) == (False, "spend_limit_reached")
    acme.spend_limit = D("15.00")
    acme.save()
    assert check(api, asked)["allowed"] is True


def test_an_overlong_combination_is_drawn_as_the_close_prices_it(api, acme, db):
    # given: a card by model on a meter grouping by model and prompt; an event whose
    # prompt makes its combination too long to keep (it counts as no values)
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["model", "prompt"],
    )
    flat = PricingSpec(scheme=PER_UNIT, unit_price=D("0.01"))
    default = PricingSpec(scheme=PER_UNIT, unit_price=D("0.04"))
    published_version(
        "tokens",
        charges=(card("balance", (RateSpec(when=GPT, pricing=flat), RateSpec(pricing=default))),),
    )
    subscribe(acme, "tokens")
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOW)
    event = {
        "id": "long",
        "customer": "acme",
        "event_name": "llm.tokens",
        "timestamp": NOW.isoformat(),
        "properties": {"tokens": 100, "model": "gpt-4o", "prompt": "p" * 500},
    }
    assert not events_ingest(events=[event], now=NOW).rejected

    # then: drawn at the default row (4.00), the row /usage counts it under (the
    # wallet paid: nothing left to bill)
    assert Wallet.objects.get(customer=acme, kind="money").balance == D("96.00")
    with time_machine.travel(NOW, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
    assert usage["lines"][0]["rates"] == [{"group": {}, "quantity": "100", "amount": "0.00"}]
