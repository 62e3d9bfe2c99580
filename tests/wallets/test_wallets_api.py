"""The wallet endpoints: balances with their blocks, credit grants and pack
purchases (invoiced at once), money top-ups, auto top-up, the ledgers, and the
scopes that guard them. A refused request changes nothing and takes no invoice
number. Time is set with time_machine; the API reads the clock."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from invoices.models import Invoice, InvoiceSequence
from plans.models import CreditPack
from plans.services import credit_pack_create, credit_pack_update
from tests.factories import subscribe
from tests.wallets.support import (
    assert_all_wallets_consistent,
    client,
    event,
    ingest,
    iso,
    repeat,
    state,
    wallet_of,
)
from wallets.ledger import credits_grant
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry
from wallets.purchases import money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_30 = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DEC_15 = datetime(2026, 12, 15, tzinfo=UTC)
BASE = "/api/v1/customers/acme/wallets"


def call(api, method: str, path: str, body=None, *, at: datetime = NOW):
    with time_machine.travel(at, tick=False):
        return getattr(api, method)(f"{BASE}{path}", body, format="json")


def refused(api, method: str, path: str, body, *, status: int = 400) -> dict:
    """The request is refused with `status` and leaves everything as it was."""
    before = state()
    response = call(api, method, path, body)
    assert response.status_code == status, response.content
    assert state() == before
    return response.json()["error"]


def block_json(block: CreditBlock, **overrides) -> dict:
    money = block.wallet.kind == "money"

    def amount(value):
        return f"{value:.2f}" if money else format(value.normalize(), "f")

    return {
        "id": block.pk,
        "kind": block.kind,
        "source": block.source,
        "amount": amount(block.amount),
        "remaining": amount(block.remaining),
        "price_paid": f"{block.price_paid:.2f}" if block.currency else None,
        "currency": block.currency or None,
        "priority": block.priority,
        "effective_at": iso(block.effective_at),
        "expires_at": iso(block.expires_at) if block.expires_at else None,
        # For every meter unless a test says otherwise.
        "applies_to": [],
        **overrides,
    }


# GET wallets


def test_no_wallets_yet(api, acme):
    response = call(api, "get", "")
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_both_wallets_with_their_blocks_in_draw_order(api, catalog, acme):
    # given: blocks added in an order unlike the draw order
    paid, _ = credits_grant(
        customer=acme, credits=D(5000), kind="paid", price=D("50.00"), now=NOV_1
    )
    later, _ = credits_grant(customer=acme, credits=D(300), expires_at=DEC_15, now=NOV_1)
    promo, _ = credits_grant(
        customer=acme, credits=D(1000), priority=10, expires_at=NOV_30, now=NOV_1
    )
    sooner, _ = credits_grant(customer=acme, credits=D(200), expires_at=NOV_30, now=NOW)
    top_up, _ = money_top_up(customer=acme, amount=D("95.5"), currency="USD", now=NOV_1)
    call(
        api,
        "put",
        "/credits/auto-top-up",
        {"enabled": True, "threshold": "20", "pack": "runs_100"},
    )

    response = call(api, "get", "")

    # then: priority first, then the soonest expiry (none last), then the oldest
    assert response.status_code == 200
    credits = response.json()["results"][0]
    assert [b["id"] for b in credits["blocks"]] == [promo.pk, sooner.pk, later.pk, paid.pk]
    assert response.json() == {
        "results": [
            {
                "kind": "credits",
                "currency": None,
                "balance": "6500",
                "low_balance_threshold": None,
                "blocks": [
                    block_json(promo),
                    block_json(sooner),
                    block_json(later),
                    block_json(paid),
                ],
                "auto_top_up": {"enabled": True, "threshold": "20", "pack": "runs_100"},
            },
            {
                "kind": "money",
                "currency": "USD",
                "balance": "95.50",
                "low_balance_threshold": None,
                "blocks": [block_json(top_up)],
                "auto_top_up": None,
            },
        ]
    }
    assert block_json(paid)["price_paid"] == "50.00"
    assert block_json(top_up)["amount"] == "95.50"
    assert_all_wallets_consistent()


def test_spent_and_expired_blocks_are_not_listed(api, catalog, acme):
    from wallets.ledger import credits_expire

    credits_grant(customer=acme, credits=D(10), expires_at=NOV_30, now=NOV_1)
    kept, _ = credits_grant(customer=acme, credits=D(20), now=NOV_1)
    credits_expire(now=DEC_15)

    body = call(api, "get", "", at=DEC_15).json()
    assert [(w["balance"], w["blocks"]) for w in body["results"]] == [("20", [block_json(kept)])]


def test_unknown_customer_wallets_404(api, db):
    response = api.get("/api/v1/customers/nobody/wallets")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


# POST credits: a grant


def test_a_promotional_grant_with_expiry_and_priority(api, catalog, acme):
    response = call(
        api,
        "post",
        "/credits",
        {"credits": "1000", "kind": "promotional", "expires_at": iso(NOV_30), "priority": 10},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    block = CreditBlock.objects.get()
    assert (block.kind, block.source, block.amount, block.priority) == (
        "promotional",
        "grant",
        D(1000),
        10,
    )
    assert (block.effective_at, block.expires_at, block.price_paid) == (NOW, NOV_30, D(0))
    assert body["block"] == block_json(block)
    assert body["invoice"] is None
    assert [(w["kind"], w["balance"]) for w in body["wallets"]] == [("credits", "1000")]
    assert Invoice.objects.count() == 0
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.balance_after, entry.block_id) == (
        "grant",
        D(1000),
        D(1000),
        block.pk,
    )
    assert_all_wallets_consistent()


def test_a_grant_that_takes_effect_later(api, catalog, acme):
    response = call(
        api,
        "post",
        "/credits",
        {"credits": "50", "effective_at": iso(DEC_15), "expires_at": "2027-01-01T00:00:00Z"},
    )
    assert response.status_code == 201, response.content
    block = CreditBlock.objects.get()
    assert (block.effective_at, block.expires_at) == (
        DEC_15,
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_paid_credits_at_a_price_are_invoiced_at_once(api, catalog, acme):
    response = call(api, "post", "/credits", {"credits": "500", "kind": "paid", "price": "45.5"})

    assert response.status_code == 201, response.content
    body = response.json()
    invoice = Invoice.objects.get()
    assert (invoice.reason, invoice.status, invoice.number, invoice.total) == (
        "purchase",
        "finalized",
        "INV-2026-000001",
        D("45.50"),
    )
    assert [(li.kind, li.quantity, li.amount) for li in invoice.lines.all()] == [
        ("credits", D(500), D("45.50"))
    ]
    assert (body["invoice"]["total"], body["invoice"]["status"]) == ("45.50", "finalized")
    block = CreditBlock.objects.get()
    assert (block.kind, block.price_paid, block.currency, block.invoice_id) == (
        "paid",
        D("45.50"),
        "USD",
        invoice.pk,
    )
    assert body["block"] == block_json(block)
    assert LedgerEntry.objects.get().kind == "purchase"
    assert_all_wallets_consistent()


BAD_GRANTS = {
    "paid without price": {"credits": "500", "kind": "paid"},
    "paid with null price": {"credits": "500", "kind": "paid", "price": None},
    "paid with negative price": {"credits": "500", "kind": "paid", "price": "-1.00"},
    "paid price finer than cents": {"credits": "500", "kind": "paid", "price": "45.555"},
    "promotional with a price": {"credits": "500", "price": "5.00"},
    "zero credits": {"credits": "0"},
    "negative credits": {"credits": "-10"},
    "credits abc": {"credits": "abc"},
    "credits boolean": {"credits": True},
    "credits NaN": {"credits": "NaN"},
    "unknown kind": {"credits": "10", "kind": "free"},
    "expiry in the past": {"credits": "10", "expires_at": "2026-11-01T00:00:00Z"},
    "expiry before effect": {
        "credits": "10",
        "effective_at": iso(DEC_15),
        "expires_at": iso(NOV_30),
    },
    "expiry without offset": {"credits": "10", "expires_at": "2026-12-01T00:00:00"},
    "priority out of range": {"credits": "10", "priority": 10**9},
    "priority not a number": {"credits": "10", "priority": "first"},
    "both pack and credits": {"pack": "runs_100", "credits": "100"},
    "neither": {"kind": "promotional"},
}


@pytest.mark.parametrize("body", list(BAD_GRANTS.values()), ids=list(BAD_GRANTS))
def test_a_bad_grant_is_a_400_and_changes_nothing(api, catalog, acme, body):
    credits_grant(customer=acme, credits=D(7), now=NOV_1)
    error = refused(api, "post", "/credits", body)
    assert error["type"] == "invalid_request"
    assert wallet_of(acme).balance == 7


def test_malformed_json_is_a_400(api, catalog, acme):
    before = state()
    with time_machine.travel(NOW, tick=False):
        response = api.generic(
            "POST", f"{BASE}/credits", '{"credits": "1"', content_type="application/json"
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert state() == before


# POST credits: a pack


def test_buying_a_pack(api, catalog, acme):
    response = call(api, "post", "/credits", {"pack": "runs_100"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["invoice"]["total"] == "99.00"
    assert body["invoice"]["number"] == "INV-2026-000001"
    assert [(li["kind"], li["quantity"], li["amount"]) for li in body["invoice"]["lines"]] == [
        ("credit_pack", "1", "99.00")
    ]
    block = CreditBlock.objects.get()
    assert (block.source, block.kind, block.amount, block.price_paid, block.pack.code) == (
        "pack",
        "paid",
        D(100),
        D("99.00"),
        "runs_100",
    )
    assert body["block"] == block_json(block)
    assert [(w["kind"], w["balance"]) for w in body["wallets"]] == [("credits", "100")]
    assert LedgerEntry.objects.get().kind == "purchase"
    assert_all_wallets_consistent()


@pytest.fixture
def odd_packs(catalog):
    credit_pack_update(pack=CreditPack.objects.get(code="big_pack"), active=False)
    credit_pack_create(code="euro_pack", credits=D(100), price=D("90.00"), currency="EUR")


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        ("no_such_pack", "unknown credit pack 'no_such_pack'"),
        ("big_pack", "credit pack 'big_pack' is no longer sold"),
        (
            "euro_pack",
            "credit pack 'euro_pack' is priced in EUR; customer 'acme' pays in USD",
        ),
    ],
)
def test_a_pack_that_cannot_be_sold_is_a_400_and_takes_no_number(
    api, acme, odd_packs, pack, message
):
    error = refused(api, "post", "/credits", {"pack": pack})
    assert error["message"] == message
    assert error["fields"].keys() == {"pack"}
    assert InvoiceSequence.objects.count() == 0

    # The next purchase takes the first number.
    response = call(api, "post", "/credits", {"pack": "runs_100"})
    assert response.json()["invoice"]["number"] == "INV-2026-000001"


def test_numbers_run_on_across_purchases_without_gaps(api, catalog, acme):
    call(api, "post", "/credits", {"pack": "runs_100"})
    call(api, "post", "/credits", {"pack": "no_such_pack"})
    call(api, "post", "/credits", {"credits": "10", "kind": "paid", "price": "1.00"})
    call(api, "post", "/money", {"amount": "5.00", "currency": "USD"})
    call(api, "post", "/money", {"amount": "5.00", "currency": "EUR"})
    call(api, "post", "/credits", {"pack": "big_pack"})
    assert list(Invoice.objects.order_by("id").values_list("number", "total")) == [
        ("INV-2026-000001", D("99.00")),
        ("INV-2026-000002", D("1.00")),
        ("INV-2026-000003", D("5.00")),
        ("INV-2026-000004", D("900.00")),
    ]


# POST money


def test_a_money_top_up(api, catalog, acme):
    response = call(api, "post", "/money", {"amount": "100.00", "currency": "usd"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["invoice"]["total"] == "100.00"
    assert [(li["kind"], li["amount"]) for li in body["invoice"]["lines"]] == [("top_up", "100.00")]
    block = CreditBlock.objects.get()
    assert body["block"] == block_json(block)
    assert body["block"]["amount"] == "100.00"
    assert [(w["kind"], w["currency"], w["balance"]) for w in body["wallets"]] == [
        ("money", "USD", "100.00")
    ]
    assert LedgerEntry.objects.get().kind == "top_up"
    assert_all_wallets_consistent()


def test_a_money_top_up_in_a_currency_without_minor_units(api, db):
    customer_create(external_id="acme", name="Acme KK", currency="JPY")
    response = call(api, "post", "/money", {"amount": 5000, "currency": "JPY"})
    assert response.status_code == 201, response.content
    assert response.json()["wallets"][0]["balance"] == "5000"
    assert refused(api, "post", "/money", {"amount": "10.5", "currency": "JPY"})["fields"] == {
        "amount": ["too many decimal places"]
    }


BAD_TOP_UPS = {
    "wrong currency": {"amount": "10.00", "currency": "EUR"},
    "unknown currency": {"amount": "10.00", "currency": "XYZ"},
    "too many decimals": {"amount": "10.005", "currency": "USD"},
    "negative": {"amount": "-10.00", "currency": "USD"},
    "zero": {"amount": "0", "currency": "USD"},
    "abc": {"amount": "abc", "currency": "USD"},
    "missing amount": {"currency": "USD"},
    "missing currency": {"amount": "10.00"},
    "float infinity": {"amount": "Infinity", "currency": "USD"},
    "boolean": {"amount": True, "currency": "USD"},
}


@pytest.mark.parametrize("body", list(BAD_TOP_UPS.values()), ids=list(BAD_TOP_UPS))
def test_a_bad_top_up_is_a_400_and_changes_nothing(api, catalog, acme, body):
    money_top_up(customer=acme, amount=D("3.00"), currency="USD", now=NOV_1)
    assert refused(api, "post", "/money", body)["type"] == "invalid_request"
    assert wallet_of(acme, "money", "USD").balance == D("3.00")


# PUT auto-top-up


def test_auto_top_up_is_set_and_changed(api, catalog, acme):
    response = call(
        api, "put", "/credits/auto-top-up", {"enabled": True, "threshold": 20, "pack": "runs_100"}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"enabled": True, "threshold": "20", "pack": "runs_100"}

    response = call(
        api,
        "put",
        "/credits/auto-top-up",
        {"enabled": False, "threshold": "5.5", "pack": "big_pack"},
    )
    assert response.json() == {"enabled": False, "threshold": "5.5", "pack": "big_pack"}
    setting = AutoTopUp.objects.get()
    assert (setting.enabled, setting.threshold, setting.pack.code) == (False, D("5.5"), "big_pack")
    # Setting it buys nothing.
    assert (Invoice.objects.count(), CreditBlock.objects.count()) == (0, 0)
    assert wallet_of(acme).balance == 0


BAD_AUTO_TOP_UPS = {
    "unknown pack": {"enabled": True, "threshold": "20", "pack": "no_such_pack"},
    "inactive pack": {"enabled": True, "threshold": "20", "pack": "big_pack"},
    "pack in another currency": {"enabled": True, "threshold": "20", "pack": "euro_pack"},
    "negative threshold": {"enabled": True, "threshold": "-1", "pack": "runs_100"},
    "threshold abc": {"enabled": True, "threshold": "abc", "pack": "runs_100"},
    "missing enabled": {"threshold": "20", "pack": "runs_100"},
    "enabled not a boolean": {"enabled": "perhaps", "threshold": "20", "pack": "runs_100"},
    "missing pack": {"enabled": True, "threshold": "20"},
}


@pytest.mark.parametrize("body", list(BAD_AUTO_TOP_UPS.values()), ids=list(BAD_AUTO_TOP_UPS))
def test_a_bad_auto_top_up_is_a_400_and_changes_nothing(api, acme, odd_packs, body):
    call(
        api, "put", "/credits/auto-top-up", {"enabled": True, "threshold": "7", "pack": "runs_100"}
    )
    assert refused(api, "put", "/credits/auto-top-up", body)["type"] == "invalid_request"
    setting = AutoTopUp.objects.get()
    assert (setting.enabled, setting.threshold, setting.pack.code) == (True, D(7), "runs_100")


def test_auto_top_up_can_be_turned_off_after_its_pack_is_withdrawn(api, catalog, acme):
    call(
        api, "put", "/credits/auto-top-up", {"enabled": True, "threshold": "7", "pack": "big_pack"}
    )
    credit_pack_update(pack=CreditPack.objects.get(code="big_pack"), active=False)

    response = call(
        api, "put", "/credits/auto-top-up", {"enabled": False, "threshold": "7", "pack": "big_pack"}
    )

    assert response.status_code == 200, response.content
    assert AutoTopUp.objects.get().enabled is False


# Ledgers


def test_the_credit_ledger_newest_first_page_by_page(api, catalog, acme):
    subscribe(acme, "runner", NOV_1)
    call(api, "post", "/credits", {"pack": "runs_100"})
    call(api, "post", "/credits", {"credits": "30", "priority": 10})
    ingest(repeat(20, "agent.run", NOW, prefix="r"), now=NOW)  # 40 credits
    wallet = wallet_of(acme)
    ids = list(LedgerEntry.objects.order_by("-id").values_list("id", flat=True))

    first = call(api, "get", "/credits/ledger?limit=2")
    assert first.status_code == 200
    body = first.json()
    assert [
        (e["id"], e["kind"], e["amount"], e["balance_after"], e["meter"], e["quantity"])
        for e in body["results"]
    ] == [
        (ids[0], "usage", "-10", "90", "agent_runs", "5"),
        (ids[1], "usage", "-30", "100", "agent_runs", "15"),
    ]
    assert body["results"][0]["occurred_at"] == iso(NOW)
    assert body["next"] is not None

    with time_machine.travel(NOW, tick=False):
        second = api.get(body["next"]).json()
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in second["results"]] == [
        ("grant", "30", "130"),
        ("purchase", "100", "100"),
    ]
    assert second["next"] is None
    assert wallet.ledger.count() == 4
    assert_all_wallets_consistent()


def test_the_money_ledger(api, catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    call(api, "post", "/money", {"amount": "100.00", "currency": "USD"})
    ingest([event("t1", "llm.completion", NOW, input_tokens=1_000_000)], now=NOW)

    body = call(api, "get", "/money/ledger").json()
    assert [
        (e["kind"], e["amount"], e["balance_after"], e["meter"], e["quantity"])
        for e in body["results"]
    ] == [
        ("usage", "-2.50", "97.50", "gpt4o_input_tokens", "1000000"),
        ("top_up", "100.00", "100.00", "", None),
    ]
    assert body["next"] is None
    assert call(api, "get", "/money/ledger?currency=usd").json() == body
    assert call(api, "get", "/money/ledger?currency=EUR").status_code == 404


@pytest.mark.parametrize("path", ["/credits/ledger", "/money/ledger", "/coins/ledger"])
def test_a_ledger_of_no_wallet_is_404(api, acme, path):
    response = call(api, "get", path)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


# Scopes: reads need read, writes need admin


WRITES = [
    ("post", "/credits", {"credits": "10"}),
    ("post", "/credits", {"pack": "runs_100"}),
    ("post", "/money", {"amount": "10.00", "currency": "USD"}),
    ("put", "/credits/auto-top-up", {"enabled": True, "threshold": "20", "pack": "runs_100"}),
]


@pytest.mark.parametrize("scopes", [("read",), ("events:write",), ("read", "events:write"), ()])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_admin(catalog, acme, scopes, method, path, body):
    error = refused(client(*scopes), method, path, body, status=403)
    assert error["type"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_an_admin_key_may_write(catalog, acme, method, path, body):
    response = call(client("admin"), method, path, body)
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize("path", ["", "/credits/ledger"])
def test_reads_need_read(catalog, acme, path):
    credits_grant(customer=acme, credits=D(1), now=NOV_1)
    assert call(client("read"), "get", path).status_code == 200
    # `admin` writes and reads nothing; events:write ingests.
    assert call(client("admin"), "get", path).status_code == 403
    assert call(client("events:write"), "get", path).status_code == 403


def test_no_key_is_401(catalog, acme):
    from rest_framework.test import APIClient

    before = state()
    response = call(APIClient(), "post", "/credits", {"credits": "10"})
    assert response.status_code == 401
    assert state() == before


def test_a_grant_for_an_unknown_customer_is_404(api, catalog):
    before = state()
    response = api.post(
        "/api/v1/customers/nobody/wallets/credits", {"credits": "10"}, format="json"
    )
    assert response.status_code == 404
    assert state() == before


def test_times_are_utc(api, catalog, acme):
    # A grant with an offset is stored and shown in UTC.
    response = call(
        api,
        "post",
        "/credits",
        {"credits": "10", "expires_at": "2026-12-01T01:00:00+01:00"},
    )
    assert response.json()["block"]["expires_at"] == "2026-12-01T00:00:00Z"
    assert CreditBlock.objects.get().expires_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert CreditBlock.objects.get().effective_at == NOW
