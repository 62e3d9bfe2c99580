"""Credit notes and the customer's credit balance.

A credit note gives back part of a finalized invoice: chosen lines, each at most
what is left uncredited on it, with the invoice's tax credited in proportion;
voiding an invoice issues one for everything left. Credit notes are numbered in
their own gap-free sequence (CN-2026-000001). Its total first lowers what the
invoice still has due; the rest (the invoice was paid, or paid from the credit
balance) goes to the customer's credit balance, which pays its next invoices
when they are finalized (credits_applied). A note on an invoice that sold
something (a purchase: credits, money on a balance) takes back the share it
credits of what was sold, through the take-back its seller registered
(invoices.reactions.TAKE_BACKS), or is refused.

Locks (billing.locks): the customer's, whatever the invoice (its credit balance
may take what is paid back), then what the take-back locks (a purchase's
wallets), then the invoice's row, then the note sequence's."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from common.errors import InvalidRequest
from common.money import has_minor_unit_precision, quantize_money
from customers.locks import customer_lock
from invoices import collection, emails, refunds
from invoices.credit_balance import credit_balance_add
from invoices.e_invoices.access_points import e_invoice_send_on_commit
from invoices.e_invoices.issuing import credit_note_issue_xml
from invoices.issue_dates import issue_moment
from invoices.journal_entries import journal_credit_note
from invoices.locks import invoice_lock
from invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from invoices.reactions import TAKE_BACKS
from invoices.rendering import credit_note_schedule_pdf_render
from invoices.sellers import invoice_billing_entity, seller_snapshot
from invoices.sequences import next_number, numbering_year
from invoices.standing import standing_refresh_on_commit
from plans.taxes import TaxLine, tax_credit_lines, tax_lines_read

ZERO = Decimal(0)
CREDITABLE = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE, Invoice.PAID)
MAX_LINES = 500


@dataclass(frozen=True)
class CreditLineInput:
    invoice_line: int
    amount: Decimal
    # What the note's line says; the invoice line's description when empty.
    description: str = ""
    # The share of a whole period it credits (unused time), None for any other.
    share: Decimal | None = None
    # The service it credits (unused time: [the change, the period's end)).
    period_start: datetime | None = None
    period_end: datetime | None = None


def credited_by_line(invoice: Invoice) -> dict[int, Decimal]:
    """Invoice line id -> the amount its credit notes gave back so far."""
    rows = (
        CreditNoteLine.objects.filter(credit_note__invoice=invoice)
        .values("invoice_line_id")
        .annotate(total=Sum("amount"))
    )
    return {row["invoice_line_id"]: row["total"] for row in rows}


def _tax_credit(
    invoice: Invoice, credited_before: Decimal, credited_after: Decimal
) -> list[TaxLine]:
    """The tax credited per rate by a note that takes the invoice's credited
    taxable amount from `credited_before` to `credited_after` (plans.taxes)."""
    already: dict[str, Decimal] = {}
    for note in invoice.credit_notes.all():
        for line in tax_lines_read(note.tax_lines):
            already[line.code] = already.get(line.code, ZERO) + line.amount
    return tax_credit_lines(
        charged=list(invoice.tax_lines.all()),
        already=already,
        taxable=invoice.taxable_amount,
        credited_before=credited_before,
        credited_after=credited_after,
        currency=invoice.currency,
    )


def line_left_to_credit(
    invoice: Invoice, invoice_line: InvoiceLine, credited: dict[int, Decimal]
) -> Decimal:
    """What is left to credit on an invoice line (`credited`: credited_by_line): a
    discounted invoice charged each line its share of what is left after the
    discount, and no more than that share of a line is credited."""
    charged = invoice_line.amount
    if charged > 0:
        charged = charged_after_discount(invoice, charged)
    return charged - credited.get(invoice_line.pk, ZERO)


def charged_after_discount(invoice: Invoice, amount: Decimal) -> Decimal:
    """What the invoice charged for `amount` of its lines: a discounted invoice
    charged each line its share of what is left after the discount."""
    if not invoice.discount or invoice.subtotal <= 0:
        return amount
    return quantize_money(amount * invoice.taxable_amount / invoice.subtotal, invoice.currency)


def invoice_left_to_credit(invoice: Invoice, credited: dict[int, Decimal]) -> Decimal:
    """What is left to credit on the invoice in all, before tax: an invoice with
    negative lines (a plan change's proration credit) charges less than its
    positive lines, and is never credited more than it charges."""
    return invoice.taxable_amount - sum(credited.values(), ZERO)


def _check_lines(
    invoice: Invoice, lines: list[CreditLineInput], credited: dict[int, Decimal]
) -> list[tuple[InvoiceLine, Decimal]]:
    """The invoice lines credited and their amounts; 400 for a line of another
    invoice, one listed twice, an amount not above zero, finer than the currency's
    minor unit, or above what is left uncredited on the line (of its share after
    the invoice's discount)."""
    if not lines:
        raise InvalidRequest("a credit note needs at least one line", fields={"lines": ["empty"]})
    if len(lines) > MAX_LINES:
        raise InvalidRequest(f"at most {MAX_LINES} lines", fields={"lines": ["too many"]})
    by_id = {line.pk: line for line in invoice.lines.all()}
    errors: dict[str, list[str]] = {}
    seen: set[int] = set()
    chosen = []
    for index, line in enumerate(lines):
        path = f"lines.{index}"
        invoice_line = by_id.get(line.invoice_line)
        if invoice_line is None:
            errors[f"{path}.invoice_line"] = [f"invoice {invoice} has no line {line.invoice_line}"]
            continue
        if line.invoice_line in seen:
            errors[f"{path}.invoice_line"] = ["listed twice"]
            continue
        seen.add(line.invoice_line)
        left = line_left_to_credit(invoice, invoice_line, credited)
        amount = line.amount
        if not amount.is_finite() or amount <= 0:
            errors[f"{path}.amount"] = ["must be greater than zero"]
        elif not has_minor_unit_precision(amount, invoice.currency):
            errors[f"{path}.amount"] = [f"must be whole in {invoice.currency}'s minor unit"]
        elif amount > left:
            errors[f"{path}.amount"] = [
                f"at most {quantize_money(max(left, ZERO), invoice.currency)} is left to credit "
                "on this line"
            ]
        else:
            chosen.append((invoice_line, amount))
    if errors:
        first = next(iter(errors))
        raise InvalidRequest(f"invalid credit note: {first}: {errors[first][0]}", fields=errors)
    return chosen


@dataclass(frozen=True)
class CreditNotePreview:
    """A credit note as it would be issued: its lines, tax per rate, total,
    where the total goes (the invoice's amount due first, the rest to the
    customer's credit balance), and what it takes back of what the invoice sold
    (the registered take-back's parts; str() of each says what it is)."""

    invoice: Invoice
    lines: list[tuple[InvoiceLine, Decimal]]
    subtotal: Decimal
    tax_lines: list[TaxLine]
    tax: Decimal
    total: Decimal
    to_amount_due: Decimal
    to_credit_balance: Decimal
    taken_back: list


def credit_note_locks(invoice: Invoice) -> Any:
    """The locks a credit note on the invoice (a void's too) takes before the
    invoice's own, in the one order (billing.locks): the customer's, for every
    invoice, then what the note takes back from (a purchase's wallets: the order
    the sale took its wallet and invoice locks in). What the take-back holds (None
    when the invoice sold nothing to take back)."""
    customer_lock(invoice.customer_id)
    take_back = TAKE_BACKS.get(invoice.reason)
    return take_back.lock(invoice=invoice) if take_back else None


def _taken_back(invoice: Invoice, credited_before: Decimal, credited_after: Decimal) -> list:
    take_back = TAKE_BACKS.get(invoice.reason)
    if take_back is None:
        return []
    return take_back.plan(
        invoice=invoice, credited_before=credited_before, credited_after=credited_after
    )


def _preview(
    invoice: Invoice, chosen: list[tuple[InvoiceLine, Decimal]], credited: dict[int, Decimal]
) -> CreditNotePreview:
    """`credited`: what the invoice's credit notes gave back so far, per line.
    Conflict when what the invoice sold can no longer be taken back."""
    subtotal = sum((amount for _, amount in chosen), ZERO)
    credited_before = sum(credited.values(), ZERO)
    taken_back = _taken_back(invoice, credited_before, credited_before + subtotal)
    taxes = _tax_credit(invoice, credited_before, credited_before + subtotal)
    tax = sum((line.amount for line in taxes), ZERO)
    total = subtotal + tax
    # What the invoice still has due takes the credit first; the rest was paid
    # (by card, transfer or credit balance) and goes to the credit balance.
    to_amount_due = min(max(total, ZERO), invoice.amount_due)
    return CreditNotePreview(
        invoice,
        chosen,
        subtotal,
        taxes,
        tax,
        total,
        to_amount_due,
        total - to_amount_due,
        taken_back,
    )


def _check_creditable(invoice: Invoice) -> None:
    if invoice.status not in CREDITABLE:
        raise InvalidRequest(
            f"invoice {invoice} is {invoice.status}; only a finalized, paid or uncollectible "
            "invoice can be credited",
            fields={"invoice": [f"is {invoice.status}"]},
        )


def _check_reason(reason: str) -> None:
    if reason not in dict(CreditNote.REASONS):
        raise InvalidRequest(
            f"unknown reason {reason!r}",
            fields={"reason": [f"must be one of {', '.join(dict(CreditNote.REASONS))}"]},
        )


def credit_note_preview(*, invoice: Invoice, lines: list[CreditLineInput]) -> CreditNotePreview:
    """What credit_note_issue would issue now, refused the same way (400 for
    the lines, 409 for what can no longer be taken back). Reads only."""
    _check_creditable(invoice)
    credited = credited_by_line(invoice)
    chosen = _check_lines(invoice, lines, credited)
    left = invoice_left_to_credit(invoice, credited)
    asked = sum((amount for _, amount in chosen), ZERO)
    if asked > left:
        most = quantize_money(max(left, ZERO), invoice.currency)
        raise InvalidRequest(
            f"invalid credit note: the invoice has {most} left to credit in all (before tax)",
            fields={"lines": [f"at most {most} in all"]},
        )
    return _preview(invoice, chosen, credited)


def void_preview(invoice: Invoice) -> CreditNotePreview:
    """The credit note voiding the invoice would issue: all that is left
    uncredited on every line (negative lines too, so that it credits exactly
    what the invoice still charges), taking back all that is left of what it
    sold (409 when part of that was used). Reads only."""
    credited = credited_by_line(invoice)
    left = [(line, line.amount - credited.get(line.pk, ZERO)) for line in invoice.lines.all()]
    return _preview(invoice, [(line, amount) for line, amount in left if amount != 0], credited)


def credit_note_issue(
    *,
    invoice: Invoice,
    lines: list[CreditLineInput],
    reason: str,
    memo: str = "",
    refund: bool = False,
    now: datetime,
) -> CreditNote:
    """Issue a credit note for part of a finalized (or paid, or uncollectible)
    invoice: 400 for a draft or void invoice and for lines it cannot credit; on
    an invoice that sold something (a purchase), the share credited of what it
    sold is taken back in the same transaction, or the note is refused (409)
    when that share is no longer there. Nothing changes when it is refused. With
    `refund`, what was paid goes back to the card through Stripe
    (invoices.refunds) rather than to the credit balance: for an invoice Stripe
    collected only, and only ever for what this note takes back. Dated when it is
    issued (invoices.issue_dates)."""
    _check_reason(reason)
    now = issue_moment(now)
    with transaction.atomic():
        held = credit_note_locks(invoice)
        invoice = invoice_lock(invoice.pk)
        preview = credit_note_preview(invoice=invoice, lines=lines)
        if refund:
            refunds.refund_check(invoice=invoice, amount=preview.to_credit_balance)
        note = _issue(
            preview,
            reason=reason,
            memo=memo,
            voids=False,
            held=held,
            now=now,
            refund=refund,
            described={line.invoice_line: line for line in lines},
        )
        # Sent to the customer's invoice addresses once this commits.
        emails.document_email_schedule(credit_note=note, now=now)
        return note


def credit_note_for_void(*, invoice: Invoice, memo: str, held: Any, now: datetime) -> CreditNote:
    """The credit note of a void (void_preview), taking back all that is left of
    what the invoice sold. The caller holds credit_note_locks' locks (`held`), then
    the invoice's, and changes its status."""
    return _issue(
        void_preview(invoice), reason=CreditNote.OTHER, memo=memo, voids=True, held=held, now=now
    )


def _note_line(
    note: CreditNote,
    position: int,
    line: InvoiceLine,
    amount: Decimal,
    asked: CreditLineInput | None,
) -> CreditNoteLine:
    """A note's line crediting `amount` of an invoice line, in the words, share
    and service period it was asked with (the invoice line's words when none)."""
    return CreditNoteLine(
        credit_note=note,
        position=position,
        invoice_line=line,
        description=((asked and asked.description) or line.description)[:500],
        amount=amount,
        share=asked and asked.share,
        period_start=asked and asked.period_start,
        period_end=asked and asked.period_end,
    )


def _issue(
    preview: CreditNotePreview,
    *,
    reason: str,
    memo: str,
    voids: bool,
    held: Any,
    now: datetime,
    refund: bool = False,
    described: dict[int, CreditLineInput] | None = None,
) -> CreditNote:
    """`described`: the lines as asked, by invoice line, for their words and share."""
    invoice = preview.invoice
    described = described or {}
    currency = invoice.currency
    paid_back = preview.to_credit_balance
    refunded = refund and paid_back > 0
    if refunded:
        destination = CreditNote.TO_REFUND
    elif paid_back > 0:
        destination = CreditNote.TO_CREDIT_BALANCE
    else:
        destination = CreditNote.TO_AMOUNT_DUE
    # Issued by the entity that issued the invoice, as that entity is now.
    seller = invoice_billing_entity(invoice)
    note = CreditNote.objects.create(
        invoice=invoice,
        customer_id=invoice.customer_id,
        number=next_number(seller.credit_note_prefix, numbering_year(now, seller)),
        billing_entity=seller if seller.pk is not None else None,
        seller_snapshot=seller_snapshot(seller),
        reason=reason,
        memo=memo[:500],
        currency=currency,
        subtotal=preview.subtotal,
        tax=preview.tax,
        total=preview.total,
        tax_lines=[line.record() for line in preview.tax_lines],
        to_amount_due=preview.to_amount_due,
        paid_back=paid_back,
        paid_back_to=destination,
        refund_status=CreditNote.REFUND_PENDING if refunded else "",
        voids_invoice=voids,
        created_at=now,
    )
    CreditNoteLine.objects.bulk_create(
        _note_line(note, position, line, amount, described.get(line.pk))
        for position, (line, amount) in enumerate(preview.lines)
    )
    # The note of an e-invoiced invoice is one too, validated before it is
    # issued: refused (EInvoiceInvalid), nothing of it is written; a UBL one goes
    # to the Peppol access point once this commits.
    xml = credit_note_issue_xml(note)
    if xml:
        note.e_invoice_format = invoice.e_invoice_format
        note.e_invoice_xml = xml
        note.save(update_fields=["e_invoice_format", "e_invoice_xml"])
        e_invoice_send_on_commit("creditnote", note.pk, note.e_invoice_format)
    journal_credit_note(note=note, now=now)
    if preview.taken_back:
        TAKE_BACKS[invoice.reason].write(parts=preview.taken_back, held=held, note=note, now=now)
    invoice.credited += preview.total
    invoice.save(update_fields=["credited"])
    if refunded:
        refunds.refund_after_commit(note.pk)
    elif paid_back > 0:
        credit_balance_add(note=note, amount=paid_back, now=now)
    if preview.to_amount_due > 0 and not voids:
        # A payment waiting at Stripe is asked for the new amount due, or canceled.
        collection.collection_amount_changed(invoice=invoice, now=now)
    if settings.BILLING_INVOICE_PDFS:
        # Its PDF, stored like an invoice's, once the note is committed.
        credit_note_schedule_pdf_render(credit_note=note)
    # What is no longer owed no longer weighs on the customer's standing.
    standing_refresh_on_commit(customer_id=invoice.customer_id, now=now)
    return note
