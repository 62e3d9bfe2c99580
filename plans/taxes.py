"""Tax: which rates a customer is charged, the tax per rate on an invoice, and the
tax a credit note gives back. The rates themselves are plans.models.TaxRate,
archived (plans.services), never changed.

Tax is computed per rate on the invoice's taxable amount (its lines after
discounts), rounded once per rate, half up, to the currency's minor unit. A
customer exempt from tax, or reverse-charged (the customer accounts for the tax
itself), is charged none. Credit notes give it back in proportion to what they
credit, rounded on the running total (tax_credit_lines)."""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.db import connection

from common import rawsql
from common.money import format_decimal, quantize_money
from plans.models import TaxRate

HUNDRED = Decimal(100)
# The member states of the European Union (ISO 3166-1; Greece is GR here, not EL).
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)


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


def is_eu_cross_border_business(*, seller_country: str, buyer: dict) -> bool:
    """Whether a sale from a seller in `seller_country` to `buyer` (a customer's
    details as invoiced: its address's country and its tax ID) is one EU business
    selling to another in a different member state: the reverse-charge case,
    where the invoice must carry both parties' VAT numbers (Article 226 of
    Council Directive 2006/112/EC)."""
    buyer_country = str((buyer.get("address") or {}).get("country") or "").upper()
    return (
        bool(buyer.get("tax_id"))
        and seller_country.upper() in EU_COUNTRIES
        and buyer_country in EU_COUNTRIES
        and buyer_country != seller_country.upper()
    )


def customer_tax_rates(customer) -> list[TaxRate]:
    """The active rates charged to the customer: its own, or else the rates
    marked default that apply everywhere or in the country of its address.
    None when the customer is exempt or reverse-charged. One statement, fixed SQL
    (every invoice written asks)."""
    if customer.tax_exempt != customer.TAX_NONE:
        return []
    sql, fields = _rates_sql(connection.vendor)
    found = rawsql.rows(sql, [customer.pk], (None, *fields))
    own = [rawsql.instance(fields, values) for is_own, *values in found if is_own]
    if own:
        return own
    country = (customer.address or {}).get("country") or ""
    defaults = [rawsql.instance(fields, values) for _own, *values in found]
    return [rate for rate in defaults if rate.country in ("", country)]


def customer_tax_rates_alike(customer_ids: list[int]) -> dict:
    """The customer_tax_rates reads of these customers, as common.rawsql.
    answered takes them, for those without a rate of their own (linked, active or
    not): their reads find the same rows, the default ones, so one read answers all
    (two statements for all; what a close group reads once)."""
    link = TaxRate.customers.through._meta
    own = rawsql.having_rows(link.db_table, link.get_field("customer").column, customer_ids)
    sql, _fields = _rates_sql(connection.vendor)
    return rawsql.answers_alike(sql, [[pk] for pk in customer_ids if pk not in own])


@cache
def _rates_sql(vendor: str) -> tuple[str, tuple]:
    """The active rates that are the customer's own or default, by code, each
    with whether it is the customer's own; and the TaxRate fields of the columns."""
    del vendor  # part of the cache key
    through = TaxRate.customers.through
    link = through._meta
    owner = link.get_field("customer").column
    rate = link.get_field("taxrate").column
    fields = tuple(TaxRate._meta.concrete_fields)
    columns = ", ".join(f"t.{field.column}" for field in fields)
    sql = (
        f"SELECT m.{rate} IS NOT NULL, {columns} FROM {TaxRate._meta.db_table} t "  # noqa: S608 (names from the models)
        f"LEFT JOIN {link.db_table} m ON m.{rate} = t.id AND m.{owner} = %s "
        f"WHERE t.active AND (t.is_default OR m.{rate} IS NOT NULL) ORDER BY t.code"
    )
    return sql, fields


def tax_amount(taxable: Decimal, percentage: Decimal, currency: str) -> Decimal:
    """The tax at one rate on an amount, rounded once, half up."""
    return quantize_money(taxable * percentage / HUNDRED, currency)


def tax_lines(*, rates: list[TaxRate], taxable: Decimal, currency: str) -> list[TaxLineInput]:
    return [
        TaxLineInput(rate, taxable, tax_amount(taxable, rate.percentage, currency))
        for rate in rates
    ]


def tax_credit_lines(
    *,
    charged: list,
    already: dict[str, Decimal],
    taxable: Decimal,
    credited_before: Decimal,
    credited_after: Decimal,
    currency: str,
) -> list[TaxLine]:
    """The tax a credit note gives back per rate, when notes take an invoice's
    credited taxable amount (of `taxable`) from `credited_before` to
    `credited_after`: each rate's tax in proportion to what is credited, rounded on
    the running total and less what notes `already` gave back (by code), so that
    notes never credit more tax than was charged and crediting everything gives back
    exactly the tax charged. `charged`: the invoice's tax lines (code, name,
    percentage, amount)."""
    if taxable == 0:
        return []
    lines = []
    for tax_line in charged:
        if credited_after == taxable:
            running = tax_line.amount
        else:
            running = quantize_money(tax_line.amount * credited_after / taxable, currency)
        lines.append(
            TaxLine(
                tax_line.code,
                tax_line.name,
                tax_line.percentage,
                quantize_money(credited_after - credited_before, currency),
                quantize_money(running - already.get(tax_line.code, Decimal(0)), currency),
            )
        )
    return lines
