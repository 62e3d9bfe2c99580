"""The journal in the admin: the account mapping (a change applies to entries
written after it), the entries read only, locked months, the trial balance
page and its CSV."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth.models import User

from billing.journal.models import JournalAccount, JournalEntry, JournalPeriodLock
from config.user_language import user_language_set
from tests.factories import CustomerFactory, api_client
from tests.journal.support import NOV_10, NOV_20, s29_month, usage_invoice

pytestmark = pytest.mark.django_db


def test_a_mapping_applies_to_entries_written_after_it(admin_client):
    customer = CustomerFactory(external_id="acme")
    before = usage_invoice(customer, "30.00", now=NOV_10)

    response = admin_client.post(
        "/admin/billing/journalaccount/add/",
        {"kind": "revenue", "meter": "api_calls", "code": "4010", "name": "API revenue"},
    )
    assert response.status_code == 302, response.content
    after = usage_invoice(customer, "40.00", now=NOV_20)

    def revenue(invoice):
        return list(
            JournalEntry.objects.filter(
                document_key=f"invoice:{invoice.pk}", kind="revenue"
            ).values_list("account", "account_name", "credit")
        )

    assert revenue(before) == [("4000", "Revenue", 30)]
    assert revenue(after) == [("4010", "API revenue", 40)]


def test_a_meter_on_a_tax_account_is_refused(admin_client):
    response = admin_client.post(
        "/admin/billing/journalaccount/add/",
        {"kind": "tax_payable", "meter": "api_calls", "code": "2210", "name": "VAT"},
    )
    assert response.status_code == 200
    assert not JournalAccount.objects.exists()


def test_entries_are_read_only_and_the_trial_balance_shows_and_exports(admin_client):
    s29_month(api_client("read", "admin"))
    entry = JournalEntry.objects.first()

    assert admin_client.get("/admin/billing/journalentry/").status_code == 200
    page = admin_client.get(f"/admin/billing/journalentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert b'name="debit"' not in page.content

    november = "billing_entity=default&start=2026-11-01&end=2026-11-30"
    page = admin_client.get(f"/admin/billing/trialbalance/?{november}")
    assert page.status_code == 200
    assert "Breakage revenue" in page.content.decode()
    csv_page = admin_client.get(f"/admin/billing/trialbalance/?{november}&format=csv")
    lines = b"".join(csv_page.streaming_content).decode().splitlines()
    assert lines[0] == "billing_entity,account,account_name,currency,opening,debit,credit,closing"
    assert "default,4100,Breakage revenue,USD,0.00,0.00,10.00,-10.00" in lines
    bad = admin_client.get(
        "/admin/billing/trialbalance/?billing_entity=default&start=2026-12-01&end=2026-11-01"
    )
    assert bad.status_code == 200
    assert "The first day is after the last." in bad.content.decode()


def test_a_month_is_locked_in_the_admin_once(admin_client):
    with time_machine.travel(datetime(2026, 12, 2, tzinfo=UTC), tick=False):
        response = admin_client.post(
            "/admin/billing/journalperiodlock/add/", {"month": "2026-11-17"}
        )
        assert response.status_code == 302
        again = admin_client.post("/admin/billing/journalperiodlock/add/", {"month": "2026-11-02"})
    assert again.status_code == 200
    assert again.context["adminform"].form.errors == {"month": ["2026-11 is locked already"]}
    assert list(JournalPeriodLock.objects.values_list("month", flat=True)) == [date(2026, 11, 1)]


def sections(response) -> dict[str, list[str]]:
    return {
        str(app["name"]): [str(model["name"]) for model in app["models"]]
        for app in response.context["app_list"]
    }


def test_the_journal_pages_are_listed_under_accounting_not_billing(admin_client):
    index = sections(admin_client.get("/admin/"))
    assert index["Accounting"] == ["Accounts", "Journal entries", "Locked months", "Trial balance"]
    assert "Accounts" not in index["Billing"]
    assert "Trial balance" not in index["Billing"]

    page = admin_client.get("/admin/accounting/")
    assert page.status_code == 200
    assert list(sections(page)) == ["Accounting"]
    assert "Accounts" not in sections(admin_client.get("/admin/billing/"))["Billing"]

    listing = admin_client.get("/admin/billing/journalaccount/").content.decode()
    assert '<a href="/admin/accounting/">Accounting</a>' in listing
    assert (
        "/admin/billing/journalaccount/" in admin_client.get("/admin/accounting/").content.decode()
    )
    trial = admin_client.get("/admin/billing/trialbalance/").content.decode()
    assert '<a href="/admin/accounting/">Accounting</a>' in trial
    add = admin_client.get("/admin/billing/journalaccount/add/").content.decode()
    assert '<a href="/admin/accounting/">Accounting</a>' in add
    assert "Add account" in add
    assert '/admin/billing/">Billing</a>' not in add


@pytest.mark.parametrize(("language", "heading"), [("fr", "Comptabilité"), ("de", "Buchhaltung")])
def test_the_accounting_heading_is_in_the_users_language(client, language, heading):
    user = User.objects.create_superuser(f"finance_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)

    page = client.get("/admin/accounting/")

    assert page.status_code == 200
    assert '<a href="/admin/accounting/" class="section"' in page.content.decode()
    assert f"{heading}</a>" in page.content.decode()
    assert f"{heading}</a>" in client.get("/admin/").content.decode()
