"""Draw-down at ingestion: what each stored event costs on the customer's credit
or money wallet, drawn in the ingest transaction, block by block in draw order;
expiry; plan credits per period; auto top-up. After every scenario the wallet
invariant holds (tests.wallets.support.assert_wallet_consistent)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.invoicing.close import grant_period_credits, periods_close
from billing.models import Subscription
from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from plans.models import CreditPack
from plans.selectors import version_spec
from plans.services import credit_pack_update
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    balance,
    credits,
    published_version,
    subscribe,
)
from tests.wallets.support import (
    assert_all_wallets_consistent,
    assert_wallet_consistent,
    event,
    ingest,
    repeat,
    wallet_of,
)
from wallets.ledger import credits_expire, credits_grant, period_credits_grant
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet
from wallets.purchases import auto_top_up_set, credit_pack_purchase, money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_30 = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_15 = datetime(2026, 12, 15, tzinfo=UTC)
DEC_31 = datetime(2026, 12, 31, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
# November as an alert states it: its instants, and its days in the customer's zone.
NOVEMBER = {
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
}


@pytest.fixture
def beta(db):
    return CustomerFactory(external_id="beta", name="Beta LLC")


def usage_entries(wallet: Wallet) -> list[tuple]:
    return [
        (e.block_id, e.amount, e.balance_after, e.meter, e.quantity)
        for e in wallet.ledger.filter(kind=LedgerEntry.USAGE).order_by("id")
    ]


def remaining(*blocks: CreditBlock) -> list[D]:
    return [CreditBlock.objects.get(pk=b.pk).remaining for b in blocks]


def runs(count: int, *, prefix: str, at: datetime = NOW, customer: str = "acme") -> None:
    ingest(repeat(count, "agent.run", at, prefix=prefix, customer=customer), now=at)


# What draws nothing


def test_a_customer_without_a_subscription_draws_nothing(catalog, acme):
    credits_grant(customer=acme, credits=D(10), now=NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    runs(3, prefix="r")
    ingest([event("t", "llm.completion", NOW, input_tokens=1000)], now=NOW)

    assert wallet_of(acme).balance == 10
    assert wallet_of(acme, "money", "USD").balance == D("10.00")
    assert LedgerEntry.objects.filter(kind="usage").count() == 0
    assert UncoveredUsage.objects.count() == 0
    assert_all_wallets_consistent()


def test_an_ended_subscription_draws_nothing(catalog, acme):
    from billing.subscriptions.lifecycle import subscription_cancel

    subscription = subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_1)
    subscription_cancel(subscription=subscription, effective="immediate", at=NOV_5)

    runs(3, prefix="r")

    assert wallet_of(acme).balance == 10
    assert UncoveredUsage.objects.count() == 0


def test_an_overage_meter_draws_nothing(catalog, acme):
    subscribe(acme, "ai_assistant", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    ingest(repeat(300, "prompt", NOW, prefix="p"), now=NOW)

    assert wallet_of(acme).balance == 10
    assert wallet_of(acme, "money", "USD").balance == D("10.00")
    assert LedgerEntry.objects.filter(kind="usage").count() == 0
    assert UncoveredUsage.objects.count() == 0
    assert_all_wallets_consistent()


def test_a_meter_the_plan_does_not_charge_draws_nothing(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_1)

    ingest([event("t", "llm.completion", NOW, input_tokens=1000)], now=NOW)
    ingest(repeat(3, "sms.sent", NOW, prefix="s"), now=NOW)

    assert wallet_of(acme).balance == 10
    assert not Wallet.objects.filter(kind="money").exists()


def test_a_duplicate_draws_once(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(100), now=NOV_1)
    run = event("run-1", "agent.run", NOW)

    first = events_ingest(events=[run, run, event("run-2", "agent.run", NOW)], now=NOW)
    again = events_ingest(events=[run], now=NOW)

    assert (first.accepted, first.duplicates, again.accepted, again.duplicates) == (2, 1, 0, 1)
    wallet = wallet_of(acme)
    assert wallet.balance == 96
    assert usage_entries(wallet) == [(CreditBlock.objects.get().pk, D(-4), D(96), "agent_runs", 2)]
    assert_wallet_consistent(wallet)


def test_a_rejected_event_draws_nothing(catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    result = events_ingest(
        events=[
            event("no-tokens", "llm.completion", NOW),
            event("bad-tokens", "llm.completion", NOW, input_tokens="many"),
            event("too-old", "llm.completion", NOW - timedelta(days=40), input_tokens=10**6),
            event("too-new", "llm.completion", NOW + timedelta(hours=1), input_tokens=10**6),
            event("ok", "llm.completion", NOW, input_tokens=400_000),
        ],
        now=NOW,
    )

    assert result.accepted == 1
    assert [r.id for r in result.rejected] == ["no-tokens", "bad-tokens", "too-old", "too-new"]
    wallet = wallet_of(acme, "money", "USD")
    assert wallet.balance == D("9.00")
    assert_wallet_consistent(wallet)


# What draws, exactly


def test_a_batch_mixing_customers_draws_each_wallet(catalog, acme, beta):
    gamma = CustomerFactory(external_id="gamma", name="Gamma")
    subscribe(acme, "runner", NOV_1)
    subscribe(beta, "prepaid", NOV_1)
    subscribe(gamma, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(100), now=NOV_1)
    money_top_up(customer=beta, amount=D("10.00"), currency="USD", now=NOV_1)
    credits_grant(customer=gamma, credits=D(5), now=NOV_1)
    batch = []
    for i in range(10):
        batch.append(event(f"a{i}", "agent.run", NOW, customer="acme"))
        batch.append(event(f"b{i}", "llm.completion", NOW, customer="beta", input_tokens=123_457))
        batch.append(event(f"g{i}", "agent.run", NOW, customer="gamma"))

    assert events_ingest(events=batch, now=NOW).accepted == 30

    # acme: 10 runs x 2 credits; beta: 1,234,570 tokens x 0.0000025 = 3.086425;
    # gamma: 5 credits pay for 2.5 runs, 7.5 runs (15 credits) uncovered.
    assert wallet_of(acme).balance == 80
    assert wallet_of(beta, "money", "USD").balance == D("6.913575")
    assert wallet_of(gamma).balance == 0
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.customer, uncovered.meter, uncovered.quantity, uncovered.shortfall) == (
        gamma,
        "agent_runs",
        D("7.5"),
        D(15),
    )
    assert usage_entries(wallet_of(gamma)) == [
        (CreditBlock.objects.get(wallet__customer=gamma).pk, D(-5), D(0), "agent_runs", D("2.5"))
    ]
    assert_all_wallets_consistent()


def test_one_event_draws_both_wallets(catalog, acme):
    """Two meters read the same event: runs cost credits, their tokens cost money."""
    MeterFactory(
        code="agent_tokens", event_name="agent.run", aggregation="sum", value_property="tokens"
    )
    published_version(
        "hybrid", charges=(credits("agent_runs", 2), balance("agent_tokens", "0.0001"))
    )
    subscribe(acme, "hybrid", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_1)
    money_top_up(customer=acme, amount=D("5.00"), currency="USD", now=NOV_1)

    ingest(
        [event("r1", "agent.run", NOW, tokens=1500), event("r2", "agent.run", NOW, tokens=2500)],
        now=NOW,
    )

    assert wallet_of(acme).balance == 6
    assert wallet_of(acme, "money", "USD").balance == D("4.60")
    assert_all_wallets_consistent()


def test_money_short_for_an_event_records_the_shortfall(api, catalog, acme):
    import time_machine

    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("1.00"), currency="USD", now=NOV_1)

    ingest([event("t", "llm.completion", NOW, input_tokens=1_000_000)], now=NOW)  # 2.50

    assert wallet_of(acme, "money", "USD").balance == 0
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.meter, uncovered.quantity, uncovered.shortfall) == (
        "gpt4o_input_tokens",
        D(600_000),
        D("1.50"),
    )
    with time_machine.travel(NOW, tick=False):
        line = api.get("/api/v1/customers/acme/usage").json()["lines"][0]
    assert (line["quantity"], line["uncovered"]) == ("1000000", "600000")
    # Finance hears of it once, with money written as money.
    from billing.models import Alert

    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.period_start) == ("low_balance", "money:USD:0", NOV_1)
    assert alert.payload == {
        "wallet": "money",
        "currency": "USD",
        "balance": "0.00",
        "threshold": "0.00",
        **NOVEMBER,
    }
    assert_all_wallets_consistent()


def test_money_is_drawn_to_the_ten_decimal_price(catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("1.00"), currency="USD", now=NOV_1)

    ingest([event("t", "llm.completion", NOW, input_tokens=3)], now=NOW)

    assert wallet_of(acme, "money", "USD").balance == D("0.9999925")


def test_money_is_drawn_at_a_price_per_million_tokens(catalog, acme):
    # given: tokens at 2.50 per 1,000,000 drawn from money
    published_version("per_million", charges=(balance("tokens", "2.50", "1000000"),))
    subscribe(acme, "per_million", NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    # when: 500,000 tokens (1.25), then 3 more (0.0000075)
    ingest([event("t1", "tokens", NOW, n=500_000)], now=NOW)
    ingest([event("t2", "tokens", NOW + timedelta(minutes=1), n=3)], now=NOW)

    # then
    assert [e[1] for e in usage_entries(wallet_of(acme, "money", "USD"))] == [
        D("-1.25"),
        D("-0.0000075"),
    ]
    assert wallet_of(acme, "money", "USD").balance == D("8.7499925")
    assert_all_wallets_consistent()


def test_graduated_balance_draws_the_increment_across_tiers(catalog, acme):
    """Tiers: up to 1,000 at 0.01; up to 2,000 at 0.005 plus a flat 1.00; beyond at
    0.001. Each event costs what it adds to the period's price."""
    subscribe(acme, "graduated", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)
    wallet = wallet_of(acme, "money", "USD")

    # 900 units: 9.00, all in the first tier.
    ingest([event("t1", "tokens", NOW, n=900)], now=NOW)
    assert wallet_of(acme, "money", "USD").balance == D("91.00")

    # 900 -> 1,200: 100 x 0.01 + 200 x 0.005 + the second tier's flat 1.00 = 3.00.
    ingest([event("t2", "tokens", NOW + timedelta(minutes=1), n=300)], now=NOW)
    assert wallet_of(acme, "money", "USD").balance == D("88.00")

    # One batch, two events: 1,200 -> 2,200 is 800 x 0.005 + 200 x 0.001 = 4.20;
    # then 2,200 -> 2,250 is 50 x 0.001 = 0.05.
    later = NOW + timedelta(minutes=2)
    ingest(
        [
            event("t4", "tokens", later + timedelta(seconds=1), n=50),
            event("t3", "tokens", later, n=1000),
        ],
        now=later,
    )
    assert [e[1] for e in usage_entries(wallet)] == [
        D("-9.00"),
        D("-3.00"),
        D("-4.25"),
    ]
    # The period's whole price: 10.00 + 5.00 + 1.00 + 0.25 = 16.25 drawn in all.
    assert wallet_of(acme, "money", "USD").balance == D("83.75")
    assert_wallet_consistent(wallet)


def test_graduated_balance_starts_over_in_the_next_period_before_the_close(catalog, acme):
    """After November ends and before the close advances the subscription, a
    December event is priced from December's first tier, not on top of November."""
    subscribe(acme, "graduated", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)
    ingest([event("nov", "tokens", NOW, n=1000)], now=NOW)  # 10.00
    assert wallet_of(acme, "money", "USD").balance == D("90.00")

    december = DEC_1 + timedelta(minutes=30)
    ingest([event("dec", "tokens", december - timedelta(minutes=5), n=100)], now=december)

    # 100 x 0.01, not 100 x 0.005 + the second tier's flat 1.00
    assert wallet_of(acme, "money", "USD").balance == D("89.00")
    assert_wallet_consistent(wallet_of(acme, "money", "USD"))


def test_graduated_balance_one_event_across_all_tiers(catalog, acme):
    subscribe(acme, "graduated", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)

    ingest([event("t1", "tokens", NOW, n=2500)], now=NOW)

    # 10.00 + (5.00 + 1.00) + 0.50
    assert wallet_of(acme, "money", "USD").balance == D("83.50")
    assert_wallet_consistent(wallet_of(acme, "money", "USD"))


def test_s15_draw_order_priority_then_soonest_expiry_then_oldest(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    late = credits_grant(customer=acme, credits=D(100), priority=10, expires_at=DEC_15, now=NOV_1)
    soon = credits_grant(customer=acme, credits=D(100), priority=10, expires_at=NOV_30, now=NOV_1)
    old = credits_grant(customer=acme, credits=D(100), kind="paid", price=D(1), now=NOV_1)
    young = credits_grant(customer=acme, credits=D(100), kind="paid", price=D(1), now=NOV_5)
    dated = credits_grant(customer=acme, credits=D(100), expires_at=DEC_31, now=NOV_5)
    late, soon, old, young, dated = (g[0] for g in (late, soon, old, young, dated))

    runs(225, prefix="r")  # 450 credits

    assert remaining(soon, late, dated, old, young) == [0, 0, 0, 0, 50]
    wallet = wallet_of(acme)
    assert usage_entries(wallet) == [
        (soon.pk, D(-100), D(400), "agent_runs", 50),
        (late.pk, D(-100), D(300), "agent_runs", 50),
        (dated.pk, D(-100), D(200), "agent_runs", 50),
        (old.pk, D(-100), D(100), "agent_runs", 50),
        (young.pk, D(-50), D(50), "agent_runs", 25),
    ]
    assert_wallet_consistent(wallet)


def test_s15_promotional_then_paid(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    promo, _ = credits_grant(
        customer=acme, credits=D(1000), priority=10, expires_at=NOV_30, now=NOV_1
    )
    paid, _ = credits_grant(
        customer=acme, credits=D(5000), kind="paid", price=D("50.00"), priority=50, now=NOV_1
    )

    runs(750, prefix="r")  # 1,500 credits

    assert remaining(promo, paid) == [0, 4500]
    assert wallet_of(acme).balance == 4500
    assert_wallet_consistent(wallet_of(acme))


def test_blocks_not_yet_in_effect_or_past_expiry_are_not_drawn(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    future, _ = credits_grant(customer=acme, credits=D(100), effective_at=DEC_1, now=NOV_1)
    past, _ = credits_grant(customer=acme, credits=D(100), expires_at=NOV_5, now=NOV_1)
    usable, _ = credits_grant(customer=acme, credits=D(10), now=NOV_1)

    runs(15, prefix="r")  # 30 credits, at NOW: only `usable` may pay

    assert remaining(future, past, usable) == [100, 100, 0]
    assert wallet_of(acme).balance == 200
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.quantity, uncovered.shortfall) == (D(10), D(20))
    assert_wallet_consistent(wallet_of(acme))

    # The expiry catches up with the past block, dated at its expiry.
    assert credits_expire(now=NOW) == 1
    entry = LedgerEntry.objects.get(kind="expiry")
    assert (entry.block_id, entry.amount, entry.balance_after, entry.occurred_at) == (
        past.pk,
        D(-100),
        D(100),
        NOV_5,
    )

    # From December 1 the future block pays.
    december = DEC_1 + timedelta(hours=1)
    runs(5, prefix="d", at=december)
    assert remaining(future, past, usable) == [90, 0, 0]
    assert wallet_of(acme).balance == 90
    assert_wallet_consistent(wallet_of(acme))


def test_a_paid_block_expires_with_its_remainder(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    paid, invoice = credits_grant(
        customer=acme, credits=D(5000), kind="paid", price=D("50.00"), expires_at=NOV_30, now=NOV_1
    )
    runs(500, prefix="r")  # 1,000 credits

    assert credits_expire(now=NOV_30 - timedelta(seconds=1)) == 0
    assert credits_expire(now=DEC_1) == 1
    assert credits_expire(now=DEC_15) == 0

    paid.refresh_from_db()
    assert (paid.remaining, paid.expired_at, paid.price_paid) == (0, DEC_1, D("50.00"))
    wallet = wallet_of(acme)
    assert [(e.kind, e.amount, e.balance_after) for e in wallet.ledger.order_by("id")] == [
        ("purchase", D(5000), D(5000)),
        ("usage", D(-1000), D(4000)),
        ("expiry", D(-4000), D(0)),
    ]
    assert invoice.total == D("50.00")
    assert_wallet_consistent(wallet)


# Plan credits per period


@pytest.fixture
def included_credits(catalog):
    """No base fee, 1,000 credits granted each month, 2 credits a run."""
    published_version(
        "included_credits", credits_per_period=D(1000), charges=(credits("agent_runs", 2),)
    )


def period_blocks(customer) -> list[tuple]:
    return list(
        CreditBlock.objects.filter(wallet__customer=customer, source="period_grant")
        .order_by("id")
        .values_list("amount", "remaining", "effective_at", "expires_at", "period_start")
    )


def test_plan_credits_each_period_once(included_credits, acme):
    subscription = subscribe(acme, "included_credits", NOV_1)
    assert period_blocks(acme) == [(D(1000), D(1000), NOV_1, DEC_1, NOV_1)]
    runs(150, prefix="r")  # 300 credits

    periods_close(as_of=DEC_1)
    periods_close(as_of=DEC_1)
    subscription.refresh_from_db()
    grant_period_credits(subscription, version_spec(version=subscription.version))
    assert (
        period_credits_grant(
            subscription=subscription,
            credits=D(1000),
            period_start=DEC_1,
            period_end=JAN_1,
            now=DEC_1,
        )
        is None
    )

    assert period_blocks(acme) == [
        (D(1000), D(700), NOV_1, DEC_1, NOV_1),
        (D(1000), D(1000), DEC_1, JAN_1, DEC_1),
    ]
    assert wallet_of(acme).balance == 1700
    assert_wallet_consistent(wallet_of(acme))

    # November's unused credits expire at its end; December's stay.
    assert credits_expire(now=DEC_1) == 1
    assert wallet_of(acme).balance == 1000
    assert [(e.kind, e.amount, e.balance_after) for e in wallet_of(acme).ledger.order_by("id")] == [
        ("period_grant", D(1000), D(1000)),
        ("usage", D(-300), D(700)),
        ("period_grant", D(1000), D(1700)),
        ("expiry", D(-700), D(1000)),
    ]

    # December's usage draws December's block.
    runs(10, prefix="d", at=DEC_1 + timedelta(hours=2))
    assert period_blocks(acme)[1][1] == D(980)
    assert_wallet_consistent(wallet_of(acme))


def test_plan_credits_are_not_granted_after_the_subscription_ends(included_credits, acme):
    from billing.subscriptions.lifecycle import subscription_cancel

    subscription = subscribe(acme, "included_credits", NOV_1)
    subscription_cancel(subscription=subscription, effective="period_end", at=NOV_5)

    periods_close(as_of=DEC_1)

    assert Subscription.objects.get().status == "ended"
    assert len(period_blocks(acme)) == 1


# Auto top-up


def auto(customer, threshold: int, pack: str = "runs_100", enabled: bool = True):
    return auto_top_up_set(
        customer=customer,
        enabled=enabled,
        threshold=D(threshold),
        pack=CreditPack.objects.get(code=pack),
    )


def purchases() -> list[tuple]:
    return list(
        Invoice.objects.filter(reason="purchase").order_by("id").values_list("number", "total")
    )


def test_auto_top_up_buys_one_pack_per_crossing(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credit_pack_purchase(customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_1)
    auto(acme, 20)

    # 40 runs: 100 -> 20, at the threshold: one pack, 120.
    runs(40, prefix="a")
    assert wallet_of(acme).balance == 120
    # 49 runs: 120 -> 22, above it: nothing.
    runs(49, prefix="b")
    assert wallet_of(acme).balance == 22
    # 1 run: 22 -> 20: one pack.
    runs(1, prefix="c")
    assert wallet_of(acme).balance == 120
    assert [t for _, t in purchases()] == [D("99.00")] * 3
    kinds = [e.kind for e in wallet_of(acme).ledger.order_by("id")]
    # The 49 runs drew the first pack's last 20 and 78 of the second.
    assert kinds == [
        "purchase",
        "usage",
        "auto_top_up",
        "usage",
        "usage",
        "usage",
        "auto_top_up",
    ]
    assert_wallet_consistent(wallet_of(acme))


def test_auto_top_up_when_an_event_finds_the_balance_short(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    auto(acme, 20)

    # At 0, the first run buys a pack and is paid from it: 98, above the threshold.
    runs(1, prefix="a")
    wallet = wallet_of(acme)
    assert wallet.balance == 98
    assert [(e.kind, e.amount, e.balance_after) for e in wallet.ledger.order_by("id")] == [
        ("auto_top_up", D(100), D(100)),
        ("usage", D(-2), D(98)),
    ]
    assert UncoveredUsage.objects.count() == 0
    assert_wallet_consistent(wallet)


def test_an_event_larger_than_a_pack(catalog, acme):
    """At 0 an event of 150 credits finds the balance short: one pack (100) pays what
    it can and 50 go uncovered; the balance then crossed the threshold on the way
    down, which buys one more pack. One pack per short event and one per crossing,
    never a loop."""
    published_version("token_credits", charges=(credits("tokens", 1),))
    subscribe(acme, "token_credits", NOV_1)
    auto(acme, 20)

    ingest([event("big", "tokens", NOW, n=150)], now=NOW)

    wallet = wallet_of(acme)
    assert wallet.balance == 100
    assert [(e.kind, e.amount, e.balance_after) for e in wallet.ledger.order_by("id")] == [
        ("auto_top_up", D(100), D(100)),
        ("usage", D(-100), D(0)),
        ("auto_top_up", D(100), D(100)),
    ]
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.quantity, uncovered.shortfall) == (D(50), D(50))
    assert purchases() == [("INV-2026-000001", D("99.00")), ("INV-2026-000002", D("99.00"))]
    assert_wallet_consistent(wallet)


def test_auto_top_up_off_buys_nothing(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(30), now=NOV_1)
    auto(acme, 20, enabled=False)

    runs(20, prefix="a")

    assert wallet_of(acme).balance == 0
    assert purchases() == []
    assert UncoveredUsage.objects.get().shortfall == D(10)


def test_auto_top_up_when_only_a_future_block_holds_credits(catalog, acme):
    """A block that takes effect later cannot pay now: the balance is short for the
    event, so the auto top-up buys a pack rather than leave the run uncovered."""
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(500), effective_at=DEC_1, now=NOV_1)
    auto(acme, 20)

    runs(1, prefix="a")

    assert UncoveredUsage.objects.count() == 0
    assert len(purchases()) == 1
    assert wallet_of(acme).balance == 598
    assert_wallet_consistent(wallet_of(acme))


def test_auto_top_up_does_not_buy_a_pack_no_longer_sold(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(30), now=NOV_1)
    auto(acme, 20)
    credit_pack_update(pack=CreditPack.objects.get(code="runs_100"), active=False)

    runs(20, prefix="a")

    assert purchases() == []
    assert wallet_of(acme).balance == 0
    assert UncoveredUsage.objects.get().shortfall == D(10)


def test_a_low_balance_alert_fires_once_a_period(catalog, acme):
    from billing.models import Alert

    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_1)

    runs(5, prefix="a")
    runs(5, prefix="b")

    alert = Alert.objects.get()
    assert (alert.kind, alert.period_start, alert.payload["balance"]) == ("low_balance", NOV_1, "0")


def test_the_auto_top_up_alert_names_its_invoice(catalog, acme):
    from billing.models import Alert

    subscribe(acme, "runner", NOV_1)
    auto(acme, 20)
    runs(1, prefix="a")

    alert = Alert.objects.get()
    assert alert.kind == "auto_top_up"
    assert alert.payload == {
        "pack": "runs_100",
        "credits": "100",
        "price": "99.00",
        "currency": "USD",
        "invoice": "INV-2026-000001",
        "balance": "98",
        **NOVEMBER,
    }
