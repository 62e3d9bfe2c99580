"""The margins page in a real browser (Debian's Chromium through Playwright):
Finance logs in, finds Margins under Billing, asks for November by customer and
reads S26 on the first of two pages (150 more customers who only cost), goes to
the second page and back, sorts by lowest margin, then by token type, and
downloads the CSV. Screenshots in the test's output directory."""

import os
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.invoicing.close import periods_close
from customers.models import Customer
from tests.margins.test_margins_api import (  # noqa: F401 (s26: a fixture)
    _s26_once,
    post_events,
    s26,
    s26_usage,
    tokens_event,
)

PASSWORD = "read-the-margins-1"
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_finance_reads_s26_on_the_margins_page(s26, live_server, browser_page, output_dir):  # noqa: F811
    # given: S26's November closed, 150 customers with no plan who each used
    # 200,000 input tokens on Nov 12 (0.25 USD of cost, no revenue), and a
    # Finance user
    s26_usage()
    periods_close(as_of=DEC_1)
    Customer.objects.bulk_create(
        Customer(external_id=f"trial-{n:03d}", name=f"Trial {n}", currency="USD")
        for n in range(150)
    )
    post_events(
        [
            tokens_event(f"t{n}", "2026-11-12T08:00:00Z", 200_000, "input")
            | {"customer": f"trial-{n:03d}"}
            for n in range(150)
        ]
    )
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
        # (the page shows the default window's table already: wait for the answer's page)
        with page.expect_navigation():
            page.click('#margins-form input[type="submit"]')

        # then: S26's figures on the first page, November in the chart
        acme = page.locator('#margins-table tr[data-key="acme"]')
        assert [
            acme.locator(f"td.{name}").inner_text()
            for name in ("revenue", "cost", "margin", "percent", "uncosted")
        ] == ["7.00", "3.25", "3.75", "53.57%", "0"]
        # the lowest margins: trials that cost without earning come before acme
        lowest = page.locator("#margins-lowest tbody tr")
        assert [lowest.nth(n).get_attribute("data-key") for n in range(lowest.count())] == [
            f"trial-{n:03d}" for n in range(5)
        ]
        assert lowest.first.locator("td.margin").inner_text() == "-0.25"
        november = page.locator('#margins-months tr[data-month="2026-11"]')
        # (S26's 3.75 less the trials' 150 x 0.25)
        assert november.locator("td.margin").inner_text() == "-33.75 USD"
        assert page.locator("#margins-chart svg rect").count() == 18
        assert page.locator("#margins-table tbody tr").count() == 100
        assert page.locator("#margins-pages .count").inner_text() == "Rows 1 to 100 of 151"
        total = page.locator("#margins-total")
        assert [total.locator(f"td.{name}").inner_text() for name in ("revenue", "cost")] == [
            "7.00",
            "40.75",  # 3.25 + 150 x 0.25
        ]
        page.screenshot(path=os.path.join(output_dir, "1-margins-by-customer.png"), full_page=True)

        # and the second page: the last 51 customers, the total, no chart
        page.click("#margins-next")
        page.wait_for_selector("#margins-first-page")
        assert page.locator("#margins-table tbody tr").count() == 51
        assert page.locator("#margins-chart").count() == 0
        assert page.locator("#margins-total td.cost").inner_text() == "40.75"
        page.screenshot(path=os.path.join(output_dir, "2-margins-page-2.png"), full_page=True)

        # and sorted by margin, lowest first: the trials' losses, acme last
        page.click("#sort-margin a")
        page.wait_for_selector("#sort-margin.sorted.ascending")
        first = page.locator("#margins-table tbody tr").first
        assert first.get_attribute("data-key") == "trial-000"
        assert first.locator("td.margin").inner_text() == "-0.25"
        assert page.locator("#id_sort").input_value() == "margin"
        page.screenshot(path=os.path.join(output_dir, "3-margins-lowest-first.png"), full_page=True)
        page.select_option("#id_sort", "-revenue")

        # and by token type, with its CSV
        page.select_option("#id_group_by", "token_type")
        page.click('#margins-form input[type="submit"]')
        page.wait_for_selector('#margins-table tr[data-key="output"]')
        # (input: S26's 5.00 and 2.25, and the trials' 150 x 0.25 of cost)
        assert page.locator('#margins-table tr[data-key="input"] td.margin').inner_text() == (
            "-34.75"
        )
        by_type = os.path.join(output_dir, "4-margins-by-token-type.png")
        page.screenshot(path=by_type, full_page=True)
        with page.expect_download() as download_info:
            page.click("#margins-csv")
        path = os.path.join(output_dir, download_info.value.suggested_filename)
        download_info.value.save_as(path)
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == (
            "token_type,revenue,cost,margin,margin_percent,uncosted_quantity,currency,error,"
            "missing_rates\n"
            "input,5.00,39.75,-34.75,-695.00,0,USD,,\n"
            "output,2.00,1.00,1.00,50.00,0,USD,,\n"
        )


@pytest.mark.django_db(transaction=True)
def test_paris_reads_its_months_on_the_margins_page(s26, live_server, browser_page, output_dir):  # noqa: F811
    """Issue 93: the page in Europe/Paris names Paris's months ("Oct 2026" for
    October, which starts at 22:00 UTC on 30 Sep and was labelled "Sep 2026")."""
    # given: S26's November closed and a Finance user
    s26_usage()
    periods_close(as_of=DEC_1)
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url

    with time_machine.travel(DEC_5):
        # when: Finance opens Margins and chooses Europe/Paris
        page.goto(f"{base}/admin/login/?next=/admin/billing/marginreport/")
        page.fill("#id_username", "finance")
        page.fill("#id_password", PASSWORD)
        page.click('input[type="submit"]')
        page.wait_for_selector("#margins-form")
        page.select_option("#id_tz", "Europe/Paris")
        page.fill("#id_period_start", "2026-11-01T00:00")
        page.fill("#id_period_end", "2026-12-01T00:00")
        with page.expect_navigation():
            page.click('#margins-form input[type="submit"]')

        # then: the chart says it is in Paris and names July to December there
        chart = page.locator("#margins-chart")
        assert chart.locator("h2").inner_text() == (
            "Revenue, cost and margin by month (Europe/Paris), USD"
        )
        months = page.locator("#margins-months tbody tr")
        assert [
            [months.nth(n).get_attribute("data-month")]
            + [cell.inner_text() for cell in months.nth(n).locator("td").all()]
            for n in range(months.count())
        ] == [
            ["2026-07", "Jul 2026", "0.00 USD", "0.00 USD", "0.00 USD"],
            ["2026-08", "Aug 2026", "0.00 USD", "0.00 USD", "0.00 USD"],
            ["2026-09", "Sep 2026", "0.00 USD", "0.00 USD", "0.00 USD"],
            ["2026-10", "Oct 2026", "0.00 USD", "0.00 USD", "0.00 USD"],
            ["2026-11", "Nov 2026", "7.00 USD", "3.25 USD", "3.75 USD"],
            ["2026-12", "Dec 2026", "0.00 USD", "0.00 USD", "0.00 USD"],
        ]
        assert chart.locator("svg text").all_text_contents() == [
            "Jul 2026",
            "Aug 2026",
            "Sep 2026",
            "Oct 2026",
            "Nov 2026",
            "Dec 2026",
        ]
        chart.screenshot(path=os.path.join(output_dir, "margins-months-in-paris.png"))
