"""A price change simulated in a real browser (Debian's Chromium through
Playwright): finance logs in to the admin, copies the published version as a
draft, lowers the overage price in the inline form, publishes it, simulates it
on last month's usage of the plan's subscribers and reads the difference.
Screenshots and the CSV are saved in the test's output directory."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.invoicing.close import periods_close
from billing.simulation.engine import simulation_run
from billing.subscriptions.lifecycle import subscription_create
from billing.usage.ingestion import events_ingest
from common.periods import month_start
from customers.models import Customer
from customers.services import customer_create
from plans.models import PlanVersion, PriceSimulation
from plans.pricing import PricingSpec
from plans.services import meter_create, plan_create
from plans.validation import ChargeSpec, VersionSpec

PASSWORD = "simulate-prices-1"
# Last month's prompts, 200 included: acme 200 over, beta 1000 over.
PROMPTS = {"acme": 400, "beta": 1200}


def last_month_of_usage() -> tuple[datetime, datetime]:
    """acme and beta on AI Assistant v1 (19.99, prompts over 200 at 0.05) since the
    start of last month, with last month's prompts, and last month closed."""
    now = datetime.now(UTC)
    start, end = month_start(now, months=-1), month_start(now)
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    version = plan_create(
        code="ai_assistant",
        name="AI Assistant",
        version=VersionSpec(
            currency="USD",
            base_fee=D("19.99"),
            charges=(
                ChargeSpec(
                    "prompts", "overage", D(200), pricing=PricingSpec("per_unit", D("0.05"))
                ),
            ),
        ),
        publish=True,
    )
    for external_id, prompts in PROMPTS.items():
        customer = customer_create(
            external_id=external_id, name=f"{external_id.title()} Inc", currency="USD"
        )
        subscription_create(customer=customer, plan=version.plan, start=start)
        day = start + timedelta(days=9, hours=12)
        events = [
            {
                "id": f"{external_id}-{i}",
                "customer": external_id,
                "event_name": "prompt",
                "timestamp": day.isoformat(),
            }
            for i in range(prompts)
        ]
        for first in range(0, prompts, 1000):
            batch = events[first : first + 1000]
            assert events_ingest(events=batch, now=end).accepted == len(batch)
    periods_close(as_of=end)
    return start, end


def finance_user() -> User:
    """A staff user in the Finance role (setup_roles)."""
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


def run_action(page, base: str, version: PlanVersion, action: str) -> None:
    page.goto(f"{base}/admin/plans/planversion/?plan__id__exact={version.plan_id}")
    page.check(f'input.action-select[value="{version.pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')


@pytest.mark.django_db(transaction=True)
def test_finance_publishes_a_lower_price_and_simulates_it_on_last_month(
    live_server, browser_page, output_dir
):
    # given: last month's usage on v1, and a finance user
    start, end = last_month_of_usage()
    finance_user()
    v1 = PlanVersion.objects.get(plan__code="ai_assistant", number=1)
    page, base = browser_page, live_server.url

    # when: finance logs in through the admin's form
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/")

    # copies v1 as a draft, lowers the prompts' price to 0.04 inline, saves
    run_action(page, base, v1, "copy_as_draft")
    assert "AI Assistant v2 created as a draft from v1" in (
        page.locator("ul.messagelist").inner_text()
    )
    v2 = PlanVersion.objects.get(plan__code="ai_assistant", number=2)
    page.goto(f"{base}/admin/plans/planversion/{v2.pk}/change/")
    price = page.locator('input[name="charges-0-unit_price"]')
    assert price.input_value() == "0.05"
    price.fill("0.04")
    page.screenshot(path=os.path.join(output_dir, "1-draft-price.png"), full_page=True)
    page.click('input[name="_save"]')
    assert "was changed successfully" in page.locator("ul.messagelist").inner_text()

    # publishes it
    run_action(page, base, v2, "publish")
    page.click("input[name=_confirm]")
    assert "AI Assistant v2 published" in page.locator("ul.messagelist").inner_text()
    v2.refresh_from_db()
    assert v2.status == PlanVersion.PUBLISHED
    assert v2.charges.get().unit_price == D("0.04")
    page.screenshot(path=os.path.join(output_dir, "2-published.png"), full_page=True)

    # and simulates it on last month, for the plan's subscribers, from the version's page
    page.goto(f"{base}/admin/plans/planversion/{v2.pk}/change/")
    page.click("#simulate-version")
    assert page.locator("#id_version").input_value() == str(v2.pk)
    assert page.locator("#id_month").input_value() == f"{start:%Y-%m}"
    assert page.locator("#id_period_start").input_value() == f"{start:%Y-%m-%dT%H:%M}"
    assert page.locator("#id_period_end").input_value() == f"{end:%Y-%m-%dT%H:%M}"
    page.select_option("#id_plan", label="AI Assistant")
    page.screenshot(path=os.path.join(output_dir, "3-simulate.png"), full_page=True)
    page.click('#simulation-form input[type="submit"]')

    # then: 200 prompts over at 0.04 instead of 0.05 saves acme 2.00, beta 10.00
    page.wait_for_selector("#simulation-rows")
    simulation = PriceSimulation.objects.get()
    assert page.url == f"{base}/admin/plans/pricesimulation/{simulation.pk}/result/"
    acme = page.locator('tr[data-customer="acme"]')
    assert acme.locator("td.version").inner_text() == "AI Assistant v1"
    assert acme.locator("td.current").inner_text() == "29.99"
    assert acme.locator("td.simulated").inner_text() == "27.99"
    assert acme.locator("td.difference").inner_text() == "-2.00"
    beta = page.locator('tr[data-customer="beta"]')
    assert beta.locator("td.current").inner_text() == "69.99"
    assert beta.locator("td.simulated").inner_text() == "59.99"
    assert beta.locator("td.difference").inner_text() == "-10.00"
    sums = page.locator("#simulation-sums")
    assert sums.locator("th.current").inner_text() == "99.98"
    assert sums.locator("th.simulated").inner_text() == "87.98"
    assert sums.locator("th.difference").inner_text() == "-12.00"
    assert page.locator("#simulation-status").inner_text() == "Done"
    page.screenshot(path=os.path.join(output_dir, "4-result.png"), full_page=True)

    # and downloads the CSV
    with page.expect_download() as download_info:
        page.click("#simulation-csv")
    path = os.path.join(output_dir, download_info.value.suggested_filename)
    download_info.value.save_as(path)
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == (
            "customer,name,current version,current total,simulated total,difference,currency,"
            "usage breakdown\n"
            "acme,Acme Inc,AI Assistant v1,29.99,27.99,-2.00,USD,\n"
            "beta,Beta Inc,AI Assistant v1,69.99,59.99,-10.00,USD,\n"
        )


@pytest.mark.django_db(transaction=True)
def test_the_result_page_follows_a_running_simulation_to_its_end(
    live_server, browser_page, output_dir
):
    # given: a simulation enqueued for a worker, not started yet
    start, end = last_month_of_usage()
    finance = finance_user()
    version = PlanVersion.objects.get(plan__code="ai_assistant", number=1)
    pending = PriceSimulation.objects.create(
        version=version,
        period_start=start,
        period_end=end,
        selection="subscribers of ai_assistant (2)",
        customer_ids=sorted(Customer.objects.values_list("id", flat=True)),
        currency="USD",
        total_customers=2,
        created_by=finance,
        created_at=end,
    )
    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/plans/pricesimulation/{pending.pk}/result/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')

    # when: the page shows the progress, and the worker runs the simulation
    assert page.locator("#simulation-progress-text").inner_text() == "0 of 2 customers rated"
    page.screenshot(path=os.path.join(output_dir, "running.png"), full_page=True)
    simulation_run(simulation_id=pending.pk, now=end)

    # then: the page polls, then shows the result without a click
    page.wait_for_selector("#simulation-rows")
    assert page.locator("#simulation-sums th.current").inner_text() == "99.98"
    assert page.locator("#simulation-sums th.difference").inner_text() == "0.00"
    page.screenshot(path=os.path.join(output_dir, "done.png"), full_page=True)
