"""Celery tasks: thin, take ids, safe to run twice."""

import logging

import stripe
from celery import shared_task
from django.utils import timezone

from common.task_sending import time_limits
from customers.models import Customer
from invoices import (
    collection,
    dunning,
    emails,
    refunds,
    render_claims,
    rendering,
    stripe_client,
    stripe_customers,
    stripe_events,
)
from invoices.e_invoices import access_points
from invoices.models import CreditNote, DocumentEmail, Invoice, Payment

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, **time_limits("pdf"))
def render_invoice_pdf(self, invoice_id: int, force: bool = False) -> str | None:
    """Render and store an invoice's PDF (enqueued when it is finalized, or by the
    admin's repair with `force`). Run twice, the second run finds the PDF recorded
    and does nothing; a forced one renders the same bytes again. One render of an
    invoice at a time (invoices.render_claims): a run that finds another under way,
    or the renders given up, renders nothing. Returns the PDF's SHA-256, or None for
    an invoice that is gone or a draft, or when it rendered nothing."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None or invoice.status == Invoice.DRAFT:
        return None
    try:
        invoice = rendering.invoice_render_pdf(
            invoice=invoice, now=timezone.now(), force=force, claimant=self.request.id or ""
        )
    except render_claims.PdfUnavailable as unavailable:
        logger.info("invoice %s: no render: %s", invoice_id, unavailable.message)
        return None
    return invoice.pdf_sha256


@shared_task(bind=True, acks_late=True, **time_limits("pdf"))
def send_document_email(self, email_id: int) -> str | None:
    """Email an invoice or a credit note to its customer (enqueued when it is
    issued, by the admin's "Send again" and by the beat). A mail server that
    fails leaves the email pending with the policy's wait as its next_attempt_at,
    when send_due_document_emails sends it again; the row counts the attempts and
    records the last error, so the retries stop there. Safe to run twice: a run
    that finds nothing due sends nothing. Returns the email's status after the
    attempt, or None when nothing was due."""
    email = DocumentEmail.objects.filter(pk=email_id).first()
    if email is None:
        return None
    now = timezone.now()
    attempted = emails.document_email_send(email=email, now=now, claimant=self.request.id or "")
    return attempted.status if attempted is not None else None


@shared_task(acks_late=True)
def send_due_document_emails() -> int:
    """The beat's sweep, every minute: send the invoice and credit note emails whose
    attempt is due (a retry, an enqueue the broker lost, a worker that died while
    sending) to the workers. Safe to run twice and at once: each attempt is claimed
    under its row's lock, so an email sent twice is sent once."""
    due = emails.document_emails_due(now=timezone.now())
    for email_id in due:
        send_document_email.delay(email_id)
    return len(due)


@shared_task(bind=True, acks_late=True, **time_limits("pdf"))
def render_credit_note_pdf(self, credit_note_id: int, force: bool = False) -> str | None:
    """Render and store a credit note's PDF (enqueued when it is issued), as
    render_invoice_pdf does an invoice's. Returns the PDF's SHA-256, or None for a
    credit note that is gone, or when it rendered nothing."""
    note = CreditNote.objects.filter(pk=credit_note_id).first()
    if note is None:
        return None
    try:
        note = rendering.credit_note_render_pdf(
            credit_note=note, now=timezone.now(), force=force, claimant=self.request.id or ""
        )
    except render_claims.PdfUnavailable as unavailable:
        logger.info("credit note %s: no render: %s", credit_note_id, unavailable.message)
        return None
    return note.pdf_sha256


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def e_invoice_send(model: str, document_id: int) -> str | None:
    """Send an issued invoice's or credit note's UBL e-invoice to the Peppol access
    point (enqueued when it is issued; model "invoice" or "creditnote"). An access
    point out of reach (OSError) is tried again; run twice, the second run finds
    it sent and sends nothing. Returns the access point's message id."""
    return access_points.e_invoice_send(model=model, pk=document_id, now=timezone.now())


@shared_task(acks_late=True)
def send_unsent_e_invoices() -> int:
    """The beat's safety net: the UBL e-invoices no access point took (an enqueue
    the broker lost, retries spent), sent again."""
    unsent = access_points.e_invoices_unsent(now=timezone.now())
    for model, document_id in unsent:
        e_invoice_send.delay(model, document_id)
    return len(unsent)


# Payments through Stripe (invoices.collection): no-ops without STRIPE_API_KEY.


def _payment_attempt(payment_id: int) -> str | None:
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not collection.enabled():
        return None
    attempted = collection.payment_attempt(payment=payment, now=timezone.now())
    return attempted.status if attempted is not None else None


@shared_task(acks_late=True)
def collect_payment(payment_id: int) -> str | None:
    """Make a payment's attempt if one is due (enqueued after the invoice's
    finalization; a retry is sent by collect_due_payments when due). Safe to run
    twice: a run that finds nothing due does nothing.
    Returns the payment's status after the attempt."""
    return _payment_attempt(payment_id)


@shared_task(acks_late=True)
def collect_purchase_payment(payment_id: int) -> str | None:
    """collect_payment for a purchase's first attempt (a pack bought off-session, an
    auto top-up), on the urgent queue (config.celery): the customer waits for its
    credits, and an auto top-up's usage runs uncovered until it is paid."""
    return _payment_attempt(payment_id)


@shared_task(acks_late=True)
def collect_due_payments() -> int:
    """The beat's sweep, every minute: send the payments whose attempt is due (a
    retry, an enqueue the broker lost, a worker that died during an attempt) to the
    workers. Safe to run twice and at once: each attempt is claimed under its row's
    lock, so a payment sent twice is attempted once."""
    if not collection.enabled():
        return 0
    due = collection.payments_due(now=timezone.now())
    for payment_id in due:
        collect_payment.delay(payment_id)
    return len(due)


@shared_task(acks_late=True)
def reconcile_payments() -> int:
    """The beat's other safety net: ask Stripe about the payments whose outcome
    no webhook has brought within payments.RECONCILE_AFTER."""
    if not collection.enabled():
        return 0
    waiting = stripe_events.payments_unsettled(
        before=timezone.now() - stripe_events.RECONCILE_AFTER
    )
    for payment_id in waiting:
        reconcile_payment.delay(payment_id)
    return len(waiting)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def reconcile_payment(payment_id: int) -> str:
    return stripe_events.payment_reconcile(payment_id=payment_id, now=timezone.now())


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def sync_stripe_customer(customer_id: int) -> str | None:
    """Send a customer's current details to its Stripe customer (after a change).
    Safe to run twice: the update's idempotency key names the customer's version."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None or not collection.enabled():
        return None
    try:
        return stripe_customers.stripe_customer_sync(customer=customer)
    except stripe.StripeError as error:
        if stripe_client.is_retryable(error):
            # Network errors and 5xx were retried in the call already: later, then.
            raise OSError(stripe_client.error_text(error)) from error
        raise


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def remember_payment_method(payment_id: int) -> str | None:
    """After a Checkout payment, make the card it saved the customer's default
    payment method in Stripe, unless it has one. Safe to run twice."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not collection.enabled():
        return None
    try:
        return stripe_customers.payment_method_remember(payment=payment)
    except stripe.StripeError as error:
        if stripe_client.is_retryable(error):
            raise OSError(stripe_client.error_text(error)) from error
        raise


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def refund_credit_note(credit_note_id: int) -> str:
    """Ask Stripe for a credit note's refund (enqueued when it is issued). Safe to
    run twice: the refund's idempotency key names the credit note."""
    return refunds.refund_attempt(note_id=credit_note_id, now=timezone.now())


@shared_task(acks_late=True)
def refund_due_credit_notes() -> int:
    """The beat's safety net: refunds still pending (a lost enqueue, retries spent)."""
    due = refunds.refunds_due(before=timezone.now() - refunds.REFUND_SWEEP_AFTER)
    for note_id in due:
        refund_credit_note.delay(note_id)
    return len(due)


@shared_task(acks_late=True, **time_limits("beat"))
def run_dunning() -> dict:
    """Run the dunning steps that are due and work out the standings (idempotent)."""
    summary = dunning.dunning_run(now=timezone.now())
    return {
        "done": summary.done,
        "skipped": summary.skipped,
        "held": summary.held,
        "standings_changed": summary.standings_changed,
    }
