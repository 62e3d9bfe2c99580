"""One render of a document's PDF at a time, and a bounded number of tries (services).

A render claims the document's PdfRender row in a short transaction, renders with no
transaction open, then records the PDF and frees the claim in one (invoices.rendering).
Whoever else asks for the PDF meanwhile (the render task again, the email task, a
download) finds it claimed and does not render: PdfRendering says when to ask again.

A render stopped by its time limit is given up at once (the same document would take
as long again); a render that failed otherwise, or whose worker was lost (killed for
memory: its task is delivered again, and finds its own claim), is tried again, up to
RENDER_ATTEMPTS claims in all, then given up. A given-up document is not rendered
again until a repair (force) asks for it; PdfRenderFailed says why."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from common.errors import BillingError
from invoices.locks import pdf_render_lock
from invoices.models import CreditNote, Invoice, PdfRender

logger = logging.getLogger(__name__)

RENDER_ATTEMPTS = 3
# The longest a download or an email waits before it asks again for a PDF being rendered.
ASK_AGAIN = timedelta(seconds=15)


class PdfUnavailable(BillingError):
    """The document's stored PDF cannot be served now (503)."""

    status_code = 503
    error_type = "pdf_unavailable"
    retry_after: int | None = None


class PdfRendering(PdfUnavailable):
    """Another render of the document is under way: ask again in `retry_after` s."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class PdfRenderFailed(PdfUnavailable):
    """The document's renders were given up (timed out, or their attempts spent)."""


@dataclass(frozen=True)
class Claim:
    render_id: int
    claimant: str
    attempt: int


def new_claimant() -> str:
    """A claimant for a render that is not a task's (a download)."""
    return f"call:{uuid.uuid4().hex}"


def render_lease() -> timedelta:
    """How long a claim holds: past the render task's hard time limit, after which its
    process is gone; a claim older than that is a render that died."""
    return timedelta(seconds=settings.BILLING_TASK_LIMITS["pdf"][1] + 30)


def _render_row(document: Invoice | CreditNote) -> PdfRender:
    field = "invoice" if isinstance(document, Invoice) else "credit_note"
    row, _ = PdfRender.objects.get_or_create(**{field: document})
    return row


def render_claim(
    *, document: Invoice | CreditNote, claimant: str, now: datetime, force: bool, is_current
) -> Claim | None:
    """Claim the render of the document's PDF for `claimant`, or None when it needs
    none (is_current(the document read afresh) holds, unless `force`). Raises
    PdfRendering while another claim holds, PdfRenderFailed when its renders were
    given up (a `force`, the repair, starts the count again). Commits at once."""
    with transaction.atomic():
        row = pdf_render_lock(_render_row(document).pk)
        fresh = type(document).objects.get(pk=document.pk)
        if not force and is_current(fresh):
            return None
        held = row.claimant and row.claimed_until is not None and row.claimed_until > now
        if held and row.claimant != claimant:
            wait = min(row.claimed_until - now, ASK_AGAIN)
            raise PdfRendering(
                f"the PDF of {document} is being rendered; ask again shortly",
                retry_after=max(1, int(wait.total_seconds())),
            )
        if force:
            row.failed_at, row.attempts = None, 0
        elif row.failed_at is None and row.claimant and row.attempts >= RENDER_ATTEMPTS:
            # The last claim was never released: its render died (worker lost).
            _give_up(row, now, f"{row.attempts} renders died before they recorded")
            row.save()
        if row.failed_at is None:
            row.claimant = claimant
            row.claimed_until = now + render_lease()
            row.attempts += 1
            row.save()
            return Claim(row.pk, claimant, row.attempts)
    # Raised once the give-up above committed.
    raise PdfRenderFailed(
        f"the PDF of {document} could not be rendered ({row.last_error}); "
        "a repair (render again) tries anew"
    )


def render_done(claim: Claim) -> None:
    """Free the claim of a render that recorded (in the transaction that records it);
    nothing when another took it over meanwhile (a download that outlived its lease):
    that one frees it when it records."""
    PdfRender.objects.filter(
        pk=claim.render_id, claimant=claim.claimant, attempts=claim.attempt
    ).update(claimant="", claimed_until=None, attempts=0, failed_at=None, last_error="")


def render_release(claim: Claim, *, now: datetime, error: BaseException) -> None:
    """Free the claim of a render that failed, and record why: given up when it timed
    out or its attempts are spent. Nothing when the claim was taken over meanwhile."""
    timed_out = isinstance(error, SoftTimeLimitExceeded)
    try:
        with transaction.atomic():
            row = pdf_render_lock(claim.render_id)
            if row.claimant != claim.claimant or row.attempts != claim.attempt:
                return
            row.claimant, row.claimed_until = "", None
            if timed_out:
                _give_up(row, now, "the render took longer than its time limit")
            elif row.attempts >= RENDER_ATTEMPTS:
                _give_up(row, now, f"{type(error).__name__}: {error}")
            else:
                row.last_error = f"{type(error).__name__}: {error}"[:2000]
            row.save()
    except Exception:
        # The claim then runs out (render_lease) and the next render counts it.
        logger.exception("PDF render %s: its failure could not be recorded", claim.render_id)


def _give_up(row: PdfRender, now: datetime, why: str) -> None:
    logger.error("PDF render %s given up after %s attempts: %s", row.pk, row.attempts, why)
    row.claimant, row.claimed_until = "", None
    row.failed_at = now
    row.last_error = why[:2000]
