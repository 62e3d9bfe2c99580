"""Books per seller through the API (issue 75, S32's books): the journal and its
CSV filtered by seller and currency, with the seller and functional amounts at
the end; a Xero export per seller, in its functional currency, balanced, read
back with the csv module; none without naming the seller when two have entries;
the trial balance per seller (opening, debit, credit, closing); hledger reads
the CSV export, converted here, and agrees."""

import csv
import io
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal as D

import pytest

from billing.journal.functional import journal_functional_fill
from billing.journal.models import JournalEntry
from tests.factories import api_client
from tests.journal.books_support import s32_books, s32_rates

pytestmark = pytest.mark.django_db

NOVEMBER = "from=2026-11-01&to=2026-12-01"
HLEDGER = shutil.which("hledger")


@pytest.fixture
def api():
    return api_client("read", "finance:read", "admin")


def body(response) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


def table(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def refusal(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]


def test_s32_the_journal_names_the_seller_and_its_functional_amounts(api):
    books = s32_books()

    response = api.get(f"/api/v1/journal?{NOVEMBER}&billing_entity=sas&currency=USD")

    assert response.status_code == 200, response.content
    fields = ("document_type", "account", "debit", "credit", "currency", "billing_entity")
    fields += ("functional_debit", "functional_credit", "rate")
    found = [tuple(e[name] for name in fields) for e in response.json()["results"]]
    assert found == [
        ("invoice", "4000", "0.00", "100.00", "USD", "sas", "0.00", "90.00", "0.9"),
        ("invoice", "1100", "100.00", "0.00", "USD", "sas", "90.00", "0.00", "0.9"),
        ("payment", "1200", "100.00", "0.00", "USD", "sas", "92.00", "0.00", "0.92"),
        ("payment", "1100", "0.00", "100.00", "USD", "sas", "0.00", "90.00", "0.92"),
        ("payment", "7900", "0.00", "0.00", "USD", "sas", "0.00", "2.00", "0.92"),
    ]
    entry = response.json()["results"][0]
    # the v1.2 fields as they were, the v1.3 ones added
    assert entry["document"] == books["ny"].number
    assert entry["customer"] == "ny"
    assert entry["account_name"] == "Revenue"
    assert entry["functional_currency"] == "EUR"
    # the EUR seller's EUR entries; all of the USD seller's
    eur = api.get(f"/api/v1/journal?{NOVEMBER}&billing_entity=sas&currency=EUR").json()
    assert {e["customer"] for e in eur["results"]} == {"paris"}
    usd = api.get(f"/api/v1/journal?{NOVEMBER}&billing_entity=default").json()
    assert {(e["customer"], e["rate"]) for e in usd["results"]} == {("boston", "1")}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("billing_entity=nope", "billing_entity"),
        ("currency=ABC", "currency"),
        ("currency=usd", "currency"),
        ("entity=sas", "entity"),
    ],
)
def test_an_unknown_seller_or_currency_is_a_400_naming_the_field(api, query, field):
    s32_books()

    for path in ("/api/v1/journal", "/api/v1/journal.csv"):
        assert list(refusal(api.get(f"{path}?{NOVEMBER}&{query}"))["fields"]) == [field]


def test_the_csv_has_the_seller_columns_at_the_end(api):
    s32_books()

    text = body(api.get(f"/api/v1/journal.csv?{NOVEMBER}&billing_entity=sas&currency=USD"))

    header = text.splitlines()[0].split(",")
    assert header == [
        "id", "date", "document_type", "document", "customer", "account", "account_name",
        "debit", "credit", "currency", "memo",
        "billing_entity", "functional_debit", "functional_credit", "rate", "functional_currency",
    ]  # fmt: skip
    rows = table(text)
    assert [
        (r["account"], r["debit"], r["functional_debit"], r["functional_credit"], r["rate"])
        for r in rows
    ] == [
        ("4000", "0.00", "0.00", "90.00", "0.9"),
        ("1100", "100.00", "90.00", "0.00", "0.9"),
        ("1200", "100.00", "92.00", "0.00", "0.92"),
        ("1100", "0.00", "0.00", "90.00", "0.92"),
        ("7900", "0.00", "0.00", "2.00", "0.92"),
    ]


def test_s32_each_seller_s_xero_file_is_in_its_currency_and_balances(api):
    books = s32_books()

    xero = f"/api/v1/journal.csv?{NOVEMBER}&format=xero"
    files = {
        code: table(body(api.get(f"{xero}&billing_entity={code}"))) for code in ("sas", "default")
    }

    # the EUR seller's, in EUR: 90.00 booked, 92.00 received, 2.00 gained
    sas = [(r["Narration"], r["Date"], r["AccountCode"], D(r["Amount"])) for r in files["sas"]]
    ny, paris = books["ny"].number, books["paris"].number
    assert sas == [
        (f"invoice {ny}", "05/11/2026", "4000", D("-90.00")),
        (f"invoice {ny}", "05/11/2026", "1100", D("90.00")),
        (f"invoice {paris}", "06/11/2026", "4000", D("-50.00")),
        (f"invoice {paris}", "06/11/2026", "1100", D("50.00")),
        (f"payment {ny}", "20/11/2026", "1200", D("92.00")),
        (f"payment {ny}", "20/11/2026", "1100", D("-90.00")),
        (f"payment {ny}", "20/11/2026", "7900", D("-2.00")),
    ]
    # the USD seller's, in USD
    assert [(r["AccountCode"], r["Amount"]) for r in files["default"]] == [
        ("4000", "-30.00"),
        ("1100", "30.00"),
        ("1200", "30.00"),
        ("1100", "-30.00"),
    ]
    # each journal of each file balances
    for rows in files.values():
        per_journal = defaultdict(D)
        for row in rows:
            per_journal[(row["Narration"], row["Date"])] += D(row["Amount"])
        assert set(per_journal.values()) == {D(0)}


def test_a_xero_export_of_two_sellers_is_a_400_naming_both(api):
    s32_books()

    error = refusal(api.get(f"/api/v1/journal.csv?{NOVEMBER}&format=xero"))

    assert error["fields"] == {"billing_entity": ["required: one of default, sas"]}
    assert "2 billing entities (default, sas)" in error["message"]
    # one seller in the range: no need to name it
    only = body(api.get("/api/v1/journal.csv?from=2026-11-07&to=2026-11-08&format=xero"))
    assert [r["Amount"] for r in table(only)] == ["-30.00", "30.00"]


def test_a_missing_rate_refuses_the_xero_export_and_trial_balance_until_filled(api):
    s32_books(with_rates=False)

    xero = refusal(api.get(f"/api/v1/journal.csv?{NOVEMBER}&format=xero&billing_entity=sas"))
    trial = refusal(api.get(f"/api/v1/journal/trial-balance?{NOVEMBER}&billing_entity=sas"))

    for error in (xero, trial):
        assert error["fields"] == {"missing_rates": ["USD->EUR on 2026-11-05, 2026-11-20"]}
    # the transaction-currency CSV still reads, the functional amounts empty
    rows = table(body(api.get(f"/api/v1/journal.csv?{NOVEMBER}&billing_entity=sas&currency=USD")))
    assert {(r["functional_debit"], r["rate"]) for r in rows} == {("", "")}

    s32_rates()
    assert journal_functional_fill() == 2
    assert (
        api.get(f"/api/v1/journal/trial-balance?{NOVEMBER}&billing_entity=sas").status_code == 200
    )


def test_s32_the_trial_balance_per_seller(api):
    s32_books()

    november = api.get(f"/api/v1/journal/trial-balance?billing_entity=sas&{NOVEMBER}")
    from_10th = api.get(
        "/api/v1/journal/trial-balance?billing_entity=sas&from=2026-11-10&to=2026-12-01"
    )

    assert november.status_code == 200, november.content
    assert november.json() == {
        "billing_entity": "sas",
        "currency": "EUR",
        "results": [
            {"account": "1100", "account_name": "Accounts receivable", "opening": "0.00",
             "debit": "140.00", "credit": "90.00", "closing": "50.00"},
            {"account": "1200", "account_name": "Payments clearing", "opening": "0.00",
             "debit": "92.00", "credit": "0.00", "closing": "92.00"},
            {"account": "4000", "account_name": "Revenue", "opening": "0.00",
             "debit": "0.00", "credit": "140.00", "closing": "-140.00"},
            {"account": "7900", "account_name": "Exchange differences", "opening": "0.00",
             "debit": "0.00", "credit": "2.00", "closing": "-2.00"},
        ],
    }  # fmt: skip
    assert [
        (r["account"], r["opening"], r["debit"], r["credit"], r["closing"])
        for r in from_10th.json()["results"]
    ] == [
        ("1100", "140.00", "0.00", "90.00", "50.00"),
        ("1200", "0.00", "92.00", "0.00", "92.00"),
        ("4000", "-140.00", "0.00", "0.00", "-140.00"),
        ("7900", "0.00", "0.00", "2.00", "-2.00"),
    ]
    for response in (november, from_10th):
        assert sum(D(r["closing"]) for r in response.json()["results"]) == 0
    usd = api.get(f"/api/v1/journal/trial-balance?billing_entity=default&{NOVEMBER}").json()
    assert usd["currency"] == "USD"
    assert [(r["account"], r["closing"]) for r in usd["results"]] == [
        ("1100", "0.00"),
        ("1200", "30.00"),
        ("4000", "-30.00"),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("billing_entity=sas&from=2026-11-31&to=2026-12-01", "from"),
        ("billing_entity=sas&from=2026-11-01&to=tomorrow", "to"),
        ("billing_entity=sas&from=2026-12-01&to=2026-11-01", "to"),
        ("billing_entity=nope&from=2026-11-01&to=2026-12-01", "billing_entity"),
        ("from=2026-11-01&to=2026-12-01", "billing_entity"),
        ("billing_entity=sas&from=2026-11-01", "to"),
    ],
)
def test_a_bad_trial_balance_request_is_a_400_naming_the_field(api, query, field):
    s32_books()

    assert list(refusal(api.get(f"/api/v1/journal/trial-balance?{query}"))["fields"]) == [field]


def hledger_journal(rows: list[dict], *, functional: bool) -> str:
    """The CSV export's rows as an hledger journal: one transaction a document,
    one posting an entry, in the functional currency (or the transaction's)."""
    documents: dict[tuple, list[dict]] = {}
    for row in rows:
        documents.setdefault((row["date"], row["document_type"], row["document"]), []).append(row)
    text = []
    for (day, doc_type, number), entries in documents.items():
        text.append(f"{day} {doc_type} {number}")
        for entry in entries:
            if functional:
                amount = D(entry["functional_debit"]) - D(entry["functional_credit"])
                currency = entry["functional_currency"]
            else:
                amount, currency = D(entry["debit"]) - D(entry["credit"]), entry["currency"]
            text.append(f"    {entry['account']} {entry['account_name']}  {amount} {currency}")
        text.append("")
    return "\n".join(text)


def hledger_balances(tmp_path, name: str, journal: str) -> dict[str, str]:
    path = tmp_path / f"{name}.journal"
    path.write_text(journal)
    done = subprocess.run(  # noqa: S603 (hledger, on a file this test wrote)
        [HLEDGER, "-f", str(path), "bal", "-E", "-O", "csv", "-e", "2026-12-01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # an unbalanced transaction fails here
    rows = list(csv.reader(io.StringIO(done.stdout)))[1:]
    return dict(rows)


@pytest.mark.skipif(
    HLEDGER is None, reason="hledger is not installed (Debian: apt install hledger)"
)
def test_hledger_reads_the_export_balanced_with_the_same_trial_balance(api, tmp_path):
    s32_books()
    rows = table(body(api.get(f"/api/v1/journal.csv?{NOVEMBER}")))
    assert len(rows) == JournalEntry.objects.count() == 11

    # every document balances in its transaction currency (hledger: per commodity)
    hledger_balances(tmp_path, "all", hledger_journal(rows, functional=False))
    for code in ("sas", "default"):
        books = [row for row in rows if row["billing_entity"] == code]
        found = hledger_balances(tmp_path, code, hledger_journal(books, functional=True))
        ours = api.get(f"/api/v1/journal/trial-balance?billing_entity={code}&{NOVEMBER}").json()
        currency = ours["currency"]
        expected = {
            f"{r['account']} {r['account_name']}": (
                f"{r['closing']} {currency}" if D(r["closing"]) else "0"
            )
            for r in ours["results"]
        }
        assert found == expected | {"total": "0"}
