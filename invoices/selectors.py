"""Reads for invoices."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, QuerySet
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from invoices.models import Invoice
from invoices.pdf import invoice_pdf_filename, render_invoice_pdf

logger = logging.getLogger(__name__)


def past_due(invoices: QuerySet, *, now: datetime) -> QuerySet:
    """The finalized invoices whose due date has passed with something still to pay:
    the dashboard's "past due", the admin's filter and the API's ?past_due=true."""
    return invoices.filter(
        status=Invoice.FINALIZED, due_at__lt=now, total__gt=F("credits_applied") + F("credited")
    )


@dataclass(frozen=True)
class InvoicePdf:
    content: bytes
    filename: str
    # True when the bytes are the stored document as issued.
    stored: bool


def invoice_pdf(*, invoice: Invoice) -> InvoicePdf:
    """The invoice's PDF for download: the stored one, as it is, when there is one;
    otherwise rendered now and not stored (a draft, watermarked DRAFT, or an
    invoice whose render task has not run yet)."""
    filename = invoice_pdf_filename(invoice)
    if invoice.pdf_file:
        try:
            with invoice.pdf_file.open("rb") as stored:
                return InvoicePdf(stored.read(), filename, stored=True)
        except FileNotFoundError:
            logger.error(
                "invoice %s: stored PDF %s is missing; rendered on the fly (repair it "
                "with the admin's Re-render PDF)",
                invoice,
                invoice.pdf_file.name,
            )
    return InvoicePdf(render_invoice_pdf(invoice), filename, stored=False)


def invoice_pdf_response(*, invoice: Invoice, headers: dict | None = None) -> HttpResponse:
    """The invoice's PDF (invoice_pdf) as a download, for the API, the admin and the
    portal alike."""
    document = invoice_pdf(invoice=invoice)
    return HttpResponse(
        document.content,
        content_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition_header(
                as_attachment=True, filename=document.filename
            ),
            "Cache-Control": "private, no-cache",
            **(headers or {}),
        },
    )
