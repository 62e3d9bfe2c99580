"""Books per seller in the admin (issue 75, S32's books): the trial balance page
is a seller's, for a range of days, with opening, debit, credit and closing
balances and the seller and currency named; the journal's list exports a
seller's entries as CSV or for Xero, and fills the functional amounts of entries
that waited for a rate once it is entered."""

import csv
import html
import io
import re

import pytest

from billing.journal.models import JournalEntry
from tests.journal.books_support import s32_books, s32_rates

pytestmark = pytest.mark.django_db

NOVEMBER = "start=2026-11-01&end=2026-11-30"


def words(page) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.content.decode()))
    return " ".join(text.replace("\N{NO-BREAK SPACE}", " ").split())


def streamed(response) -> list[dict]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_s32_the_trial_balance_page_is_a_seller_s_in_its_currency(admin_client):
    s32_books()

    page = admin_client.get(f"/admin/billing/trialbalance/?billing_entity=sas&{NOVEMBER}")

    assert page.status_code == 200
    text = words(page)
    assert "Billing entity sas, in EUR, from 2026-11-01 to 2026-11-30 (UTC days)." in text
    assert "1100 Accounts receivable 0.00 140.00 90.00 50.00" in text
    assert "1200 Payments clearing 0.00 92.00 0.00 92.00" in text
    assert "4000 Revenue 0.00 0.00 140.00 -140.00" in text
    assert "7900 Exchange differences 0.00 0.00 2.00 -2.00" in text
    later = words(admin_client.get("/admin/billing/trialbalance/?billing_entity=sas&"
                                   "start=2026-11-10&end=2026-11-30"))  # fmt: skip
    assert "1100 Accounts receivable 140.00 0.00 90.00 50.00" in later


def test_the_journal_list_exports_a_seller_s_entries(admin_client):
    books = s32_books()
    listing = admin_client.get("/admin/billing/journalentry/?billing_entity__exact=sas")
    assert listing.status_code == 200
    assert "Export for Xero" in words(listing)
    assert 'value="sas" selected' in listing.content.decode()

    export = "/admin/billing/journalentry/export/?billing_entity=sas&" + NOVEMBER
    rows = streamed(admin_client.get(export + "&format=csv"))
    xero = streamed(admin_client.get(export + "&format=xero"))

    assert {row["billing_entity"] for row in rows} == {"sas"}
    assert len(rows) == 7
    assert [(r["Narration"], r["AccountCode"], r["Amount"]) for r in xero][-3:] == [
        (f"payment {books['ny'].number}", "1200", "92.00"),
        (f"payment {books['ny'].number}", "1100", "-90.00"),
        (f"payment {books['ny'].number}", "7900", "-2.00"),
    ]


def test_a_missing_rate_is_said_and_filled_from_the_list(admin_client):
    s32_books(with_rates=False)
    listing = words(admin_client.get("/admin/billing/journalentry/"))
    assert "Some entries wait for an exchange rate: USD->EUR (2026-11-05, 2026-11-20)" in listing

    refused = admin_client.get(
        "/admin/billing/journalentry/export/?billing_entity=sas&" + NOVEMBER + "&format=xero",
        follow=True,
    )
    said = [str(message) for message in refused.context["messages"]]
    assert said[0].startswith(
        "the Xero export needs exchange rates that are missing: USD->EUR on 2026-11-05, 2026-11-20."
    )

    s32_rates()
    filled = admin_client.post("/admin/billing/journalentry/fill-rates/", follow=True)
    said = [str(message) for message in filled.context["messages"]]
    assert said == ["Functional amounts filled for 2 document(s)."]
    assert not JournalEntry.objects.filter(rate__isnull=True).exists()
