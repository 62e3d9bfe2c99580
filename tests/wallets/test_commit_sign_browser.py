"""Signing a prepaid commit in a real browser (Debian's Chromium through
Playwright): Finance opens the customer's page, follows "Sign a commit", fills
the form as people type amounts, reads the confirmation (the invoice and each
period's access), confirms, and lands on the commit's page with its twelve
access rows and its invoice. Screenshots in the test's output directory, and
copied to $SCREENSHOTS_DIR when set."""

import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from invoices.models import Invoice
from tests.wallets.test_commits import catalog, customer_on_plan  # noqa: F401 (the fixture)
from wallets.commit_models import Commit

SHOTS = os.environ.get("SCREENSHOTS_DIR", "")


@pytest.mark.usefixtures("catalog")
@pytest.mark.django_db(transaction=True)
def test_finance_signs_a_prepaid_commit_through_the_confirmation(
    live_server, browser_page, output_dir
):
    # given: acme on the AI plan since November 1st, and Finance
    customer, _subscription = customer_on_plan("acme")
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)

    def shot(name: str) -> None:
        path = os.path.join(output_dir, name)
        page.screenshot(path=path, full_page=True)
        if SHOTS:
            shutil.copy(path, os.path.join(SHOTS, name))

    with time_machine.travel(datetime(2026, 11, 5, 9, tzinfo=UTC), tick=True):
        # when: Finance logs in and opens the customer's page
        page.goto(f"{live_server.url}/admin/login/?next=/admin/customers/customer/")
        page.fill("#id_username", "fin")
        page.fill("#id_password", "fin-password-1")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/customers/customer/")
        page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")

        # and follows "Sign a commit", fills the form and continues
        page.click("#customer-commits #sign-commit")
        page.wait_for_selector("#commit-sign-form")
        assert page.input_value("#id_currency") == "USD"
        page.check('input[name="billing"][value="prepaid"]')
        page.fill("#id_amount", "12,000.00")
        page.select_option("#id_starts_at", label="1 Nov 2026 (UTC), the current period")
        page.fill("#id_periods", "12")
        page.check('input[name="access"][value="per_period"]')
        page.check('input[name="applies_to"][value="llm_tokens"]')
        page.fill("#id_overage_multiplier", "1.10")
        page.fill("#id_rollover_percent", "50")
        page.fill("#id_rollover_periods", "3")
        shot("commit-1-form.png")
        page.click("input[name=_preview]")

        # then: the confirmation states the invoice and the schedule; nothing written yet
        page.wait_for_selector("#commit-schedule")
        shot("commit-2-confirmation.png")
        consequences = page.inner_text("ul.consequences")
        assert "An invoice of 12,000.00 USD (plus tax) is issued now" in consequences
        assert "50% of what is left of its share rolls over" in consequences
        rows = page.locator("#commit-schedule tbody tr")
        assert rows.count() == 12
        assert rows.nth(0).inner_text().split("\t") == ["Nov 2026 (UTC)", "1,000.00 USD"]
        assert rows.nth(11).inner_text().split("\t") == ["Oct 2027 (UTC)", "1,000.00 USD"]
        assert not Commit.objects.exists()

        # when: Finance confirms
        page.click("input[name=_confirm]")
        page.wait_for_url("**/admin/wallets/commit/*/change/")
        shot("commit-3-page.png")

    # then: the commit, its access rows and its invoice, as the page shows them
    commit = Commit.objects.get(customer=customer)
    assert (commit.amount, commit.periods) == (D("12000.00"), 12)
    invoice = Invoice.objects.get(reason=Invoice.COMMIT, customer=customer)
    assert invoice.total == D("12000.00")
    text = page.inner_text("#content")
    assert invoice.number in text
    assert "1 Nov 2026 – 31 Oct 2027 (UTC)" in text  # noqa: RUF001
    assert text.count("Period access") >= 12
