"""The margins page in a real browser (Debian's Chromium through Playwright):
Finance logs in, finds Margins under Billing, asks for November by customer and
reads S26, then by token type, and downloads the CSV. Screenshots in the test's
output directory."""

import os
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.invoicing.close import periods_close
from tests.margins.test_margins_api import s26, s26_usage  # noqa: F401 (s26: a fixture)

PASSWORD = "read-the-margins-1"
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_finance_reads_s26_on_the_margins_page(s26, live_server, browser_page, output_dir):  # noqa: F811
    # given: S26's November closed, and a Finance user
    s26_usage()
    periods_close(as_of=DEC_1)
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url

    with time_machine.travel(DEC_5):
        # when: Finance logs in and opens Margins from the admin's index
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", "finance")
        page.fill("#id_password", PASSWORD)
        page.click('input[type="submit"]')
        page.wait_for_url(f"{base}/admin/")
        page.click('#content-main a[href="/admin/billing/marginreport/"]')
        page.wait_for_selector("#margins-form")
        assert page.locator("#id_period_start").input_value() == "2026-12-01T00:00"

        # and asks for November by customer
        page.fill("#id_period_start", "2026-11-01T00:00")
        page.fill("#id_period_end", "2026-12-01T00:00")
        page.select_option("#id_group_by", "customer")
        page.click('#margins-form input[type="submit"]')
        page.wait_for_selector("#margins-table")

        # then: S26's figures, acme among the lowest margins, November in the chart
        acme = page.locator('#margins-table tr[data-key="acme"]')
        assert [
            acme.locator(f"td.{name}").inner_text()
            for name in ("revenue", "cost", "margin", "percent", "uncosted")
        ] == ["7.00", "3.25", "3.75", "53.57%", "0"]
        assert page.locator('#margins-lowest tr[data-key="acme"] td.percent').inner_text() == (
            "53.57%"
        )
        november = page.locator('#margins-months tr[data-month="2026-11"]')
        assert november.locator("td.margin").inner_text() == "3.75 USD"
        assert page.locator("#margins-chart svg rect").count() == 18
        page.screenshot(path=os.path.join(output_dir, "1-margins-by-customer.png"), full_page=True)

        # and by token type, with its CSV
        page.select_option("#id_group_by", "token_type")
        page.click('#margins-form input[type="submit"]')
        page.wait_for_selector('#margins-table tr[data-key="output"]')
        assert page.locator('#margins-table tr[data-key="input"] td.margin').inner_text() == (
            "2.75"
        )
        by_type = os.path.join(output_dir, "2-margins-by-token-type.png")
        page.screenshot(path=by_type, full_page=True)
        with page.expect_download() as download_info:
            page.click("#margins-csv")
        path = os.path.join(output_dir, download_info.value.suggested_filename)
        download_info.value.save_as(path)
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == (
            "token_type,revenue,cost,margin,margin_percent,uncosted_quantity,currency\n"
            "input,5.00,2.25,2.75,55.00,0,USD\n"
            "output,2.00,1.00,1.00,50.00,0,USD\n"
        )
