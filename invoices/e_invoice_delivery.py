"""An issued e-invoice (invoices.e_invoices) as its customer receives it: for
Factur-X, the document's stored PDF, which is the e-invoice
(invoices.e_invoices.facturx_pdf); for UBL (XRechnung, Peppol BIS), its XML as
issued (e_invoice_xml), a file of its own named after the document's number,
beside the PDF. One place for what the API, the portal and the emails serve.
Beside invoices.rendering, not inside the e_invoices package, which the PDF's
render imports."""

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpResponse
from django.utils.http import content_disposition_header

from common.errors import Conflict, NotFound
from customers.e_invoice_details import FACTURX
from invoices import rendering
from invoices.models import CreditNote, Invoice

# The profiles written as UBL 2.1, whose e-invoice is an XML file of its own.
UBL_FORMATS = frozenset({"xrechnung", "peppol"})
XML_CONTENT_TYPE = "application/xml; charset=utf-8"


@dataclass(frozen=True)
class EInvoiceFile:
    content: bytes
    filename: str


def e_invoice_xml_file(document: Invoice | CreditNote) -> EInvoiceFile | None:
    """The document's UBL e-invoice as a file (<number>.xml, the XML as issued);
    None for one without an e-invoice, and for a Factur-X one (its PDF is it)."""
    if document.e_invoice_format not in UBL_FORMATS or not document.e_invoice_xml:
        return None
    return EInvoiceFile(document.e_invoice_xml.encode("utf-8"), f"{document.number}.xml")


def invoice_e_invoice_response(
    *, invoice: Invoice, now: datetime, headers: dict | None = None
) -> HttpResponse:
    """The invoice's e-invoice as a download: the Factur-X PDF as stored (rendered
    and stored first if it is not yet, as the PDF's download does), or the UBL
    XML. Conflict for a draft (with why its e-invoice was refused, if it was);
    NotFound for an invoice without an e-invoice."""
    if invoice.status == Invoice.DRAFT:
        refused = "; ".join(
            f"{error.get('rule')}: {error.get('message')}" for error in invoice.e_invoice_errors
        )
        raise Conflict(
            f"invoice {invoice} is a draft: it is e-invoiced when it is finalized"
            + (f"; its e-invoice was refused: {refused}" if refused else "")
        )
    if not invoice.e_invoice_format or not invoice.e_invoice_xml:
        raise NotFound(
            f"invoice {invoice.number} has no e-invoice: its seller does not e-invoice "
            "or its customer chose no format"
        )
    if invoice.e_invoice_format == FACTURX:
        return rendering.invoice_pdf_response(invoice=invoice, now=now, headers=headers)
    return _xml_response(e_invoice_xml_file(invoice), headers)


def credit_note_e_invoice_response(
    *, credit_note: CreditNote, now: datetime, headers: dict | None = None
) -> HttpResponse:
    """invoice_e_invoice_response for a credit note (NotFound when the invoice it
    credits was not e-invoiced)."""
    if not credit_note.e_invoice_format or not credit_note.e_invoice_xml:
        raise NotFound(
            f"credit note {credit_note.number} has no e-invoice: the invoice it credits "
            "was not e-invoiced"
        )
    if credit_note.e_invoice_format == FACTURX:
        return rendering.credit_note_pdf_response(credit_note=credit_note, now=now, headers=headers)
    return _xml_response(e_invoice_xml_file(credit_note), headers)


def _xml_response(file: EInvoiceFile, headers: dict | None) -> HttpResponse:
    return HttpResponse(
        file.content,
        content_type=XML_CONTENT_TYPE,
        headers={
            "Content-Disposition": content_disposition_header(
                as_attachment=True, filename=file.filename
            ),
            "Cache-Control": "private, no-cache",
            **(headers or {}),
        },
    )
