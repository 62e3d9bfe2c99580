"""A period with a coupon in the browser (issue 93): the portal's budget counts
November's invoice lines net of their share of the 20 % off
(tests/billing/test_spend_net_of_discount.py's month: 43.00 gross, 34.40 net), not
the figure before the discount, and its projection after the discount takes off
only November's share, read on 20 Nov in Chromium."""

import os
from datetime import UTC, datetime

import pytest
import time_machine

from customers.limits import limits_set
from customers.portal_links import portal_link_create
from tests.billing.test_spend_net_of_discount import NOV_16, acme  # noqa: F401

NOV_20 = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_the_portal_counts_the_spend_net_of_the_periods_share_of_the_discount(
    live_server,
    browser_page,
    output_dir,
    acme,  # noqa: F811
):
    customer = acme.customer
    limits_set(
        customer=customer,
        document={"budget": {"amount": "40.00", "action": "alert"}},
        by="tests",
        via="api",
        now=NOV_16,
    )
    _, token = portal_link_create(
        customer=customer,
        manage=False,
        holder="tests",
        expires_in_days=30,
        created_by="tests",
        now=NOV_16,
    )
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})

    with time_machine.travel(NOV_20, tick=True):
        page.goto(f"{live_server.url}/portal/{token}/")
        page.screenshot(path=os.path.join(output_dir, "portal-discount.png"), full_page=True)

    # November's lines so far bill 43.00; their share of the discount is 8.60
    # (6.00 stamped on the fees billed in advance, 2.60 of the closing invoice's):
    # the budget has 34.40 spent. Projected to the 30th, the lines bill 50.13, 40.10
    # after their share of the discount.
    assert page.locator("#subtotal").inner_text() == "43.00"
    assert page.locator("#projected").inner_text() == "50.13"
    assert page.locator("#projected-after-discount").inner_text() == "40.10"
    budget = page.locator("#limits tr[data-limit='budget']")
    assert budget.locator(".spent").inner_text().startswith("34.40")
    assert budget.locator(".remaining").inner_text().startswith("5.60")
