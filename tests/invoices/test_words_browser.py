"""What finance reads in the admin, in a real browser (Debian's Chromium): a
credit note's page prints its lines and amounts as the invoice does, a refused
credit note names the line and says what to type, and deleting a plan customers
are on says why inside the admin. Screenshots are saved in the test's output
directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, MeterFactory, overage, published_version, subscribe

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_finance_reads_words_not_internals(live_server, browser_page, output_dir):
    # given: an invoice of 89.00 EUR base fee and 10.10 EUR of tokens, credited 20.50
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    customer = CustomerFactory(external_id="acme", name="Acme Inc", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[
            LineInput("base_fee", "Chat Growth (Nov 2026)", None, D(1), D("89.00"), D("89.00")),
            LineInput("overage", "LLM tokens", "llm", D(1000), D("0.0101"), D("10.10")),
        ],
        now=DEC_1,
    )
    invoice = invoice_finalize(invoice=draft, now=DEC_1, collect=False)
    base_fee = invoice.lines.get(kind="base_fee")
    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(base_fee.pk, D("20.50"))],
        reason="other",
        memo="",
        now=DEC_1,
    )
    # and: Pro v1 with 12 customers on it
    MeterFactory(code="prompts", name="Prompts")
    pro = published_version("pro", currency="EUR", charges=(overage("prompts", 100, "0.05"),))
    pro.plan.name = "Pro"
    pro.plan.save()
    for number in range(12):
        subscribe(CustomerFactory(external_id=f"c{number}", currency="EUR"), pro)
    User.objects.create_superuser("root", password="root-password-1")
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # when: the credit note's page
    page.goto(f"{base}/admin/invoices/creditnote/{note.pk}/change/")
    page.screenshot(path=os.path.join(output_dir, "1-credit-note.png"), full_page=True)
    text = page.inner_text("#content").replace("\xa0", " ")

    # then: amounts with their currency, no stored Decimal, no line kind
    assert "Chat Growth (Nov 2026): 20.50 EUR" in text
    assert "Chat Growth (Nov 2026): 89.00 EUR" in text
    assert "0000000" not in text and "base_fee" not in text

    # when: a credit note of nothing is asked for
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/credit-note/")
    page.fill(f"input[name=line_{base_fee.pk}]", "0")
    page.click("input[type=submit]")
    page.screenshot(path=os.path.join(output_dir, "2-refused-credit-note.png"), full_page=True)

    # then: the line by its name, what to type, no field path
    error = page.inner_text(".errornote")
    assert error == (
        "Chat Growth (Nov 2026): type an amount greater than zero, without its currency sign"
    )

    # when: the plan's page, then its delete URL typed by hand
    page.goto(f"{base}/admin/plans/plan/{pro.plan.pk}/change/")
    assert page.locator("a.deletelink").count() == 0
    response = page.goto(f"{base}/admin/plans/plan/{pro.plan.pk}/delete/")
    page.screenshot(path=os.path.join(output_dir, "3-refused-delete.png"), full_page=True)

    # then: why, in words, inside the admin
    assert response.status == 409
    assert page.inner_text(".refusal-reasons") == (
        "12 customers are on Pro v1: archive it instead (Pro stays, for the invoices that name it)."
    )
    assert page.locator("#site-name").count() == 1
