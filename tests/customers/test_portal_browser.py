"""The portal in a real browser (Debian's Chromium through Playwright): the product
asks the API for a link, the customer opens it, reads its usage and balance, and
downloads an invoice PDF. A screenshot is saved in the test's output directory."""

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from pypdf import PdfReader

from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from invoices.services import invoice_finalize
from tests.factories import (
    ApiKeyFactory,
    CustomerFactory,
    ai_assistant_plan,
    prompts_meter,
    runs_100_pack,
    subscribe,
)
from wallets.purchases import credit_pack_purchase


@pytest.mark.django_db(transaction=True)
def test_customer_opens_the_portal_link_and_downloads_an_invoice(
    live_server, browser_page, output_dir
):
    # given: S1's plan, 250 prompts this period, a pack of 100 credits (invoiced)
    prompts_meter()
    plan = ai_assistant_plan()
    pack = runs_100_pack()
    acme = CustomerFactory(external_id="acme")
    now = datetime.now(UTC)
    start = now - timedelta(days=3)
    subscribe(acme, plan, start)
    start_invoice = Invoice.objects.get(customer=acme, reason="start")
    invoice_finalize(invoice=start_invoice, now=now)
    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
        }
        for i in range(250)
    ]
    assert events_ingest(events=events, now=now).accepted == 250
    _, purchase = credit_pack_purchase(customer=acme, pack=pack, now=now)
    secret = ApiKeyFactory(name="product").secret

    # when: the product asks for a link
    request = urllib.request.Request(  # noqa: S310 (the test server)
        f"{live_server.url}/api/v1/customers/acme/portal-session",
        method="POST",
        headers={"Authorization": f"Bearer {secret}"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 (the test server)
        link = json.load(response)["url"]

    # then: the customer sees usage and balance
    page = browser_page
    page.goto(link)
    row = page.locator('tr[data-meter="prompts"]')
    assert row.locator("td.used").inner_text() == "250"
    assert row.locator("td.included").inner_text() == "200"
    assert page.locator('tr[data-wallet="credits"] td.balance').inner_text() == "100 credits"
    assert page.locator("#subtotal").inner_text() == "22.49"
    assert page.locator("section.chart svg rect.day").count() >= 3
    page.screenshot(path=os.path.join(output_dir, "portal.png"), full_page=True)

    # and downloads the pack's invoice as a PDF
    invoice_row = page.locator("#invoices tr", has_text=purchase.number)
    with page.expect_download() as download_info:
        invoice_row.get_by_role("link", name="PDF").click()
    download = download_info.value
    path = os.path.join(output_dir, download.suggested_filename)
    download.save_as(path)
    with open(path, "rb") as handle:
        text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(handle.read())).pages)
    assert purchase.number in text
    assert "99.00" in text
