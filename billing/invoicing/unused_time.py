"""The unused part of fees already invoiced, given back as a credit note.

An immediate cancel or plan change credits the unused part of the period's
fixed fees (base fee, seats). Those fees were charged in advance by one
invoice of the subscription (its start invoice, the last close's, or an
earlier plan change's charge): the credit is a credit note against that
invoice's lines, in the customer's language, and never a negative line on a
new invoice (no invoice has a negative total). The note lowers what that
invoice still has due, and what was paid of it goes to the customer's credit
balance (invoices.credit_notes).

What no invoice line can take stays a negative line on the change's own
invoice, as before: a seat added this period was charged there (it is billed
on the invoice that closes the period, or the change's), and a line that was
already credited or voided has nothing left to give back.

plan_unused_credit reads only (the change's invoice is written from what is
left); issue_unused_credit writes, last in the change's transaction, after
every lock but the numbering sequences' (billing.locks): it finalizes the
charging invoice first when it is still a draft, as a credit is never numbered
before what it credits."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.models import Subscription
from common.errors import Conflict
from common.vocabulary import LineKind
from customers.billing_entities import customer_billing_entity
from invoices.credit_notes import (
    CreditLineInput,
    charged_after_discount,
    credit_note_issue,
    credited_by_line,
    invoice_left_to_credit,
    line_left_to_credit,
)
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.sellers import seller_check
from invoices.services import invoice_finalize
from plans.rating import LineInput

ZERO = Decimal(0)
# The lines that charge a period's fixed fees in advance.
FEE_KINDS = (LineKind.BASE_FEE, LineKind.SEATS, LineKind.PRORATION_CHARGE)
# The invoices that can still be credited (a draft is finalized first).
CHARGING = (Invoice.DRAFT, Invoice.FINALIZED, Invoice.PAID, Invoice.UNCOLLECTIBLE)
# The memo of the note, by what caused it (translated in the customer's language).
CANCEL = "cancel"
PLAN_CHANGE = "plan_change"


@dataclass(frozen=True)
class UnusedCredit:
    """How a change's credit for unused time is given: `parts` (invoice line,
    amount before tax, the note line's words) against `invoice`, the one that
    charged the fees; `left`, the credit lines (negative) no line can take,
    for the change's own invoice."""

    invoice: Invoice | None
    parts: tuple[tuple[InvoiceLine, Decimal, LineInput], ...]
    left: tuple[LineInput, ...]

    @property
    def amount(self) -> Decimal:
        """What the note credits, before tax."""
        return sum((part[1] for part in self.parts), ZERO)


def _charging_lines(subscription: Subscription, version, at: datetime) -> list[InvoiceLine]:
    """The fee lines of the most recent invoice of the subscription that charged
    the fees of `version`'s plan for a service period holding `at`, in their order."""
    lines = list(
        InvoiceLine.objects.filter(
            invoice__subscription_id=subscription.pk,
            invoice__status__in=CHARGING,
            kind__in=FEE_KINDS,
            plan=version.plan.code,
            amount__gt=0,
            period_start__lte=at,
            period_end__gt=at,
        )
        .select_related("invoice", "invoice__customer")
        .order_by("-invoice_id", "position")
    )
    latest = lines[0].invoice_id if lines else None
    return [line for line in lines if line.invoice_id == latest]


def _issuable(invoice: Invoice) -> bool:
    """Whether the invoice can carry a credit note now: issued, or a draft its
    seller can issue (sellers.seller_check)."""
    if invoice.status != Invoice.DRAFT:
        return True
    try:
        seller_check(invoice=invoice, entity=customer_billing_entity(invoice.customer))
    except Conflict:
        return False
    return True


def plan_unused_credit(
    *, subscription: Subscription, credit: list[LineInput], at: datetime
) -> UnusedCredit:
    """Match each credit line (negative, from the unused part of the fees at
    `at`) with the line that charged that fee (same plan, same unit price, in
    order: base fee, then seats), for at most what is left to credit on it and
    on its invoice in all. Reads only."""
    if not credit:
        return UnusedCredit(None, (), ())
    charged = _charging_lines(subscription, credit[0].version, at)
    invoice = charged[0].invoice if charged else None
    if invoice is None or not _issuable(invoice):
        return UnusedCredit(None, (), tuple(credit))
    credited = credited_by_line(invoice)
    room = invoice_left_to_credit(invoice, credited)
    parts, left, free = [], [], list(charged)
    for line in credit:
        match = next((c for c in free if c.unit_price == line.unit_price), None)
        # What the invoice charged for that time: a discounted invoice charged
        # each line its share after the discount (credit_notes.line_left_to_credit).
        wanted = charged_after_discount(invoice, -line.amount)
        amount = ZERO
        if match is not None:
            free.remove(match)
            amount = max(ZERO, min(wanted, line_left_to_credit(invoice, match, credited), room))
        if amount > 0:
            parts.append((match, amount, line))
            room -= amount
        if amount < wanted:
            left.append(replace(line, amount=amount - wanted))
    return UnusedCredit(invoice if parts else None, tuple(parts), tuple(left))


def issue_unused_credit(*, credit: UnusedCredit, cause: str, now: datetime) -> CreditNote | None:
    """Issue the credit note of `credit` (None when it has no parts): its invoice
    finalized first when it is still a draft. `cause`: CANCEL or PLAN_CHANGE."""
    if credit.invoice is None:
        return None
    invoice = credit.invoice
    if invoice.status == Invoice.DRAFT:
        try:
            invoice = invoice_finalize(invoice=invoice, now=now)
        except Conflict:
            # Finalized by the beat since it was read: credited as it is now.
            invoice = Invoice.objects.get(pk=invoice.pk)
    with invoice.text.speaking():
        memo = (
            _("Unused time, subscription cancelled")
            if cause == CANCEL
            else _("Unused time, plan changed")
        )
    return credit_note_issue(
        invoice=invoice,
        lines=[
            CreditLineInput(
                charged.pk,
                amount,
                given.description,
                given.share,
                given.period_start,
                given.period_end,
            )
            for charged, amount, given in credit.parts
        ],
        reason=CreditNote.ORDER_CHANGE,
        memo=memo,
        now=now,
    )
