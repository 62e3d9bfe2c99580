"""S37 in the browser: after 2 seats, then 5 from 16 Nov, and 130 prompts, the
portal's "So far" and its Limits' budget both say what the period's invoices will
bill (58.00 USD), read on 20 Nov in Chromium."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.subscriptions.lifecycle import subscription_set_seats
from billing.usage.ingestion import events_ingest
from customers.limits import limits_set
from customers.portal_links import portal_link_create
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_s37_the_portal_says_58_so_far_and_58_spent_of_the_budget(
    live_server, browser_page, output_dir
):
    # given: S37's customer, with a budget of 63.00 it set itself
    prompts_meter()
    version = published_version(
        "team",
        base_fee=D("20.00"),
        seat_price=D("10.00"),
        charges=(overage("prompts", 100, "0.10"),),
    )
    customer = CustomerFactory(external_id="acme", name="Acme")
    subscription = subscribe(customer, version, NOV_1, seats=2)
    events = [
        {"id": f"p-{i}", "customer": "acme", "event_name": "prompt"}
        | {"timestamp": NOV_10.isoformat()}
        for i in range(130)
    ]
    assert events_ingest(events=events, now=NOV_10).accepted == 130
    subscription_set_seats(subscription=subscription, seats=5, at=NOV_16)
    limits_set(
        customer=customer,
        document={"budget": {"amount": "63.00", "action": "alert"}},
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

    # when: the customer opens its portal on the 20th
    with time_machine.travel(NOV_20, tick=True):
        page.goto(f"{live_server.url}/portal/{token}/")
        page.screenshot(path=os.path.join(output_dir, "s37-portal.png"), full_page=True)

    # then: so far 58.00, and the budget's spent 58.00 of 63.00, 5.00 left
    assert page.locator("#subtotal").inner_text() == "58.00"
    budget = page.locator("#limits tr[data-limit='budget']")
    assert budget.locator(".spent").inner_text().startswith("58.00")
    assert budget.locator(".remaining").inner_text().startswith("5.00")
