"""A New York customer's invoice in a real browser (Debian's Chromium through
Playwright): the portal's invoice list, the PDF downloaded from it (read back)
and the admin's invoice page print the same days for its period, the zone named
where the page is not in it. Screenshots go to the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from customers.portal import portal_session_create
from invoices.models import Invoice
from invoices.services import invoice_finalize
from tests.factories import CustomerFactory, published_version, subscribe
from tests.invoices.test_invoice_void_browser import log_in_as_finance, pdf_words

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
# The first period [1 Nov 00:00 UTC, 30 Nov 20:00 in New York) as inclusive days.
PERIOD = "31 Oct \N{EN DASH} 29 Nov 2026"


@pytest.mark.django_db(transaction=True)
def test_the_portal_its_pdf_and_the_admin_print_one_period(
    live_server, browser_page, output_dir, settings
):
    # given: a New York customer subscribed as docs/api-tour.md does, its start
    # invoice issued
    settings.BILLING_INVOICE_EMAILS = False
    plan = published_version("ai_assistant", base_fee=D("49.00"))
    customer = CustomerFactory(
        external_id="acme", name="Acme Inc", timezone_name="America/New_York"
    )
    subscribe(customer, plan, NOV_1)
    invoice = invoice_finalize(
        invoice=Invoice.objects.get(customer=customer, reason=Invoice.START),
        now=NOV_1,
        collect=False,
    )
    token = portal_session_create(customer=customer, now=datetime.now(UTC)).token
    page, base = browser_page, live_server.url

    # when: the customer opens the portal
    page.goto(f"{base}/portal/{token}/")

    # then: the invoice's period as its PDF prints it
    page.screenshot(path=os.path.join(output_dir, "1-portal.png"), full_page=True)
    row = page.locator("#invoices tbody tr", has_text=invoice.number)
    assert row.locator("td.period").inner_text() == PERIOD
    assert "Dates in America/New_York." in page.locator("#invoices").inner_text()

    # when: downloads the PDF
    with page.expect_download() as download:
        row.get_by_role("link", name="PDF").click()
    words = pdf_words(Path(download.value.path()).read_bytes())

    # then: its header and its line read the same days
    assert f"Period {PERIOD}" in words, words
    assert f"({PERIOD})" in words

    # when: finance opens the invoice in the admin
    log_in_as_finance(page, base)
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")

    # then: the same days, the zone named
    page.screenshot(path=os.path.join(output_dir, "2-admin-invoice.png"), full_page=True)
    text = " ".join(page.locator("#content").inner_text().split())
    assert f"{PERIOD} (America/New_York)" in text
    assert f"({PERIOD})" in text  # the line's description
