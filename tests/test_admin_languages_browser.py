"""Issue 49: the admin's dashboard and the invoice list read by a French user in a
real browser (Debian's Chromium through Playwright). Screenshots are saved in the
test's output directory, to be looked at."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from config.user_language import user_language_set
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import CustomerFactory

PASSWORD = "admin-words-1"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)


def text_of(page, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().replace("\N{NO-BREAK SPACE}", " ").split())


@pytest.mark.django_db(transaction=True)
def test_a_french_user_reads_the_dashboard_and_the_invoice_list_in_french(
    live_server, browser_page, output_dir, settings
):
    # given: a French admin user and a finalized invoice
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=NOV_20,
        lines=[LineInput("base_fee", "Chat Growth", None, D(1), D("1234.50"), D("1234.50"))],
        now=NOV_20,
    )
    invoice_finalize(invoice=draft, now=NOV_20, collect=False)
    user = User.objects.create_superuser("marie", password=PASSWORD)
    user_language_set(user=user, language="fr")
    page, base = browser_page, live_server.url

    # when: she logs in and reads the index, then the invoice list
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "marie")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    page.screenshot(path=os.path.join(output_dir, "1-dashboard-fr.png"), full_page=True)
    # (captions are upper-cased by the admin's style)
    dashboard = text_of(page, "#billing-dashboard").lower()
    sidebar = text_of(page, "#content-related") + " " + text_of(page, "#content-main")
    page.goto(f"{base}/admin/invoices/invoice/")
    page.screenshot(path=os.path.join(output_dir, "2-invoice-list-fr.png"), full_page=True)
    headers = text_of(page, "#result_list thead").lower()
    actions = text_of(page, "select[name=action]")

    # then: the dashboard, the app list, the columns and the actions are French
    assert "brouillons en attente" in dashboard
    assert "paiements échoués" in dashboard
    assert "échues, impayées" in dashboard
    assert "drafts waiting" not in dashboard
    assert "Versions d\N{RIGHT SINGLE QUOTATION MARK}offre" in sidebar
    assert "numéro" in headers and "statut" in headers and "échéance" in headers
    assert "Finaliser (numéroter et figer)" in actions
    assert "Finalize" not in actions
