"""Importing a provider's price list in a real browser (Debian's Chromium through
Playwright): Finance opens Cost rates, pastes a list from a spreadsheet (tabs)
with a refused row, sees it marked on its row, corrects it and saves the three
rows. Screenshots in the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from plans.models import CostRate
from tests.factories import llm_tokens_meter

PASSWORD = "import-the-costs-1"
PASTED = "model\ttoken_type\tcost\ngpt-4o\tinput\t2.50\ngpt-4o\toutput\t10\n\t\t{default}\n"


@pytest.mark.django_db(transaction=True)
def test_finance_imports_a_price_list(live_server, browser_page, output_dir):
    # given: the tokens meter and a Finance user
    llm_tokens_meter()
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/plans/costrate/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/plans/costrate/")

    # when: Finance opens the import page and previews a list with a negative cost
    page.click('a[href="/admin/plans/costrate/import/"]')
    page.wait_for_selector("#price-list-form")
    assert page.locator("#id_default_per").input_value() == "1000000"
    page.select_option("#id_meter", "llm_tokens")
    page.select_option("#id_currency", "USD")
    page.fill("#id_effective_from", "2026-11-01T00:00")
    page.fill("#id_lines", PASTED.format(default="-1"))
    page.click('input[name="_preview"]')
    page.wait_for_selector("#price-list-preview")

    # then: the third row is marked with the rule's reason, and there is no Save
    refused = page.locator("#price-list-preview tr.rate-row-refused")
    assert refused.count() == 1
    assert refused.get_attribute("data-row") == "3"
    assert "Unit cost" in page.locator('tr[data-problem-row="3"]').inner_text()
    assert page.locator('input[name="_save"]').count() == 0
    page.screenshot(path=os.path.join(output_dir, "1-refused-row.png"), full_page=True)
    assert CostRate.objects.count() == 0

    # when: the row is corrected, previewed and saved
    page.fill("#id_lines", PASTED.format(default="0.50"))
    page.click('input[name="_preview"]')
    page.wait_for_selector('input[name="_save"]')
    assert page.locator("#price-list-preview tr.rate-row").count() == 3
    page.screenshot(path=os.path.join(output_dir, "2-preview.png"), full_page=True)
    page.click('input[name="_save"]')
    page.wait_for_url(f"{base}/admin/plans/costrate/")

    # then: the three rows are in the list, per 1M
    assert page.locator("#result_list tbody tr").count() == 3
    assert "2.50 USD per 1M" in page.locator("#result_list").inner_text()
    page.screenshot(path=os.path.join(output_dir, "3-cost-rates.png"), full_page=True)
    assert sorted(CostRate.objects.values_list("unit_cost", "per")) == [
        (D("0.50"), D(1000000)),
        (D("2.50"), D(1000000)),
        (D(10), D(1000000)),
    ]
    assert set(CostRate.objects.values_list("effective_from", flat=True)) == {
        datetime(2026, 11, 1, tzinfo=UTC)
    }
