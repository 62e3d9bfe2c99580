"""The PDFs of invoices and credit notes: rendered after commit by a worker,
stored under a name made of the document's number and its content's hash,
rendered again on request. One mechanism for both documents (DOCUMENTS says how
each is rendered, named and locked)."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction

from billing.core.errors import Conflict
from invoices.locks import credit_note_lock, invoice_lock
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_credit_note_pdf, render_invoice_pdf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Document:
    """How one kind of document (a model with pdf_file, pdf_sha256 and
    pdf_rendered_at, and a number) gets its PDF."""

    render: Callable[[models.Model], bytes]
    lock: Callable[[int], models.Model]
    # The storage's folder for it: "invoices", "credit-notes".
    folder: str


DOCUMENTS: dict[type, _Document] = {
    Invoice: _Document(render_invoice_pdf, invoice_lock, "invoices"),
    CreditNote: _Document(render_credit_note_pdf, credit_note_lock, "credit-notes"),
}


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


def credit_note_schedule_pdf_render(*, credit_note: CreditNote, force: bool = False) -> None:
    """Have a worker render and store the credit note's PDF once the caller's
    transaction commits (when it is issued; `force`: again, as a repair)."""
    from invoices import tasks

    note_id = credit_note.pk
    transaction.on_commit(
        lambda: tasks.render_credit_note_pdf.delay(note_id, force=force), robust=True
    )


def pdf_storage_name(*, document: Invoice | CreditNote, sha256: str) -> str:
    """Where an issued PDF is stored: by sequence, named by number and content, so
    a render of the same bytes lands on the same file and a different one never
    overwrites it (invoices/INV-2026/INV-2026-000123-<first 16 hex digits of its
    SHA-256>.pdf, credit-notes/CN-2026/CN-2026-000001-<...>.pdf)."""
    sequence = document.number.rsplit("-", 1)[0]
    folder = DOCUMENTS[type(document)].folder
    return f"{folder}/{sequence}/{document.number}-{sha256[:16]}.pdf"


def invoice_render_pdf(*, invoice: Invoice, now: datetime, force: bool = False) -> Invoice:
    """Render the PDF of a numbered invoice as it stands (normally just after its
    finalization) and store it (document_render_pdf). A draft is refused (it has
    no stored PDF)."""
    invoice = Invoice.objects.get(pk=invoice.pk)
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    return _render_and_record(document=invoice, now=now, force=force)


def credit_note_render_pdf(
    *, credit_note: CreditNote, now: datetime, force: bool = False
) -> CreditNote:
    """Render and store a credit note's PDF (document_render_pdf)."""
    return document_render_pdf(document=credit_note, now=now, force=force)


def document_render_pdf(*, document, now: datetime, force: bool = False):
    """Render the PDF of an invoice or credit note as it stands, store it in the
    default storage and record its path, SHA-256 and render time on the row.

    Idempotent: a document whose PDF is recorded keeps it, and is returned as it
    is, so the document as issued never changes (a void or a payment does not
    re-render an invoice). `force` is the repair: it renders again as the
    document stands now (an invoice's VOID or PAID watermark included), writes the
    file if it is missing or differs, and records the hash of what it rendered
    anew; the earlier file is kept. Renders are deterministic (same document,
    same state, same bytes), so a repair of an unchanged one lands on the same
    file.

    Renders before taking any lock, then records under the row's lock: when two
    runs race, the first to record wins and the other stores nothing."""
    return _render_and_record(
        document=type(document).objects.get(pk=document.pk), now=now, force=force
    )


def _render_and_record(*, document, now: datetime, force: bool):
    """document_render_pdf for a document just read (no second read of the row)."""
    kind = DOCUMENTS[type(document)]
    if document.pdf_sha256 and not force:
        return document
    content = kind.render(document)
    sha256 = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        document = kind.lock(document.pk)
        if document.pdf_sha256 and not force:
            return document
        previous = (document.pdf_file.name, document.pdf_sha256)
        name = _store_pdf(pdf_storage_name(document=document, sha256=sha256), content)
        document.pdf_file.name = name
        document.pdf_sha256 = sha256
        document.pdf_rendered_at = now
        document.save(update_fields=["pdf_file", "pdf_sha256", "pdf_rendered_at"])
    if previous[1] and previous != (name, sha256):
        # The earlier file is kept: it may be what the customer was sent.
        logger.warning(
            "%s: PDF re-rendered, %s (sha256 %s) replaces %s (sha256 %s)",
            document,
            name,
            sha256,
            *previous,
        )
    return document


def _store_pdf(name: str, content: bytes) -> str:
    """Write the file unless the storage holds these very bytes under that name
    already; a damaged file under it is replaced. Returns the name stored under."""
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stored:
            if stored.read() == content:
                return name
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))
