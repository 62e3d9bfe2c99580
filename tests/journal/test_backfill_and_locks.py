"""journal_backfill (twice: the same entries once), month locks, and the
journal API's refusals."""

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from billing.journal.models import JournalEntry, JournalPeriodLock
from tests.factories import CustomerFactory, api_client
from tests.journal.support import NOV_10, s29_month, usage_invoice

pytestmark = pytest.mark.django_db


DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "finance:read", "admin")


def balances() -> dict:
    totals = defaultdict(D)
    for kind, account, debit, credit in JournalEntry.objects.values_list(
        "document_type", "account", "debit", "credit"
    ):
        totals[(kind, account)] += debit - credit
    return {key: amount for key, amount in totals.items() if amount}


def backfill() -> str:
    out = StringIO()
    call_command("journal_backfill", stdout=out)
    return out.getvalue().strip()


def test_backfill_twice_writes_a_month_of_history_once(api):
    # given: S29's month, its documents written before the journal existed
    s29_month(api)
    live = balances()
    JournalEntry.objects.all().delete()

    # when: the backfill runs twice
    assert backfill() == "journaled 9 document(s)"
    written = list(JournalEntry.objects.order_by("id").values_list("document_key", "line"))
    assert backfill() == "journaled 0 document(s)"

    # then: the same entries once, saying what the live journal said
    assert list(JournalEntry.objects.order_by("id").values_list("document_key", "line")) == written
    assert balances() == live


def test_backfill_leaves_live_documents_alone(api):
    s29_month(api)
    before = list(JournalEntry.objects.order_by("id").values_list("id", flat=True))

    assert backfill() == "journaled 0 document(s)"
    assert list(JournalEntry.objects.order_by("id").values_list("id", flat=True)) == before


def test_a_locked_month_moves_later_documents_to_the_next_open_month(api):
    customer = CustomerFactory(external_id="acme")
    with time_machine.travel(DEC_2, tick=False):
        response = api.post("/api/v1/journal/periods/2026-11/lock")
    assert response.status_code == 201, response.content
    assert response.json()["month"] == "2026-11"
    JournalPeriodLock.objects.create(month=date(2026, 12, 1), locked_at=NOV_10)

    invoice = usage_invoice(customer, "30.00", now=NOV_10)

    entries = JournalEntry.objects.filter(document_key=f"invoice:{invoice.pk}")
    assert set(entries.values_list("date", "document_date")) == {
        (date(2027, 1, 1), date(2026, 11, 10))
    }
    got = api.get("/api/v1/journal?from=2027-01-01&to=2027-02-01").json()["results"]
    assert [(e["date"], e["account"], e["debit"], e["credit"]) for e in got] == [
        ("2027-01-01", "4000", "0.00", "30.00"),
        ("2027-01-01", "1100", "30.00", "0.00"),
    ]
    assert api.get("/api/v1/journal?from=2026-11-01&to=2026-12-01").json()["results"] == []


@time_machine.travel(datetime(2027, 1, 2, tzinfo=UTC), tick=False)
def test_locking_a_month_twice_or_a_bad_month_is_refused(api):
    assert api.post("/api/v1/journal/periods/2026-11/lock").status_code == 201
    again = api.post("/api/v1/journal/periods/2026-11/lock")
    assert again.status_code == 409
    assert "2026-11 is locked already" in again.json()["error"]["message"]
    for bad in ("2026-13", "november", "2026-1"):
        response = api.post(f"/api/v1/journal/periods/{bad}/lock")
        assert response.status_code == 404, bad
        assert "YYYY-MM" in response.json()["error"]["message"]
    assert list(JournalPeriodLock.objects.values_list("month", flat=True)) == [date(2026, 11, 1)]
    assert api_client("read").post("/api/v1/journal/periods/2026-12/lock").status_code == 403


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-11-01", "to is required"),
        ("from=2026-11-31&to=2026-12-01", "from must be a day written YYYY-MM-DD"),
        ("from=01/11/2026&to=2026-12-01", "from must be a day written YYYY-MM-DD"),
        ("from=2026-12-01&to=2026-11-01", "from (2026-12-01) is after to (2026-11-01)"),
        ("from=2026-11-01&to=2026-12-01&sort=id", "unknown parameter 'sort'"),
    ],
)
def test_bad_ranges_are_refused_in_words(api, query, words):
    for url in (f"/api/v1/journal?{query}", f"/api/v1/journal.csv?{query}"):
        response = api.get(url)
        assert response.status_code == 400, url
        assert words in response.json()["error"]["message"]


def test_an_unknown_export_format_is_refused(api):
    response = api.get("/api/v1/journal.csv?from=2026-11-01&to=2026-12-01&format=sage")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "format must be csv or xero, not 'sage'"
    assert api.get("/api/v1/journal?from=2026-11-01&to=2026-12-01&format=xero").status_code == 400
