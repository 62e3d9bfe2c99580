"""The portal's language switch in a real browser (Debian's Chromium through
Playwright): a French customer's page opens in French, the reader switches to
German on the same signed link, and the next opening of the link stays German.
Screenshots of both are saved in the test's output directory."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from invoices.models import Invoice
from invoices.services import invoice_finalize
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, MeterFactory, overage, published_version, subscribe

NBSP = "\N{NO-BREAK SPACE}"


@pytest.mark.django_db(transaction=True)
def test_a_french_customer_switches_the_portal_to_german_and_back(
    live_server, browser_page, output_dir, settings, tmp_path
):
    # given: a Paris customer on 1,234.50 EUR a month (+20% VAT) and 0.05 a prompt
    # beyond 1,000, subscribed three days ago, its start invoice issued
    settings.MEDIA_ROOT = tmp_path / "media"
    tax_rate_create(code="vat_20", name="TVA", percentage=D("20.00"), country="FR")
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    plan = published_version(
        "pro", base_fee=D("1234.50"), currency="EUR", charges=(overage("prompts", 1000, "0.05"),)
    )
    customer = CustomerFactory(
        external_id="acme",
        name="Société Acme",
        currency="EUR",
        locale="fr",
        timezone_name="Europe/Paris",
        address={"line1": "1 rue X", "postal_code": "75001", "city": "Paris", "country": "FR"},
        tax_rates=["vat_20"],
    )
    now = datetime.now(UTC)
    start = now - timedelta(days=3)
    subscribe(customer, plan, start)
    invoice = invoice_finalize(
        invoice=Invoice.objects.get(customer=customer, reason=Invoice.START), now=now, collect=False
    )
    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
        }
        for i in range(1250)
    ]
    for batch in (events[:1000], events[1000:]):
        assert events_ingest(events=batch, now=now).accepted == len(batch)
    link = f"{live_server.url}/portal/{portal_session_create(customer=customer, now=now).token}/"

    # when: the customer opens its link
    page = browser_page
    page.goto(link)

    # then: the page is French, its numbers written the French way
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#spend h2").inner_text() == "Dépenses de la période (EUR)"
    assert page.locator('tr[data-meter="prompts"] td.used').inner_text() == f"1{NBSP}250"
    assert page.locator("#invoices h2").inner_text() == "Factures"
    row = page.locator(f'tr[data-invoice="{invoice.pk}"]')
    assert row.locator("td.status").inner_text() == "Ouverte"  # not yet due
    assert row.locator("td.total").inner_text() == f"1{NBSP}481,40 EUR"
    # and its chart is drawn: SVG coordinates are not written with a decimal comma
    bars = page.locator("section.chart svg rect.day")
    assert bars.count() >= 3
    assert all("," not in (bar.get_attribute("x") or "") for bar in bars.all())
    # (the tallest bar: how the events fall into Paris days depends on the hour the test runs)
    assert max(bar.bounding_box()["height"] for bar in bars.all()) > 20
    page.screenshot(path=os.path.join(output_dir, "portal-fr.png"), full_page=True)

    # when: the reader picks German
    # (the French page is loaded already: wait for the link's own page)
    with page.expect_navigation():
        page.get_by_role("link", name="Deutsch").click()

    # then: the same signed link, in German
    assert page.url.startswith(link) and page.url.endswith("?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("#spend h2").inner_text() == "Ausgaben in diesem Zeitraum (EUR)"
    assert page.locator('tr[data-meter="prompts"] td.used').inner_text() == "1.250"
    assert row.locator("td.status").inner_text() == "Offen"
    assert row.locator("td.total").inner_text() == "1.481,40 EUR"
    page.screenshot(path=os.path.join(output_dir, "portal-de.png"), full_page=True)

    # and the link opened again reads German (the choice is kept)
    page.goto(link)
    assert page.locator("#invoices h2").inner_text() == "Rechnungen"

    # when: the reader goes back to English
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    assert page.locator("#invoices h2").inner_text() == "Invoices"
    assert row.locator("td.total").inner_text() == "1,481.40 EUR"
