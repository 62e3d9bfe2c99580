"""S37, spend after a seat change is what the invoices bill (SCENARIOS.md):
November, 30 days. Base fee 20.00 and seats at 10.00, both billed in advance;
100 prompts included, then 0.10 each. 2 seats from 1 Nov (start invoice 40.00);
5 seats from 16 Nov 00:00 (3 seats x 10.00 x 15/30 = 15.00); 130 prompts (3.00).
The period bills 58.00, and /usage, the portal's subtotal, its Limits and the
dashboard say 58.00; a hard spend limit of 63.00 allows 40 prompts (4.00) and
refuses 60 (6.00) with 5.00 left. Seats cut from 5 to 2 instead: the spend never
counts fewer seats than the invoices bill."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing import dashboard
from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import subscription_set_seats
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from customers.portal import portal_session_create
from invoices.models import Invoice, InvoiceLine
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    api_client,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def acme(db):
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    version = published_version(
        "team",
        base_fee=D("20.00"),
        seat_price=D("10.00"),
        charges=(overage("prompts", 100, "0.10"),),
    )
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, version, NOV_1, seats=2)
    events = [
        {"id": f"p-{i}", "customer": "acme", "event_name": "prompt"}
        | {"timestamp": NOV_10.isoformat()}
        for i in range(130)
    ]
    assert events_ingest(events=events, now=NOV_10).accepted == 130
    return subscription


def period_billed(subscription) -> D:
    """What the invoices bill for November, once closed (start, seat change, close)."""
    lines = InvoiceLine.objects.filter(
        invoice__subscription=subscription, period_start__gte=NOV_1, period_end__lte=DEC_1
    ).exclude(invoice__status=Invoice.VOID)
    return sum(lines.values_list("amount", flat=True), D(0))


def check(api, prompts: int) -> dict:
    body = {"meter": "prompts", "quantity": str(prompts)}
    return api.post("/api/v1/customers/acme/check", body, format="json").json()


def test_after_five_seats_from_the_16th_every_page_says_58(acme, client):
    start_invoice = Invoice.objects.get(subscription=acme)
    assert start_invoice.total == D("40.00")
    subscription_set_seats(subscription=acme, seats=5, at=NOV_16)
    Customer.objects.filter(pk=acme.customer_id).update(
        spend_limit=D("63.00"), spend_limit_mode="hard"
    )
    api = api_client()

    with time_machine.travel(NOV_20, tick=False):
        # the customer sets a budget of its own, alerting only
        response = api.put(
            "/api/v1/customers/acme/limits",
            {"budget": {"amount": "63.00", "action": "alert"}},
            format="json",
        )
        assert response.status_code == 200, response.content
        usage = api.get("/api/v1/customers/acme/usage").json()
        limits = api.get("/api/v1/customers/acme/limits").json()
        token = portal_session_create(customer=acme.customer, now=NOV_20).token
        page = client.get(f"/portal/{token}/")
        allowed = check(api, 40)
        refused = check(api, 60)

    assert usage["subtotal"] == "58.00"
    assert page.context["subtotal"] == "58.00"
    assert limits["budget"]["spent"] == "58.00"
    (budget,) = [row for row in page.context["limits"]["rows"] if row["kind"] == "budget"]
    assert "58.00" in budget["spent"]
    assert allowed["allowed"] is True
    assert (refused["allowed"], refused["reason"]) == (False, "spend_limit_reached")
    assert refused["spend_remaining"] == "5.00"
    assert refused["message"] == (
        "this use would exceed the customer's spend limit for this period (63.00 USD): "
        "5.00 USD left under it"
    )

    # the dashboard, read as the period ends and before it closes
    (projection,) = dashboard.projected_revenue(now=DEC_1)[0]
    assert projection.total == D("58.00")

    periods_close(as_of=DEC_1)
    assert period_billed(acme) == D("58.00")


def test_seats_cut_from_5_to_2_never_count_fewer_seats_than_the_invoices_bill(db):
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    version = published_version(
        "team",
        base_fee=D("20.00"),
        seat_price=D("10.00"),
        charges=(overage("prompts", 100, "0.10"),),
    )
    subscription = subscribe(CustomerFactory(external_id="acme"), version, NOV_1, seats=5)
    assert Invoice.objects.get(subscription=subscription).total == D("70.00")
    subscription_set_seats(subscription=subscription, seats=2, at=NOV_16)
    Customer.objects.filter(pk=subscription.customer_id).update(
        spend_limit=D("75.00"), spend_limit_mode="hard"
    )
    api = api_client()

    with time_machine.travel(NOV_20, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
        refused = check(api, 1000)

    periods_close(as_of=DEC_1)
    billed = period_billed(subscription)
    # what the seats bill once closed is what the spend counted before
    # (the 3 seats given up are credited from the 16th: 70.00 - 15.00)
    assert billed == D("55.00")
    assert usage["subtotal"] == "55.00"
    assert refused["spend_remaining"] == "20.00"


def test_at_the_instant_a_period_ends_limits_count_the_new_period(acme):
    api = api_client()
    with time_machine.travel(NOV_20, tick=False):
        response = api.put(
            "/api/v1/customers/acme/limits",
            {"caps": [{"meter": "prompts", "quantity": "150"}]},
            format="json",
        )
        assert response.status_code == 200, response.content
    # 130 prompts in November: 40 more would pass the cap of 150
    with time_machine.travel(DEC_1 - timedelta(microseconds=1), tick=False):
        assert check(api, 40)["reason"] == "customer_cap_reached"
    # at 1 Dec 00:00, before any close: December's usage is none
    with time_machine.travel(DEC_1, tick=False):
        answer = check(api, 40)
    assert answer["allowed"] is True, answer
    assert answer["period_start"] == "2026-12-01T00:00:00Z"
