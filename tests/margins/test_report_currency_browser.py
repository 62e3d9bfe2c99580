"""The dashboard's margin tile in a report currency, in a real browser (Debian's
Chromium through Playwright): Finance opens the admin's index on 25 Oct with
S41's three customers (USD, EUR, JPY), reads a row a currency, chooses USD in
the report currency selector and reads one row of every customer converted:
25.00 + 23.00 / 0.92 + 3,900 / 156 = 75.00 USD. Screenshots in the test's
output directory."""

import os

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from tests.margins.test_report_currency import OCT_25, s41, usd_cost_per_million, usd_to

PASSWORD = "read-the-margins-1"


@pytest.mark.django_db(transaction=True)
def test_finance_reads_the_month_in_usd_on_the_dashboard(live_server, browser_page, output_dir):
    # given: S41 on 25 Oct (October accruing, nothing invoiced), the rates
    # from 1 Sep, a cost of 1.00 USD per 1M tokens, and a Finance user
    s41()
    usd_to("EUR", "0.92")
    usd_to("JPY", "156")
    usd_cost_per_million("1.00")
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url

    with time_machine.travel(OCT_25):
        # when: Finance logs in to the admin's index
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", "finance")
        page.fill("#id_password", PASSWORD)
        page.click('input[type="submit"]')
        page.wait_for_url(f"{base}/admin/")

        # then: a row a currency, unconverted
        rows = page.locator("#dashboard-margins tr.margin-row")
        assert [rows.nth(n).locator("th").inner_text() for n in range(rows.count())] == [
            "EUR",
            "JPY",
            "USD",
        ]
        assert rows.nth(1).locator("td").first.inner_text() == "3,900 JPY"
        assert page.locator("#id_report_currency").input_value() == ""
        page.screenshot(path=os.path.join(output_dir, "1-each-currency.png"), full_page=True)

        # when: Finance chooses USD as the report currency
        page.select_option("#id_report_currency", "USD")
        with page.expect_navigation():
            page.click('#report-currency-form input[type="submit"]')

        # then: one row, every customer converted: 75.00 USD earned, 30.00 of
        # cost (30M tokens), 45.00 of margin
        assert page.url == f"{base}/admin/?report_currency=USD"
        row = page.locator("#dashboard-margins tr.margin-row")
        assert row.count() == 1
        assert row.locator("th").inner_text() == "USD, every customer converted"
        assert [row.locator("td").nth(n).inner_text() for n in range(4)] == [
            "75.00 USD",
            "30.00 USD",
            "45.00 USD",
            "60%",
        ]
        assert page.locator("#id_report_currency").input_value() == "USD"
        assert page.locator("#report-currency-note").is_visible()
        assert page.locator("#report-currency-missing").count() == 0
        page.locator("#dashboard-margins").screenshot(path=os.path.join(output_dir, "2-in-usd.png"))
