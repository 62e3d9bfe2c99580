"""A correction invoice (re-rating: billing.invoicing.rerating) is issued through the
usual finalization: numbered in its seller's sequence and, for a seller who
e-invoices, with its e-invoice, which names the invoice it corrects as the
preceding invoice (BG-3), validated by the official rules as every invoice."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from invoices.e_invoices.cii import RAM
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from plans.tax_rates import tax_rate_create
from tests.factories import period_draft

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False


@pytest.fixture
def lumiere():
    """A French buyer e-invoiced in Factur-X by a French seller (S36's)."""
    billing_entity_save(
        entity=BillingEntity(
            code="exemple_sas",
            legal_name="Exemple SAS",
            address_lines="1 rue de la Paix\n75002 Paris",
            street="1 rue de la Paix",
            postal_code="75002",
            city="Paris",
            country="FR",
            tax_id="FR40303265045",
            registration_id="303265045",
            email="factures@exemple.fr",
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            invoice_prefix="FR",
            credit_note_prefix="AV",
            functional_currency="EUR",
            timezone="Europe/Paris",
            e_invoicing=True,
        )
    )
    tax_rate_create(code="fr_vat", name="TVA", percentage=D(20), country="FR")
    return customer_create(
        external_id="lumiere",
        name="Lumière & Fils",
        currency="EUR",
        timezone_name="Europe/Paris",
        locale="fr",
        address={"line1": "2 av. Foch", "postal_code": "69006", "city": "Lyon", "country": "FR"},
        tax_id="FR83404833048",
        tax_rates=["fr_vat"],
        billing_entity="exemple_sas",
        e_invoice_format="facturx",
    )


def usage(amount: str, *, start=datetime(2026, 10, 1, tzinfo=UTC), end=NOV_1) -> LineInput:
    return LineInput("overage", "Jetons", "llm_tokens", D(1), D(amount), D(amount), start, end)


def test_a_correction_names_the_invoice_it_corrects_in_its_e_invoice(lumiere):
    october = invoice_finalize(
        invoice=period_draft(lumiere, [usage("4.50")], start=datetime(2026, 10, 1, tzinfo=UTC)),
        now=NOV_1,
    )
    draft = invoice_write_draft(
        customer=lumiere,
        subscription=None,
        reason=Invoice.CORRECTION,
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=NOV_1,
        lines=[usage("3.00")],
        now=NOV_5,
        tax_rates=[line.tax_rate for line in october.tax_lines.all()],
        corrects=october,
    )

    correction = invoice_finalize(invoice=draft, now=NOV_5)

    assert correction.number == "FR-2026-000002"
    assert (correction.tax, correction.total) == (D("0.60"), D("3.60"))
    assert correction.e_invoice_format == "facturx"
    root = etree.fromstring(correction.e_invoice_xml.encode())
    (referenced,) = root.iter(f"{{{RAM}}}InvoiceReferencedDocument")
    assert referenced.findtext(f"{{{RAM}}}IssuerAssignedID") == october.number == "FR-2026-000001"
    # October's own e-invoice names no preceding invoice
    october_root = etree.fromstring(Invoice.objects.get(pk=october.pk).e_invoice_xml.encode())
    assert not list(october_root.iter(f"{{{RAM}}}InvoiceReferencedDocument"))
