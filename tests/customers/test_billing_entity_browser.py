"""Finance adds a second seller in the admin (Chromium), and a customer of it is
invoiced with that seller: the entity page and the PDF are kept as screenshots
under test-output/."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from customers.models import BillingEntity
from customers.services import customer_create
from invoices.pdf import render_invoice_pdf
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import default_seller, period_draft

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "entities-1"
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


def test_finance_adds_a_seller_and_its_customer_is_invoiced_by_it(
    live_server, browser_page, output_dir, settings
):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.MEDIA_ROOT = os.path.join(output_dir, "media")
    default_seller({"name": "Example Billing GmbH", "country": "DE", "tax_id": "DE123456789"})
    call_command("setup_roles", stdout=StringIO())
    finance = User.objects.create_user("fin", password=PASSWORD, is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url

    # when Finance fills in the add page
    page.goto(f"{base}/admin/login/?next=/admin/customers/billingentity/add/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/customers/billingentity/add/")
    page.fill("#id_legal_name", "Example SAS")
    page.fill("#id_code", "example_sas")
    page.fill("#id_address_lines", "5 rue de la Paix\n75002 Paris")
    page.select_option("#id_country", "FR")
    page.fill("#id_tax_id", "FR40303265045")
    page.fill("#id_registration_id", "RCS Paris 303 265 045")
    page.fill("#id_bank_name", "Banque de Paris")
    page.fill("#id_iban", "FR76 3000 6000 0112 3456 7890 189")
    page.fill("#id_bic", "AGRIFRPPXXX")
    page.fill("#id_invoice_prefix", "FR")
    page.fill("#id_credit_note_prefix", "AV")
    page.fill("#id_email", "factures@example.fr")
    page.fill("#id_invoice_footer", "SAS au capital de 10 000 EUR")
    page.screenshot(path=os.path.join(output_dir, "1-entity-add.png"), full_page=True)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    page.screenshot(path=os.path.join(output_dir, "2-entity-saved.png"), full_page=True)

    # then the entity is saved, and a customer of it is invoiced with its details
    entity = BillingEntity.objects.get(code="example_sas")
    assert (entity.iban, entity.is_default) == ("FR7630006000011234567890189", False)
    client = customer_create(
        external_id="client",
        name="Client SARL",
        currency="EUR",
        address={"line1": "8 quai Saint-Michel", "postal_code": "69002", "city": "Lyon"},
        billing_entity="example_sas",
    )
    line = LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("100.00"), D("100.00"))
    invoice = invoice_finalize(invoice=period_draft(client, [line]), now=DEC_2)
    assert invoice.number == "FR-2026-000001"
    pdf = os.path.join(output_dir, "invoice.pdf")
    with open(pdf, "wb") as file:
        # Kept to look at (pdftoppm -png -r 80 invoice.pdf invoice).
        file.write(render_invoice_pdf(invoice))
