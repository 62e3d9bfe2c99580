"""Writes for invoices: drafts (idempotent), finalization with gap-free numbers,
void with a credit note, payments recorded (by hand or by invoices.payments) and
announced, PDFs rendered and stored."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction

from billing.core.errors import Conflict
from billing.core.money import format_money, quantize_money
from billing.notifications import webhooks
from invoices import payments
from invoices.models import CreditNote, Invoice, InvoiceLine, InvoiceSequence
from invoices.pdf import render_invoice_pdf

logger = logging.getLogger(__name__)

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
) -> Invoice:
    """Write a draft invoice with its lines. Callers hold the subscription's row
    lock and move its period on in the same transaction, so an invoice is written
    once per (subscription, reason, period); a unique constraint refuses a second
    (the caller's transaction then fails whole). Each line's amount is rounded
    once; the total is their sum."""
    currency = customer.currency
    amounts = [quantize_money(line.amount, currency) for line in lines]
    subtotal = sum(amounts, ZERO)
    details = {
        "customer": customer,
        "currency": currency,
        "customer_snapshot": customer_snapshot(customer),
        "created_at": now,
        "subtotal": subtotal,
        "total": subtotal,
    }
    with transaction.atomic():
        invoice = Invoice.objects.create(
            subscription=subscription,
            reason=reason,
            period_start=period_start,
            period_end=period_end,
            **details,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=line.kind,
                description=line.description[:500],
                meter=line.meter or "",
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=amount,
                period_start=getattr(line, "period_start", None),
                period_end=getattr(line, "period_end", None),
            )
            for position, (line, amount) in enumerate(zip(lines, amounts, strict=True))
        )
    return invoice


def _next_number(prefix: str, year: int) -> str:
    """Take the next number of the year's sequence: one UPDATE, which locks the
    sequence row until the caller's transaction ends, so numbers are gap-free (a
    rollback gives them back) and never taken twice."""
    name = f"{prefix}-{year}"
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE invoices_invoicesequence SET next_number = next_number + 1 "
                "WHERE name = %s RETURNING next_number - 1",
                [name],
            )
            row = cursor.fetchone()
        if row is not None:
            return f"{name}-{row[0]:06d}"
        InvoiceSequence.objects.get_or_create(name=name)
    raise RuntimeError(f"sequence {name} could not be created")


def _finalize_locked(invoice: Invoice, now: datetime, *, collect: bool = True) -> Invoice:
    invoice.number = _next_number("INV", now.year)
    invoice.status = Invoice.FINALIZED
    invoice.finalized_at = now
    invoice.due_at = now
    invoice.save(update_fields=["number", "status", "finalized_at", "due_at"])
    if settings.BILLING_INVOICE_PDFS:
        _render_pdf_after_commit(invoice.pk, force=False)
    if collect:
        # With Stripe: a Payment row now, the charge by a worker after commit.
        payments.invoice_collection_schedule(invoice=invoice, now=now)
    return invoice


def invoice_finalize(*, invoice: Invoice, now: datetime, collect: bool = True) -> Invoice:
    """Finalize a draft: number it (gap-free per year, under a lock) and freeze it.
    Finalizing an invoice that is no longer a draft is refused. With Stripe the
    invoice is then collected (invoices.payments), unless `collect` is off."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.DRAFT:
            raise Conflict(f"invoice {invoice} is {invoice.status}, not a draft")
        return _finalize_locked(invoice, now, collect=collect)


FINALIZE_BATCH = 200


def invoices_finalize_due(*, cutoff: datetime, now: datetime) -> int:
    """Finalize every draft written at or before `cutoff`, in batches of one
    transaction each. Drafts another run holds are skipped (it numbers them), so
    concurrent runs neither wait on each other's drafts nor number one twice."""
    finalized = 0
    due = list(
        Invoice.objects.filter(status=Invoice.DRAFT, created_at__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(due), FINALIZE_BATCH):
        with transaction.atomic():
            batch = (
                Invoice.objects.select_for_update(skip_locked=True)
                .filter(pk__in=due[start : start + FINALIZE_BATCH], status=Invoice.DRAFT)
                .order_by("id")
            )
            for invoice in batch:
                _finalize_locked(invoice, now)
                finalized += 1
    return finalized


@dataclass(frozen=True)
class VoidTakeBack:
    """How voiding an invoice of one reason takes back what the invoice granted,
    registered by the app that granted it (wallets, for purchases: it imports this
    module, so it registers in its AppConfig.ready).

    `lock(invoice=)` runs first in the void's transaction, before the invoice's row
    lock, so the locks come in the order the sale took them (wallet, then
    invoice); it returns what it holds. `take_back(invoice=, held=, now=)` runs
    once the invoice is found voidable, before the void is written, and raises
    Conflict to refuse it."""

    lock: Callable[..., Any]
    take_back: Callable[..., None]


# Invoice reason -> how a void of it takes back what it sold.
VOID_TAKE_BACKS: dict[str, VoidTakeBack] = {}


def invoice_void(*, invoice: Invoice, reason: str, now: datetime) -> CreditNote:
    """Void a finalized invoice: its number and lines stay as they were, and a
    credit note for its total is issued. A purchase invoice also takes back what
    it sold (VOID_TAKE_BACKS), in the same transaction; when that is refused
    (part of it was used), nothing changes."""
    take_back = VOID_TAKE_BACKS.get(invoice.reason)
    with transaction.atomic():
        held = take_back.lock(invoice=invoice) if take_back else None
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE):
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be voided"
            )
        if take_back:
            take_back.take_back(invoice=invoice, held=held, now=now)
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


# An uncollectible invoice can still be paid: by a retry of its Stripe payment,
# or by money that arrives after collecting was given up.
PAYABLE = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE)


def invoice_mark_paid(*, invoice: Invoice, reference: str, now: datetime) -> Invoice:
    """Record the invoice paid, with what identifies the payment (`reference`).
    Every way an invoice is paid comes here: by hand in the admin, a Stripe
    payment that succeeded (invoices.payments), a purchase paid before it was
    invoiced (invoice_create_purchase).

    Under the invoice's row lock, a finalized or uncollectible invoice only;
    any other is refused with Conflict and nothing changes, so paying twice
    records and announces the first payment only. In the same transaction the
    event `invoice.paid` is queued for the webhook endpoints that take it, sent
    after commit; its id names the invoice, so it is queued once per endpoint."""
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer")
            .get(pk=invoice.pk)
        )
        if invoice.status not in PAYABLE:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be paid"
            )
        invoice.status = Invoice.PAID
        invoice.paid_at = now
        invoice.payment_reference = reference
        invoice.save(update_fields=["status", "paid_at", "payment_reference"])
        webhooks.webhook_event_publish(
            event_type="invoice.paid",
            data={
                "invoice": invoice.pk,
                "number": invoice.number,
                "total": format_money(invoice.total, invoice.currency),
                "currency": invoice.currency,
                "payment_reference": reference,
            },
            customer=invoice.customer,
            now=now,
            event_id=f"evt_invoice_{invoice.pk}_paid",
        )
    return invoice


def invoice_mark_uncollectible(*, invoice: Invoice, now: datetime) -> Invoice:
    """Give up collecting a finalized invoice (it stays numbered and can still be
    voided with a credit note): a collection waiting for its next attempt is
    canceled. An attempt already under way reports as it comes; "Retry now" on
    the payment still collects."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.FINALIZED:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized one is uncollectible"
            )
        invoice.status = Invoice.UNCOLLECTIBLE
        invoice.save(update_fields=["status"])
        payments.collection_stop(
            invoice=invoice, reason="not collected: the invoice was marked uncollectible", now=now
        )
    return invoice


def invoice_create_purchase(
    *, customer, lines: list, now: datetime, paid_reference: str = ""
) -> Invoice:
    """Invoice a purchase (a credit pack, paid credits, a money top-up) at once: a
    finalized invoice of its own, numbered in the same sequence as period invoices.
    Runs in the caller's transaction, so a purchase that fails leaves no invoice
    and takes no number. With `paid_reference` (a purchase paid through Stripe
    before it is granted) the invoice is paid at once, with that reference."""
    with transaction.atomic():
        invoice = invoice_write_draft(
            customer=customer,
            subscription=None,
            reason=Invoice.PURCHASE,
            period_start=now,
            period_end=now,
            lines=lines,
            now=now,
        )
        if not paid_reference:
            return invoice_finalize(invoice=invoice, now=now)
        invoice = invoice_finalize(invoice=invoice, now=now, collect=False)
        return invoice_mark_paid(invoice=invoice, reference=paid_reference, now=now)


# PDFs


def invoice_schedule_pdf_render(*, invoice: Invoice, force: bool = False) -> None:
    """Have a worker render and store the invoice's PDF once the caller's
    transaction commits (`force`: again, as a repair). A draft is refused: it has
    no stored PDF, it is rendered on each download."""
    if invoice.status == Invoice.DRAFT:
        raise Conflict(f"invoice {invoice} is a draft: its PDF is rendered on each download")
    _render_pdf_after_commit(invoice.pk, force=force)


def _render_pdf_after_commit(invoice_id: int, *, force: bool) -> None:
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
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
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
