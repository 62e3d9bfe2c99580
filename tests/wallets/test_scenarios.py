"""SCENARIOS.md S3, S6, S7 and S15 end to end: wallets drawn at ingestion, packs,
auto top-up, expiry, with exact figures. Time is set explicitly."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from tests.factories import check_v1, subscribe
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def runs(count: int, *, prefix: str, now: datetime = NOW) -> None:
    events = [
        {
            "id": f"{prefix}-{i}",
            "customer": "acme",
            "event_name": "agent.run",
            "timestamp": now.isoformat(),
        }
        for i in range(count)
    ]
    for start in range(0, count, 1000):
        result = events_ingest(events=events[start : start + 1000], now=now)
        assert (result.rejected, result.duplicates) == ([], 0)


def ledger_amounts(wallet: Wallet) -> list[tuple[str, D]]:
    return [(e.kind, e.amount) for e in wallet.ledger.order_by("id")]


def purchases_total() -> D:
    return sum((i.total for i in Invoice.objects.filter(reason=Invoice.PURCHASE)), D(0))


def test_s3_credit_pack_with_auto_reload(api, acme, agents_plan):
    subscribe(acme, "agents")
    with time_machine.travel(NOW, tick=False):
        # Buy one pack: balance 100, one purchase of 99.00.
        response = api.post(
            "/api/v1/customers/acme/wallets/credits", {"pack": "runs_100"}, format="json"
        )
        assert response.status_code == 201, response.content
        assert response.json()["invoice"]["total"] == "99.00"
        assert response.json()["invoice"]["status"] == "finalized"
        response = api.put(
            "/api/v1/customers/acme/wallets/credits/auto-top-up",
            {"enabled": True, "threshold": "20", "pack": "runs_100"},
            format="json",
        )
        assert response.status_code == 200, response.content
    wallet = Wallet.objects.get(customer=acme, kind="credits")
    assert wallet.balance == 100
    assert purchases_total() == D("99.00")

    # 80 runs: balance 20, at the threshold, so one pack is bought: 120.
    runs(80, prefix="a")
    wallet.refresh_from_db()
    assert wallet.balance == 120
    assert purchases_total() == D("198.00")
    assert ledger_amounts(wallet) == [
        ("purchase", D(100)),
        ("usage", D(-80)),
        ("auto_top_up", D(100)),
    ]

    # 100 more runs: 20, another reload: 120; purchases 297.00.
    runs(100, prefix="b")
    wallet.refresh_from_db()
    assert wallet.balance == 120
    assert purchases_total() == D("297.00")
    assert Invoice.objects.filter(reason=Invoice.PURCHASE, status="finalized").count() == 3

    # The ledger through the API, newest first: one usage entry per block drawn
    # (the first pack's last 20 credits, then 80 of the second).
    body = api.get("/api/v1/customers/acme/wallets/credits/ledger").json()
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in body["results"]] == [
        ("auto_top_up", "100", "120"),
        ("usage", "-80", "20"),
        ("usage", "-20", "100"),
        ("auto_top_up", "100", "120"),
        ("usage", "-80", "20"),
        ("purchase", "100", "100"),
    ]


def test_s3_without_auto_top_up_the_balance_stops_at_zero(api, acme, agents_plan):
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(5), now=NOW)

    runs(8, prefix="a")

    wallet = Wallet.objects.get(customer=acme, kind="credits")
    assert wallet.balance == 0
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.meter, uncovered.quantity, uncovered.shortfall) == (
        "agent_runs",
        D(3),
        D(3),
    )
    with time_machine.travel(NOW, tick=False):
        check = check_v1(
            api.post(
                "/api/v1/customers/acme/check",
                {"meter": "agent_runs", "quantity": 1},
                format="json",
            ).json()
        )
        usage = api.get("/api/v1/customers/acme/usage").json()
    assert check == {
        "allowed": False,
        "model": "credits",
        "reason": "insufficient_credits",
        "used": "8",
        "included": None,
        "remaining": "0",
        "balance": "0",
    }
    assert usage["lines"][0]["quantity"] == "8"
    assert usage["lines"][0]["uncovered"] == "3"
    # All 8 runs are stored and counted.
    assert sum(e.amount for e in wallet.ledger.all()) == wallet.balance


def test_s6_credits_by_request_complexity(api, acme, complexity_plan):
    subscribe(acme, "complexity")
    with time_machine.travel(NOW, tick=False):
        api.post("/api/v1/customers/acme/wallets/credits", {"pack": "credits_500k"}, format="json")
    events = [
        {"id": f"s{i}", "customer": "acme", "event_name": "query", "timestamp": NOW.isoformat()}
        for i in range(300)
    ] + [
        {
            "id": f"c{i}",
            "customer": "acme",
            "event_name": "generation",
            "timestamp": NOW.isoformat(),
        }
        for i in range(200)
    ]
    assert events_ingest(events=events, now=NOW).accepted == 500

    wallet = Wallet.objects.get(customer=acme, kind="credits")
    assert wallet.balance == D(270_000)
    used = {e.meter: -e.amount for e in wallet.ledger.filter(kind=LedgerEntry.USAGE)}
    assert used == {"simple_queries": D(30_000), "complex_generations": D(200_000)}


def test_s7_prepaid_money_balance_drawn_before_the_request_answers(api, acme, gpt4o_plan):
    subscribe(acme, "gpt4o_prepaid")
    with time_machine.travel(NOW, tick=False):
        response = api.post(
            "/api/v1/customers/acme/wallets/money",
            {"amount": "100.00", "currency": "USD"},
            format="json",
        )
        assert response.status_code == 201, response.content
        response = api.post(
            "/api/v1/events",
            {
                "events": [
                    {
                        "id": "evt_1",
                        "customer": "acme",
                        "event_name": "llm.completion",
                        "timestamp": NOW.isoformat(),
                        "properties": {"input_tokens": 1_000_000, "output_tokens": 200_000},
                    }
                ]
            },
            format="json",
        )
        assert response.json()["accepted"] == 1
        wallets = api.get("/api/v1/customers/acme/wallets").json()["results"]

    assert [(w["kind"], w["currency"], w["balance"]) for w in wallets] == [
        ("money", "USD", "95.50")
    ]
    wallet = Wallet.objects.get(customer=acme, kind="money")
    assert sorted((e.meter, e.amount) for e in wallet.ledger.filter(kind=LedgerEntry.USAGE)) == [
        ("gpt4o_input_tokens", D("-2.50")),
        ("gpt4o_output_tokens", D("-2.00")),
    ]


def test_s15_draw_down_by_priority_then_expiry(acme, agents_plan):
    subscribe(acme, "agents")
    promo, _ = credits_grant(
        customer=acme,
        credits=D(1000),
        kind="promotional",
        priority=10,
        expires_at=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        now=NOW,
    )
    paid, _ = credits_grant(
        customer=acme, credits=D(5000), kind="paid", price=D("50.00"), priority=50, now=NOW
    )

    runs(1500, prefix="r")

    promo.refresh_from_db()
    paid.refresh_from_db()
    assert (promo.remaining, paid.remaining) == (0, 4500)


def test_s15_unused_promotional_credits_expire_at_their_time(acme, agents_plan):
    subscribe(acme, "agents")
    expiry = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    promo, _ = credits_grant(
        customer=acme, credits=D(1000), priority=10, expires_at=expiry, now=NOW
    )
    credits_grant(customer=acme, credits=D(5000), kind="paid", price=D("50.00"), now=NOW)
    runs(600, prefix="r")

    assert credits_expire(now=datetime(2026, 11, 30, tzinfo=UTC)) == 0
    assert credits_expire(now=datetime(2026, 12, 1, tzinfo=UTC)) == 1
    assert credits_expire(now=datetime(2026, 12, 1, 1, tzinfo=UTC)) == 0

    wallet = Wallet.objects.get(customer=acme, kind="credits")
    entry = wallet.ledger.get(kind=LedgerEntry.EXPIRY)
    assert (entry.amount, entry.balance_after, entry.block_id) == (D(-400), D(5000), promo.pk)
    assert entry.occurred_at == expiry
    assert wallet.balance == 5000
    assert CreditBlock.objects.get(pk=promo.pk).remaining == 0
