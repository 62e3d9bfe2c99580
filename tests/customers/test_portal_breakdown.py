"""The portal's breakdown of a grouping meter (issue 19): a table of its largest
groups and "Other", and its daily bars stacked by those groups, in a real
browser too (Debian's Chromium through Playwright; screenshots saved)."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.usage.ingestion import events_ingest
from customers.portal import portal_overview, portal_session_create
from customers.services import customer_create
from plans.services import meter_create
from tests.factories import overage, published_version, subscribe

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
# model -> tokens on 3 Nov and on 4 Nov
USED = {
    "gpt-4o": (400, 600),
    "o1": (300, 200),
    "mini": (150, 0),
    "o3": (90, 10),
    "haiku": (50, 20),
    "llama": (30, 0),
    "mistral": (0, 25),
}


def setup_acme():
    meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
    )
    published_version("chat", base_fee=D("10.00"), charges=(overage("tokens", 1000, "0.01"),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "chat", NOV_1)
    events = []
    for model, per_day in USED.items():
        for day, tokens in zip((3, 4), per_day, strict=True):
            if tokens:
                events.append(
                    {
                        "id": f"{model}-{day}",
                        "customer": "acme",
                        "event_name": "llm",
                        "timestamp": f"2026-11-0{day}T12:00:00Z",
                        "properties": {"tokens": tokens, "model": model},
                    }
                )
    events.append(
        {
            "id": "bare",
            "customer": "acme",
            "event_name": "llm",
            "timestamp": "2026-11-04T13:00:00Z",
            "properties": {"tokens": 5},
        }
    )
    assert not events_ingest(events=events, now=NOV_20).rejected
    return customer


@pytest.mark.django_db
def test_the_portal_breaks_a_grouping_meter_down():
    customer = setup_acme()

    overview = portal_overview(customer=customer, now=NOV_20)

    (tokens,) = overview.features
    assert tokens.quantity == D(1880)
    assert tokens.breakdown_property == "model"
    assert [(label, quantity) for _, label, quantity in tokens.breakdown] == [
        ("gpt-4o", D(1000)),
        ("o1", D(500)),
        ("mini", D(150)),
        ("o3", D(100)),
        ("haiku", D(70)),
        ("Other", D(60)),  # llama 30, mistral 25 and 5 without a model
    ]
    (chart,) = overview.charts
    assert chart.series == ("gpt-4o", "o1", "mini", "o3", "haiku", "Other")
    by_day = dict(zip([day for day, _ in chart.days], chart.stacked, strict=True))
    assert by_day[datetime(2026, 11, 3).date()] == (
        D(400),
        D(300),
        D(150),
        D(90),
        D(50),
        D(30),
    )
    assert by_day[datetime(2026, 11, 4).date()] == (D(600), D(200), D(0), D(10), D(20), D(30))
    # every day's stack is its bar
    for (_, quantity), stack in zip(chart.days, chart.stacked, strict=True):
        assert sum(stack, D(0)) == quantity


@pytest.mark.django_db(transaction=True)
def test_the_portal_breakdown_in_a_browser(live_server, browser_page, output_dir):
    customer = setup_acme()
    token = portal_session_create(customer=customer, now=NOV_20).token
    page = browser_page

    with time_machine.travel(NOV_20, tick=True):
        page.goto(f"{live_server.url}/portal/{token}/")
        page.wait_for_selector("table.breakdown")
        page.screenshot(path=os.path.join(output_dir, "portal-breakdown.png"), full_page=True)

        rows = page.locator("table.breakdown tr").all_inner_texts()
        legend = page.inner_text(".chart .legend")

    assert [" ".join(row.split()) for row in rows] == [
        "gpt-4o 1,000",  # grouped, as every number the customer reads
        "o1 500",
        "mini 150",
        "o3 100",
        "haiku 70",
        "Other 60",
    ]
    assert " ".join(legend.split()) == "gpt-4o o1 mini o3 haiku Other"
    assert page.locator(".chart rect.series-5").count() == 2


@pytest.mark.django_db
def test_the_admin_customer_page_shows_the_breakdown(admin_client):
    customer = setup_acme()

    with time_machine.travel(NOV_20, tick=False):
        page = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    assert (
        "By model: gpt-4o 1,000; o1 500; mini 150; o3 100; haiku 70; Other 60"
        in page.content.decode()
    )
