"""Finance's view of e-invoices in the admin: a draft whose e-invoice was refused
says so in a box that lists each rule, what it says and the field to fix in
words, linked to where it is set; an issued invoice's (and credit note's)
e-invoice names its format, whether the access point took it, and downloads as
<number>.xml for whoever may view invoices; the Finalize action says why it
refused."""

import html
from datetime import UTC, datetime
from decimal import Decimal as D
from functools import cache

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from config.user_language import user_language_set
from customers.models import Customer
from customers.services import customer_create
from invoices import services
from invoices.admin.invoice_page import e_invoice_field_words
from invoices.e_invoices.issuing import EInvoiceInvalid
from invoices.e_invoices.ubl import document_ubl
from invoices.e_invoices.validation import UBL_INVOICE, Failure, validation_failures
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import period_draft
from tests.invoices.test_e_invoice_documents import BELGIAN_COMPANY, belgian_reverse_charge

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 8, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
PAGE = "/admin/invoices/invoice/{}/change/"
XML = document_ubl(belgian_reverse_charge()).decode("utf-8")


@cache
def br_ae_02() -> dict:
    """The failure the official rules give a reverse-charge invoice to a buyer
    without a VAT number, as finalization keeps it on the draft."""
    document = belgian_reverse_charge({**BELGIAN_COMPANY, "tax_id": ""})
    (failure,) = validation_failures(document_ubl(document), UBL_INVOICE, document)
    return failure.record()


def belgian_customer():
    return customer_create(
        external_id="be-1",
        name="Société Belge SA",
        currency="EUR",
        timezone_name="Europe/Brussels",
    )


def line():
    return LineInput("usage", "Tokens", None, D(2500000), D("0.0001"), D("250.00"))


def refused_draft() -> Invoice:
    """A draft whose e-invoice failed BR-AE-02 (and a computed total's rule)."""
    draft = period_draft(belgian_customer(), [line()])
    computed = {
        "rule": "BR-CO-15",
        "message": "Invoice total amount with VAT (BT-112) = Invoice total amount without VAT "
        "(BT-109) + Invoice total VAT amount (BT-110).",
        "field": "BT-112",
        "location": "/Invoice/LegalMonetaryTotal",
    }
    Invoice.objects.filter(pk=draft.pk).update(e_invoice_errors=[br_ae_02(), computed])
    return Invoice.objects.get(pk=draft.pk)


def issued(sent_at=None) -> Invoice:
    customer = Customer.objects.filter(external_id="be-1").first() or belgian_customer()
    invoice = invoice_finalize(
        invoice=period_draft(customer, [line()], start=OCT_1, end=NOV_1), now=DEC_2, collect=False
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        e_invoice_format="peppol", e_invoice_xml=XML, e_invoice_sent_at=sent_at
    )
    return Invoice.objects.get(pk=invoice.pk)


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.LANGUAGE_CODE = "en"


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def test_a_refused_draft_lists_each_rule_what_it_says_and_the_field_to_fix(admin_client):
    draft = refused_draft()

    response = admin_client.get(PAGE.format(draft.pk))

    assert response.status_code == 200
    rows = response.context["e_invoice_refusal_rows"]
    assert rows == [
        {
            "rule": "BR-AE-02",
            "message": br_ae_02()["message"],
            "field": "Customer \u203a VAT number",
            "url": f"/admin/customers/customer/{draft.customer_id}/change/",
        },
        {
            "rule": "BR-CO-15",
            "message": "Invoice total amount with VAT (BT-112) = Invoice total amount without "
            "VAT (BT-109) + Invoice total VAT amount (BT-110).",
            "field": "BT-112 (computed)",
            "url": "",
        },
    ]
    page = text_of(response)
    assert "This draft's e-invoice was refused: it is not issued until this is fixed" in page
    assert br_ae_02()["message"].startswith("An Invoice that contains an Invoice line (BG-25)")
    assert br_ae_02()["message"] in page
    assert (
        f'<a href="/admin/customers/customer/{draft.customer_id}/change/">'
        "Customer \u203a VAT number</a>"
    ) in page
    # a draft has no e-invoice to download yet
    assert response.context["e_invoice"] is None


def test_the_fields_in_finance_words():
    assert [
        e_invoice_field_words(field)
        for field in (
            "customer.vat_id",
            "billing_entity.iban",
            "tax_rate.vat_category",
            "BT-117",
            "customer.address.city",
            "customer.tax_rates",
            "billing_entity.contact_phone",
            "customer.debtor_iban",
            "meter.unit_code",
            "lines",
            "billing_entity.no_such_field",
        )
    ] == [
        "Customer \u203a VAT number",
        "Billing entity \u203a IBAN",
        "Tax rate \u203a VAT category",
        "BT-117 (computed)",
        # Any other field as its object's page names it.
        "Customer \u203a Address \u203a City",
        "Customer \u203a Tax rates",
        "Billing entity \u203a Contact phone",
        "Customer \u203a IBAN debited",
        "Meter \u203a Unit code",
        "lines",
        "billing_entity.no_such_field",
    ]


def test_the_refusal_reads_in_french(client):
    draft = refused_draft()
    user = User.objects.create_superuser("user_fr", password="x")
    user_language_set(user=user, language="fr")
    client.force_login(user)

    page = text_of(client.get(PAGE.format(draft.pk)))

    assert "La facture électronique de ce brouillon a été refusée" in page
    assert "Client \u203a Numéro de TVA" in page
    assert "BT-112 (calculé)" in page


def test_a_draft_without_errors_shows_no_refusal(admin_client):
    draft = period_draft(belgian_customer(), [line()])

    response = admin_client.get(PAGE.format(draft.pk))

    assert response.context["e_invoice_refusal_rows"] == []
    assert "e-invoice was refused" not in text_of(response)


def test_an_issued_invoice_names_its_format_and_when_the_access_point_took_it(admin_client):
    invoice = issued(sent_at=DEC_3)

    response = admin_client.get(PAGE.format(invoice.pk))

    assert response.context["e_invoice"] == {
        "format": "Peppol BIS 3",
        "status": "Validated against EN 16931 and issued",
        "sent": "3 Dec 2026, 10:30 (Europe/Brussels)",
        "url": f"/admin/invoices/invoice/{invoice.pk}/e-invoice/",
        "file_name": f"{invoice.number}.xml",
    }
    page = text_of(response)
    assert (
        f'<a href="/admin/invoices/invoice/{invoice.pk}/e-invoice/">{invoice.number}.xml</a>'
        in (page)
    )


def test_an_unsent_invoice_says_why(admin_client, settings):
    invoice = issued()
    settings.BILLING_PEPPOL_ACCESS_POINT = ""
    nowhere = admin_client.get(PAGE.format(invoice.pk)).context["e_invoice"]["sent"]
    settings.BILLING_PEPPOL_ACCESS_POINT = "folder"
    waiting = admin_client.get(PAGE.format(invoice.pk)).context["e_invoice"]["sent"]

    assert nowhere == ("Not sent: no Peppol access point is set up (BILLING_PEPPOL_ACCESS_POINT)")
    assert waiting == "Not yet: waiting for the access point"


def test_the_download_serves_the_xml_as_issued(admin_client):
    invoice = issued()

    response = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/e-invoice/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.xml"'
    assert response.content == XML.encode("utf-8")


def test_an_invoice_without_an_e_invoice_has_no_download(admin_client):
    invoice = invoice_finalize(
        invoice=period_draft(belgian_customer(), [line()]), now=DEC_2, collect=False
    )

    assert admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/e-invoice/").status_code == 404
    assert admin_client.get(PAGE.format(invoice.pk)).context["e_invoice"] is None


def test_a_user_who_may_not_view_invoices_is_refused_the_download():
    invoice = issued()
    clerk = User.objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client = Client()
    client.force_login(clerk)

    response = client.get(f"/admin/invoices/invoice/{invoice.pk}/e-invoice/")

    assert response.status_code == 403
    assert XML.encode("utf-8") not in response.content

    # given the permission to view invoices, the same user downloads it
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    clerk = User.objects.get(pk=clerk.pk)
    client.force_login(clerk)
    assert client.get(f"/admin/invoices/invoice/{invoice.pk}/e-invoice/").content == (
        XML.encode("utf-8")
    )


def test_the_list_shows_the_format_or_refused(admin_client):
    draft, invoice = refused_draft(), issued()
    plain = invoice_write_draft(
        customer=draft.customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=DEC_2,
        period_end=DEC_3,
        lines=[line()],
        now=DEC_3,
    )

    response = admin_client.get("/admin/invoices/invoice/")

    cells = {
        row.pk: str(response.context["cl"].model_admin.e_invoice_column(row))
        for row in response.context["cl"].result_list
    }
    assert cells == {
        draft.pk: '<strong class="e-invoice-refused-tag" style="color: var(--error-fg)">'
        "refused</strong>",
        invoice.pk: "Peppol BIS 3",
        plain.pk: "",
    }


def test_the_finalize_action_says_why_the_e_invoice_was_refused(admin_client, monkeypatch):
    # given: a draft whose e-invoice fails BR-AE-02 at finalization (the
    # customer's and seller's e-invoice settings are another change's)
    draft = period_draft(belgian_customer(), [line()])
    failure = Failure(**br_ae_02())

    def check(invoice, seller, now):
        raise EInvoiceInvalid([failure], document=str(invoice), invoice_id=invoice.pk)

    monkeypatch.setattr(services, "_e_invoice_check", check)

    # when
    response = admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "finalize", "_selected_action": [draft.pk]},
        follow=True,
    )

    # then: the message names the rule; the draft stays a draft, the rule kept on it
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        f"{draft}: the e-invoice of {draft} fails validation: BR-AE-02: {failure.message}"
    ]
    draft = Invoice.objects.get(pk=draft.pk)
    assert (draft.status, draft.number) == (Invoice.DRAFT, None)
    assert draft.e_invoice_errors == [br_ae_02()]


def test_a_credit_notes_page_names_its_format_and_downloads_it(admin_client):
    invoice = issued(sent_at=DEC_3)
    note = CreditNote.objects.create(
        number="CN-2026-000001",
        created_at=DEC_3,
        invoice=invoice,
        customer=invoice.customer,
        currency="EUR",
        reason=CreditNote.REASONS[0][0],
        subtotal=D(10),
        total=D(10),
        e_invoice_format="xrechnung",
        e_invoice_xml=XML,
    )

    page = text_of(admin_client.get(f"/admin/invoices/creditnote/{note.pk}/change/"))
    download = admin_client.get(f"/admin/invoices/creditnote/{note.pk}/e-invoice/")

    assert "XRechnung" in page and "Validated against EN 16931 and issued" in page
    assert f'<a href="/admin/invoices/creditnote/{note.pk}/e-invoice/">CN-2026-000001.xml</a>' in (
        page
    )
    assert download["Content-Disposition"] == 'attachment; filename="CN-2026-000001.xml"'
    assert download.content == XML.encode("utf-8")
