"""The subscription list (Billing, Subscriptions) and "Add subscription" at common screen widths
(1280 and 1400 px) with a long customer name (issue 55), in a real browser
(Debian's Chromium through Playwright): every column of the list is on the
screen, and the customer select of the add form stays on the page and finds the
customer by part of its ID (a search, not a list of every customer).
Screenshots are saved in the test's output directory."""

import os

import pytest
from django.contrib.auth.models import User

from tests.factories import CustomerFactory, PlanVersionFactory, subscribe

LONG_NAME = (
    "Internationale Gesellschaft für Datenverarbeitung und Künstliche Intelligenz "
    "Forschungs- und Entwicklungsabteilung Süd GmbH & Co. KG"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 1400])
def test_subscriptions_fit_the_screen_with_a_long_customer_name(
    live_server, browser_page, output_dir, width
):
    # given: a subscription of a customer with a long name
    customer = CustomerFactory(external_id="igdki-sued-gmbh-co-kg-2026", name=LONG_NAME)
    version = PlanVersionFactory(plan__code="pro", plan__name="Pro")
    subscribe(customer, version.plan)
    User.objects.create_superuser("admin", password="admin-password-1")
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/billing/subscription/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    page.screenshot(path=os.path.join(output_dir, f"list-{width}.png"), full_page=True)

    # then: each column's heading and the customer's cell are on the screen
    # (inside the list's own box, which scrolls sideways and hides what it cannot hold)
    results = page.locator("#changelist .results").bounding_box()
    headers = page.locator("#result_list thead th")
    assert headers.count() == 8
    for i in range(headers.count()):
        box = headers.nth(i).bounding_box()
        assert box["x"] >= results["x"] and box["x"] + box["width"] <= min(
            width, results["x"] + results["width"] + 0.5
        ), (headers.nth(i).inner_text(), box, results)
    assert page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth <= r.clientWidth; })()"
    )
    cell = page.locator("#result_list tbody td.field-customer").first.bounding_box()
    assert cell["x"] + cell["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # when: the add form's customer select lists the long name
    page.goto(f"{base}/admin/billing/subscription/add/")
    page.wait_for_selector("#id_customer")
    page.screenshot(path=os.path.join(output_dir, f"add-{width}.png"), full_page=True)

    # then: the select stays on the page
    select = page.locator(".field-customer select, .field-customer .select2-container").first
    box = select.bounding_box()
    assert box["x"] + box["width"] <= width, box
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # when: part of the customer's ID is typed in the customer field
    page.click(".field-customer .select2-selection")
    page.fill(".select2-search__field", "sued-gmbh")
    found = page.locator(".select2-results__option", has_text="Künstliche Intelligenz")
    found.wait_for()
    page.screenshot(path=os.path.join(output_dir, f"add-search-{width}.png"), full_page=True)
    found.click()

    # then: the customer is picked
    assert page.locator("#id_customer").input_value() == str(customer.pk)
