"""A French admin user adds a subscription for a Tokyo customer in a real
browser (Debian's Chromium through Playwright), at 1366 px: the start is labelled
with the customer's zone, typed there, and the page then reads the start and the
current period in Tokyo. Screenshots are saved in the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from billing.models import Subscription
from config.user_language import user_language_set
from tests.factories import CustomerFactory, published_version

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "marie-password-1"


def test_a_french_user_types_a_tokyo_start_in_tokyo(live_server, browser_page, output_dir):
    # given: a Tokyo customer, a published plan and a French admin user
    customer = CustomerFactory(external_id="kaisha", name="Kaisha KK", timezone_name="Asia/Tokyo")
    version = published_version("pro", base_fee=D("49.00"))
    user = User.objects.create_superuser("marie", password=PASSWORD)
    user_language_set(user=user, language="fr")
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "marie")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # when: she opens Add subscription from the customer (its zone is known)
    page.goto(f"{base}/admin/billing/subscription/add/?customer={customer.pk}")
    page.wait_for_selector("#id_start_0")
    page.screenshot(path=os.path.join(output_dir, "zones_add_fr.png"), full_page=True)

    # then: the start says the customer's zone
    assert "Début (Asia/Tokyo)" in page.locator(".field-start").inner_text()

    # when: she types 1 Nov 2026, 00:00 and saves
    page.select_option("#id_version", str(version.pk))
    page.fill("#id_start_0", "2026-11-01")
    page.fill("#id_start_1", "00:00:00")
    page.fill("#id_seats", "1")
    page.select_option("#id_billing_anchor", "calendar")
    page.click("input[name=_save]")
    page.wait_for_selector(".field-period")
    page.screenshot(path=os.path.join(output_dir, "zones_change_fr.png"), full_page=True)

    # then: it started at midnight in Tokyo, and the page reads it there
    assert Subscription.objects.get().started_at == datetime(2026, 10, 31, 15, tzinfo=UTC)
    assert "1 nov. – 30 nov. 2026 (Asia/Tokyo)" in page.locator(".field-period").inner_text()  # noqa: RUF001
    assert "Changement immédiat le (Asia/Tokyo)" in page.locator(".field-at").inner_text()
    # and its history reads the start in Tokyo, nowhere in UTC
    history = page.locator(".inline-group").inner_text()
    assert "1 nov. 2026, 00:00 (Asia/Tokyo)" in history and "UTC" not in history
