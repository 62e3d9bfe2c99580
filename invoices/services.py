"""Writes for invoices: drafts (idempotent), finalization with gap-free numbers,
void with a credit note, payments recorded by hand."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.errors import Conflict
from billing.money import quantize_money
from invoices.models import CreditNote, Invoice, InvoiceLine, InvoiceSequence

ZERO = Decimal(0)


@dataclass(frozen=True)
class LineInput:
    kind: str
    description: str
    meter: str | None
    quantity: Decimal
    unit_price: Decimal | None
    amount: Decimal
    period_start: datetime | None = None
    period_end: datetime | None = None


def customer_snapshot(customer) -> dict:
    return {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "address": customer.address,
        "tax_id": customer.tax_id or None,
        "currency": customer.currency,
        "timezone": customer.timezone,
    }


def invoice_write_draft(
    *,
    customer,
    subscription,
    reason: str,
    period_start: datetime,
    period_end: datetime,
    lines: list,
    now: datetime,
) -> tuple[Invoice, bool]:
    """Write a draft invoice with its lines. A subscription's invoice is written
    once per (subscription, reason, period): a second call returns the first and
    writes nothing (the unique constraint decides, also between concurrent
    callers). Each line's amount is rounded once; the total is their sum."""
    currency = customer.currency
    details = {
        "customer": customer,
        "currency": currency,
        "customer_snapshot": customer_snapshot(customer),
        "created_at": now,
    }
    with transaction.atomic():
        if subscription is None:
            # Not tied to a subscription's period (a purchase): every call is a new invoice.
            invoice, created = (
                Invoice.objects.create(
                    subscription=None,
                    reason=reason,
                    period_start=period_start,
                    period_end=period_end,
                    **details,
                ),
                True,
            )
        else:
            invoice, created = Invoice.objects.get_or_create(
                subscription=subscription,
                reason=reason,
                period_start=period_start,
                period_end=period_end,
                defaults=details,
            )
        if not created:
            return invoice, False
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=line.kind,
                description=line.description[:500],
                meter=line.meter or "",
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=quantize_money(line.amount, currency),
                period_start=getattr(line, "period_start", None),
                period_end=getattr(line, "period_end", None),
            )
            for position, line in enumerate(lines)
        )
        invoice.subtotal = sum((quantize_money(line.amount, currency) for line in lines), ZERO)
        invoice.total = invoice.subtotal - invoice.credits_applied + invoice.tax
        invoice.save(update_fields=["subtotal", "total"])
    return invoice, True


def _next_number(prefix: str, year: int) -> str:
    """Take the next number of the year's sequence under its row lock. Called
    inside the caller's transaction: a rollback gives the number back."""
    name = f"{prefix}-{year}"
    InvoiceSequence.objects.get_or_create(name=name)
    sequence = InvoiceSequence.objects.select_for_update().get(name=name)
    number = sequence.next_number
    sequence.next_number = number + 1
    sequence.save(update_fields=["next_number"])
    return f"{name}-{number:06d}"


def invoice_finalize(*, invoice: Invoice, now: datetime) -> Invoice:
    """Finalize a draft: number it (gap-free per year, under a lock) and freeze it.
    Finalizing an invoice that is no longer a draft is refused."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.DRAFT:
            raise Conflict(f"invoice {invoice} is {invoice.status}, not a draft")
        invoice.number = _next_number("INV", now.year)
        invoice.status = Invoice.FINALIZED
        invoice.finalized_at = now
        invoice.due_at = now
        invoice.save(update_fields=["number", "status", "finalized_at", "due_at"])
    return invoice


def invoice_void(*, invoice: Invoice, reason: str, now: datetime) -> CreditNote:
    """Void a finalized invoice: its number and lines stay as they were, and a
    credit note for its total is issued."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE):
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be voided"
            )
        invoice.status = Invoice.VOID
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at"])
        return CreditNote.objects.create(
            invoice=invoice,
            number=_next_number("CN", now.year),
            amount=invoice.total,
            reason=reason or f"void of {invoice.number}",
            created_at=now,
        )


def invoice_mark_paid(*, invoice: Invoice, reference: str, now: datetime) -> Invoice:
    """Record a payment received outside Stripe."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.FINALIZED:
            raise Conflict(f"invoice {invoice} is {invoice.status}; only a finalized one is paid")
        invoice.status = Invoice.PAID
        invoice.paid_at = now
        invoice.payment_reference = reference
        invoice.save(update_fields=["status", "paid_at", "payment_reference"])
    return invoice
