"""Ops add a customer and subscribe it, in a real browser (Debian's Chromium
through Playwright): an Operations user (the role setup_roles makes) fills the
customer form (currency and country picked from lists, the address in its
fields), saves, clicks "Add subscription" on the customer's page, picks a
published version, sets the start with the date and time pickers, saves, and
reads the subscription named in words. Screenshots are saved in the test's
output directory."""

import os
import re
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.models import Subscription
from customers.models import Customer
from tests.factories import published_version

# What a page must never show: a stored decimal, a JSON box, a code-like label.
RAW_DECIMAL = re.compile(r"\d\.\d*0000\b|0E-10")


def assert_reads_in_words(page) -> None:
    text = page.inner_text("#content")
    assert not RAW_DECIMAL.search(text), RAW_DECIMAL.search(text)
    assert page.locator("textarea").count() == 0
    for code_like in ("pro v1 (published)", "#1 ", "spend_limit", "alert_thresholds"):
        assert code_like not in text, code_like


@pytest.mark.django_db(transaction=True)
def test_ops_add_a_customer_and_subscribe_it(live_server, browser_page, output_dir):
    # given: Pro v1 published at 49.00 a month, and an Operations user
    pro = published_version("pro", base_fee=D("49.00"))
    pro.plan.name = "Pro"
    pro.plan.save(update_fields=["name"])
    call_command("setup_roles", stdout=StringIO())
    ops = User.objects.create_user("ops", password="ops-password-1", is_staff=True)
    ops.groups.add(Group.objects.get(name="Operations"))
    page = browser_page
    add_url = f"{live_server.url}/admin/customers/customer/add/"

    page.goto(f"{live_server.url}/admin/login/?next=/admin/customers/customer/add/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(add_url)
    page.screenshot(path=os.path.join(output_dir, "1-empty-customer-form.png"), full_page=True)
    assert page.inner_text("label[for=id_address_country]") == "Country:"
    assert_reads_in_words(page)

    # when: ops fill in the customer, picking the currency and the country
    page.fill("#id_external_id", "acme")
    page.fill("#id_name", "Acme Inc")
    page.fill("#id_email", "billing@acme.test")
    page.select_option("#id_currency", label="USD — US Dollar")
    page.fill("#id_address_line1", "42 Harbour Road")
    page.fill("#id_address_city", "Seattle")
    page.fill("#id_address_postal_code", "98101")
    page.fill("#id_address_state", "WA")
    page.select_option("#id_address_country", label="United States")
    page.fill("#id_spend_limit", "500")
    page.fill("#id_alert_thresholds", "50, 80, 100")
    page.fill("#id_invoice_emails", "ap@acme.test, cfo@acme.test")
    page.screenshot(path=os.path.join(output_dir, "2-filled-customer-form.png"), full_page=True)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    # then: saved with the API's address keys, the thresholds and recipients as lists
    acme = Customer.objects.get(external_id="acme")
    assert (acme.currency, acme.spend_limit) == ("USD", D(500))
    assert acme.address == {
        "line1": "42 Harbour Road",
        "city": "Seattle",
        "postal_code": "98101",
        "state": "WA",
        "country": "US",
    }
    assert acme.alert_thresholds == [50, 80, 100]
    assert acme.invoice_emails == ["ap@acme.test", "cfo@acme.test"]
    assert page.input_value("#id_spend_limit") == "500"
    assert page.locator("#id_address_country option:checked").inner_text() == "United States"

    # when: ops click "Add subscription" on the customer's page
    page.click("#add-subscription")
    page.wait_for_selector("#id_version")
    assert page.locator("#id_customer option:checked").inner_text() == "Acme Inc (acme)"
    assert page.inner_text(".field-start label") == "Start (UTC):"
    page.select_option("#id_version", label="Pro v1 — 49.00 USD / month")
    # the date typed, the time from the clock picker
    page.fill("#id_start_0", "2026-11-01")
    page.click("#clocklink0")
    page.click("#clockbox0 a:text('Midnight')")
    assert page.input_value("#id_start_1") == "00:00:00"
    page.screenshot(path=os.path.join(output_dir, "3-subscription-form.png"), full_page=True)
    assert_reads_in_words(page)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    # then: ops land on the subscription, named in words
    subscription = Subscription.objects.get(customer=acme)
    assert subscription.started_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert page.url.endswith(f"/admin/billing/subscription/{subscription.pk}/change/")
    assert page.inner_text(".messagelist .success") == "Acme Inc — Pro v1 (active) created"
    assert "Acme Inc — Pro v1 (active)" in page.inner_text("#content")
    assert page.inner_text(".field-started .readonly") == "1 Nov 2026, 00:00 (UTC)"
    page.screenshot(path=os.path.join(output_dir, "5-subscription-page.png"), full_page=True)
    assert_reads_in_words(page)

    # and the customer's page lists it
    page.goto(f"{live_server.url}/admin/customers/customer/{acme.pk}/change/")
    row = page.locator("#customer-subscriptions tbody tr").first
    assert row.locator("td").first.inner_text() == "Acme Inc — Pro v1 (active)"
    page.screenshot(
        path=os.path.join(output_dir, "4-customer-with-subscription.png"), full_page=True
    )
    assert_reads_in_words(page)
