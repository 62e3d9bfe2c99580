"""Reads for invoices."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import F, QuerySet
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from invoices.models import CreditNote, Invoice
from invoices.pdf import (
    credit_note_pdf_filename,
    invoice_pdf_filename,
    render_credit_note_pdf,
    render_invoice_pdf,
)

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
    return _stored_or_rendered(invoice, invoice_pdf_filename(invoice), render_invoice_pdf)


def credit_note_pdf(*, credit_note: CreditNote) -> InvoicePdf:
    """The credit note's PDF for download: the stored one when there is one,
    otherwise rendered now and not stored (its render task has not run yet)."""
    return _stored_or_rendered(
        credit_note, credit_note_pdf_filename(credit_note), render_credit_note_pdf
    )


def _stored_or_rendered(document, filename: str, render) -> InvoicePdf:
    if document.pdf_file:
        try:
            with document.pdf_file.open("rb") as stored:
                return InvoicePdf(stored.read(), filename, stored=True)
        except FileNotFoundError:
            logger.error(
                "%s: stored PDF %s is missing; rendered on the fly (repair it "
                "with the admin's Re-render PDF)",
                document,
                document.pdf_file.name,
            )
    return InvoicePdf(render(document), filename, stored=False)


def invoice_pdf_response(*, invoice: Invoice, headers: dict | None = None) -> HttpResponse:
    """The invoice's PDF (invoice_pdf) as a download, for the API, the admin and the
    portal alike."""
    return _download(invoice_pdf(invoice=invoice), headers)


def credit_note_pdf_response(
    *, credit_note: CreditNote, headers: dict | None = None
) -> HttpResponse:
    """The credit note's PDF (credit_note_pdf) as a download, for the API, the
    admin and the portal alike."""
    return _download(credit_note_pdf(credit_note=credit_note), headers)


def _download(document: InvoicePdf, headers: dict | None) -> HttpResponse:
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


def amount_paid(invoice: Invoice) -> Decimal:
    """The money a paid invoice was settled with (by hand or through Stripe): its
    total less the credit balance it spent and what its credit notes took off the
    amount due before it was paid; nothing while it is not paid."""
    if invoice.status != Invoice.PAID:
        return Decimal(0)
    taken_off = sum((note.to_amount_due for note in invoice.credit_notes.all()), Decimal(0))
    return max(Decimal(0), invoice.total - invoice.credits_applied - taken_off)
