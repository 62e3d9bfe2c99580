"""Refunds through Stripe: what a credit note gives back of an invoice Stripe
collected (a purchase paid through Stripe included), back to the card instead
of into the credit balance. A note on a purchase takes back the share it
credits of what was sold, or is refused (invoices.credit_notes): a refund only
ever returns what was taken back.

The credit note is written first, its refund `pending`; a worker asks Stripe
after commit, with an idempotency key naming the credit note, so asking twice
refunds once. A refund Stripe refuses (the charge is disputed, too old, ...)
is not lost: the amount goes to the customer's credit balance and the credit
note says so. Network errors and 5xx are retried; the beat's sweep sends refunds
still pending after REFUND_SWEEP_AFTER to the workers again."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

import stripe
from django.db import transaction
from django.db.models import Q, Sum

from common.errors import InvalidRequest
from common.money import quantize_money, to_minor_units
from common.task_sending import enqueue_on_commit
from invoices import stripe_client
from invoices.credit_balance import credit_balance_add
from invoices.journal_entries import journal_refund
from invoices.locks import credit_note_lock
from invoices.models import CreditNote, Invoice, Payment

logger = logging.getLogger(__name__)

REFUND_SWEEP_AFTER = timedelta(minutes=10)


def stripe_payment(invoice: Invoice) -> Payment | None:
    """The Stripe payment that paid the invoice, if Stripe collected it: the
    invoice's own, or that of the purchase it invoices (paid before it was
    invoiced)."""
    payment = (
        Payment.objects.filter(Q(invoice=invoice) | Q(purchase__invoice=invoice))
        .filter(status=Payment.SUCCEEDED)
        .first()
    )
    if payment is None or not payment.stripe_payment_intent_id:
        return None
    return payment


def refund_check(*, invoice: Invoice, amount: Decimal) -> None:
    """400 unless the invoice was paid through Stripe (a refund goes back the
    way the money came) and `amount` is at most what the card paid, less what
    was refunded of it already."""
    payment = stripe_payment(invoice) if invoice.status == Invoice.PAID else None
    if payment is None:
        raise InvalidRequest(
            f"invoice {invoice} was not paid through Stripe: nothing to refund to a card; "
            "leave refund off to credit the customer's balance",
            fields={"refund": ["the invoice was not paid through Stripe"]},
        )
    refunded = invoice.credit_notes.filter(
        paid_back_to=CreditNote.TO_REFUND,
        refund_status__in=(CreditNote.REFUND_PENDING, CreditNote.REFUND_SUCCEEDED),
    ).aggregate(total=Sum("paid_back"))["total"] or Decimal(0)
    refundable = payment.amount - refunded
    if amount > refundable:
        raise InvalidRequest(
            f"at most {quantize_money(refundable, invoice.currency)} can go back to the card "
            f"(the card paid {quantize_money(payment.amount, invoice.currency)} of invoice "
            f"{invoice}); leave refund off to credit the customer's balance",
            fields={"refund": [f"at most {quantize_money(refundable, invoice.currency)}"]},
        )


def refund_after_commit(note_id: int) -> None:
    enqueue_on_commit("invoices.tasks.refund_credit_note", note_id)


def refund_attempt(*, note_id: int, now: datetime) -> str:
    """Ask Stripe for a pending refund; record what it answered. Raises OSError
    for an error worth trying again (the task retries)."""
    note = CreditNote.objects.select_related("invoice").get(pk=note_id)
    if note.refund_status != CreditNote.REFUND_PENDING:
        return note.refund_status
    payment = stripe_payment(note.invoice)
    try:
        if payment is None:
            raise InvalidRequest("the invoice's Stripe payment is gone")
        refund = stripe_client.refund_create(
            params={
                "payment_intent": payment.stripe_payment_intent_id,
                "amount": to_minor_units(note.paid_back, note.currency),
                "metadata": {"credit_note": note.number, "invoice": note.invoice.number},
            },
            idempotency_key=f"credit-note-{note.pk}-refund",
        )
    except stripe.StripeError as error:
        # 409: the same refund is being asked for by another run (its idempotency
        # key is in use); 429: too many requests. Both are asked again later.
        if stripe_client.is_retryable(error) or error.http_status in (409, 429):
            raise OSError(stripe_client.error_text(error)) from error
        return _refused(note_id, stripe_client.error_text(error), now)
    except InvalidRequest as error:
        return _refused(note_id, error.message, now)
    if refund.get("status") not in ("succeeded", "pending"):
        return _refused(note_id, f"Stripe answered the refund {refund.get('status')}", now)
    with transaction.atomic():
        note = credit_note_lock(note_id)
        if note.refund_status == CreditNote.REFUND_PENDING:
            note.refund_status = CreditNote.REFUND_SUCCEEDED
            note.stripe_refund_id = refund.get("id", "")
            note.refund_error = ""
            note.save(update_fields=["refund_status", "stripe_refund_id", "refund_error"])
            journal_refund(note=note, now=now)
    return note.refund_status


def _refused(note_id: int, error: str, now: datetime) -> str:
    """Stripe refused the refund: the amount goes to the credit balance instead."""
    with transaction.atomic():
        note = credit_note_lock(note_id)
        if note.refund_status != CreditNote.REFUND_PENDING:
            return note.refund_status
        logger.warning("refund of credit note %s refused: %s", note.number, error)
        note.refund_status = CreditNote.REFUND_FAILED
        note.refund_error = error[:2000]
        note.paid_back_to = CreditNote.TO_CREDIT_BALANCE
        note.save(update_fields=["refund_status", "refund_error", "paid_back_to"])
        credit_balance_add(note=note, amount=note.paid_back, now=now)
    return note.refund_status


def refunds_due(*, before: datetime) -> list[int]:
    """Refunds still pending from before `before`: a lost enqueue, retries spent."""
    return list(
        CreditNote.objects.filter(refund_status=CreditNote.REFUND_PENDING, created_at__lte=before)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
