"""An invoice's totals, the one sum of its lines: each line's amount rounded
once, the subtotal (every line but the discount lines), the discount (those
lines, negated), the tax on what is left at each rate, and the total. The
invoice written, the period statement, the price sandbox and the migration
preview add up through it."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.core.money import quantize_money
from billing.core.vocabulary import LineKind
from plans.taxes import TaxLineInput, tax_lines

ZERO = Decimal(0)


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
