"""Reading the journal: entries of a date range in one order (date, then id),
as CSV or as Xero's manual-journal import CSV, streamed row by row from a
server-side cursor so that a month of any size is sent in constant memory;
and the trial balance per account and month."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from billing.core.money import currency_exponent, format_money
from billing.core.spreadsheet_csv import Figure, SpreadsheetCsv
from billing.journal.models import JournalEntry

CSV_COLUMNS = [
    "id",
    "date",
    "document_type",
    "document",
    "customer",
    "account",
    "account_name",
    "debit",
    "credit",
    "currency",
    "memo",
]
# Xero's manual journal import template (help.xero.com, "Enter multiple manual
# journals using an import template"): rows with the same Narration and Date are
# the lines of one journal, which must balance; Amount is a debit when positive.
XERO_COLUMNS = [
    "Narration",
    "Date",
    "Description",
    "AccountCode",
    "TaxRate",
    "Amount",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
]
# The journal writes tax on lines of its own (tax payable per rate): no line
# of it carries tax for Xero to add.
XERO_TAX_RATE = "Tax Exempt"
FIELDS = (
    "id",
    "date",
    "document_type",
    "document",
    "customer__external_id",
    "account",
    "account_name",
    "debit",
    "credit",
    "currency",
    "memo",
)


def entries_between(start: date, end: date):
    """The entries dated in [start, end), in the export's one order."""
    return JournalEntry.objects.filter(date__gte=start, date__lt=end).order_by("date", "id")


def _money_text():
    """format_money as a CSV Figure, faster for the amounts the journal holds (whole
    in their currency's minor unit: written out directly); any other goes through it."""
    quanta: dict[str, Decimal] = {}

    def text(amount: Decimal, currency: str) -> Figure:
        quantum = quanta.get(currency)
        if quantum is None:
            quantum = quanta[currency] = Decimal(1).scaleb(-currency_exponent(currency))
        exact = amount.quantize(quantum) + 0
        return Figure(f"{exact:f}" if exact == amount else format_money(amount, currency))

    return text


def _batched(lines: Iterator[str], size: int = 500) -> Iterator[str]:
    """Lines joined `size` at a time: a response chunk is a few tens of KB."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _rows(start: date, end: date) -> Iterator[tuple]:
    return entries_between(start, end).values_list(*FIELDS).iterator(chunk_size=2000)


def csv_lines(start: date, end: date) -> Iterator[str]:
    return _batched(_csv_lines(start, end))


def xero_lines(start: date, end: date) -> Iterator[str]:
    return _batched(_xero_lines(start, end))


def _csv_lines(start: date, end: date) -> Iterator[str]:
    money = _money_text()
    writer = SpreadsheetCsv()
    yield writer.row(CSV_COLUMNS)
    for pk, day, doc_type, doc, customer, account, name, debit, credit, cur, memo in _rows(
        start, end
    ):
        yield writer.row(
            [
                pk,
                day.isoformat(),
                doc_type,
                doc,
                customer,
                account,
                name,
                money(debit, cur),
                money(credit, cur),
                cur,
                memo,
            ]
        )


def _xero_lines(start: date, end: date) -> Iterator[str]:
    """Xero's columns; each document is a journal, narrated by its type and number."""
    money = _money_text()
    writer = SpreadsheetCsv()
    yield writer.row(XERO_COLUMNS)
    for _pk, day, doc_type, doc, customer, account, name, debit, credit, cur, memo in _rows(
        start, end
    ):
        description = f"{name} ({customer})" + (f": {memo}" if memo else "")
        yield writer.row(
            [
                f"{doc_type} {doc}",
                day.strftime("%d/%m/%Y"),
                description,
                account,
                XERO_TAX_RATE,
                money(debit - credit, cur),
                "",
                "",
                "",
                "",
            ]
        )


@dataclass(frozen=True)
class TrialBalanceRow:
    month: date
    account: str
    account_name: str
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        """Debit balance (negative: a credit balance)."""
        return self.debit - self.credit


def trial_balance(start: date, end: date) -> list[TrialBalanceRow]:
    """Debits and credits per month, account and currency of the entries in
    [start, end), ordered by month, account code and currency (an account
    renamed in the month shows once per name). Each month's debits equal its
    credits per currency (every document balances)."""
    rows = (
        entries_between(start, end)
        .annotate(month=TruncMonth("date"))
        .values("month", "account", "account_name", "currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("month", "account", "account_name", "currency")
    )
    return [
        TrialBalanceRow(
            row["month"] if type(row["month"]) is date else row["month"].date(),
            row["account"],
            row["account_name"],
            row["currency"],
            row["debit"],
            row["credit"],
        )
        for row in rows
    ]


TRIAL_BALANCE_COLUMNS = [
    "month",
    "account",
    "account_name",
    "currency",
    "debit",
    "credit",
    "balance",
]


def trial_balance_lines(rows: list[TrialBalanceRow]) -> Iterator[str]:
    writer = SpreadsheetCsv()
    yield writer.row(TRIAL_BALANCE_COLUMNS)
    for row in rows:
        yield writer.row(
            [
                row.month.strftime("%Y-%m"),
                row.account,
                row.account_name,
                row.currency,
                Figure(format_money(row.debit, row.currency)),
                Figure(format_money(row.credit, row.currency)),
                Figure(format_money(row.balance, row.currency)),
            ]
        )
