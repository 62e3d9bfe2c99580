"""The journal entries of invoices, their payments, credit notes (voids too),
refunds and the credit balance applied (billing.journal). Each is called by
the service that writes the document, in its transaction; journal_backfill
calls them for documents written before the journal existed."""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from django.db.models import Prefetch

from billing.journal.deferral import billed_in_advance, deferred_at_issue
from billing.journal.models import AccountKind, DocumentType
from billing.journal.writer import Document, Leg, journal_write
from common.vocabulary import LineKind
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.sellers import invoice_billing_entity
from plans.taxes import tax_lines_read

ZERO = Decimal(0)


# What journal_invoice_finalized reads of each invoice of a batch, read once for the
# batch (invoices_finalize_due): its lines and tax lines into lists of their own
# (Django's cache of a reverse relation builds a filtered queryset for every
# invoice, which cost more than the rows).
BATCH_READ_AHEAD = (
    Prefetch("lines", to_attr="lines_read"),
    Prefetch("tax_lines", to_attr="tax_lines_read"),
)


def _read(invoice: Invoice, relation: str) -> list:
    """The invoice's lines or tax lines: as its batch read them, else read now."""
    read = getattr(invoice, f"{relation}_read", None)
    return read if read is not None else list(getattr(invoice, relation).all())


def line_leg(line: InvoiceLine, amount: Decimal, issued_at: datetime | None = None) -> Leg:
    """`amount` of the line as a debit (positive) on its account: revenue per
    meter (else per the plan that priced it, InvoiceLine.plan), a discount, or
    deferred revenue (what is sold for later, and a fee billed in advance of its
    invoice's issue at `issued_at`: billing.journal.deferral)."""
    if line.kind == LineKind.DISCOUNT:
        return Leg(AccountKind.DISCOUNTS, amount)
    if deferred_at_issue(
        kind=line.kind,
        period_start=line.period_start,
        period_end=line.period_end,
        issued_at=issued_at,
    ):
        return Leg(AccountKind.DEFERRED_REVENUE, amount)
    plan = "" if line.meter else line.plan
    return Leg(AccountKind.REVENUE, amount, meter=line.meter, plan=plan)


def _taken_off(line: InvoiceLine) -> list[Leg] | None:
    """What the invoice books for a line that takes off a threshold invoice's
    usage (usage_invoiced, of no account of its own): that invoice's revenue and
    deferred revenue legs, as it booked its lines, reversed (the rest, its
    discount, on the plan's revenue). So each meter's revenue over a period
    billed progressively is what its usage billed, and a prepaid commit's
    drawdown is taken from deferred revenue once. The invoice is the one the line
    names (InvoiceLine.takes_off); None when it names none or that one is void."""
    taken_off = line.takes_off
    if taken_off is None or taken_off.status == Invoice.VOID:
        return None
    taken = [
        replace(leg, amount=-leg.amount)
        for taken_line in taken_off.lines.all()
        for leg in _line_legs(taken_line, -taken_line.amount, taken_off.finalized_at)
        if leg.kind in (AccountKind.REVENUE, AccountKind.DEFERRED_REVENUE)
    ]
    rest = -line.amount - sum((leg.amount for leg in taken), ZERO)
    if rest:
        taken.append(Leg(AccountKind.REVENUE, rest, plan=line.plan))
    return taken


def _line_legs(line: InvoiceLine, amount: Decimal, issued_at: datetime | None) -> list[Leg]:
    """line_leg, for a line that takes off a threshold invoice's usage too
    (_taken_off): `amount` of it (the invoice books -line.amount; a credit note
    what it credits, reversed) spread over its legs as the invoice booked them,
    the last taking what rounding leaves."""
    if line.takes_off_id is None:
        return [line_leg(line, amount, issued_at)]
    booked = _taken_off(line)
    if booked is None:
        return [line_leg(line, amount, issued_at)]
    if amount == -line.amount:
        return booked
    share = amount / -line.amount
    legs = [replace(leg, amount=leg.amount * share) for leg in booked[:-1]]
    legs.append(replace(booked[-1], amount=amount - sum((leg.amount for leg in legs), ZERO)))
    return legs


def _invoice_document(invoice: Invoice, type_: str, key: str, on: datetime) -> Document:
    return Document(
        type=type_,
        number=invoice.number or f"draft-{invoice.pk}",
        key=key,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        on=on,
        # Its issuer's books, the payment's and credit notes' too, whatever entity
        # bills the customer later.
        seller=invoice_billing_entity(invoice),
    )


def journal_invoice_finalized(*, invoice: Invoice, now: datetime) -> None:
    """Dr receivable the total (Cr the customer's credit balance when below
    zero); Cr revenue per line (deferred revenue for what is sold for later and
    fees billed in advance, net of their share of the discount), Dr discounts,
    Cr tax payable per rate; then the
    credit balance it spent, as a document of its own (Dr credit balance, Cr
    receivable)."""
    on = invoice.finalized_at or now
    legs = []
    for line in _read(invoice, "lines"):
        legs += _line_legs(line, -line.amount, on)
        share = line.discount_share
        if share and billed_in_advance(
            kind=line.kind, period_start=line.period_start, period_end=line.period_end, issued_at=on
        ):
            # Deferred net of its share of the discount (stamped when the line was
            # written), recognized with it as earned revenue earns it.
            legs += [Leg(AccountKind.DEFERRED_REVENUE, share), Leg(AccountKind.DISCOUNTS, -share)]
    legs += [
        Leg(AccountKind.TAX_PAYABLE, -tax.amount, tax_rate=tax.code)
        for tax in _read(invoice, "tax_lines")
    ]
    owed = AccountKind.RECEIVABLE if invoice.total >= 0 else AccountKind.CREDIT_BALANCE
    legs.append(Leg(owed, invoice.total))
    journal_write(
        document=_invoice_document(invoice, DocumentType.INVOICE, f"invoice:{invoice.pk}", on),
        legs=legs,
        now=now,
    )
    if invoice.credits_applied > 0:
        journal_write(
            document=_invoice_document(
                invoice, DocumentType.CREDIT_APPLIED, f"credit_applied:{invoice.pk}", on
            ),
            legs=[
                Leg(AccountKind.CREDIT_BALANCE, invoice.credits_applied),
                Leg(
                    AccountKind.RECEIVABLE,
                    -invoice.credits_applied,
                    settles=f"invoice:{invoice.pk}",
                ),
                Leg(AccountKind.EXCHANGE_DIFFERENCES, ZERO),
            ],
            now=now,
        )


def journal_invoice_paid(
    *,
    invoice: Invoice,
    amount: Decimal,
    reference: str,
    paid_at: datetime,
    now: datetime,
    part: int | None = None,
) -> None:
    """A payment received, on the day it was received (`paid_at`): Dr payments
    clearing (Stripe or the bank), Cr receivable. An invoice the credit balance
    paid whole has nothing left to pay and writes nothing. In the seller's
    functional currency the clearing is at the payment day's rate and the
    receivable at its share of what the invoice booked it at: the difference is
    an exchange difference (a credit a gain, a debit a loss).

    The payment that leaves nothing due is document `payment:<invoice>` (as
    every payment was before invoices took parts: the backfill reads it so); a
    part received before it, `payment:<invoice>:<part>` (its ReceivedPayment id)."""
    key = f"payment:{invoice.pk}" if part is None else f"payment:{invoice.pk}:{part}"
    document = _invoice_document(invoice, DocumentType.PAYMENT, key, paid_at)
    journal_write(
        document=Document(**{**document.__dict__, "memo": reference}),
        legs=[
            Leg(AccountKind.PAYMENTS_CLEARING, amount),
            Leg(AccountKind.RECEIVABLE, -amount, settles=f"invoice:{invoice.pk}"),
            Leg(AccountKind.EXCHANGE_DIFFERENCES, ZERO),
        ],
        now=now,
    )


def _credited_legs(line: InvoiceLine, amount: Decimal, issued_at: datetime | None) -> list[Leg]:
    """What crediting `amount` of the line reverses: what the invoice booked for
    it (_line_legs), in proportion. A commit's drawdown line (a void credits it,
    negative) is the exception: the void gives the commit nothing back (its
    access stays drawn), so what was drawn stays recognized, on the plan's
    revenue, and deferred revenue keeps equal to what the commit still holds."""
    if line.kind == LineKind.COMMIT_DRAWDOWN:
        return [Leg(AccountKind.REVENUE, amount, plan=line.plan)]
    return _line_legs(line, amount, issued_at)


def _note_seller(note: CreditNote):
    """The entity that issued the note (its invoice's issuer for a draft-time one)."""
    return note.billing_entity if note.billing_entity_id else invoice_billing_entity(note.invoice)


def journal_credit_note(*, note: CreditNote, now: datetime) -> None:
    """The reversal of the note's share of its invoice: Dr each credited line's
    account, Dr tax payable per rate; Cr receivable what it took off the amount
    due and Cr the customer's credit balance what it gives back (a refund
    waits there until Stripe pays it: journal_refund)."""
    invoice = note.invoice
    legs = [
        leg
        for line in note.lines.select_related("invoice_line")
        for leg in _credited_legs(line.invoice_line, line.amount, invoice.finalized_at)
    ]
    legs += [
        Leg(AccountKind.TAX_PAYABLE, tax.amount, tax_rate=tax.code)
        for tax in tax_lines_read(note.tax_lines)
    ]
    # What it takes off the amount due settles that part of the invoice's
    # receivable at what the invoice booked it at (an exchange difference for the
    # rest in the seller's currency).
    legs.append(Leg(AccountKind.RECEIVABLE, -note.to_amount_due, settles=f"invoice:{invoice.pk}"))
    legs.append(Leg(AccountKind.CREDIT_BALANCE, -note.paid_back))
    legs.append(Leg(AccountKind.EXCHANGE_DIFFERENCES, ZERO))
    journal_write(
        document=Document(
            type=DocumentType.CREDIT_NOTE,
            number=note.number,
            key=f"credit_note:{note.pk}",
            customer_id=note.customer_id,
            currency=note.currency,
            on=note.created_at,
            memo=invoice.number or "",
            seller=_note_seller(note),
        ),
        legs=legs,
        now=now,
    )


def journal_refund(*, note: CreditNote, now: datetime) -> None:
    """A refund Stripe made: the money owed leaves the credit balance for the
    card (Dr credit balance, Cr payments clearing)."""
    journal_write(
        document=Document(
            type=DocumentType.REFUND,
            number=note.number,
            key=f"refund:{note.pk}",
            customer_id=note.customer_id,
            currency=note.currency,
            on=now,
            memo=note.stripe_refund_id,
            seller=_note_seller(note),
        ),
        legs=[
            Leg(AccountKind.CREDIT_BALANCE, note.paid_back),
            Leg(AccountKind.PAYMENTS_CLEARING, -note.paid_back),
        ],
        now=now,
    )
