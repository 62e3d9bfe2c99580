"""Wallets under concurrent load, for real, on PostgreSQL: threads released
together, each on its own database connection, drawing from and buying into the
same wallets. The wallet's row lock serializes them: balances end exact, never
go below zero at any point of the ledger, and auto top-up buys exactly the
packs its crossings call for, on gap-free invoice numbers."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.models import Alert
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from invoices.models import Invoice
from plans.models import CreditPack
from tests.factories import CustomerFactory, PlanFactory, agents_catalog, credits, subscribe
from tests.threads import run_at_once
from tests.wallets.support import (
    assert_all_wallets_consistent,
    assert_wallet_consistent,
    repeat,
    wallet_of,
)
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage
from wallets.purchases import auto_top_up_set, credit_pack_purchase

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
BATCHES = 20
EVENTS_PER_BATCH = 50


def batch(i: int, customer: str = "acme") -> list[dict]:
    return repeat(EVENTS_PER_BATCH, "agent.run", NOW, prefix=f"{customer}-b{i}", customer=customer)


def ingest_batch(i: int, customer: str = "acme"):
    result = events_ingest(events=batch(i, customer), now=NOW)
    assert (result.accepted, result.duplicates, result.rejected) == (EVENTS_PER_BATCH, 0, [])
    return result


@pytest.fixture
def acme(agents_plan):
    """S3's plan (1 credit a run, pack runs_100 of 100 credits for 99.00), acme
    subscribed since November 1."""
    customer = Customer.objects.get(external_id="acme")
    subscribe(customer, "agents", NOV_1)
    return customer


@pytest.fixture
def agents_customer(transactional_db):
    return CustomerFactory(external_id="acme")


@pytest.fixture
def agents_plan(agents_customer):
    return agents_catalog()


def purchase_numbers() -> list[str]:
    return list(
        Invoice.objects.filter(reason=Invoice.PURCHASE)
        .order_by("number")
        .values_list("number", flat=True)
    )


def test_twenty_concurrent_batches_draw_exactly(acme):
    credits_grant(customer=acme, credits=D(10_000), now=NOV_1)

    run_at_once(ingest_batch, BATCHES)

    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == D(9_000)
    usage = LedgerEntry.objects.filter(wallet=wallet, kind=LedgerEntry.USAGE)
    assert sum(e.amount for e in usage) == D(-1_000)
    assert sum(e.quantity for e in usage) == D(1_000)
    # One entry per batch: each batch drew its 50 credits under the lock, whole.
    assert sorted(e.amount for e in usage) == [D(-EVENTS_PER_BATCH)] * BATCHES
    assert UncoveredUsage.objects.count() == 0


def test_concurrent_batches_stop_at_zero_and_record_the_shortfall(acme):
    credits_grant(customer=acme, credits=D(500), now=NOV_1)

    run_at_once(ingest_batch, BATCHES)

    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == 0
    uncovered = UncoveredUsage.objects.all()
    assert sum(u.quantity for u in uncovered) == D(500)
    assert sum(u.shortfall for u in uncovered) == D(500)


def test_auto_top_up_under_load_buys_exactly_the_packs_the_crossings_call_for(acme):
    """From 10,000 with threshold 9,500 and packs of 100, 1,000 one-credit runs: the
    balance reaches 9,500 after 500 runs (a pack: 9,600), then again every 100
    runs, at runs 600, 700, 800, 900 and 1,000: six packs, ending at 9,600,
    whatever order the batches take the lock in."""
    credits_grant(customer=acme, credits=D(10_000), now=NOV_1)
    auto_top_up_set(
        customer=acme,
        enabled=True,
        threshold=D(9_500),
        pack=CreditPack.objects.get(code="runs_100"),
    )

    run_at_once(ingest_batch, BATCHES)

    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == D(9_600)
    top_ups = LedgerEntry.objects.filter(wallet=wallet, kind=LedgerEntry.AUTO_TOP_UP)
    assert [e.balance_after for e in top_ups.order_by("id")] == [D(9_600)] * 6
    assert CreditBlock.objects.filter(source=CreditBlock.AUTO_TOP_UP).count() == 6
    invoices = Invoice.objects.filter(reason=Invoice.PURCHASE)
    assert [i.total for i in invoices] == [D("99.00")] * 6
    assert purchase_numbers() == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    assert UncoveredUsage.objects.count() == 0


def test_concurrent_batches_mixing_two_customers_in_opposite_orders(acme):
    beta = CustomerFactory(external_id="beta", name="Beta")
    subscribe(beta, "agents", NOV_1)
    credits_grant(customer=acme, credits=D(10_000), now=NOV_1)
    credits_grant(customer=beta, credits=D(10_000), now=NOV_1)

    def mixed(i: int):
        events = batch(i, "acme") + batch(i, "beta")
        if i % 2:
            events.reverse()
        result = events_ingest(events=events, now=NOW)
        assert result.accepted == 2 * EVENTS_PER_BATCH

    run_at_once(mixed, BATCHES)

    assert wallet_of(acme).balance == D(9_000)
    assert wallet_of(beta).balance == D(9_000)
    assert_all_wallets_consistent()


def test_concurrent_pack_purchases_each_add_a_block(acme):
    pack = CreditPack.objects.get(code="runs_100")
    buyers = 12

    blocks = run_at_once(
        lambda i: credit_pack_purchase(customer=acme, pack=pack, now=NOW)[0].pk, buyers
    )

    assert len(set(blocks)) == buyers
    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == D(100 * buyers)
    assert CreditBlock.objects.filter(wallet=wallet, source=CreditBlock.PACK).count() == buyers
    assert purchase_numbers() == [f"INV-2026-{n:06d}" for n in range(1, buyers + 1)]


def test_purchases_and_draws_at_once(acme):
    credits_grant(customer=acme, credits=D(1_000), now=NOV_1)
    pack = CreditPack.objects.get(code="runs_100")

    def work(i: int):
        if i % 2:
            return credit_pack_purchase(customer=acme, pack=pack, now=NOW)
        return ingest_batch(i)

    run_at_once(work, BATCHES)

    # 1,000 + 10 packs of 100 - 10 batches of 50
    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == D(1_500)
    assert purchase_numbers() == [f"INV-2026-{n:06d}" for n in range(1, 11)]


def test_expiry_while_batches_draw(acme):
    """A block past its expiry is never drawn, whether the expiry task reaches it
    before, between or after the batches."""
    expiring, _ = credits_grant(customer=acme, credits=D(500), expires_at=NOV_5, now=NOV_1)
    credits_grant(customer=acme, credits=D(10_000), now=NOV_1)

    def work(i: int):
        if i == 0:
            return credits_expire(now=NOW)
        return ingest_batch(i)

    run_at_once(work, BATCHES + 1)

    expiring.refresh_from_db()
    assert (expiring.remaining, expiring.expired_at) == (0, NOW)
    wallet = assert_wallet_consistent(wallet_of(acme))
    assert wallet.balance == D(9_000)
    assert LedgerEntry.objects.get(kind=LedgerEntry.EXPIRY).amount == D(-500)


def test_concurrent_checks_past_a_soft_spend_limit_alert_once(acme, api_key_secret):
    from rest_framework.test import APIClient

    Customer.objects.filter(pk=acme.pk).update(spend_limit=D(0), spend_limit_mode="soft")
    credits_grant(customer=acme, credits=D(10), now=NOV_1)
    plan_with_fee(acme)

    def check(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        response = client.post(
            "/api/v1/customers/acme/check", {"meter": "agent_runs", "quantity": 1}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()["allowed"]

    with time_machine.travel(NOW, tick=False):
        answers = run_at_once(check, 8)

    assert answers == [True] * 8
    assert Alert.objects.filter(kind="spend_limit").count() == 1


def plan_with_fee(customer) -> None:
    """Move the customer to a plan with a base fee, so that its spend is above 0."""
    from billing.subscriptions.lifecycle import subscription_cancel

    PlanFactory(
        code="agents_plus",
        name="Agents plus",
        version__base_fee=D("5.00"),
        version__charges=(credits("agent_runs", 1),),
    )
    subscription = customer.subscriptions.get()
    subscription_cancel(subscription=subscription, effective="immediate", at=NOV_5)
    subscribe(customer, "agents_plus", NOV_5)
