"""A payment received by bank transfer, recorded by a Finance user (setup_roles)
in a real browser (Debian's Chromium through Playwright): the invoice's page
offers "Record a payment…", whose form is prefilled with the amount due and
names the zone of its day; a part recorded is listed on the invoice's page and
lowers its amount due. Screenshots go to the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from invoices.models import Invoice, ReceivedPayment
from tests.invoices.test_invoice_void_browser import log_in_as_finance
from tests.invoices.test_payments_recorded import issued_invoice


@pytest.mark.django_db(transaction=True)
def test_finance_records_a_part_received_by_bank_transfer(
    live_server, browser_page, output_dir, settings
):
    # given: Acme's invoice of 100.00 USD issued 2 Nov, nothing paid
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_PDFS = False
    invoice = issued_invoice()
    page, base = browser_page, live_server.url
    log_in_as_finance(page, base)

    # when: finance opens it and chooses Record a payment…
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    page.click("text=Record a payment…")

    # then: the form asks for what is due, on a day of the invoice's zone
    assert page.input_value("#id_amount") == "100.00"
    assert "Date received (UTC)" in page.locator("#content").inner_text()
    page.screenshot(path=os.path.join(output_dir, "1-record-a-payment.png"), full_page=True)

    # when: 40.00 received on 20 Nov by bank transfer
    page.fill("#id_amount", "40.00")
    page.fill("#id_received_on", "2026-11-20")
    page.select_option("#id_method", "bank_transfer")
    page.fill("#id_reference", "BANK-TRF-4471")
    page.click('input[type="submit"][value="Record the payment"]')

    # then: back on the invoice, 60.00 USD due and the part listed with its day
    page.wait_for_url(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    content = " ".join(page.locator("#content-main").inner_text().split())
    messages = " ".join(page.locator(".messagelist").inner_text().split())
    assert f"40.00 USD received for {invoice.number}; amount due: 60.00 USD" in messages
    assert "Amount due: 60.00 USD" in content
    assert "Amount paid: 40.00 USD" in content
    assert (
        "Payment recorded by hand 40.00 USD Received 20 Nov 2026, 12:00 "
        "Bank transfer; Reference: BANK-TRF-4471"
    ) in content
    page.screenshot(path=os.path.join(output_dir, "2-invoice-page.png"), full_page=True)
    payment = ReceivedPayment.objects.get()
    assert (payment.amount, payment.received_at) == (
        D("40.00"),
        datetime(2026, 11, 20, 12, tzinfo=UTC),
    )
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED
