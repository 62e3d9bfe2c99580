"""The journal of invoice documents written before the journal existed (or
while it was off): each document whose key has no entries is journaled as its
service would have journaled it, dated as it happened. Safe to run any number
of times: a document is written once (its key; the unique constraint behind it)."""

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from billing.journal.writer import journal_written
from invoices.journal_entries import (
    journal_credit_note,
    journal_invoice_finalized,
    journal_invoice_paid,
    journal_refund,
)
from invoices.models import CreditNote, Invoice

CHUNK = 500


def _chunks(query) -> Iterator[list]:
    """The query's rows in id order, CHUNK at a time (keyset: rows written
    meanwhile neither skip nor repeat one)."""
    last = 0
    while rows := list(query.filter(pk__gt=last).order_by("pk")[:CHUNK]):
        yield rows
        last = rows[-1].pk


def _paid_amount(invoice: Invoice) -> Decimal:
    """What a paid invoice's payment paid: what its credit notes had not taken
    off the amount due, nor the credit balance paid."""
    lowered = invoice.credit_notes.aggregate(total=Sum("to_amount_due"))["total"] or Decimal(0)
    return invoice.total - invoice.credits_applied - lowered


def invoices_journal_backfill(*, now: datetime) -> None:
    """Journal the finalized invoices, payments, credit notes and refunds that
    have no entries."""
    invoices = Invoice.objects.exclude(status=Invoice.DRAFT).exclude(number=None)
    for chunk in _chunks(invoices):
        done = journal_written(
            [f"invoice:{i.pk}" for i in chunk] + [f"payment:{i.pk}" for i in chunk]
        )
        with transaction.atomic():
            for invoice in chunk:
                if f"invoice:{invoice.pk}" not in done:
                    journal_invoice_finalized(invoice=invoice, now=now)
                if invoice.status == Invoice.PAID and f"payment:{invoice.pk}" not in done:
                    amount = _paid_amount(invoice)
                    if amount > 0:
                        journal_invoice_paid(
                            invoice=invoice,
                            amount=amount,
                            reference=invoice.payment_reference,
                            paid_at=invoice.paid_at or now,
                            now=now,
                        )
    notes = CreditNote.objects.select_related("invoice")
    for chunk in _chunks(notes):
        done = journal_written(
            [f"credit_note:{n.pk}" for n in chunk] + [f"refund:{n.pk}" for n in chunk]
        )
        with transaction.atomic():
            for note in chunk:
                if f"credit_note:{note.pk}" not in done:
                    journal_credit_note(note=note, now=now)
                refunded = note.refund_status == CreditNote.REFUND_SUCCEEDED
                if refunded and f"refund:{note.pk}" not in done:
                    journal_refund(note=note, now=note.created_at)
