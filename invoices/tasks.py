"""Celery tasks: thin, take ids, safe to run twice."""

from celery import shared_task
from django.utils import timezone

from invoices import services
from invoices.models import Invoice


@shared_task(acks_late=True)
def render_invoice_pdf(invoice_id: int, force: bool = False) -> str | None:
    """Render and store an invoice's PDF (enqueued when it is finalized, or by the
    admin's repair with `force`). Run twice, the second run finds the PDF recorded
    and does nothing; a forced one renders the same bytes again. Returns the PDF's
    SHA-256, or None for an invoice that is gone or a draft."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None or invoice.status == Invoice.DRAFT:
        return None
    invoice = services.invoice_render_pdf(invoice=invoice, now=timezone.now(), force=force)
    return invoice.pdf_sha256
