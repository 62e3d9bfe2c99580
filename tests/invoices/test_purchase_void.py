"""Voiding a purchase invoice takes back what it sold, through its credit note
(tests/invoices/test_purchase_credit_notes.py): the block of a credit pack or a
money top-up leaves the wallet whole, with a `void` ledger entry, in the void's
transaction. A block that was partly used (or expired) is not taken back: the
void is refused (409 with the numbers, an error in the admin) and nothing
changes."""

from datetime import datetime
from decimal import Decimal as D

import pytest
import time_machine

from common.errors import Conflict
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_create_purchase, invoice_void
from invoices.settlement import invoice_mark_paid
from plans.models import CreditPack
from plans.rating import LineInput
from tests.factories import subscribe
from tests.invoices.purchase_support import (
    DEC_3,
    JAN_1,
    NOV_1,
    NOV_2,
    NOV_5,
    NOV_12,
    NOV_20,
    NOW,
    refused_state,
)
from tests.wallets.support import (
    event,
    ingest,
    repeat,
    wallet_of,
)
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock, LedgerEntry, Wallet
from wallets.purchases import credit_pack_purchase, money_top_up
from wallets.revenue import credit_revenue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("wallets_stay_consistent")]

CREDITS_USED = (
    "40 of the 100 credits sold on this invoice were already used; "
    "at most 59.40 of this line can be credited"
)
MONEY_USED = (
    "40.00 of the 100.00 USD topped up on this invoice were already used; "
    "at most 60.00 of this line can be credited"
)


def void(api, invoice: Invoice, at: datetime = NOV_12):
    with time_machine.travel(at, tick=False):
        return api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, format="json")


def last_entry(wallet: Wallet) -> tuple:
    entry = wallet.ledger.order_by("-id").first()
    return entry.kind, entry.block_id, entry.amount, entry.balance_after, entry.occurred_at


# Credit packs


def test_voiding_an_unused_credit_pack_invoice_takes_its_credits_back(api, acme):
    # given: 10 promotional credits, then pack runs_100 (100 credits for 99.00)
    credits_grant(customer=acme, credits=D(10), now=NOV_2)
    block, invoice = credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_5
    )
    entries = LedgerEntry.objects.count()

    # when
    response = void(api, invoice)

    # then: the invoice is void with its credit note, and the wallet is back at 10
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["total"]) == ("void", "99.00")
    assert [CreditNote.objects.get(pk=n).total for n in body["credit_notes"]] == [D("99.00")]
    wallet = wallet_of(acme)
    assert wallet.balance == D(10)
    assert CreditBlock.objects.get(pk=block.pk).remaining == D(0)
    assert LedgerEntry.objects.count() == entries + 1
    assert last_entry(wallet) == (LedgerEntry.VOID, block.pk, D(-100), D(10), NOV_12)


def test_voiding_a_partly_used_credit_pack_invoice_is_refused_and_changes_nothing(api, acme):
    # given: 10 promotional credits drawn first, then 40 of the pack's 100 (25 runs
    # at 2 credits each)
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(10), now=NOV_2)
    block, invoice = credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_5
    )
    ingest(repeat(25, "agent.run", NOW, prefix="run"), now=NOW)
    assert CreditBlock.objects.get(pk=block.pk).remaining == D(60)
    before = refused_state(invoice)

    # when
    response = void(api, invoice)

    # then: 409 saying how much was used; invoice, wallet, ledger, notes as they were
    assert response.status_code == 409
    assert response.json() == {"error": {"type": "conflict", "message": CREDITS_USED}}
    assert refused_state(invoice) == before
    assert before["invoice"] == {"status": Invoice.FINALIZED, "voided_at": None, "credited": 0}
    assert wallet_of(acme).balance == D(60)
    assert CreditNote.objects.count() == 0


def test_voiding_a_pack_whose_credits_expired_is_refused(acme):
    # given: 100 paid credits for 99.00, expiring unused on Nov 20
    _, invoice = credits_grant(
        customer=acme,
        credits=D(100),
        kind=CreditBlock.PAID,
        price=D("99.00"),
        expires_at=NOV_20,
        now=NOV_5,
    )
    credits_expire(now=NOV_20)
    before = refused_state(invoice)

    # when / then
    with pytest.raises(Conflict) as refused:
        invoice_void(invoice=invoice, reason="", now=DEC_3)
    assert refused.value.message == (
        "100 of the 100 credits sold on this invoice expired; "
        "nothing more of this line can be credited"
    )
    assert refused_state(invoice) == before


# Money top-ups


def test_voiding_an_unused_top_up_invoice_takes_its_money_back(api, acme):
    # given: 5.00 topped up earlier, then 100.00
    money_top_up(customer=acme, amount=D("5.00"), currency="USD", now=NOV_2)
    block, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    entries = LedgerEntry.objects.count()

    # when
    response = void(api, invoice)

    # then: back at 5.00, one void entry of -100.00
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "void"
    notes = response.json()["credit_notes"]
    assert [CreditNote.objects.get(pk=n).total for n in notes] == [D("100.00")]
    wallet = wallet_of(acme, Wallet.MONEY, "USD")
    assert wallet.balance == D("5.00")
    assert LedgerEntry.objects.count() == entries + 1
    assert last_entry(wallet) == (LedgerEntry.VOID, block.pk, D("-100.00"), D("5.00"), NOV_12)


def test_voiding_a_partly_used_top_up_invoice_is_refused_and_changes_nothing(api, acme):
    # given: 100.00 topped up, then 16,000,000 gpt-4o input tokens at 0.0000025 (40.00)
    subscribe(acme, "prepaid", NOV_1)
    block, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    ingest([event("t1", "llm.completion", NOW, input_tokens=16_000_000)], now=NOW)
    assert CreditBlock.objects.get(pk=block.pk).remaining == D("60.00")
    before = refused_state(invoice)

    # when
    response = void(api, invoice)

    # then
    assert response.status_code == 409
    assert response.json() == {"error": {"type": "conflict", "message": MONEY_USED}}
    assert refused_state(invoice) == before
    assert wallet_of(acme, Wallet.MONEY, "USD").balance == D("60.00")
    assert CreditNote.objects.count() == 0


# What is refused or has nothing to take back


def test_a_second_void_is_refused_and_takes_nothing_more(api, acme):
    money_top_up(customer=acme, amount=D("5.00"), currency="USD", now=NOV_2)
    _, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    assert void(api, invoice).status_code == 200
    before = refused_state(invoice)

    response = void(api, invoice, at=DEC_3)

    assert response.status_code == 409
    assert "is void" in response.json()["error"]["message"]
    assert refused_state(invoice) == before
    assert LedgerEntry.objects.filter(kind=LedgerEntry.VOID).count() == 1


def test_a_paid_purchase_invoice_is_not_voided_and_keeps_what_it_sold(api, acme):
    # A paid invoice (also a Stripe purchase's) is never voided: its status says why.
    _, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    invoice_mark_paid(invoice=invoice, reference="wire 118", now=NOV_5)
    before = refused_state(invoice)

    response = void(api, invoice)

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"invoice {invoice.number} is paid; only a finalized or uncollectible invoice can be voided"
    )
    assert refused_state(invoice) == before


def test_a_purchase_invoice_that_granted_nothing_is_voided_with_nothing_to_take_back(acme):
    # Every sale writes its invoice with its block; one without a block granted
    # nothing, so its void takes nothing back.
    invoice = invoice_create_purchase(
        customer=acme,
        lines=[LineInput("top_up", "Prepaid balance top-up (USD)", None, D(1), D(7), D(7))],
        now=NOV_5,
    )

    note = invoice_void(invoice=invoice, reason="", now=NOV_12)

    assert (note.total, Invoice.objects.get(pk=invoice.pk).status) == (D(7), Invoice.VOID)
    assert LedgerEntry.objects.count() == 0


# The admin's void action


def void_in_admin(admin_client, invoice: Invoice) -> list[tuple[str, str]]:
    with time_machine.travel(NOV_12, tick=False):
        response = admin_client.post(
            "/admin/invoices/invoice/",
            {"action": "void", "_selected_action": [invoice.pk], "confirmed": "yes"},
            follow=True,
        )
    assert response.status_code == 200
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def test_the_admin_void_action_takes_back_an_unused_pack(admin_client, acme):
    block, invoice = credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_5
    )

    messages = void_in_admin(admin_client, invoice)

    assert messages == [
        ("info", f"{invoice.number} is void; credit note CN-2026-000001 of 99.00 USD issued.")
    ]
    wallet = wallet_of(acme)
    assert wallet.balance == D(0)
    assert last_entry(wallet) == (LedgerEntry.VOID, block.pk, D(-100), D(0), NOV_12)


def test_the_admin_void_action_shows_the_refusal_of_a_used_top_up(admin_client, acme):
    subscribe(acme, "prepaid", NOV_1)
    _, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    ingest([event("t1", "llm.completion", NOW, input_tokens=16_000_000)], now=NOW)
    before = refused_state(invoice)

    messages = void_in_admin(admin_client, invoice)

    assert messages == [("error", f"{invoice.number} for Acme Inc cannot be voided: {MONEY_USED}.")]
    assert refused_state(invoice) == before


# Revenue


def test_a_voided_pack_leaves_deferred_revenue_in_the_month_of_the_void(acme):
    # given: pack runs_100 bought for 99.00 in November, voided in December
    _, invoice = credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_5
    )
    invoice_void(invoice=invoice, reason="", now=DEC_3)

    # when
    rows = credit_revenue(until=JAN_1)

    # then: (month, opening, purchased, recognized, breakage, closing)
    assert [(r.month.month, *r.figures()) for r in rows] == [
        (11, "0.00", "99.00", "0.00", "0.00", "99.00"),
        (12, "99.00", "-99.00", "0.00", "0.00", "0.00"),
        (1, "0.00", "0.00", "0.00", "0.00", "0.00"),
    ]
