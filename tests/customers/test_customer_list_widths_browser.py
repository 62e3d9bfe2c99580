"""The customer list (Customers and API keys, Customers) at common screen widths
(1280 and 1400 px), as Finance reads it (the margin column too), with a long name
and email: every column, standing and dunning included, is on the screen (issue 55's
lists at common widths; the standing columns were cut off at 1280 px)."""

import os
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from tests.factories import CustomerFactory

LONG_NAME = (
    "Internationale Gesellschaft für Datenverarbeitung und Künstliche Intelligenz "
    "Forschungs- und Entwicklungsabteilung Süd GmbH & Co. KG"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 1400])
def test_every_customer_column_is_on_the_screen(live_server, browser_page, output_dir, width):
    # given: a customer with a long name and email, and a Finance user (margin column)
    from django.core.management import call_command

    call_command("setup_roles", verbosity=0)
    CustomerFactory(
        external_id="igdki-sued-gmbh-co-kg-2026",
        name=LONG_NAME,
        email="rechnungswesen.forschung-und-entwicklung@igdki-sued.example",
        timezone_name="America/Argentina/Buenos_Aires",
    )
    CustomerFactory(external_id="capped", spend_limit=Decimal("1500"), spend_limit_mode="soft")
    user = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/customers/customer/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    page.screenshot(path=os.path.join(output_dir, f"customers-{width}.png"), full_page=True)

    # then: each heading lies inside the list's own box (which hides what it cannot hold)
    results = page.locator("#changelist .results").bounding_box()
    headers = page.locator("#result_list thead th")
    texts = [headers.nth(i).inner_text().strip().lower() for i in range(headers.count())]
    assert any("standing" in t for t in texts) and any("dunning" in t for t in texts), texts
    assert any("margin" in t for t in texts), texts
    for i in range(headers.count()):
        box = headers.nth(i).bounding_box()
        assert box["x"] >= results["x"] and box["x"] + box["width"] <= min(
            width, results["x"] + results["width"] + 0.5
        ), (texts[i], box, results)
    assert page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth <= r.clientWidth; })()"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # a limit reads with what it does, in the column of its own
    capped = page.locator("#result_list tbody tr", has_text="capped")
    assert (
        capped.locator("td.field-spend_limit_display").inner_text() == "1,500.00 USD (alert only)"
    )
