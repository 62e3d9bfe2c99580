"""A customer's credit balance: money it is owed, in its currency, from credit
notes on paid invoices (invoices.credit_notes), refunds Stripe refused
(invoices.refunds) or invoices whose total is below zero; it pays the
customer's next invoices when they are finalized (their credits_applied). The
balance is the sum of its entries; a change holds the customer's row lock."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from common import rawsql
from customers.locks import customer_lock
from invoices.models import CreditBalanceEntry, CreditNote, Invoice

ZERO = Decimal(0)


def credit_balance(customer) -> Decimal:
    """What the customer is owed, in its currency: the sum of its balance entries."""
    total = customer.credit_balance_entries.aggregate(total=Sum("amount"))["total"]
    return ZERO if total is None else total


def credit_balance_add(*, note: CreditNote, amount: Decimal, now: datetime) -> None:
    """Put what a credit note gives back of a paid invoice in the customer's
    credit balance."""
    customer_lock(note.customer_id)
    CreditBalanceEntry.objects.create(
        customer_id=note.customer_id,
        kind=CreditBalanceEntry.CREDIT_NOTE,
        amount=amount,
        currency=note.currency,
        credit_note=note,
        created_at=now,
    )


def credit_balance_from_negative_invoice(*, invoice: Invoice, now: datetime) -> Decimal:
    """An invoice finalized with a total below zero (a downgrade's or a cancel's
    credit larger than what it charges, or usage billed earlier on threshold
    invoices that now rates lower) owes the customer that much: it goes to the
    credit balance, which pays the next invoices. The caller holds the invoice's
    lock."""
    if invoice.total >= 0:
        return ZERO
    customer_lock(invoice.customer_id)
    CreditBalanceEntry.objects.create(
        customer_id=invoice.customer_id,
        kind=CreditBalanceEntry.NEGATIVE_INVOICE,
        amount=-invoice.total,
        currency=invoice.currency,
        invoice=invoice,
        created_at=now,
    )
    return -invoice.total


def customers_with_credit_balance(customer_ids: list[int]) -> set[int]:
    """Those of these customers that have a credit balance entry (fixed SQL, one
    statement): a batch of invoices finalized asks once for all of them."""
    if not customer_ids:
        return set()
    marks = ", ".join(["%s"] * len(customer_ids))
    return set(
        rawsql.ids(
            "SELECT DISTINCT customer_id FROM invoices_creditbalanceentry "  # noqa: S608 (placeholders only)
            f"WHERE customer_id IN ({marks})",
            list(customer_ids),
        )
    )


def credit_balance_apply(
    *, invoice: Invoice, now: datetime, has_entries: bool | None = None
) -> Decimal:
    """Pay what the customer's credit balance can of an invoice being finalized
    (its credits_applied). The caller holds the invoice's lock. `has_entries`:
    whether the customer has any balance entry, when the caller knows it
    (customers_with_credit_balance); None asks."""
    if invoice.total <= 0:
        return ZERO
    # Most customers never had a balance: no lock taken for them (and fixed SQL to
    # find that out: every invoice finalized asks, unless its batch asked).
    if has_entries is None:
        has_entries = bool(
            rawsql.ids(
                "SELECT 1 FROM invoices_creditbalanceentry WHERE customer_id = %s LIMIT 1",
                [invoice.customer_id],
            )
        )
    if not has_entries:
        return ZERO
    customer_lock(invoice.customer_id)
    balance = credit_balance(invoice.customer)
    applied = min(balance, invoice.total)
    if applied <= 0:
        return ZERO
    CreditBalanceEntry.objects.create(
        customer_id=invoice.customer_id,
        kind=CreditBalanceEntry.APPLIED,
        amount=-applied,
        currency=invoice.currency,
        invoice=invoice,
        created_at=now,
    )
    invoice.credits_applied = applied
    invoice.save(update_fields=["credits_applied"])
    return applied
