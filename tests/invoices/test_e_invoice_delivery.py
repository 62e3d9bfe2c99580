"""E-invoices delivered (invoices.e_invoice_delivery, facturx_pdf): a Factur-X
invoice's stored PDF is a PDF/A-3b with its XML embedded, read back here with
pypdf and the factur-x package; GET .../e-invoice serves the XML (XRechnung,
Peppol) byte for byte or the Factur-X PDF, 404 without an e-invoice, 409 for a
draft; the document email attaches the XML beside the PDF."""

import re
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from facturx import get_xml_from_pdf, xml_check_xsd
from pypdf import PdfReader

from invoices import emails, rendering
from invoices.models import DocumentEmail, Invoice
from invoices.pdf import render_invoice_pdf
from tests.factories import api_client, period_draft
from tests.invoices.e_invoice_support import (
    DEC_2,
    DEC_5,
    LINES,
    credit_note_of,
    e_invoiced,
    e_invoiced_note,
    finalized_invoice,
    french_customer,
    french_seller,
)

pytestmark = pytest.mark.django_db

NBSP = "\N{NO-BREAK SPACE}"


@pytest.fixture(autouse=True)
def seller(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    french_seller()


def text_of(content: bytes) -> list[str]:
    lines = []
    for page in PdfReader(BytesIO(content)).pages:
        text = page.extract_text().replace(NBSP, " ").replace("\N{NARROW NO-BREAK SPACE}", " ")
        lines += text.splitlines()
    return lines


def embedded_files(content: bytes) -> dict[str, bytes]:
    return {
        name: data
        for name, contents in PdfReader(BytesIO(content)).attachments.items()
        for data in contents
    }


def xmp_of(content: bytes) -> str:
    return PdfReader(BytesIO(content)).trailer["/Root"]["/Metadata"].get_data().decode("utf-8")


def fonts_of(content: bytes) -> list[tuple[str, bool]]:
    """Each font the pages use, and whether its program is embedded in the PDF."""
    fonts = []
    for page in PdfReader(BytesIO(content)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            descriptor = described["/FontDescriptor"].get_object()
            embedded = any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))
            fonts.append((str(font["/BaseFont"]), embedded))
    return fonts


def facturx_invoice() -> Invoice:
    return e_invoiced(finalized_invoice(french_customer()), "facturx")


# The Factur-X PDF, read back


def test_a_facturx_invoice_is_stored_as_a_pdf_a3_with_its_xml_embedded():
    invoice = facturx_invoice()
    assert (invoice.number, invoice.total) == ("INV-2026-000001", D("167.88"))

    with time_machine.travel(DEC_2, tick=False):
        stored = rendering.invoice_pdf(invoice=invoice, now=DEC_2)

    # the one stored PDF, named and hashed as every stored PDF
    invoice.refresh_from_db()
    assert stored.stored and stored.filename == "INV-2026-000001.pdf"
    with invoice.pdf_file.open("rb") as file:
        content = file.read()
    assert content == stored.content
    assert invoice.pdf_file.name == (
        f"invoices/INV-2026/INV-2026-000001-{invoice.pdf_sha256[:16]}.pdf"
    )
    # the XML embedded is the e-invoice, as pypdf and the factur-x package read it
    xml = invoice.e_invoice_xml.encode("utf-8")
    assert embedded_files(content) == {"factur-x.xml": xml}
    assert get_xml_from_pdf(content, check_xsd=True) == ("factur-x.xml", xml)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert b"<ram:GrandTotalAmount>167.88</ram:GrandTotalAmount>" in xml
    assert b"<ram:ID>INV-2026-000001</ram:ID>" in xml
    # PDF/A-3b, Factur-X EN 16931, in French, titled
    xmp = xmp_of(content)
    assert re.search(r"<pdfaid:part>3</pdfaid:part>|pdfaid:part=\"3\"", xmp), xmp
    assert re.search(r"<pdfaid:conformance>B</pdfaid:conformance>|conformance=\"B\"", xmp)
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    reader = PdfReader(BytesIO(content))
    assert reader.trailer["/Root"]["/Lang"] == "fr"
    assert reader.metadata.title == "Facture INV-2026-000001"
    # the document information agrees with the XMP (PDF/A): no WeasyPrint Producer
    assert "/Producer" not in reader.metadata
    assert "<pdf:Producer>pypdf</pdf:Producer>" in xmp
    assert "/OutputIntents" in reader.trailer["/Root"]
    # every font embedded, as PDF/A requires
    fonts = fonts_of(content)
    assert fonts and all(embedded for _, embedded in fonts), fonts
    # what a person reads is the same invoice, in French
    text = text_of(content)
    assert "Facture" in text
    assert "Jetons gpt-4o 1 000 000 0,0001 100,00" in text
    assert "Forfait Pro 1 39,90 39,90" in text
    assert "Sous-total 139,90" in text
    assert "TVA 20 % sur 139,90 27,98" in text
    assert "Total EUR 167,88" in text
    assert "Merci d'indiquer INV-2026-000001 avec votre paiement." in text


def test_the_facturx_render_is_deterministic():
    invoice = facturx_invoice()

    first = render_invoice_pdf(invoice)
    with time_machine.travel(DEC_5, tick=False):
        second = render_invoice_pdf(Invoice.objects.get(pk=invoice.pk))

    assert first == second
    # dated as the invoice, not as the render
    assert PdfReader(BytesIO(first)).metadata["/CreationDate"] == "D:20261202100000+00'00'"


def test_an_ordinary_invoice_pdf_has_no_attachment_and_is_no_pdf_a():
    invoice = finalized_invoice(french_customer())

    content = render_invoice_pdf(invoice)

    assert embedded_files(content) == {}
    assert "/Metadata" not in PdfReader(BytesIO(content)).trailer["/Root"]
    assert "Total EUR 167,88" in text_of(content)


def test_a_facturx_credit_note_embeds_its_own_xml():
    # The note issued first: its own issue would e-invoice it with fields of the
    # tax rates this branch does not have yet.
    plain = finalized_invoice(french_customer())
    note = credit_note_of(plain)
    e_invoiced(plain, "facturx")
    note = e_invoiced_note(note, "facturx")
    assert (note.number, note.total) == ("CN-2026-000001", D("24.00"))

    with time_machine.travel(DEC_5, tick=False):
        stored = rendering.credit_note_pdf(credit_note=note, now=DEC_5)

    xml = note.e_invoice_xml.encode("utf-8")
    assert embedded_files(stored.content) == {"factur-x.xml": xml}
    assert b"<ram:IssuerAssignedID>INV-2026-000001</ram:IssuerAssignedID>" in xml
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert "<pdfaid:part>3</pdfaid:part>" in xmp_of(stored.content) or 'pdfaid:part="3"' in (
        xmp_of(stored.content)
    )
    assert "Avoir" in " ".join(text_of(stored.content))


# GET /api/v1/invoices/{id}/e-invoice and /credit-notes/{id}/e-invoice


@pytest.mark.parametrize("profile", ["xrechnung", "peppol"])
def test_the_api_serves_a_ubl_e_invoice_byte_for_byte(profile):
    invoice = e_invoiced(finalized_invoice(french_customer()), profile)

    response = api_client("read").get(f"/api/v1/invoices/{invoice.pk}/e-invoice")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="INV-2026-000001.xml"'
    assert response.content == invoice.e_invoice_xml.encode("utf-8")
    assert b'<cbc:PayableAmount currencyID="EUR">167.88</cbc:PayableAmount>' in response.content
    detail = api_client("read").get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (detail["e_invoice_format"], detail["e_invoice_errors"]) == (profile, [])


def test_the_api_serves_a_facturx_e_invoice_as_the_stored_pdf():
    invoice = facturx_invoice()

    with time_machine.travel(DEC_2, tick=False):
        response = api_client("read").get(f"/api/v1/invoices/{invoice.pk}/e-invoice")
        pdf = api_client("read").get(f"/api/v1/invoices/{invoice.pk}/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-2026-000001.pdf"'
    assert response.content == pdf.content
    invoice.refresh_from_db()
    with invoice.pdf_file.open("rb") as file:
        assert response.content == file.read()
    assert embedded_files(response.content) == {
        "factur-x.xml": invoice.e_invoice_xml.encode("utf-8")
    }


def test_an_invoice_without_an_e_invoice_is_404():
    invoice = finalized_invoice(french_customer())

    response = api_client("read").get(f"/api/v1/invoices/{invoice.pk}/e-invoice")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "type": "not_found",
            "message": "invoice INV-2026-000001 has no e-invoice: its seller does not "
            "e-invoice or its customer chose no format",
        }
    }
    detail = api_client("read").get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (detail["e_invoice_format"], detail["e_invoice_errors"]) == (None, [])


def test_a_draft_is_409_with_why_its_e_invoice_was_refused():
    draft = period_draft(french_customer(), LINES)
    refused = [
        {
            "rule": "BR-AE-02",
            "message": "The buyer's VAT identifier is required",
            "field": "customer.vat_id",
            "location": "/rsm:CrossIndustryInvoice",
        }
    ]
    Invoice.objects.filter(pk=draft.pk).update(e_invoice_errors=refused)

    response = api_client("read").get(f"/api/v1/invoices/{draft.pk}/e-invoice")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["type"] == "conflict"
    assert error["message"] == (
        f"invoice draft #{draft.pk} is a draft: it is e-invoiced when it is finalized; "
        "its e-invoice was refused: BR-AE-02: The buyer's VAT identifier is required"
    )
    detail = api_client("read").get(f"/api/v1/invoices/{draft.pk}").json()
    assert (detail["e_invoice_format"], detail["e_invoice_errors"]) == (None, refused)


def test_a_credit_note_e_invoice_and_its_404():
    invoice = finalized_invoice(french_customer())
    plain = credit_note_of(invoice)
    e_invoiced(invoice, "peppol")
    api = api_client("read")
    missing = api.get(f"/api/v1/credit-notes/{plain.pk}/e-invoice")
    note = e_invoiced_note(plain, "peppol")

    response = api.get(f"/api/v1/credit-notes/{note.pk}/e-invoice")

    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == (
        "credit note CN-2026-000001 has no e-invoice: the invoice it credits was not e-invoiced"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="CN-2026-000001.xml"'
    assert response.content == note.e_invoice_xml.encode("utf-8")
    assert b"<CreditNote " in response.content
    assert api.get(f"/api/v1/credit-notes/{note.pk}").json()["e_invoice_format"] == "peppol"


def test_the_e_invoice_takes_the_pdfs_scopes():
    invoice = e_invoiced(finalized_invoice(french_customer()), "xrechnung")
    url = f"/api/v1/invoices/{invoice.pk}/e-invoice"

    assert api_client("events:write").get(url).status_code == 403
    assert api_client("events:write").get(f"/api/v1/invoices/{invoice.pk}/pdf").status_code == 403
    assert api_client("read").get(url).status_code == 200
    assert api_client().get(url).status_code == 200
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code == 401


# The document email


@pytest.fixture
def _emails_on(settings):
    settings.BILLING_INVOICE_EMAILS = True
    settings.BILLING_INVOICE_FROM_EMAIL = "factures@exemple.fr"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BILLING_PUBLIC_URL = "https://billing.seller.test"


def emailed(invoice: Invoice, mailoutbox):
    email = emails.document_email_schedule(invoice=invoice, now=DEC_2)
    with time_machine.travel(DEC_2, tick=False):
        emails.document_email_send(email=email, now=DEC_2)
    assert DocumentEmail.objects.get(pk=email.pk).status == "sent"
    (message,) = mailoutbox
    return message


@pytest.mark.usefixtures("_emails_on")
def test_the_email_of_a_ubl_invoice_attaches_its_xml_beside_the_pdf(mailoutbox):
    invoice = e_invoiced(finalized_invoice(french_customer()), "xrechnung")

    message = emailed(invoice, mailoutbox)

    invoice.refresh_from_db()
    with invoice.pdf_file.open("rb") as file:
        stored = file.read()
    assert message.attachments == [
        ("INV-2026-000001.pdf", stored, "application/pdf"),
        ("INV-2026-000001.xml", invoice.e_invoice_xml.encode("utf-8"), "application/xml"),
    ]
    assert embedded_files(stored) == {}


@pytest.mark.usefixtures("_emails_on")
def test_the_email_of_a_facturx_invoice_attaches_the_facturx_pdf_alone(mailoutbox):
    invoice = facturx_invoice()

    message = emailed(invoice, mailoutbox)

    ((filename, content, mimetype),) = message.attachments
    assert (filename, mimetype) == ("INV-2026-000001.pdf", "application/pdf")
    assert get_xml_from_pdf(content) == ("factur-x.xml", invoice.e_invoice_xml.encode("utf-8"))


@pytest.mark.usefixtures("_emails_on")
def test_the_email_of_an_ordinary_invoice_attaches_the_pdf_alone(mailoutbox):
    invoice = finalized_invoice(french_customer())

    message = emailed(invoice, mailoutbox)

    assert [(name, kind) for name, _, kind in message.attachments] == [
        ("INV-2026-000001.pdf", "application/pdf")
    ]
