"""Reading the journal: entries of a date range in one order (date, then id),
of one seller or currency if asked, as CSV or as Xero's manual-journal import
CSV (one seller, in its functional currency), streamed row by row from a
server-side cursor so that a month of any size is sent in constant memory.
The trial balance is billing.journal.trial_balance."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.journal.entities import books_entity
from billing.journal.functional import functional_missing_refusal
from billing.journal.models import JournalEntry
from common.errors import InvalidRequest
from common.money import currency_exponent, format_decimal, format_money, is_known_currency
from common.spreadsheet_csv import Figure, SpreadsheetCsv

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
    # Added with books per seller (API v1.3), after the columns readers know.
    "billing_entity",
    "functional_debit",
    "functional_credit",
    "rate",
    "functional_currency",
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
    "billing_entity",
    "functional_debit",
    "functional_credit",
    "rate",
    "functional_currency",
)


@dataclass(frozen=True)
class JournalFilter:
    """Which entries a reader asked for: of one seller (its code) and of one
    transaction currency, each optional."""

    billing_entity: str = ""
    currency: str = ""


def journal_filter(*, billing_entity: str | None, currency: str | None) -> JournalFilter:
    """The filter asked for, checked: an unknown seller (neither an entity nor
    named by an entry) or currency is refused (400 naming the field)."""
    billing_entity, currency = billing_entity or "", currency or ""
    if billing_entity:
        books_entity(billing_entity)
    if currency and not is_known_currency(currency):
        raise InvalidRequest(
            f"unknown currency {currency!r}; use an ISO 4217 code such as EUR",
            fields={"currency": [f"unknown currency {currency!r}"]},
        )
    return JournalFilter(billing_entity, currency)


def entries_between(start: date, end: date, wanted: JournalFilter = JournalFilter()):
    """The entries dated in [start, end) (of the seller and currency wanted), in
    the export's one order."""
    entries = JournalEntry.objects.filter(date__gte=start, date__lt=end)
    if wanted.billing_entity:
        entries = entries.filter(billing_entity=wanted.billing_entity)
    if wanted.currency:
        entries = entries.filter(currency=wanted.currency)
    return entries.order_by("date", "id")


def xero_filter(start: date, end: date, wanted: JournalFilter) -> JournalFilter:
    """The seller of a Xero export: Xero's manual journal has no currency column,
    so a file is one seller's, in its functional currency. Without one asked for,
    the only seller with entries in the range; 400 naming them when there are
    more, and naming the pairs and days of any entry still waiting for its rate."""
    if not wanted.billing_entity:
        sellers = sorted(
            set(entries_between(start, end, wanted).values_list("billing_entity", flat=True))
        )
        if len(sellers) > 1:
            raise InvalidRequest(
                f"the range has entries of {len(sellers)} billing entities "
                f"({', '.join(sellers)}): give billing_entity, a Xero file is one entity's "
                "books in its functional currency",
                fields={"billing_entity": [f"required: one of {', '.join(sellers)}"]},
            )
        wanted = JournalFilter(sellers[0] if sellers else "", wanted.currency)
    functional_missing_refusal(entries_between(start, end, wanted), what="the Xero export")
    return wanted


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


def _rows(start: date, end: date, wanted: JournalFilter) -> Iterator[tuple]:
    return entries_between(start, end, wanted).values_list(*FIELDS).iterator(chunk_size=2000)


def csv_lines(start: date, end: date, wanted: JournalFilter = JournalFilter()) -> Iterator[str]:
    return _batched(_csv_lines(start, end, wanted))


def xero_lines(start: date, end: date, wanted: JournalFilter = JournalFilter()) -> Iterator[str]:
    """Checked first (xero_filter): a refusal comes before the response starts."""
    return _batched(_xero_lines(start, end, xero_filter(start, end, wanted)))


def _csv_lines(start: date, end: date, wanted: JournalFilter) -> Iterator[str]:
    """The entries' columns; a functional amount still waiting for its rate is empty."""
    money = _money_text()
    writer = SpreadsheetCsv()
    yield writer.row(CSV_COLUMNS)
    for row in _rows(start, end, wanted):
        pk, day, doc_type, doc, customer, account, name, debit, credit, cur, memo = row[:11]
        entity, f_debit, f_credit, rate, f_cur = row[11:]
        waiting = rate is None
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
                entity,
                "" if waiting else money(f_debit, f_cur),
                "" if waiting else money(f_credit, f_cur),
                "" if waiting else Figure(format_decimal(rate)),
                f_cur,
            ]
        )


def _xero_lines(start: date, end: date, wanted: JournalFilter) -> Iterator[str]:
    """Xero's columns, amounts in the seller's functional currency (an entry of
    none there, left out); each document is a journal, narrated by its type and
    number."""
    money = _money_text()
    writer = SpreadsheetCsv()
    yield writer.row(XERO_COLUMNS)
    for row in _rows(start, end, wanted):
        _pk, day, doc_type, doc, customer, account, name, _d, _c, _cur, memo = row[:11]
        _entity, f_debit, f_credit, _rate, f_cur = row[11:]
        if f_debit == f_credit:
            continue
        description = f"{name} ({customer})" + (f": {memo}" if memo else "")
        yield writer.row(
            [
                f"{doc_type} {doc}",
                day.strftime("%d/%m/%Y"),
                description,
                account,
                XERO_TAX_RATE,
                money(f_debit - f_credit, f_cur),
                "",
                "",
                "",
                "",
            ]
        )
