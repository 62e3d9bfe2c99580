"""The PDFs of invoices and credit notes: rendered after commit by a worker when
the document is issued, stored under a name made of the document's number and its
content's hash, and served as stored. One mechanism for both documents (DOCUMENTS
says how each is rendered, named and locked).

Every download of a numbered document serves a stored file: one without a current
stored PDF (issued before PDFs were stored, its render task not run yet, its file
lost, or a void whose render has not run) is rendered and stored by that download,
then served; the next download serves the file. Only a draft is rendered on each
download, and never stored.
"""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from common import outbound_record
from common.errors import Conflict
from common.task_sending import enqueue_on_commit
from invoices import render_claims
from invoices.locks import credit_note_lock, invoice_lock
from invoices.models import CreditNote, Invoice
from invoices.pdf import (
    credit_note_pdf_filename,
    invoice_pdf_filename,
    render_credit_note_pdf,
    render_invoice_pdf,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Document:
    """How one kind of document (a model with pdf_file, pdf_sha256 and
    pdf_rendered_at, and a number) gets its PDF."""

    render: Callable[[models.Model], bytes]
    lock: Callable[[int], models.Model]
    # The storage's folder for it: "invoices", "credit-notes".
    folder: str
    # The name a download is offered under.
    filename: Callable[[models.Model], str]


DOCUMENTS: dict[type, _Document] = {
    Invoice: _Document(render_invoice_pdf, invoice_lock, "invoices", invoice_pdf_filename),
    CreditNote: _Document(
        render_credit_note_pdf, credit_note_lock, "credit-notes", credit_note_pdf_filename
    ),
}


def invoice_schedule_pdf_render(*, invoice: Invoice, force: bool = False) -> None:
    """Have a worker render and store the invoice's PDF once the caller's
    transaction commits (`force`: again, as a repair). A draft is refused: it has
    no stored PDF, it is rendered on each download."""
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    render_pdf_after_commit(invoice.pk, force=force)


def render_pdf_after_commit(invoice_id: int, *, force: bool) -> None:
    # A broker that is down must not fail a finalization that has committed (robust);
    # the first download renders and stores the PDF meanwhile.
    enqueue_on_commit("invoices.tasks.render_invoice_pdf", invoice_id, force=force)


def credit_note_schedule_pdf_render(*, credit_note: CreditNote, force: bool = False) -> None:
    """Have a worker render and store the credit note's PDF once the caller's
    transaction commits (when it is issued; `force`: again, as a repair)."""
    enqueue_on_commit("invoices.tasks.render_credit_note_pdf", credit_note.pk, force=force)


def pdf_storage_name(*, document: Invoice | CreditNote, sha256: str) -> str:
    """Where an issued PDF is stored: by sequence, named by number and content, so
    a render of the same bytes lands on the same file and a different one never
    overwrites it (invoices/INV-2026/INV-2026-000123-<first 16 hex digits of its
    SHA-256>.pdf, credit-notes/CN-2026/CN-2026-000001-<...>.pdf)."""
    sequence = document.number.rsplit("-", 1)[0]
    folder = DOCUMENTS[type(document)].folder
    return f"{folder}/{sequence}/{document.number}-{sha256[:16]}.pdf"


def pdf_is_current(document: Invoice | CreditNote) -> bool:
    """Whether the document's recorded PDF is the one to serve: there is one, and
    it was not rendered before its invoice was voided (a voided invoice's PDF
    says VOID). A payment leaves it as it is: the PDF is the document as issued."""
    if not document.pdf_sha256:
        return False
    if _voided(document):
        rendered_at = document.pdf_rendered_at
        return rendered_at is not None and rendered_at >= document.voided_at
    return True


def _voided(document) -> bool:
    """A voided invoice, with the time of its void."""
    return (
        isinstance(document, Invoice)
        and document.status == Invoice.VOID
        and document.voided_at is not None
    )


def invoice_render_pdf(
    *, invoice: Invoice, now: datetime, force: bool = False, claimant: str = ""
) -> Invoice:
    """Render the PDF of a numbered invoice as it stands (normally just after its
    finalization, or its void) and store it (document_render_pdf). A draft is
    refused (it has no stored PDF)."""
    invoice = Invoice.objects.get(pk=invoice.pk)
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    return _render_and_record(document=invoice, now=now, force=force, claimant=claimant)[0]


def credit_note_render_pdf(
    *, credit_note: CreditNote, now: datetime, force: bool = False, claimant: str = ""
) -> CreditNote:
    """Render and store a credit note's PDF (document_render_pdf)."""
    return document_render_pdf(document=credit_note, now=now, force=force, claimant=claimant)


def document_render_pdf(*, document, now: datetime, force: bool = False, claimant: str = ""):
    """Render the PDF of an invoice or credit note as it stands, store it in the
    default storage and record its path, SHA-256 and render time on the row.

    Idempotent: a document whose recorded PDF is current (pdf_is_current) keeps
    it, and is returned as it is, so the document as issued never changes (a
    payment does not re-render an invoice); a voided invoice's is rendered again
    once, saying VOID. `force` is the repair: it renders again as the document
    stands now (an invoice's VOID or PAID watermark included), writes the file if
    it is missing or differs, and records the hash of what it rendered anew; the
    earlier file is kept. Renders are deterministic (same document, same state,
    same bytes), so a repair of an unchanged one lands on the same file.

    One render of a document at a time (invoices.render_claims): the render is
    claimed for `claimant` (the task's id; a call of its own when not told), then made
    with no lock held, then recorded under the row's lock. A call that finds another
    render under way raises PdfRendering and renders nothing; one whose renders were
    given up (timed out, attempts spent) raises PdfRenderFailed, unless `force`. A
    render of an invoice whose status changed meanwhile is made again under the lock."""
    return _render_and_record(
        document=type(document).objects.get(pk=document.pk),
        now=now,
        force=force,
        claimant=claimant,
    )[0]


def _render_and_record(
    *, document, now: datetime, force: bool, claimant: str = ""
) -> tuple[Invoice | CreditNote, bytes | None]:
    """document_render_pdf for a document just read (no second read of the row
    when its PDF is current). Returns the document as recorded and the PDF this call
    stored, or None when it stored nothing (the recorded one is current)."""
    kind = DOCUMENTS[type(document)]
    if not force and pdf_is_current(document):
        return document, None
    claim = render_claims.render_claim(
        document=document,
        claimant=claimant or render_claims.new_claimant(),
        now=now,
        force=force,
        is_current=pdf_is_current,
    )
    if claim is None:  # recorded by another render between the read and the claim
        return type(document).objects.get(pk=document.pk), None
    try:
        return _render_claimed(document=document, kind=kind, now=now, force=force, claim=claim)
    except BaseException as error:  # SoftTimeLimitExceeded, a worker's shutdown
        render_claims.render_release(claim, now=now, error=error)
        raise


def _render_claimed(*, document, kind: _Document, now: datetime, force: bool, claim):
    """Render the document under its claim, then record the PDF and free the claim."""
    content = kind.render(document)
    with transaction.atomic():
        locked = kind.lock(document.pk)
        render_claims.render_done(claim)
        if not force and pdf_is_current(locked):
            return locked, None
        if _shown_state(locked) != _shown_state(document):
            # Voided (or paid) while it rendered: the PDF is of the invoice as it is.
            content = kind.render(locked)
        document = locked
        sha256 = hashlib.sha256(content).hexdigest()
        previous = (document.pdf_file.name, document.pdf_sha256)
        name = pdf_file_store(pdf_storage_name(document=document, sha256=sha256), content)
        document.pdf_file.name = name
        document.pdf_sha256 = sha256
        document.pdf_rendered_at = _rendered_at(document, now)
        document.save(update_fields=["pdf_file", "pdf_sha256", "pdf_rendered_at"])
        # Stored, so its number may reach the customer: said outside the database
        # before the row commits (common.outbound_record).
        document_record_stored(document=document, now=now)
    if previous[1] and previous != (name, sha256):
        # The earlier file is kept: it may be what the customer was sent.
        logger.warning(
            "%s: PDF re-rendered, %s (sha256 %s) replaces %s (sha256 %s)",
            document,
            name,
            sha256,
            *previous,
        )
    return document, content


def document_record_stored(*, document, now: datetime) -> None:
    """Append to the outbound record that the document's PDF is stored (its number,
    file and SHA-256, and what an invoice bills: document_billed), for the restore
    step (invoices.after_restore)."""
    outbound_record.record_append(
        what=outbound_record.DOCUMENT_STORED,
        at=now,
        kind=DOCUMENTS[type(document)].folder,
        id=document.pk,
        number=document.number,
        customer=document.customer_id,
        file=document.pdf_file.name,
        sha256=document.pdf_sha256,
        **document_billed(document),
    )


def document_billed(document) -> dict:
    """What an invoice bills, as the outbound record keeps it: its subscription,
    reason and period (ISO instants), by which a restored database finds the
    invoice that bills the same period again (the close's unique key); {} for a
    credit note."""
    if not isinstance(document, Invoice):
        return {}
    return {
        "subscription": document.subscription_id,
        "reason": document.reason,
        "period_start": document.period_start.isoformat(),
        "period_end": document.period_end.isoformat(),
    }


def _shown_state(document) -> str:
    """What a document's PDF shows that changes after it is issued: an invoice's
    status (its watermark and facts); nothing of a credit note."""
    return document.status if isinstance(document, Invoice) else ""


def _rendered_at(document, now: datetime) -> datetime:
    """When the PDF was rendered, and never before the void it shows: a host whose
    clock is behind the one that voided must not leave the VOID PDF stale
    (pdf_is_current), nor must a void dated ahead."""
    if _voided(document):
        return max(now, document.voided_at)
    return now


def pdf_file_store(name: str, content: bytes) -> str:
    """Write the file unless the storage holds these very bytes under that name
    already; a damaged file under it is replaced. Returns the name stored under."""
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as stored:
            if stored.read() == content:
                return name
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


# Downloads: the API, the admin, the portal and the emails' attachments.


@dataclass(frozen=True)
class DocumentPdf:
    content: bytes
    filename: str
    # True for the stored document; False for a draft, rendered for this download.
    stored: bool


def invoice_pdf(*, invoice: Invoice, now: datetime, claimant: str = "") -> DocumentPdf:
    """The invoice's PDF for a download or an email: the stored one (_stored_pdf); a
    draft's is rendered for each download, watermarked DRAFT, and never stored."""
    if invoice.status == Invoice.DRAFT:
        return DocumentPdf(render_invoice_pdf(invoice), invoice_pdf_filename(invoice), False)
    return _stored_pdf(document=invoice, now=now, claimant=claimant)


def credit_note_pdf(*, credit_note: CreditNote, now: datetime, claimant: str = "") -> DocumentPdf:
    """The credit note's PDF for a download or an email: the stored one (_stored_pdf)."""
    return _stored_pdf(document=credit_note, now=now, claimant=claimant)


def _stored_pdf(*, document: Invoice | CreditNote, now: datetime, claimant: str) -> DocumentPdf:
    """A numbered document's stored PDF, as stored. One without a current stored
    PDF (pdf_is_current: issued before PDFs were stored, its render task not run
    yet, a void whose render has not run), or whose file the storage lost, gets
    it here first: rendered in the document's own language and time zone (its
    snapshot's, whoever asks), stored and recorded as the render task does it,
    under the render's claim (document_render_pdf), so that while one renders, the
    others render nothing (PdfRendering: ask again shortly); then every later download
    reads the file. PdfRenderFailed when its renders were given up."""
    kind = DOCUMENTS[type(document)]
    force = False
    if pdf_is_current(document):
        content = _stored_content(document)
        if content is not None:
            return DocumentPdf(content, kind.filename(document), stored=True)
        force = True  # recorded, but the file is gone: store it again
    claimant = claimant or render_claims.new_claimant()
    document, content = _render_and_record(
        document=document, now=now, force=force, claimant=claimant
    )
    if content is None:
        # Recorded by another run between the read and the lock.
        content = _stored_content(document)
    if content is None:
        document, content = _render_and_record(
            document=document, now=now, force=True, claimant=claimant
        )
    return DocumentPdf(content, kind.filename(document), stored=True)


def _stored_content(document) -> bytes | None:
    try:
        with document.pdf_file.open("rb") as stored:
            return stored.read()
    except FileNotFoundError:
        logger.error(
            "%s: stored PDF %s is missing; rendered and stored again",
            document,
            document.pdf_file.name,
        )
        return None


def invoice_pdf_response(
    *, invoice: Invoice, now: datetime, headers: dict | None = None
) -> HttpResponse:
    """The invoice's PDF (invoice_pdf) as a download, for the API, the admin and the
    portal alike."""
    return _download(lambda: invoice_pdf(invoice=invoice, now=now), headers)


def credit_note_pdf_response(
    *, credit_note: CreditNote, now: datetime, headers: dict | None = None
) -> HttpResponse:
    """The credit note's PDF (credit_note_pdf) as a download, for the API, the
    admin and the portal alike."""
    return _download(lambda: credit_note_pdf(credit_note=credit_note, now=now), headers)


def _download(make: Callable[[], DocumentPdf], headers: dict | None) -> HttpResponse:
    try:
        document = make()
    except render_claims.PdfUnavailable as unavailable:
        # Being rendered, or given up: said plainly, never a second render beside it.
        retry = {"Retry-After": str(unavailable.retry_after)} if unavailable.retry_after else {}
        return HttpResponse(
            unavailable.message,
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={**(headers or {}), **retry, "Cache-Control": "no-store"},
        )
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
