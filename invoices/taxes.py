"""Tax on invoices: which rates a customer is charged, and the tax per rate.

Tax is computed per rate on the invoice's taxable amount (its lines after
discounts), rounded once per rate, half up, to the currency's minor unit. A
customer exempt from tax, or reverse-charged (the customer accounts for the tax
itself), is charged none."""

from dataclasses import dataclass
from decimal import Decimal

from billing.core.money import format_decimal, quantize_money
from plans.models import TaxRate

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TaxLineInput:
    rate: TaxRate
    taxable_amount: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TaxLine:
    """Tax charged (an invoice's InvoiceTaxLine) or credited (a credit note's) at
    one rate, its terms as they were then."""

    code: str
    name: str
    percentage: Decimal
    taxable_amount: Decimal
    amount: Decimal

    def record(self) -> dict:
        """As a credit note stores it (JSON: numbers as strings)."""
        return {
            "code": self.code,
            "name": self.name,
            "percentage": str(self.percentage),
            "taxable_amount": str(self.taxable_amount),
            "amount": str(self.amount),
        }


def tax_lines_read(records: list[dict]) -> list[TaxLine]:
    """A credit note's stored tax lines (TaxLine.record) as TaxLines."""
    return [
        TaxLine(
            record["code"],
            record["name"],
            Decimal(record["percentage"]),
            Decimal(record["taxable_amount"]),
            Decimal(record["amount"]),
        )
        for record in records
    ]


def tax_label(line) -> str:
    """'VAT 20 %': a tax line's rate as the admin names it."""
    return f"{line.name} {format_decimal(line.percentage)} %"


def customer_tax_rates(customer) -> list[TaxRate]:
    """The active rates charged to the customer: its own, or else the rates
    marked default that apply everywhere or in the country of its address.
    None when the customer is exempt or reverse-charged."""
    if customer.tax_exempt != customer.TAX_NONE:
        return []
    own = [rate for rate in customer.tax_rates.all() if rate.active]
    if own:
        return own
    country = (customer.address or {}).get("country") or ""
    return [
        rate
        for rate in TaxRate.objects.filter(active=True, is_default=True).order_by("code")
        if rate.country in ("", country)
    ]


def tax_amount(taxable: Decimal, percentage: Decimal, currency: str) -> Decimal:
    """The tax at one rate on an amount, rounded once, half up."""
    return quantize_money(taxable * percentage / HUNDRED, currency)


def tax_lines(*, rates: list[TaxRate], taxable: Decimal, currency: str) -> list[TaxLineInput]:
    return [
        TaxLineInput(rate, taxable, tax_amount(taxable, rate.percentage, currency))
        for rate in rates
    ]
