"""The wallet admin (operations through the services, read-only ledger) and credit
revenue recognition: SCENARIOS.md S6's deferred, recognized and breakage figures,
per month, in the selector, the admin report and the CSV export."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from plans.models import CreditPack
from tests.factories import subscribe
from wallets.ledger import credits_expire, credits_grant
from wallets.models import LedgerEntry, Wallet
from wallets.purchases import credit_pack_purchase
from wallets.revenue import credit_revenue, credit_revenue_csv

pytestmark = pytest.mark.django_db

NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, tzinfo=UTC)
JAN_2 = datetime(2027, 1, 2, tzinfo=UTC)


def generations(count: int, kind: str, *, now: datetime, prefix: str) -> None:
    name = {"simple": "query", "complex": "generation"}[kind]
    events = [
        {"id": f"{prefix}{i}", "customer": "acme", "event_name": name, "timestamp": now.isoformat()}
        for i in range(count)
    ]
    assert events_ingest(events=events, now=now).accepted == count


def by_month(rows):
    return {
        (r.month.strftime("%Y-%m"), r.currency): (
            r.deferred_opening,
            r.purchased,
            r.recognized,
            r.breakage,
            r.deferred_closing,
        )
        for r in rows
    }


def test_s6_deferred_recognized_and_breakage(acme, complexity_plan):
    # given: the 500,000-credit pack for 50.00, bought on November 5th
    subscribe(acme, "complexity")
    block, invoice = credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="credits_500k"), now=NOV_5
    )
    assert (invoice.total, invoice.status) == (D("50.00"), Invoice.FINALIZED)
    # 300 simple and 200 complex: 230,000 credits used in November
    generations(300, "simple", now=NOV_20, prefix="s")
    generations(200, "complex", now=NOV_20, prefix="c")

    # then: 50.00 deferred at purchase, 23.00 recognized, 27.00 still deferred
    assert by_month(credit_revenue(until=DEC_10)) == {
        ("2026-11", "USD"): (D(0), D("50.00"), D("23.00"), D(0), D("27.00")),
        ("2026-12", "USD"): (D("27.00"), D(0), D(0), D(0), D("27.00")),
    }

    # when the block then expires in December: 27.00 breakage
    block.expires_at = DEC_10
    block.save(update_fields=["expires_at"])
    assert credits_expire(now=DEC_10) == 1
    assert by_month(credit_revenue(until=JAN_2)) == {
        ("2026-11", "USD"): (D(0), D("50.00"), D("23.00"), D(0), D("27.00")),
        ("2026-12", "USD"): (D("27.00"), D(0), D(0), D("27.00"), D(0)),
        ("2027-01", "USD"): (D(0), D(0), D(0), D(0), D(0)),
    }
    csv_text = credit_revenue_csv(credit_revenue(until=JAN_2))
    assert csv_text.splitlines() == [
        "month,currency,deferred_opening,purchased,recognized,breakage,deferred_closing",
        "2026-11,USD,0.00,50.00,23.00,0.00,27.00",
        "2026-12,USD,27.00,0.00,0.00,27.00,0.00",
        "2027-01,USD,0.00,0.00,0.00,0.00,0.00",
    ]


def test_recognition_rounds_on_the_running_total_so_months_add_up(acme, agents_plan):
    # given: 3 credits for 10.00 (3.333... a credit), used one a month
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(3), kind="paid", price=D("10.00"), now=NOV_5)
    for moment, prefix in ((NOV_20, "a"), (DEC_10, "b"), (JAN_2, "c")):
        events = [
            {
                "id": f"{prefix}",
                "customer": "acme",
                "event_name": "agent.run",
                "timestamp": moment.isoformat(),
            }
        ]
        assert events_ingest(events=events, now=moment).accepted == 1

    rows = by_month(credit_revenue(until=datetime(2027, 1, 3, tzinfo=UTC)))
    # 3.33, then 6.67 - 3.33 = 3.34, then 10.00 - 6.67 = 3.33: 10.00 in all
    assert [rows[(m, "USD")][2] for m in ("2026-11", "2026-12", "2027-01")] == [
        D("3.33"),
        D("3.34"),
        D("3.33"),
    ]
    assert rows[("2027-01", "USD")][4] == 0


def test_promotional_credits_carry_no_revenue(acme, agents_plan):
    credits_grant(customer=acme, credits=D(1000), now=NOV_5, expires_at=NOV_20)
    credits_expire(now=NOV_20)
    assert credit_revenue(until=DEC_10) == []


def test_admin_revenue_report_and_csv(admin_client, acme, complexity_plan):
    subscribe(acme, "complexity")
    credit_pack_purchase(customer=acme, pack=CreditPack.objects.get(code="credits_500k"), now=NOV_5)
    generations(300, "simple", now=NOV_20, prefix="s")
    generations(200, "complex", now=NOV_20, prefix="c")

    with time_machine.travel(datetime(2026, 11, 20, 1, tzinfo=UTC), tick=False):
        page = admin_client.get("/admin/wallets/wallet/revenue/")
        csv_response = admin_client.get("/admin/wallets/wallet/revenue/?format=csv")

    assert page.status_code == 200
    html = page.content.decode()
    assert "2026-11" in html and "23.00" in html and "27.00" in html
    assert csv_response["Content-Type"] == "text/csv"
    assert (
        csv_response.content.decode().splitlines()[1] == "2026-11,USD,0.00,50.00,23.00,0.00,27.00"
    )


def test_admin_sells_a_pack_and_grants_credits(admin_client, acme, agents_plan):
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    url = f"/admin/wallets/wallet/{wallet.pk}/operation/"
    pack = CreditPack.objects.get(code="runs_100")

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"operation": "pack", "pack": pack.pk, "priority": 50})
    assert response.status_code == 302
    response = admin_client.post(
        url, {"operation": "grant", "credits": "25", "priority": 10, "expires_at": ""}
    )
    assert response.status_code == 302

    wallet.refresh_from_db()
    assert wallet.balance == 125
    assert [(e.kind, e.amount) for e in wallet.ledger.order_by("id")] == [
        ("purchase", D(100)),
        ("grant", D(25)),
    ]
    assert Invoice.objects.get(reason=Invoice.PURCHASE).total == D("99.00")
    page = admin_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/")
    assert page.status_code == 200
    assert "Add credits or money" in page.content.decode()
    # and the wallet's blocks and ledger, the ledger's list and an entry read in words
    entry = wallet.ledger.get(kind="purchase")
    pages = {
        "wallet": f"/admin/wallets/wallet/{wallet.pk}/change/",
        "ledger": "/admin/wallets/ledgerentry/",
        "entry": f"/admin/wallets/ledgerentry/{entry.pk}/change/",
    }
    html = {name: admin_client.get(url).content.decode() for name, url in pages.items()}
    assert all("0000000" not in text for text in html.values())
    assert "99.00 USD" in html["wallet"] and "25 credits" in html["wallet"]
    assert "100 credits" in html["ledger"] and "125 credits" in html["ledger"]
    assert "100 credits" in html["entry"]


def test_admin_refuses_a_money_top_up_on_a_credit_wallet_and_changes_nothing(
    admin_client, acme, agents_plan
):
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    response = admin_client.post(
        f"/admin/wallets/wallet/{wallet.pk}/operation/",
        {"operation": "top_up", "amount": "10.00", "priority": 50},
    )
    assert response.status_code == 200
    assert "Not for a credits wallet." in response.content.decode()
    assert (LedgerEntry.objects.count(), Invoice.objects.count()) == (0, 0)


def test_admin_pages_load(admin_client, acme, agents_plan):
    credits_grant(customer=acme, credits=D(5), now=NOV_5)
    for url in (
        "/admin/wallets/wallet/",
        "/admin/wallets/wallet/add/",
        "/admin/wallets/ledgerentry/",
        "/admin/wallets/uncoveredusage/",
    ):
        assert admin_client.get(url).status_code == 200, url


def test_the_wallet_page_queries_do_not_grow_with_its_ledger(admin_client, acme, agents_plan):
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    url = f"/admin/wallets/wallet/{wallet.pk}/operation/"
    page = f"/admin/wallets/wallet/{wallet.pk}/change/"
    admin_client.post(url, {"operation": "grant", "credits": "5", "priority": 10, "expires_at": ""})
    admin_client.get(page)  # warms what Django caches once
    with CaptureQueriesContext(connection) as few:
        admin_client.get(page)
    for _ in range(6):
        admin_client.post(
            url, {"operation": "grant", "credits": "5", "priority": 10, "expires_at": ""}
        )
    with CaptureQueriesContext(connection) as many:
        admin_client.get(page)

    assert wallet.ledger.count() == 7
    assert len(many) == len(few)


def test_admin_refuses_a_pack_in_another_currency_by_names_and_price(
    admin_client, acme, agents_plan
):
    CreditPack.objects.create(
        code="runs_eur", name="Runs Euro", credits=100, price=Money("89.5", "EUR")
    )
    acme.name = "Acme Inc"
    acme.save()
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    pack = CreditPack.objects.get(code="runs_eur")
    response = admin_client.post(
        f"/admin/wallets/wallet/{wallet.pk}/operation/",
        {"operation": "pack", "pack": pack.pk, "priority": 50},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors == {
        "pack": [
            "Runs Euro costs 89.50\N{NO-BREAK SPACE}EUR and Acme Inc pays in USD: "
            "choose a pack priced in USD."
        ]
    }
    assert "runs_eur" not in str(errors) and "'acme'" not in str(errors)
    assert (LedgerEntry.objects.count(), Invoice.objects.count()) == (0, 0)


def test_admin_refuses_a_top_up_with_too_many_decimals_saying_what_to_type(
    admin_client, acme, agents_plan
):
    wallet = Wallet.objects.create(customer=acme, kind="money", currency="USD")
    response = admin_client.post(
        f"/admin/wallets/wallet/{wallet.pk}/operation/",
        {"operation": "top_up", "amount": "10.555", "priority": 50},
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "amount": [
            "USD amounts have at most 2 decimals: "
            "type 10.56\N{NO-BREAK SPACE}USD or another amount they allow"
        ]
    }
    assert (LedgerEntry.objects.count(), Invoice.objects.count()) == (0, 0)
