"""Invoice PDFs: rendered after commit by a worker, stored under a name made of
the invoice and its content's hash, rendered again on request."""

import hashlib
import logging
from datetime import datetime

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from billing.core.errors import Conflict
from invoices.locks import invoice_lock
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf

logger = logging.getLogger(__name__)


def invoice_schedule_pdf_render(*, invoice: Invoice, force: bool = False) -> None:
    """Have a worker render and store the invoice's PDF once the caller's
    transaction commits (`force`: again, as a repair). A draft is refused: it has
    no stored PDF, it is rendered on each download."""
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    render_pdf_after_commit(invoice.pk, force=force)


def render_pdf_after_commit(invoice_id: int, *, force: bool) -> None:
    from invoices import tasks

    # robust: a broker that is down must not fail a finalization that has
    # committed; the PDF is rendered on download meanwhile and can be repaired.
    transaction.on_commit(
        lambda: tasks.render_invoice_pdf.delay(invoice_id, force=force), robust=True
    )


def invoice_pdf_storage_name(*, invoice: Invoice, sha256: str) -> str:
    """Where an issued PDF is stored: by sequence, named by number and content, so
    a render of the same bytes lands on the same file and a different one never
    overwrites it (INV-2026/INV-2026-000123-<first 16 hex digits of its SHA-256>.pdf)."""
    sequence = invoice.number.rsplit("-", 1)[0]
    return f"invoices/{sequence}/{invoice.number}-{sha256[:16]}.pdf"


def invoice_render_pdf(*, invoice: Invoice, now: datetime, force: bool = False) -> Invoice:
    """Render the PDF of a numbered invoice as it stands (normally just after its
    finalization), store it in the default storage and record its path, SHA-256
    and render time on the invoice.

    Idempotent: an invoice whose PDF is recorded keeps it, and is returned as it
    is, so the document as issued never changes (a void or a payment does not
    re-render it). `force` is the repair: it renders again as the invoice stands
    now (a VOID or PAID watermark included), writes the file if it is missing or
    differs, and records the hash of what it rendered anew; the earlier file is
    kept. Renders are deterministic (same invoice, same state, same bytes), so a
    repair of an unchanged invoice lands on the same file.

    Renders before taking any lock, then records under the invoice's row lock:
    when two runs race, the first to record wins and the other stores nothing.
    A draft is refused (it has no stored PDF)."""
    invoice = Invoice.objects.get(pk=invoice.pk)
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    if invoice.pdf_sha256 and not force:
        return invoice
    content = render_invoice_pdf(invoice)
    sha256 = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        invoice = invoice_lock(invoice.pk)
        if invoice.pdf_sha256 and not force:
            return invoice
        previous = (invoice.pdf_file.name, invoice.pdf_sha256)
        name = _store_pdf(invoice_pdf_storage_name(invoice=invoice, sha256=sha256), content)
        invoice.pdf_file.name = name
        invoice.pdf_sha256 = sha256
        invoice.pdf_rendered_at = now
        invoice.save(update_fields=["pdf_file", "pdf_sha256", "pdf_rendered_at"])
    if previous[1] and previous != (name, sha256):
        # The earlier file is kept: it may be what the customer was sent.
        logger.warning(
            "invoice %s: PDF re-rendered, %s (sha256 %s) replaces %s (sha256 %s)",
            invoice,
            name,
            sha256,
            *previous,
        )
    return invoice


def _store_pdf(name: str, content: bytes) -> str:
    """Write the file unless the storage holds these very bytes under that name
    already; a damaged file under it is replaced. Returns the name stored under."""
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stored:
            if stored.read() == content:
                return name
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))
