"""An invoice's totals, the one sum of its lines: each line's amount rounded
once, the subtotal (every line but the discount lines), the discount (those
lines, negated), the tax on what is left at each rate, and the total. The
invoice written, the period statement, the price sandbox and the migration
preview add up through it."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from common.money import quantize_money, split_money
from common.vocabulary import LineKind
from plans.taxes import TaxLineInput, tax_lines

ZERO = Decimal(0)
# The lines an invoice's discount is not taken from: the discount lines, and the
# lines taking off what threshold invoices billed (that usage is on the invoice
# again, at its whole price, and discounted there).
NOT_DISCOUNTED = (LineKind.DISCOUNT, LineKind.USAGE_INVOICED)


@dataclass(frozen=True)
class InvoiceTotals:
    amounts: list[Decimal]  # each line's amount, rounded once, in order
    subtotal: Decimal
    discount: Decimal  # positive: what the discount lines take off
    taxes: list[TaxLineInput]
    tax: Decimal
    total: Decimal


def invoice_totals(lines: Iterable, *, rates: list, currency: str) -> InvoiceTotals:
    """The totals of `lines` (anything with a kind and an amount) taxed at `rates`:
    total = subtotal - discount + tax, the tax on subtotal - discount."""
    lines = list(lines)
    amounts = [quantize_money(line.amount, currency) for line in lines]
    subtotal = discount = ZERO
    for line, amount in zip(lines, amounts, strict=True):
        if line.kind == LineKind.DISCOUNT:
            discount -= amount
        else:
            subtotal += amount
    taxes = tax_lines(rates=rates, taxable=subtotal - discount, currency=currency)
    tax = sum((line.amount for line in taxes), ZERO)
    return InvoiceTotals(amounts, subtotal, discount, taxes, tax, subtotal - discount + tax)


def discount_shares(kinds: list[str], amounts: list[Decimal], *, currency: str) -> list[Decimal]:
    """Each line's share of its invoice's discount (of the lines of `kinds` and
    rounded `amounts`, in order: InvoiceTotals.amounts), positive: the discount
    (what its lines take off) shared among the lines it was taken from (all but
    NOT_DISCOUNTED and a commit's drawdown) in proportion to their amounts, the
    shares adding up to it exactly (split_money: 10.00 off three lines of 10.00 is
    3.34, 3.33, 3.33).
    Zero for every other line, and for all without a discount."""
    discount = -sum(
        (amount for kind, amount in zip(kinds, amounts, strict=True) if kind == LineKind.DISCOUNT),
        ZERO,
    )
    shares = [ZERO] * len(amounts)
    # Not a commit's drawdown either: it earns nothing itself (the usage it pays
    # for does, and what it drew is the commit's: billing.journal.deferral).
    taken_from = [
        n
        for n, kind in enumerate(kinds)
        if kind not in NOT_DISCOUNTED and kind != LineKind.COMMIT_DRAWDOWN
    ]
    if discount and taken_from:
        parts = split_money(discount, [amounts[n] for n in taken_from], currency)
        for n, part in zip(taken_from, parts, strict=True):
            shares[n] = part
    return shares
