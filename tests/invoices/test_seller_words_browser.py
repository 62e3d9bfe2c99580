"""Finance reads who issued an invoice, and whose invoices wait for an entity's
VAT number (Chromium; screenshots under test-output/)."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import default_seller, period_draft

pytestmark = pytest.mark.django_db(transaction=True)

DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


def test_finance_sees_the_seller_and_the_invoices_waiting_for_a_vat_number(
    live_server, browser_page, output_dir, settings
):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    default_seller({"name": "Example Billing GmbH", "country": "DE", "tax_id": "DE123456789"})
    paris = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    kunde = customer_create(external_id="kunde", name="Kunde AG", currency="EUR")
    customer_create(
        external_id="acme",
        name="Acme GmbH",
        currency="EUR",
        address={"city": "Berlin", "country": "DE"},
        tax_id="DE811907980",
        billing_entity=paris.code,
    )
    line = LineInput("base_fee", "Base", None, D(1), D("10.00"), D("10.00"))
    issued = invoice_finalize(invoice=period_draft(kunde, [line]), now=DEC_2)
    User.objects.create_superuser("admin", password="seller-words-1")
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/invoices/invoice/{issued.pk}/change/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "seller-words-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/invoices/invoice/{issued.pk}/change/")

    seller = page.locator(".field-seller_display .readonly")
    assert seller.inner_text() == "Example Billing GmbH"
    page.screenshot(path=os.path.join(output_dir, "1-invoice-seller.png"), full_page=True)

    page.goto(f"{base}/admin/customers/billingentity/{paris.pk}/change/")
    warning = page.locator(".messagelist .warning").inner_text()
    assert warning.startswith("1 customer of Example SAS is an EU business in another country")
    assert "Acme GmbH" in warning and "DE811907980" not in warning
    page.screenshot(path=os.path.join(output_dir, "2-entity-waiting.png"), full_page=True)
