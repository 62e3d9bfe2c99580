"""S29 through the API: every document balances, the month's accounts, the trial
balance, and the CSV and Xero exports (the same bytes twice)."""

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal as D

import pytest

from billing.journal.export import XERO_COLUMNS
from billing.journal.trial_balance import entity_trial_balance
from tests.factories import api_client
from tests.journal.support import s29_month

pytestmark = pytest.mark.django_db

NOVEMBER = "from=2026-11-01&to=2026-12-01"


@pytest.fixture
def api():
    return api_client("read", "finance:read", "admin")


def all_entries(api) -> list[dict]:
    entries, url = [], f"/api/v1/journal?{NOVEMBER}&limit=7"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        entries += response.json()["results"]
        url = response.json()["next"]
    return entries


def test_s29_the_journal_balances(api):
    s29_month(api)

    entries = all_entries(api)

    # every document balances
    per_document = defaultdict(D)
    for entry in entries:
        per_document[(entry["document_type"], entry["document"])] += D(entry["debit"]) - D(
            entry["credit"]
        )
    assert set(per_document.values()) == {D(0)}
    assert sorted({t for t, _ in per_document}) == [
        "consumption",
        "credit_note",
        "expiry",
        "invoice",
        "payment",
    ]
    # the month's accounts (debit balance; credit accounts negated)
    balance = defaultdict(D)
    names = {}
    for entry in entries:
        balance[entry["account"]] += D(entry["debit"]) - D(entry["credit"])
        names[entry["account"]] = entry["account_name"]
    assert {names[code]: amount for code, amount in balance.items()} == {
        "Revenue": D("-120.00"),
        "Tax payable": D("-18.00"),
        "Deferred revenue": D("-10.00"),
        "Breakage revenue": D("-10.00"),
        "Customer credit balance": D("-12.00"),
        "Accounts receivable": D("0.00"),
        "Payments clearing": D("170.00"),
    }
    # the credit note to the credit balance: Dr revenue 10.00, Dr VAT 2.00, Cr 12.00
    note = [e for e in entries if e["document_type"] == "credit_note"]
    assert [(e["account"], e["debit"], e["credit"], e["customer"]) for e in note] == [
        ("4000", "10.00", "0.00", "a"),
        ("2200", "2.00", "0.00", "a"),
        ("2400", "0.00", "12.00", "a"),
    ]

    # the seller's trial balance of the month says the same, per account
    balance = entity_trial_balance(
        billing_entity="default", start=date(2026, 11, 1), end=date(2026, 12, 1)
    )
    rows = balance.lines
    assert [(r.account, r.opening, r.debit, r.credit, r.closing) for r in rows] == [
        ("1100", D(0), D("170.00"), D("170.00"), D("0")),
        ("1200", D(0), D("170.00"), D("0"), D("170.00")),
        ("2200", D(0), D("2.00"), D("20.00"), D("-18.00")),
        ("2300", D(0), D("40.00"), D("50.00"), D("-10.00")),
        ("2400", D(0), D("0"), D("12.00"), D("-12.00")),
        ("4000", D(0), D("10.00"), D("130.00"), D("-120.00")),
        ("4100", D(0), D("0"), D("10.00"), D("-10.00")),
    ]
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows) == D("392.00")
    assert sum(r.closing for r in rows) == 0


def body(response) -> bytes:
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_s29_exports_twice_byte_identical_and_xero_columns(api):
    s29_month(api)

    first = body(api.get(f"/api/v1/journal.csv?{NOVEMBER}"))
    again = body(api.get(f"/api/v1/journal.csv?{NOVEMBER}"))
    assert first == again
    rows = list(csv.DictReader(io.StringIO(first.decode())))
    assert len(rows) == len(all_entries(api))
    order = [(r["date"], int(r["id"])) for r in rows]
    assert order == sorted(order)

    xero = body(api.get(f"/api/v1/journal.csv?{NOVEMBER}&format=xero"))
    assert xero == body(api.get(f"/api/v1/journal.csv?{NOVEMBER}&format=xero"))
    reader = csv.reader(io.StringIO(xero.decode()))
    header = next(reader)
    assert (
        header
        == XERO_COLUMNS
        == [
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
    )
    lines = list(reader)
    # Xero's journals: rows of one Narration and Date, each balancing; dd/mm/yyyy
    journals = defaultdict(D)
    for line in lines:
        journals[(line[0], line[1])] += D(line[5])
        assert line[4] == "Tax Exempt"
    assert set(journals.values()) == {D(0)}
    invoice_rows = [line for line in lines if line[0].startswith("invoice INV-")]
    assert [(r[1], r[3], r[5]) for r in invoice_rows[:3]] == [
        ("10/11/2026", "4000", "-100.00"),
        ("10/11/2026", "2200", "-20.00"),
        ("10/11/2026", "1100", "120.00"),
    ]
