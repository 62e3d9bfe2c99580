"""A deal set in the admin, in a real browser (Debian's Chromium through
Playwright): a Finance user (the role setup_roles makes) opens a subscription,
gives it an enterprise deal from the next period and a coupon, and sees both on
the subscription's page, and the deal in the list and in its history.
Screenshots are saved in the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.models import Subscription
from plans.coupons import coupon_create
from tests.factories import CustomerFactory, MeterFactory, overrides_plan, subscribe


@pytest.mark.django_db(transaction=True)
def test_finance_gives_a_customer_a_deal_and_a_coupon_and_sees_them(
    live_server, browser_page, output_dir
):
    # given: S21's plan (19.99, 200 prompts included, 0.05 beyond) and acme on it
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    overrides_plan()
    acme = CustomerFactory(external_id="acme", name="Acme")
    subscription = subscribe(acme, "assistant", datetime(2026, 11, 1, tzinfo=UTC))
    coupon_create(
        code="LAUNCH20",
        name="Launch 20%",
        percent_off=D("20"),
        duration="repeating",
        duration_periods=3,
    )
    call_command("setup_roles", stdout=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page = browser_page

    # when: finance logs in and opens the subscription
    page.goto(f"{live_server.url}/admin/login/?next=/admin/billing/subscription/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/billing/subscription/")
    page.click(f'#result_list a[href$="/{subscription.pk}/change/"]')
    page.wait_for_url(f"**/admin/billing/subscription/{subscription.pk}/change/")

    # and gives it base 99.00, 1,000 prompts included and 0.02 a prompt beyond,
    # and the launch coupon (the plan and seats are ops' fields: not offered)
    assert page.locator("#id_new_version, #id_new_seats").count() == 0
    page.select_option("#id_coupon", "LAUNCH20")
    page.fill("#id_deal_base_fee", "99.00")
    page.select_option("#id_deal_meter", "prompts")
    page.fill("#id_deal_included_units", "1000")
    page.fill("#id_deal_unit_price", "0.02")
    page.screenshot(path=os.path.join(output_dir, "1-deal-form.png"), full_page=True)
    page.click("input[name=_continue]")

    # then: the page says the deal applies from the next period, beside the plan's values
    page.wait_for_selector(".messagelist .success")
    next_period = page.inner_text(".field-deal_next_period .readonly")
    discount = page.inner_text(".field-discount .readonly")
    page.screenshot(path=os.path.join(output_dir, "2-deal-saved.png"), full_page=True)
    assert next_period == (
        "Base fee 99.00 (plan: 19.99); prompts: 1,000 included (plan: 200), "
        "0.02 a unit (plan: 0.05 a unit)"
    )
    assert discount == "Launch 20% (LAUNCH20): 20 % off, 3 period invoices left"
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
                    "per": "1",
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
