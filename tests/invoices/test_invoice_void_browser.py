"""An invoice in a real browser (Debian's Chromium through Playwright), as a
Finance user (setup_roles) works with it: its page shows its amounts formatted
and its credit notes; its PDF downloads through the page's one link and is read
back; "Void…" leads to the shared confirmation page, which says what will
happen, and confirming voids it. The lists fit a 1280 px wide window: the Total
column is left of the filters. Screenshots go to the test's output directory."""

import io
import os
from decimal import Decimal as D

import pytest
from pypdf import PdfReader

from customers.services import customer_create
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_mark_uncollectible, invoice_write_draft
from plans.rating import LineInput
from tests.invoices.test_invoice_admin_page import (
    DEC_1,
    DEC_2,
    DEC_5,
    NOV_1,
    acme_invoice,
    credit_on_tokens,
    stripe_payment,
)
from tests.plans.test_simulation_browser import PASSWORD, finance_user


def pdf_words(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def log_in_as_finance(page, base: str) -> None:
    finance_user()
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/")


@pytest.mark.django_db(transaction=True)
def test_finance_reads_an_invoice_downloads_its_pdf_and_voids_it(
    live_server, browser_page, output_dir, settings
):
    # given: Acme's invoice of 1,234.50 USD, 100.00 USD credited, a card declined once
    settings.BILLING_INVOICE_EMAILS = False
    invoice = acme_invoice()
    note = credit_on_tokens(invoice, "100.00")
    stripe_payment(invoice)
    page, base = browser_page, live_server.url
    log_in_as_finance(page, base)

    # when: finance opens the invoice
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")

    # then: the amounts formatted, the lines as a table, the credit note and the payment
    content = " ".join(page.locator("#content").inner_text().split())
    assert "Total: 1,234.50 USD" in content
    assert "Amount due: 1,134.50 USD" in content
    assert "LLM tokens 1 Nov – 30 Nov 2026 1,250,000 0.0001876 USD 234.50 USD" in content  # noqa: RUF001
    assert "Issued: 2 Dec 2026, 09:00 (Europe/Paris)" in content
    assert "ISSUED (EUROPE/PARIS)" in content  # a table header, in capitals
    assert f"{note.number} 5 Dec 2026 Product unsatisfactory" in content
    assert "100.00 USD off the amount due" in content
    assert "1 of 3 attempts; Your card was declined." in content
    page.screenshot(path=os.path.join(output_dir, "1-invoice-page.png"), full_page=True)

    # when: it downloads the PDF through the page's link
    with page.expect_download() as download_info:
        page.click(f'a[href="/admin/invoices/invoice/{invoice.pk}/pdf/"]')
    download = download_info.value
    saved = os.path.join(output_dir, download.suggested_filename)
    download.save_as(saved)

    # then: the invoice's PDF, with its number and total
    with open(saved, "rb") as file:
        pdf = file.read()
    assert pdf.startswith(b"%PDF")
    text = pdf_words(pdf)
    assert invoice.number in text
    assert "1,234.50" in text

    # when: it presses "Void…"
    page.click("text=Void…")
    page.wait_for_url(f"{base}/admin/invoices/invoice/{invoice.pk}/void/")

    # then: the confirmation page says what will happen; nothing has yet
    content = " ".join(page.locator("#content").inner_text().split())
    assert (
        f"{invoice.number} for Acme Inc (1,234.50 USD) will be void: the customer owes "
        "nothing on it."
    ) in content
    assert (
        "A credit note of 1,134.50 USD is issued for it (1,134.50 USD off the amount due)."
        in content
    )
    assert "A void invoice cannot be reopened" in content
    assert "This cannot be undone." in content
    page.screenshot(path=os.path.join(output_dir, "2-void-confirmation.png"), full_page=True)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED

    # when: it gives a reason and confirms
    page.fill("#id_memo", "billed twice")
    page.click(f'input[type="submit"][value="Void {invoice.number}"]')

    # then: back on the invoice, void, with its new credit note listed
    page.wait_for_url(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    voiding = CreditNote.objects.get(voids_invoice=True)
    content = " ".join(page.locator("#content").inner_text().split())
    messages = " ".join(page.locator(".messagelist").inner_text().split())
    assert f"{invoice.number} is void; credit note {voiding.number} of 1,134.50 USD" in messages
    assert "Status: Void" in content
    assert "Amount due: 0.00 USD" in content
    assert f"{voiding.number}" in content and "billed twice" in content
    assert "Void…" not in content
    page.screenshot(path=os.path.join(output_dir, "3-voided-invoice.png"), full_page=True)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.VOID


def total_left_of_filters(page) -> tuple[float, float]:
    total = page.locator("#result_list thead th.column-total_display").bounding_box()
    filters = page.locator("#changelist-filter").bounding_box()
    return total["x"] + total["width"], filters["x"]


@pytest.mark.django_db(transaction=True)
def test_the_invoice_and_credit_note_lists_fit_a_1280_px_window(
    live_server, browser_page, output_dir, settings
):
    # given: an invoice and its credit note, a long name's six-figure invoice marked
    # uncollectible, a 1280 x 900 window
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    invoice = acme_invoice()
    credit_on_tokens(invoice, "100.00")
    northwind = customer_create(
        external_id="northwind", name="Northwind Traders International", currency="EUR"
    )
    large = invoice_finalize(
        invoice=invoice_write_draft(
            customer=northwind,
            subscription=None,
            reason=Invoice.PERIOD,
            period_start=NOV_1,
            period_end=DEC_1,
            lines=[LineInput("base_fee", "Enterprise", None, D(1), D("123456.78"), D("123456.78"))],
            now=DEC_1,
        ),
        now=DEC_2,
        collect=False,
    )
    invoice_mark_uncollectible(invoice=large, now=DEC_5)
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in_as_finance(page, base)

    # when: finance opens the invoices
    page.goto(f"{base}/admin/invoices/invoice/")

    # then: the Total column shows, left of the filters
    right, filters_left = total_left_of_filters(page)
    page.screenshot(path=os.path.join(output_dir, "4-invoice-list-1280.png"), full_page=True)
    assert right <= filters_left, (right, filters_left)
    rows = [
        " ".join(row.split()) for row in page.locator("#result_list tbody tr").all_inner_texts()
    ]
    # (each day names its time zone under it: a list mixes customers' zones)
    assert rows == [
        f"{large.number} Northwind Traders International Uncollectible 2 Dec 2026 UTC "
        "1 Jan 2027 UTC 123,456.78 EUR",
        f"{invoice.number} Acme Inc Finalized 2 Dec 2026 Europe/Paris 1 Jan 2027 Europe/Paris "
        "1,234.50 USD",
    ]

    # when: and the credit notes
    page.goto(f"{base}/admin/invoices/creditnote/")

    # then: the same
    right, filters_left = total_left_of_filters(page)
    page.screenshot(path=os.path.join(output_dir, "5-credit-note-list-1280.png"), full_page=True)
    assert right <= filters_left, (right, filters_left)
    # (its day names its zone, as the invoices' do)
    issued = page.locator("#result_list tbody tr td.field-issued_day").first.inner_text()
    assert " ".join(issued.split()) == "5 Dec 2026 Europe/Paris"
