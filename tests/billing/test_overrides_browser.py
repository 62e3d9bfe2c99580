"""A deal set in the admin, in a real browser (Debian's Chromium through
Playwright): an administrator opens a subscription, gives it an enterprise deal
from the next period, and sees the deal on the subscription's page, in the list
and in its history. Screenshots are saved in the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from billing.models import Subscription
from tests.factories import CustomerFactory, MeterFactory, overrides_plan, subscribe


@pytest.mark.django_db(transaction=True)
def test_an_administrator_gives_a_customer_a_deal_and_sees_it(
    live_server, browser_page, output_dir
):
    # given: S21's plan (19.99, 200 prompts included, 0.05 beyond) and acme on it
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    overrides_plan()
    acme = CustomerFactory(external_id="acme", name="Acme")
    subscription = subscribe(acme, "assistant", datetime(2026, 11, 1, tzinfo=UTC))
    User.objects.create_superuser("boss", password="boss-password-1")
    page = browser_page

    # when: the administrator logs in and opens the subscription
    page.goto(f"{live_server.url}/admin/login/?next=/admin/billing/subscription/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "boss-password-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/billing/subscription/")
    page.click(f'#result_list a[href$="/{subscription.pk}/change/"]')

    # and gives it base 99.00, 1,000 prompts included and 0.02 a prompt beyond
    page.fill("#id_deal_base_fee", "99.00")
    page.select_option("#id_deal_meter", "prompts")
    page.fill("#id_deal_included_units", "1000")
    page.fill("#id_deal_unit_price", "0.02")
    page.screenshot(path=os.path.join(output_dir, "1-deal-form.png"), full_page=True)
    page.click("input[name=_continue]")

    # then: the page says the deal applies from the next period, beside the plan's values
    page.wait_for_selector(".messagelist .success")
    next_period = page.inner_text(".field-deal_next_period .readonly")
    page.screenshot(path=os.path.join(output_dir, "2-deal-saved.png"), full_page=True)
    assert next_period == (
        "Base fee 99.00 (plan: 19.99); prompts: 1,000 included (plan: 200), "
        "0.02 a unit (plan: 0.05 a unit)"
    )
    subscription.refresh_from_db()
    assert subscription.next_overrides == {
        "base_fee": "99.00",
        "charges": [
            {
                "meter": "prompts",
                "included_units": "1000",
                "pricing": {
                    "scheme": "per_unit",
                    "unit_price": "0.02",
                    "package_size": None,
                    "package_price": None,
                    "tiers": [],
                },
            }
        ],
    }

    # and the history lists the change
    page.click("a.historylink")
    page.wait_for_selector("#change-history")
    page.screenshot(path=os.path.join(output_dir, "3-history.png"), full_page=True)
    assert page.locator("#change-history tbody tr").count() >= 2
    assert Subscription.history.filter(id=subscription.pk).latest().next_overrides["base_fee"] == (
        "99.00"
    )
    assert D(subscription.next_overrides["base_fee"]) == D("99.00")
