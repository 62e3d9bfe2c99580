"""S30: a credit note on a purchase line takes back the share it credits of what
the invoice sold (credits in proportion, money by amount) from the block it
sold, in the note's transaction, with a `credit_note` ledger entry linked to the
block and the note. A share the block no longer holds (used, expired) is refused
with 409, the numbers and the most that can still be credited, and nothing
changes. Voiding is the credit note for everything left, through the same path;
the revenue report takes taken-back credits out of the month of the note; a
refund to the card only ever returns what was taken back."""

from datetime import datetime
from decimal import Decimal as D

import pytest
import time_machine

from common.errors import Conflict
from invoices.credit_balance import credit_balance
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice, Purchase
from invoices.services import invoice_void
from invoices.settlement import invoice_mark_paid
from plans.models import CreditPack
from plans.services import tax_rate_create
from tests.factories import subscribe
from tests.invoices.purchase_support import (
    DEC_3,
    DEC_10,
    FEB_1,
    JAN_15,
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

WALLETS = "/api/v1/customers/acme/wallets"


def runs_100() -> CreditPack:
    return CreditPack.objects.get(code="runs_100")


def only_line(invoice: Invoice) -> int:
    (line_id,) = invoice.lines.values_list("pk", flat=True)
    return line_id


def note_on(api, invoice_id: int, line_id: int, amount: str, *, at: datetime = NOV_12, **more):
    """POST a credit note crediting `amount` of the line, at `at`."""
    body = {"reason": "order_change", "lines": [{"invoice_line": line_id, "amount": amount}]}
    with time_machine.travel(at, tick=False):
        return api.post(
            f"/api/v1/invoices/{invoice_id}/credit-notes", {**body, **more}, format="json"
        )


def issue(invoice: Invoice, amount: str, *, at: datetime = NOV_12) -> CreditNote:
    """A note crediting `amount` of the line, issued at `at`, the clock moved there:
    a document is dated when it is issued (invoices.issue_dates)."""
    with time_machine.travel(at, tick=False):
        return credit_note_issue(
            invoice=invoice,
            lines=[CreditLineInput(only_line(invoice), D(amount))],
            reason=CreditNote.ORDER_CHANGE,
            now=at,
        )


def entries(wallet: Wallet, *kinds: str) -> list[tuple]:
    """The wallet's ledger entries of these kinds, oldest first: (kind, block, amount,
    balance after, credit note number, when)."""
    return [
        (
            e.kind,
            e.block_id,
            e.amount,
            e.balance_after,
            e.credit_note and e.credit_note.number,
            e.occurred_at,
        )
        for e in wallet.ledger.filter(kind__in=kinds).select_related("credit_note").order_by("id")
    ]


def remaining(block: CreditBlock) -> D:
    return CreditBlock.objects.get(pk=block.pk).remaining


# S30 end to end through the API


def test_s30_a_pack_credited_in_parts_takes_back_its_share_and_refuses_what_was_used(api, acme):
    subscribe(acme, "runner", NOV_1)

    # given: pack runs_100 (100 credits for 99.00) bought through the API
    with time_machine.travel(NOV_5, tick=False):
        bought = api.post(f"{WALLETS}/credits", {"pack": "runs_100"}, format="json")
    assert bought.status_code == 201, bought.content
    invoice_id, block_id = bought.json()["invoice"]["id"], bought.json()["block"]["id"]
    (line,) = bought.json()["invoice"]["lines"]
    assert (line["amount"], bought.json()["invoice"]["total"]) == ("99.00", "99.00")

    # when: a credit note of 49.50 on its line
    response = note_on(api, invoice_id, line["id"], "49.50")

    # then: 50 credits (the share credited) leave the block, with a ledger entry of its own
    assert response.status_code == 201, response.content
    first = response.json()
    assert (first["number"], first["total"], first["to_amount_due"]) == (
        "CN-2026-000001",
        "49.50",
        "49.50",
    )
    with time_machine.travel(NOV_12, tick=False):
        wallets = api.get(WALLETS).json()["results"]
        ledger = api.get(f"{WALLETS}/credits/ledger").json()["results"]
    assert [(w["kind"], w["balance"]) for w in wallets] == [("credits", "50")]
    assert [(b["id"], b["amount"], b["remaining"]) for b in wallets[0]["blocks"]] == [
        (block_id, "100", "50")
    ]
    assert [
        (e["kind"], e["amount"], e["balance_after"], e["block"], e["credit_note"], e["occurred_at"])
        for e in ledger
    ] == [
        ("credit_note", "-50", "50", block_id, first["id"], "2026-11-12T09:00:00Z"),
        ("purchase", "100", "100", block_id, None, "2026-11-05T00:00:00Z"),
    ]
    assert api.get(f"/api/v1/invoices/{invoice_id}").json()["amount_due"] == "49.50"

    # when: 30 credits are used (15 runs), then a note whose share (30 credits) is
    # more than the 20 left
    ingest(repeat(15, "agent.run", DEC_3, prefix="run"), now=DEC_3)
    before = refused_state(Invoice.objects.get(pk=invoice_id))
    refused = note_on(api, invoice_id, line["id"], "29.70", at=DEC_10)

    # then: 409 with the numbers and the most that can still be credited; nothing changed
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "type": "conflict",
            "message": "30 of the 100 credits sold on this invoice were already used; "
            "at most 19.80 of this line can be credited",
        }
    }
    assert refused_state(Invoice.objects.get(pk=invoice_id)) == before

    # and: crediting that most takes back the 20 credits left
    rest = note_on(api, invoice_id, line["id"], "19.80", at=DEC_10)
    assert rest.status_code == 201, rest.content
    with time_machine.travel(DEC_10, tick=False):
        ledger = api.get(f"{WALLETS}/credits/ledger").json()["results"]
        wallets = api.get(WALLETS).json()["results"]
    assert [(e["kind"], e["amount"], e["balance_after"], e["credit_note"]) for e in ledger][:2] == [
        ("credit_note", "-20", "0", rest.json()["id"]),
        ("usage", "-30", "20", None),
    ]
    assert [(w["kind"], w["balance"], w["blocks"]) for w in wallets] == [("credits", "0", [])]
    body = api.get(f"/api/v1/invoices/{invoice_id}").json()
    assert (body["status"], body["amount_credited"], body["amount_due"]) == (
        "finalized",
        "69.30",
        "29.70",
    )


def test_s30_crediting_40_of_a_100_top_up_takes_40_out_of_the_balance(api, acme):
    # given: 100.00 topped up through the API
    with time_machine.travel(NOV_5, tick=False):
        bought = api.post(
            f"{WALLETS}/money", {"amount": "100.00", "currency": "USD"}, format="json"
        )
    assert bought.status_code == 201, bought.content
    invoice_id, block_id = bought.json()["invoice"]["id"], bought.json()["block"]["id"]
    (line,) = bought.json()["invoice"]["lines"]

    # when
    response = note_on(api, invoice_id, line["id"], "40.00")

    # then
    assert response.status_code == 201, response.content
    with time_machine.travel(NOV_12, tick=False):
        wallets = api.get(WALLETS).json()["results"]
        ledger = api.get(f"{WALLETS}/money/ledger").json()["results"]
    assert [(w["kind"], w["currency"], w["balance"]) for w in wallets] == [
        ("money", "USD", "60.00")
    ]
    assert [
        (e["kind"], e["amount"], e["balance_after"], e["block"], e["credit_note"]) for e in ledger
    ] == [
        ("credit_note", "-40.00", "60.00", block_id, response.json()["id"]),
        ("top_up", "100.00", "100.00", block_id, None),
    ]


def thirty_credits_used(acme) -> tuple[CreditBlock, Invoice, Wallet]:
    """Pack runs_100 (100 credits for 99.00), 30 of its credits used (15 runs)."""
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    ingest(repeat(15, "agent.run", NOW, prefix="run"), now=NOW)
    return block, invoice, wallet_of(acme)


def forty_dollars_used(acme) -> tuple[CreditBlock, Invoice, Wallet]:
    """100.00 topped up, 40.00 of it used (16,000,000 tokens at 0.0000025)."""
    subscribe(acme, "prepaid", NOV_1)
    block, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)
    ingest([event("t1", "llm.completion", NOW, input_tokens=16_000_000)], now=NOW)
    return block, invoice, wallet_of(acme, Wallet.MONEY, "USD")


@pytest.mark.parametrize(
    ("used", "asked", "message", "most"),
    [
        (
            thirty_credits_used,
            "99.00",
            "30 of the 100 credits sold on this invoice were already used; "
            "at most 69.30 of this line can be credited",
            "69.30",
        ),
        (
            forty_dollars_used,
            "60.01",
            "40.00 of the 100.00 USD topped up on this invoice were already used; "
            "at most 60.00 of this line can be credited",
            "60.00",
        ),
    ],
    ids=["s30_the_whole_line_after_30_credits_used", "a_top_up_after_40_00_used"],
)
def test_a_note_whose_share_is_no_longer_there_is_refused_then_the_most_is_accepted(
    api, acme, used, asked, message, most
):
    # given
    block, invoice, wallet = used(acme)
    left = remaining(block)
    before = refused_state(invoice)

    # when: more than what is left is credited
    response = note_on(api, invoice.pk, only_line(invoice), asked)

    # then: 409 with the numbers; nothing changed
    assert response.status_code == 409
    assert response.json()["error"]["message"] == message
    assert refused_state(invoice) == before

    # and: crediting the most takes back all that is left
    accepted = note_on(api, invoice.pk, only_line(invoice), most)
    assert accepted.status_code == 201, accepted.content
    assert entries(wallet, LedgerEntry.CREDIT_NOTE) == [
        ("credit_note", block.pk, -left, D(0), accepted.json()["number"], NOV_12)
    ]
    assert (wallet_of(acme, wallet.kind, wallet.currency).balance, remaining(block)) == (0, 0)


# The three cases of the issue


def test_an_unpaid_pack_credited_in_full_keeps_no_credits(acme):
    # given: 10 promotional credits, then pack runs_100, unpaid
    credits_grant(customer=acme, credits=D(10), now=NOV_2)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)

    # when: its whole line is credited
    note = issue(invoice, "99.00")

    # then: nothing is due, and the pack's 100 credits left the wallet
    invoice.refresh_from_db()
    assert (invoice.status, invoice.credited, invoice.amount_due) == (
        Invoice.FINALIZED,
        D("99.00"),
        D(0),
    )
    assert (note.total, note.to_amount_due, note.paid_back) == (D("99.00"), D("99.00"), D(0))
    wallet = wallet_of(acme)
    assert (wallet.balance, remaining(block)) == (D(10), D(0))
    assert entries(wallet, LedgerEntry.CREDIT_NOTE) == [
        (LedgerEntry.CREDIT_NOTE, block.pk, D(-100), D(10), note.number, NOV_12)
    ]


def test_a_money_top_up_credited_in_full_leaves_nothing_in_the_wallet(acme):
    block, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)

    note = issue(invoice, "100.00")

    wallet = wallet_of(acme, Wallet.MONEY, "USD")
    assert (wallet.balance, remaining(block)) == (D("0.00"), D(0))
    assert entries(wallet, LedgerEntry.CREDIT_NOTE) == [
        (LedgerEntry.CREDIT_NOTE, block.pk, D("-100.00"), D(0), note.number, NOV_12)
    ]
    assert Invoice.objects.get(pk=invoice.pk).amount_due == 0


def test_a_paid_pack_with_30_credits_used_is_credited_only_for_what_is_left(api, acme):
    # given: a VAT of 10 %, pack runs_100 (99.00 + 9.90 = 108.90) paid by transfer,
    # 30 of its credits used
    tax_rate_create(code="vat", name="VAT", percentage=D("10"), is_default=True)
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    assert invoice.total == D("108.90")
    invoice_mark_paid(invoice=invoice, reference="wire 118", now=NOV_5)
    ingest(repeat(15, "agent.run", NOW, prefix="run"), now=NOW)
    before = refused_state(invoice)

    # when: voided, then credited for the whole line
    with time_machine.travel(NOV_12, tick=False):
        voided = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, format="json")
    whole = note_on(api, invoice.pk, only_line(invoice), "99.00")

    # then: both refused (409), the note with the numbers; nothing changed
    assert voided.status_code == 409
    assert voided.json()["error"]["message"] == (
        f"invoice {invoice.number} is paid; only a finalized or uncollectible invoice can be voided"
    )
    assert whole.status_code == 409
    assert whole.json()["error"]["message"] == (
        "30 of the 100 credits sold on this invoice were already used; "
        "at most 69.30 of this line can be credited"
    )
    assert refused_state(invoice) == before
    assert (credit_balance(acme), wallet_of(acme).balance, remaining(block)) == (0, 70, 70)

    # when: a note for what is left, 69.30
    rest = note_on(api, invoice.pk, only_line(invoice), "69.30")

    # then: 69.30 + 6.93 VAT go to the credit balance, and the 70 credits left the wallet
    assert rest.status_code == 201, rest.content
    assert (rest.json()["total"], rest.json()["to_credit_balance"]) == ("76.23", "76.23")
    assert credit_balance(acme) == D("76.23")
    wallet = wallet_of(acme)
    assert (wallet.balance, remaining(block)) == (D(0), D(0))
    assert entries(wallet, LedgerEntry.CREDIT_NOTE) == [
        (LedgerEntry.CREDIT_NOTE, block.pk, D(-70), D(0), rest.json()["number"], NOV_12)
    ]
    assert note_on(api, invoice.pk, only_line(invoice), "0.01").status_code == 409


# Shares, rounding and the void


def test_notes_that_credit_the_whole_line_take_back_exactly_the_block(acme):
    # given: pack runs_100; 99.00 credited as three notes of 33.00
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)

    notes = [issue(invoice, "33.00", at=at) for at in (NOV_12, DEC_3, DEC_10)]

    # then: a third each, rounded on the running total (33.3333333333, then
    # 66.6666666667 in all, then 100): exactly the block in all
    wallet = wallet_of(acme)
    taken = entries(wallet, LedgerEntry.CREDIT_NOTE)
    assert [(amount, after, number, at) for _, _, amount, after, number, at in taken] == [
        (D("-33.3333333333"), D("66.6666666667"), notes[0].number, NOV_12),
        (D("-33.3333333334"), D("33.3333333333"), notes[1].number, DEC_3),
        (D("-33.3333333333"), D(0), notes[2].number, DEC_10),
    ]
    assert {(kind, block_id) for kind, block_id, *_ in taken} == {("credit_note", block.pk)}
    assert (wallet.balance, remaining(block)) == (D(0), D(0))


def test_a_void_after_a_partial_note_takes_back_exactly_the_rest(api, acme):
    # given: 10 promotional credits, pack runs_100, 33.00 of it credited
    credits_grant(customer=acme, credits=D(10), now=NOV_2)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    first = issue(invoice, "33.00")

    # when
    with time_machine.travel(DEC_3, tick=False):
        response = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, format="json")

    # then: the void's note credits the 66.00 left and takes back the 66.6666666667 left
    assert response.status_code == 200, response.content
    void_note = CreditNote.objects.get(invoice=invoice, voids_invoice=True)
    assert (void_note.subtotal, void_note.to_amount_due) == (D("66.00"), D("66.00"))
    wallet = wallet_of(acme)
    assert entries(wallet, LedgerEntry.CREDIT_NOTE, LedgerEntry.VOID) == [
        (
            LedgerEntry.CREDIT_NOTE,
            block.pk,
            D("-33.3333333333"),
            D("76.6666666667"),
            first.number,
            NOV_12,
        ),
        (LedgerEntry.VOID, block.pk, D("-66.6666666667"), D(10), void_note.number, DEC_3),
    ]
    assert (wallet.balance, remaining(block)) == (D(10), D(0))


def test_a_void_after_a_partial_note_and_some_use_is_refused_with_the_numbers(acme):
    # given: pack runs_100, 49.50 credited (50 credits back), then 10 credits used
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    issue(invoice, "49.50", at=NOV_5)
    ingest(repeat(5, "agent.run", NOW, prefix="run"), now=NOW)
    before = refused_state(invoice)

    with pytest.raises(Conflict) as refused:
        invoice_void(invoice=invoice, reason="", now=NOV_12)

    assert refused.value.message == (
        "10 of the 100 credits sold on this invoice were already used; "
        "at most 39.60 of this line can be credited"
    )
    assert refused_state(invoice) == before
    assert remaining(block) == D(40)


def test_expired_credits_are_not_credited(acme):
    # given: 100 paid credits for 99.00 expiring on Nov 20, 49.50 credited before
    _, invoice = credits_grant(
        customer=acme,
        credits=D(100),
        kind=CreditBlock.PAID,
        price=D("99.00"),
        expires_at=NOV_20,
        now=NOV_5,
    )
    issue(invoice, "49.50")
    credits_expire(now=NOV_20)
    before = refused_state(invoice)

    with pytest.raises(Conflict) as refused:
        issue(invoice, "0.99", at=DEC_3)

    assert refused.value.message == (
        "50 of the 100 credits sold on this invoice expired; "
        "nothing more of this line can be credited"
    )
    assert refused_state(invoice) == before


# Revenue


def test_credits_taken_back_leave_deferred_revenue_in_the_month_of_the_note(acme):
    # given: 100 credits for 99.00 bought in November, expiring on Jan 15; 20 used
    # in November, 49.50 credited (50 credits) and 10 used in December; the 20 left
    # expire in January
    subscribe(acme, "runner", NOV_1)
    _, invoice = credits_grant(
        customer=acme,
        credits=D(100),
        kind=CreditBlock.PAID,
        price=D("99.00"),
        expires_at=JAN_15,
        now=NOV_5,
    )
    ingest(repeat(10, "agent.run", NOW, prefix="nov"), now=NOW)
    issue(invoice, "49.50", at=DEC_3)
    ingest(repeat(5, "agent.run", DEC_10, prefix="dec"), now=DEC_10)
    credits_expire(now=JAN_15)

    # when
    rows = credit_revenue(until=FEB_1)

    # then: (month, opening, purchased, recognized, breakage, closing)
    assert [(r.month.month, *r.figures()) for r in rows] == [
        (11, "0.00", "99.00", "19.80", "0.00", "79.20"),
        (12, "79.20", "-49.50", "9.90", "0.00", "19.80"),
        (1, "19.80", "0.00", "0.00", "19.80", "0.00"),
        (2, "0.00", "0.00", "0.00", "0.00", "0.00"),
    ]


def test_a_pack_credited_in_thirds_then_voided_undoes_exactly_its_price(acme):
    # given: pack runs_100 bought in November, 33.00 credited in November and
    # December (33.3333333333 and 33.3333333334 credits), the rest voided in January
    _, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    issue(invoice, "33.00", at=NOV_12)
    issue(invoice, "33.00", at=DEC_3)
    invoice_void(invoice=invoice, reason="", now=JAN_15)

    rows = credit_revenue(until=FEB_1)

    assert [(r.month.month, *r.figures()) for r in rows] == [
        (11, "0.00", "66.00", "0.00", "0.00", "66.00"),
        (12, "66.00", "-33.00", "0.00", "0.00", "33.00"),
        (1, "33.00", "-33.00", "0.00", "0.00", "0.00"),
        (2, "0.00", "0.00", "0.00", "0.00", "0.00"),
    ]


# The admin's credit note page


def test_the_admin_preview_says_what_is_taken_back_and_refuses_what_was_used(admin_client, acme):
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    ingest(repeat(15, "agent.run", NOW, prefix="run"), now=NOW)
    url = f"/admin/invoices/invoice/{invoice.pk}/credit-note/"
    field = f"line_{only_line(invoice)}"

    # a preview of 49.50: 50 credits taken back
    page = admin_client.post(url, {"reason": "order_change", field: "49.50"})
    assert page.status_code == 200
    assert page.context["preview"]["taken_back"] == ["50 credits"]
    assert "Taken back from the customer's wallet" in page.content.decode()
    token = page.context["credited"]  # what the invoice was credited at the preview

    # the whole line: the same refusal as the API, and no preview
    before = refused_state(invoice)
    page = admin_client.post(url, {"reason": "order_change", field: "99.00"})
    assert page.context["error"] == (
        "30 of the 100 credits sold on this invoice were already used; "
        "at most 69.30 of this line can be credited"
    )
    assert "preview" not in page.context
    page = admin_client.post(
        url,
        {
            "reason": "order_change",
            field: "99.00",
            "confirm": "1",
            "credited": token,
        },
    )
    assert page.context["error"].startswith("30 of the 100 credits")
    assert refused_state(invoice) == before

    # issued from the preview: 50 credits leave the block
    with time_machine.travel(NOV_12, tick=False):
        issued = admin_client.post(
            url,
            {
                "reason": "order_change",
                field: "49.50",
                "confirm": "1",
                "credited": token,
            },
        )
    assert issued.status_code == 302
    assert remaining(block) == D(20)


def test_the_admin_void_page_says_what_is_taken_back_or_why_it_is_refused(admin_client, acme):
    subscribe(acme, "runner", NOV_1)
    _, used = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    _, unused = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    ingest(repeat(10, "agent.run", NOW, prefix="run"), now=NOW)  # 20 of the first pack

    page = admin_client.get(f"/admin/invoices/invoice/{unused.pk}/void/")
    assert "What the purchase granted is taken back: 100 credits." in page.content.decode()
    # a void it would refuse is not offered: back to the invoice, saying why
    page = admin_client.get(f"/admin/invoices/invoice/{used.pk}/void/", follow=True)
    assert page.redirect_chain == [(f"/admin/invoices/invoice/{used.pk}/change/", 302)]
    assert [str(message) for message in page.context["messages"]] == [
        f"{used} for Acme Inc cannot be voided: 20 of the 100 credits sold on this invoice "
        "were already used; at most 79.20 of this line can be credited."
    ]
    assert Invoice.objects.get(pk=used.pk).status == Invoice.FINALIZED


# Paid through Stripe, refunded to the card


def test_a_pack_paid_through_stripe_is_refunded_only_for_what_is_taken_back(
    api, acme, fake_stripe, django_capture_on_commit_callbacks
):
    # given: pack runs_100 charged to the saved card (purchase_fulfil links its block
    # to the paid invoice)
    subscribe(acme, "runner", NOV_1)
    with time_machine.travel(NOV_5, tick=False), django_capture_on_commit_callbacks(execute=True):
        ordered = api.post(f"{WALLETS}/credits", {"pack": "runs_100"}, format="json")
    assert ordered.status_code == 202, ordered.content
    invoice = Purchase.objects.get(pk=ordered.json()["purchase"]["id"]).invoice
    block = CreditBlock.objects.get(invoice=invoice)
    assert (invoice.status, block.amount) == (Invoice.PAID, D(100))
    line = only_line(invoice)

    # when: half of it is refunded
    with django_capture_on_commit_callbacks(execute=True):
        half = note_on(api, invoice.pk, line, "49.50", refund=True)

    # then: 50 credits taken back, and the card gets 49.50
    assert half.status_code == 201, half.content
    assert [r.form["amount"] for r in fake_stripe.to("POST", "/v1/refunds")] == ["4950"]
    assert (wallet_of(acme).balance, remaining(block)) == (D(50), D(50))
    assert CreditNote.objects.get(pk=half.json()["id"]).refund_status == "succeeded"

    # when: 30 credits are used, then the other half is asked back to the card
    ingest(repeat(15, "agent.run", NOW, prefix="run"), now=NOW)
    before = refused_state(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        rest = note_on(api, invoice.pk, line, "49.50", refund=True)

    # then: refused, nothing more asked of Stripe
    assert rest.status_code == 409
    assert rest.json()["error"]["message"] == (
        "30 of the 100 credits sold on this invoice were already used; "
        "at most 19.80 of this line can be credited"
    )
    assert refused_state(invoice) == before
    assert len(fake_stripe.to("POST", "/v1/refunds")) == 1
    assert credit_balance(acme) == 0
