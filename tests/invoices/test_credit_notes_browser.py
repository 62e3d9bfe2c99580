"""Voiding an invoice in a real browser (Debian's Chromium through Playwright):
finance opens the invoice, presses "Void…", reads the confirmation page (the
credit note it will get), confirms, is back on the invoice, opens its credit
note and downloads its PDF, which is read back. The customer's portal then lists the credit note.
Screenshots and the PDF are saved in the test's output directory."""

import io
import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.utils import timezone
from pypdf import PdfReader

from customers.portal import portal_session_create
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory
from tests.plans.test_simulation_browser import PASSWORD, finance_user

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def pdf_words(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.mark.django_db(transaction=True)
def test_finance_voids_an_invoice_through_its_confirmation_page_and_downloads_the_credit_note(
    live_server, browser_page, output_dir, settings
):
    # given: acme's finalized November invoice, 30.10 + VAT 20 % = 36.12 EUR
    settings.BILLING_INVOICE_PDFS = False
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    acme = CustomerFactory(external_id="acme", name="Acme Inc", currency="EUR")
    draft = invoice_write_draft(
        customer=acme,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[
            LineInput("base_fee", "Chat Growth (Nov 2026)", None, D(1), D("20.00"), D("20.00")),
            LineInput("overage", "LLM tokens", "llm", D(1000), D("0.0101"), D("10.10")),
        ],
        now=DEC_1,
    )
    invoice = invoice_finalize(invoice=draft, now=DEC_1, collect=False)
    finance_user()
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/")

    # when: finance opens the invoice and presses "Void…"
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    page.click("text=Void…")
    page.wait_for_url(f"{base}/admin/invoices/invoice/{invoice.pk}/void/")

    # then: the confirmation page says what will happen, and nothing has yet
    content = " ".join(page.locator("#content").inner_text().split())
    assert "This cannot be undone." in content
    assert f"{invoice.number} for Acme Inc (36.12 EUR) will be void" in content
    assert "A credit note of 36.12 EUR is issued for it" in content
    page.screenshot(path=os.path.join(output_dir, "1-void-confirmation.png"), full_page=True)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED

    # when: it gives a reason and confirms
    page.fill("#id_memo", "billed twice")
    page.click(f'input[type="submit"][value="Void {invoice.number}"]')

    # then: back on the invoice, which lists its credit note; the credit note's page
    page.wait_for_url(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    note = CreditNote.objects.get()
    assert f"{invoice.number} is void; credit note {note.number} of 36.12 EUR issued." in (
        " ".join(page.locator("ul.messagelist").inner_text().split())
    )
    page.click(f'a[href="/admin/invoices/creditnote/{note.pk}/change/"]')
    page.wait_for_url(f"{base}/admin/invoices/creditnote/{note.pk}/change/")
    page.screenshot(path=os.path.join(output_dir, "2-credit-note.png"), full_page=True)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.VOID

    # and its PDF downloads, with the credit note's number, invoice and total
    with page.expect_download() as download_info:
        page.click("text=Download PDF")
    path = os.path.join(output_dir, download_info.value.suggested_filename)
    download_info.value.save_as(path)
    assert download_info.value.suggested_filename == f"{note.number}.pdf"
    with open(path, "rb") as handle:
        words = pdf_words(handle.read())
    assert note.number in words
    assert invoice.number in words
    assert "36.12" in words

    # and the customer's portal lists it, with its PDF
    session = portal_session_create(customer=acme, now=timezone.now())
    page.goto(f"{base}/portal/{session.token}/")
    row = page.locator("#credit-notes tbody tr")
    assert row.count() == 1
    assert note.number in row.inner_text() and "36.12 EUR" in row.inner_text()
    page.screenshot(path=os.path.join(output_dir, "3-portal.png"), full_page=True)
    with page.expect_download() as portal_download:
        row.locator("text=PDF").click()
    assert portal_download.value.suggested_filename == f"{note.number}.pdf"
