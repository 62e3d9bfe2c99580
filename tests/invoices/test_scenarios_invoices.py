"""Scenarios S17-S19 (../shared/SCENARIOS.md), end to end through subscriptions,
the close and the API, with the exact amounts the scenarios give."""

import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from invoices.services import invoice_finalize, invoice_write_draft
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    api_client,
    published_version,
    subscribe,
)
from tests.invoices.conftest import finalized_invoice

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


def pdf_words(invoice: Invoice) -> str:
    reader = PdfReader(io.BytesIO(render_invoice_pdf(invoice)))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


# S17 Payment terms


@pytest.mark.parametrize(
    ("terms", "due", "past_due_on"),
    [
        (30, "2026-12-01T01:00:00Z", datetime(2026, 12, 1, 2, tzinfo=UTC)),
        (0, "2026-11-01T01:00:00Z", datetime(2026, 11, 1, 2, tzinfo=UTC)),
    ],
)
def test_s17_payment_terms(api, terms, due, past_due_on):
    # given: a Los Angeles customer with these terms, on a 10.00 plan since 1 October
    version = published_version("basic", base_fee=D("10.00"))
    customer = CustomerFactory(
        external_id="acme", timezone_name="America/Los_Angeles", payment_terms_days=terms
    )
    subscribe(customer, version.plan, start=OCT_1)

    # when: October's close is finalized at 01:00 UTC on 1 November (31 October there)
    closed_at = datetime(2026, 11, 1, 1, tzinfo=UTC)
    with time_machine.travel(closed_at, tick=False):
        periods_close(as_of=closed_at)
    invoice = Invoice.objects.get(customer=customer, reason=Invoice.PERIOD)

    # then: issued 31 Oct 2026, due `terms` days later, amount_due equal to the total
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (body["issued_at"], body["due_at"]) == ("2026-11-01T01:00:00Z", due)
    assert body["amount_due"] == body["total"] == "10.00"
    words = pdf_words(invoice)
    assert "31 Oct 2026" in words
    assert ("30 Nov 2026" if terms == 30 else "31 Oct 2026") in words

    # and: past due once the due date has passed, not before
    with time_machine.travel(past_due_on, tick=False):
        overdue = api.get("/api/v1/invoices?past_due=true").json()["results"]
    with time_machine.travel(datetime(2026, 11, 1, 0, 59, tzinfo=UTC), tick=False):
        early = api.get("/api/v1/invoices?past_due=true").json()["results"]
    assert invoice.pk in [i["id"] for i in overdue]
    assert invoice.pk not in [i["id"] for i in early]


# S18 Tax per rate, rounded once per rate


def test_s18_tax_per_rate_rounded_once_per_rate(api):
    # given: vat_a 5 % and tax_b 7.5 % on a customer
    tax_rate_create(code="vat_a", name="VAT A", percentage=D("5"))
    tax_rate_create(code="tax_b", name="Tax B", percentage=D("7.5"))
    customer = CustomerFactory(external_id="acme", tax_rates=["vat_a", "tax_b"])
    version = published_version("basic", base_fee=D("10.10"))

    # when: it subscribes: the start invoice is one line, a base fee of 10.10
    subscribe(customer, version.plan, start=NOV_1)
    start = Invoice.objects.get(customer=customer, reason=Invoice.START)
    invoice_finalize(invoice=start, now=NOV_1, collect=False)

    # then: 0.505 -> 0.51 and 0.7575 -> 0.76; tax 1.27, total 11.37
    body = api.get(f"/api/v1/invoices/{start.pk}").json()
    assert [(t["code"], t["taxable_amount"], t["amount"]) for t in body["tax_lines"]] == [
        ("tax_b", "10.10", "0.76"),
        ("vat_a", "10.10", "0.51"),
    ]
    assert (body["tax"], body["total"]) == ("1.27", "11.37")

    # and: two lines of 10.10 are taxed on 20.20 per rate, not line by line
    two = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[
            LineInput("base_fee", "Basic", None, D(1), D("10.10"), D("10.10")),
            LineInput("base_fee", "Basic", None, D(1), D("10.10"), D("10.10")),
        ],
        now=DEC_1,
    )
    body = api.get(f"/api/v1/invoices/{two.pk}").json()
    assert [(t["code"], t["taxable_amount"], t["amount"]) for t in body["tax_lines"]] == [
        ("tax_b", "20.20", "1.52"),
        ("vat_a", "20.20", "1.01"),
    ]
    assert (body["tax"], body["total"]) == ("2.53", "22.73")

    # and: reverse-charged, the same customer pays no tax
    response = api.patch("/api/v1/customers/acme", {"tax_exempt": "reverse_charge"}, format="json")
    assert response.status_code == 200, response.content
    reverse = invoice_write_draft(
        customer=Invoice.objects.get(pk=two.pk).customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=DEC_1,
        period_end=datetime(2027, 1, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Basic", None, D(1), D("10.10"), D("10.10"))],
        now=DEC_1,
    )
    body = api.get(f"/api/v1/invoices/{reverse.pk}").json()
    assert (body["tax_lines"], body["tax"], body["total"]) == ([], "0.00", "10.10")


# S19 Partial credit note, then the credit balance


def test_s19_partial_credit_note_then_the_credit_balance(api):
    # given: base fee 50.00 and a usage line of 10.00, VAT 20 %
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    MeterFactory(code="runs", name="Runs")
    customer = CustomerFactory(external_id="acme")
    lines = [
        LineInput("base_fee", "Pro (Nov 2026)", None, D(1), D("50.00"), D("50.00")),
        LineInput("overage", "Runs", "runs", D(100), D("0.10"), D("10.00")),
    ]
    invoice = finalized_invoice(customer, lines)
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (body["subtotal"], body["tax"], body["total"]) == ("60.00", "12.00", "72.00")
    usage_line = body["lines"][1]["id"]

    # when: 10.00 of the usage line is credited
    credit = {
        "reason": "product_unsatisfactory",
        "lines": [{"invoice_line": usage_line, "amount": "10.00"}],
    }
    note = api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", credit, format="json")

    # then: subtotal 10.00, tax 2.00, total 12.00; 60.00 left due
    assert note.status_code == 201, note.content
    assert (note.json()["subtotal"], note.json()["tax"], note.json()["total"]) == (
        "10.00",
        "2.00",
        "12.00",
    )
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["amount_due"] == "60.00"

    # and: a second credit on that line is refused: nothing is left on it
    again = api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", credit, format="json")
    assert again.status_code == 400
    assert again.json()["error"]["fields"] == {
        "lines.0.amount": ["at most 0.00 is left to credit on this line"]
    }

    # had it been paid: the same credit goes to the credit balance, and the next
    # invoice of 30.00 (25.00 + VAT) shows credits_applied 12.00, amount_due 18.00
    paid = finalized_invoice(CustomerFactory(external_id="beta"), lines)
    invoice_mark_paid(invoice=paid, reference="wire 2026-118", now=DEC_1)
    paid_usage_line = paid.lines.get(kind="overage").pk
    credit["lines"][0]["invoice_line"] = paid_usage_line
    note = api.post(f"/api/v1/invoices/{paid.pk}/credit-notes", credit, format="json")
    assert note.json()["to_credit_balance"] == "12.00"
    assert api.get("/api/v1/customers/beta").json()["credit_balance"] == "12.00"
    following = finalized_invoice(
        paid.customer,
        start=DEC_1,
        end=datetime(2027, 1, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Pro (Dec 2026)", None, D(1), D("25.00"), D("25.00"))],
    )
    body = api.get(f"/api/v1/invoices/{following.pk}").json()
    assert (body["total"], body["credits_applied"], body["amount_due"]) == (
        "30.00",
        "12.00",
        "18.00",
    )
    assert api.get("/api/v1/customers/beta").json()["credit_balance"] == "0.00"
