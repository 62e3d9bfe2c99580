"""Credit notes: part of an invoice given back, line by line, with the tax in
proportion; numbered in their own gap-free sequence; on an unpaid invoice they
lower the amount due, on a paid one they go to the customer's credit balance,
which pays the next invoices at finalization. A refused note changes nothing."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from invoices.credit_balance import credit_balance
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditBalanceEntry, CreditNote, Invoice
from invoices.services import (
    invoice_create_purchase,
    invoice_void,
    invoice_write_draft,
)
from invoices.settlement import invoice_mark_paid
from plans.models import TaxRate
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, api_client
from tests.invoices.conftest import acme_december_invoice, base_fee_lines, finalized_invoice
from tests.invoices.stripe_fake import Answer

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


@pytest.fixture
def customer(db):
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    return CustomerFactory(external_id="acme", currency="EUR")


def line_ids(invoice: Invoice) -> list[int]:
    return list(invoice.lines.order_by("position").values_list("pk", flat=True))


def state() -> dict:
    return {
        "notes": list(CreditNote.objects.values_list("number", "total")),
        "invoices": list(Invoice.objects.order_by("pk").values_list("status", "credited")),
        "balance": list(CreditBalanceEntry.objects.values_list("amount", flat=True)),
    }


def test_a_partial_credit_note_credits_one_line_with_its_tax(api, customer):
    # given: 20.00 + 10.10 = 30.10, VAT 20 % = 6.02, total 36.12, unpaid
    invoice = invoice_for(customer, "20.00", "10.10")
    first, second = line_ids(invoice)

    # when: 5.00 of the first line is credited
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {
            "reason": "product_unsatisfactory",
            "memo": "outage on Nov 12",
            "lines": [{"invoice_line": first, "amount": "5.00"}],
        },
        format="json",
    )

    # then: 5.00 and its VAT in proportion, 6.02 x 5.00 / 30.10 = 1.00, lower the amount due
    assert response.status_code == 201, response.content
    note = response.json()
    assert {
        k: note[k] for k in ("number", "invoice", "customer", "reason", "memo", "currency")
    } == {
        "number": "CN-2026-000001",
        "invoice": invoice.pk,
        "customer": "acme",
        "reason": "product_unsatisfactory",
        "memo": "outage on Nov 12",
        "currency": "EUR",
    }
    assert note["lines"] == [
        {"invoice_line": first, "description": "Line 1", "amount": "5.00", "share": None}
    ]
    assert note["tax_lines"] == [
        {
            "code": "vat",
            "name": "VAT",
            "percentage": "20.00",
            "taxable_amount": "5.00",
            "amount": "1.00",
        }
    ]
    assert (note["subtotal"], note["tax"], note["total"]) == ("5.00", "1.00", "6.00")
    assert (note["to_amount_due"], note["to_credit_balance"]) == ("6.00", "0.00")
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (body["status"], body["total"], body["amount_credited"], body["amount_due"]) == (
        "finalized",
        "36.12",
        "6.00",
        "30.12",
    )
    assert body["credit_notes"] == [note["id"]]

    # and: crediting all that is left gives back exactly the tax charged
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {
            "reason": "order_change",
            "lines": [
                {"invoice_line": first, "amount": "15.00"},
                {"invoice_line": second, "amount": "10.10"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    rest = response.json()
    assert (rest["number"], rest["subtotal"], rest["tax"], rest["total"]) == (
        "CN-2026-000002",
        "25.10",
        "5.02",
        "30.12",
    )
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["amount_due"] == "0.00"


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"invoice_line": 0, "amount": "20.01"}], "lines.0.amount"),
        ([{"invoice_line": 0, "amount": "0"}], "lines.0.amount"),
        ([{"invoice_line": 0, "amount": "-1"}], "lines.0.amount"),
        ([{"invoice_line": 0, "amount": "1.001"}], "lines.0.amount"),
        (
            [{"invoice_line": 0, "amount": "1"}, {"invoice_line": 0, "amount": "1"}],
            "lines.1.invoice_line",
        ),
        ([{"invoice_line": 999999, "amount": "1"}], "lines.0.invoice_line"),
    ],
)
def test_more_than_is_left_or_a_bad_line_is_refused_and_changes_nothing(
    api, customer, lines, field
):
    invoice = invoice_for(customer, "20.00", "10.10")
    api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": [{"invoice_line": line_ids(invoice)[0], "amount": "0.50"}]},
        format="json",
    )
    before = state()
    lines = [
        {
            **line,
            "invoice_line": line_ids(invoice)[0]
            if line["invoice_line"] == 0
            else line["invoice_line"],
        }
        for line in lines
    ]
    if field == "lines.0.amount" and lines[0]["amount"] == "20.01":
        lines[0]["amount"] = "19.51"  # 0.50 of the 20.00 is credited already

    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": lines},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert state() == before


def test_an_invoice_with_a_negative_line_is_never_credited_more_than_it_charges(api, customer):
    # given: a plan change's invoice, +100.00 and -60.00: 40.00 + VAT = 48.00
    invoice = invoice_for(customer, "100.00", "-60.00")
    charge, _ = line_ids(invoice)
    before = state()

    # when: the whole 100.00 line is credited
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": [{"invoice_line": charge, "amount": "100.00"}]},
        format="json",
    )

    # then: refused, the invoice charges 40.00 in all; 40.00 is accepted
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"lines": ["at most 40.00 in all"]}
    assert state() == before
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": [{"invoice_line": charge, "amount": "40.00"}]},
        format="json",
    )
    assert (response.status_code, response.json()["total"]) == (201, "48.00")
    assert Invoice.objects.get(pk=invoice.pk).amount_due == 0


def test_the_limit_on_the_whole_invoice_counts_the_notes_already_issued(api, customer):
    """Rule: what is left to credit on the whole invoice is what it charges less
    what its notes credited so far, not what it charges."""
    # given: +100.00 and -60.00 (40.00 + VAT), 40.00 of the charge credited already
    invoice = invoice_for(customer, "100.00", "-60.00")
    charge, _ = line_ids(invoice)
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": [{"invoice_line": charge, "amount": "40.00"}]},
        format="json",
    )
    assert (response.status_code, response.json()["total"]) == (201, "48.00")
    before = state()

    # when: 10.00 more of the charge (60.00 is left on that line)
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"reason": "other", "lines": [{"invoice_line": charge, "amount": "10.00"}]},
        format="json",
    )

    # then: refused, nothing is left on the invoice in all
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"lines": ["at most 0.00 in all"]}
    assert state() == before


def test_tax_credited_in_proportion_is_rounded_on_the_running_total(api):
    """Rule: each note credits the tax of the running total credited, rounded,
    less the tax the earlier notes credited: 1.00 at 10 % is 0.10 of tax; 0.35
    credits 0.035, 0.04, then 0.70 credits 0.07 in all, 0.03 more (rounding each
    note's own share would credit 0.04 twice)."""
    # given: an invoice of 1.00 taxed at 10 %
    tax_rate_create(code="gst", name="GST", percentage=D("10"))
    customer = CustomerFactory(external_id="kiwi", currency="NZD", tax_rates=["gst"])
    invoice = invoice_for(customer, "1.00")
    (line,) = line_ids(invoice)
    assert (invoice.tax, invoice.total) == (D("0.10"), D("1.10"))

    # when: 0.35 of it is credited, twice
    notes = [
        api.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"reason": "other", "lines": [{"invoice_line": line, "amount": "0.35"}]},
            format="json",
        ).json()
        for _ in range(2)
    ]

    # then: 0.04 of tax, then 0.03
    assert [(n["subtotal"], n["tax"], n["total"]) for n in notes] == [
        ("0.35", "0.04", "0.39"),
        ("0.35", "0.03", "0.38"),
    ]
    assert [n["tax_lines"][0]["amount"] for n in notes] == ["0.04", "0.03"]
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["amount_due"] == "0.33"


def test_a_void_credits_exactly_what_is_left_negative_lines_included(api, customer):
    """Rule: the void's credit note takes every line's remainder, the negative
    ones too: +100.00 and -60.00 at 20 % VAT charge 48.00, and the void credits
    48.00 (not 120.00 for the positive line alone)."""
    # given
    invoice = invoice_for(customer, "100.00", "-60.00")
    charge, credit = line_ids(invoice)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("40.00"), D("8.00"), D("48.00"))

    # when
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void", {"reason": "wrong plan"}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["amount_due"]) == ("void", "0.00")
    (note,) = api.get(f"/api/v1/credit-notes?invoice={invoice.pk}").json()["results"]
    assert (note["subtotal"], note["tax"], note["total"], note["voids_invoice"]) == (
        "40.00",
        "8.00",
        "48.00",
        True,
    )
    assert [(n["invoice_line"], n["amount"]) for n in note["lines"]] == [
        (charge, "100.00"),
        (credit, "-60.00"),
    ]
    assert (note["to_amount_due"], note["to_credit_balance"]) == ("48.00", "0.00")
    assert credit_balance(customer) == 0


def test_a_purchase_paid_through_stripe_keeps_the_credit_balance(customer):
    paid = invoice_for(customer, "10.00")
    invoice_mark_paid(invoice=paid, reference="wire", now=DEC_1)
    credit_note_issue(
        invoice=paid,
        lines=[CreditLineInput(line_ids(paid)[0], D("10.00"))],
        reason="duplicate",
        now=DEC_1,
    )
    assert credit_balance(customer) == D("12.00")

    purchase = invoice_create_purchase(
        customer=customer,
        lines=[LineInput("credit_pack", "100 credits", None, D(1), D("50.00"), D("50.00"))],
        now=DEC_1,
        paid_reference="pi_123",
        tax_rates=list(TaxRate.objects.filter(code="vat")),
    )

    # paid by the card (50.00 + VAT collected at checkout), not from the balance
    assert (purchase.status, purchase.payment_reference) == (Invoice.PAID, "pi_123")
    assert (purchase.total, purchase.tax, purchase.credits_applied) == (D("60.00"), D("10.00"), 0)
    assert credit_balance(customer) == D("12.00")


def test_draft_and_void_invoices_cannot_be_credited(api, customer):
    invoice = invoice_for(customer, "10.00")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=DEC_1,
        period_end=JAN_1,
        lines=[LineInput("base_fee", "Jan", None, D(1), D(5), D(5))],
        now=JAN_1,
    )
    invoice_void(invoice=invoice, reason="", now=DEC_1)
    before = state()

    for target in (draft, invoice):
        response = api.post(
            f"/api/v1/invoices/{target.pk}/credit-notes",
            {"reason": "other", "lines": [{"invoice_line": line_ids(target)[0], "amount": "1"}]},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert "invoice" in response.json()["error"]["fields"]
    assert state() == before


def test_a_credit_note_on_a_paid_invoice_pays_the_next_invoice(api, customer):
    # given: November's 30.00 + VAT = 36.00, paid by bank transfer
    november = invoice_for(customer, "30.00")
    invoice_mark_paid(invoice=november, reference="wire 118", now=DEC_1)

    # when: 10.00 of it is credited
    response = api.post(
        f"/api/v1/invoices/{november.pk}/credit-notes",
        {
            "reason": "duplicate",
            "lines": [{"invoice_line": line_ids(november)[0], "amount": "10.00"}],
        },
        format="json",
    )

    # then: 12.00 (with VAT) goes to acme's credit balance
    assert response.status_code == 201, response.content
    assert (response.json()["to_amount_due"], response.json()["to_credit_balance"]) == (
        "0.00",
        "12.00",
    )
    assert api.get("/api/v1/customers/acme").json()["credit_balance"] == "12.00"
    assert Invoice.objects.get(pk=november.pk).status == Invoice.PAID

    # and: December's 50.00 + VAT = 60.00 is finalized with 12.00 of it paid
    december = invoice_for(customer, "50.00", start=DEC_1, end=JAN_1)
    body = api.get(f"/api/v1/invoices/{december.pk}").json()
    assert (body["total"], body["credits_applied"], body["amount_due"], body["status"]) == (
        "60.00",
        "12.00",
        "48.00",
        "finalized",
    )
    assert credit_balance(customer) == 0
    assert api.get("/api/v1/customers/acme").json()["credit_balance"] == "0.00"


def test_a_balance_that_covers_an_invoice_pays_it_whole(customer):
    paid = invoice_for(customer, "100.00")
    invoice_mark_paid(invoice=paid, reference="wire", now=DEC_1)

    credit_note_issue(
        invoice=paid,
        lines=[CreditLineInput(line_ids(paid)[0], D("100.00"))],
        reason="duplicate",
        now=DEC_1,
    )
    assert credit_balance(customer) == D("120.00")

    small = invoice_for(customer, "25.00", start=DEC_1, end=JAN_1)

    assert (small.status, small.credits_applied, small.amount_due) == (
        Invoice.PAID,
        D("30.00"),
        0,
    )
    assert small.payment_reference == "credit balance"
    assert credit_balance(customer) == D("90.00")


def test_voiding_gives_back_what_the_credit_balance_paid(customer):
    paid = invoice_for(customer, "10.00")
    invoice_mark_paid(invoice=paid, reference="wire", now=DEC_1)

    credit_note_issue(
        invoice=paid,
        lines=[CreditLineInput(line_ids(paid)[0], D("10.00"))],
        reason="duplicate",
        now=DEC_1,
    )
    # 12.00 in the balance pays 12.00 of a 24.00 invoice
    invoice = invoice_for(customer, "20.00", start=DEC_1, end=JAN_1)
    assert (invoice.credits_applied, invoice.amount_due) == (D("12.00"), D("12.00"))

    note = invoice_void(invoice=invoice, reason="wrong plan", now=JAN_1)

    assert (note.total, note.to_amount_due, note.paid_back) == (
        D("24.00"),
        D("12.00"),
        D("12.00"),
    )
    assert credit_balance(customer) == D("12.00")


def test_credit_notes_are_listed_by_customer_and_read_one_by_one(api, customer):
    other = CustomerFactory(external_id="other", currency="EUR")
    mine = invoice_for(customer, "10.00")
    theirs = invoice_for(other, "10.00")
    for invoice in (mine, theirs):
        invoice_void(invoice=invoice, reason="", now=DEC_1)

    listed = api.get("/api/v1/credit-notes?customer=acme").json()["results"]

    assert [(n["number"], n["total"], n["voids_invoice"]) for n in listed] == [
        ("CN-2026-000001", "12.00", True)
    ]
    one = api.get(f"/api/v1/credit-notes/{listed[0]['id']}").json()
    assert one == listed[0]
    assert one["pdf_url"] == f"/api/v1/credit-notes/{one['id']}/pdf"
    assert api.get("/api/v1/credit-notes/999999").status_code == 404
    assert api.get("/api/v1/credit-notes?invoice=abc").status_code == 400


# Refunds through Stripe


def test_a_refund_goes_back_to_the_card_through_stripe(
    api, fake_stripe, django_capture_on_commit_callbacks
):
    # given: acme's December invoice of 29.99, collected by Stripe
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.payment.status) == (Invoice.PAID, "succeeded")
    intent = invoice.payment.stripe_payment_intent_id

    # when: 10.00 is credited with a refund
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {
                "reason": "duplicate",
                "refund": True,
                "lines": [{"invoice_line": line_ids(invoice)[0], "amount": "10.00"}],
            },
            format="json",
        )

    # then: Stripe is asked once for 1000 cents on that payment, and the balance is untouched
    assert response.status_code == 201, response.content
    refunds = fake_stripe.to("POST", "/v1/refunds")
    assert [(r.form["payment_intent"], r.form["amount"]) for r in refunds] == [(intent, "1000")]
    assert refunds[0].idempotency_key == f"credit-note-{response.json()['id']}-refund"
    note = CreditNote.objects.get()
    assert (note.paid_back_to, note.refund_status, note.stripe_refund_id) == (
        "refund",
        "succeeded",
        "re_fake_3",
    )
    body = api.get(f"/api/v1/credit-notes/{note.pk}").json()
    assert (body["to_refund"], body["to_credit_balance"], body["refund_status"]) == (
        "10.00",
        "0.00",
        "succeeded",
    )
    assert credit_balance(invoice.customer) == 0


def test_a_refund_stripe_refuses_goes_to_the_credit_balance(
    api, fake_stripe, django_capture_on_commit_callbacks
):
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    fake_stripe.queue(
        "POST",
        "/v1/refunds",
        Answer(
            status=400,
            body={"error": {"type": "invalid_request_error", "message": "charge disputed"}},
        ),
    )

    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {
                "reason": "duplicate",
                "refund": True,
                "lines": [{"invoice_line": line_ids(invoice)[0], "amount": "29.99"}],
            },
            format="json",
        )

    note = CreditNote.objects.get()
    assert (note.refund_status, note.paid_back_to) == ("failed", "credit_balance")
    assert "charge disputed" in note.refund_error
    assert credit_balance(invoice.customer) == D("29.99")


def test_no_refund_for_an_invoice_stripe_did_not_collect(api, customer):
    invoice = invoice_for(customer, "30.00")
    invoice_mark_paid(invoice=invoice, reference="wire 118", now=DEC_1)
    before = state()

    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {
            "reason": "duplicate",
            "refund": True,
            "lines": [{"invoice_line": line_ids(invoice)[0], "amount": "10.00"}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "refund": ["the invoice was not paid through Stripe"]
    }
    assert state() == before


def invoice_for(customer, *amounts: str, start=NOV_1, end=DEC_1) -> Invoice:
    return finalized_invoice(customer, base_fee_lines(*amounts), start=start, end=end)
