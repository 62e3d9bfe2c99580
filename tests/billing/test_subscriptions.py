"""Subscriptions (the core the rating builds on) and usage per charge for a period."""

import threading
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from billing.models import Subscription, SubscriptionChange
from billing.usage.ingestion import events_ingest
from common.periods import period_boundary, period_containing
from plans.models import Plan, PlanVersion
from plans.services import plan_version_publish
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanFactory,
    PlanVersionFactory,
    ai_assistant_plan,
    credits,
    hard_cap,
    prompts_meter,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    prompts_meter()
    MeterFactory(code="sms", name="SMS", event_name="sms.sent")
    MeterFactory(code="agent_runs", name="Runs", event_name="agent.run")
    ai_assistant_plan(hard_cap("sms", 500), credits("agent_runs", 1))
    CustomerFactory(external_id="acme", name="Acme")
    CustomerFactory(
        external_id="euro", name="Euro GmbH", currency="EUR", timezone_name="Europe/Berlin"
    )


def subscribe(api, **body):
    return api.post(
        "/api/v1/subscriptions",
        {"customer": "acme", "plan": "ai_assistant", "start": "2026-11-01T00:00:00Z", **body},
        format="json",
    )


def test_create_on_the_latest_published_version_with_a_history_row(api, catalog):
    response = subscribe(api, seats=3)

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("customer", "plan", "version", "status", "seats")} == {
        "customer": "acme",
        "plan": "ai_assistant",
        "version": 1,
        "status": "active",
        "seats": 3,
    }
    assert body["current_period_start"] == "2026-11-01T00:00:00Z"
    assert body["current_period_end"] == "2026-12-01T00:00:00Z"
    change = SubscriptionChange.objects.get()
    assert (change.kind, change.to_version.number, change.effective_at) == (
        "created",
        1,
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert api.get(f"/api/v1/subscriptions/{body['id']}").json() == body


def test_backdated_anniversary_on_the_31st_is_clamped(api, catalog):
    response = subscribe(api, start="2026-01-31T09:30:00Z")

    body = response.json()
    assert body["current_period_start"] == "2026-01-31T09:30:00Z"
    assert body["current_period_end"] == "2026-02-28T09:30:00Z"


def test_calendar_anchor_ends_the_first_period_at_local_midnight(api, catalog):
    Plan.objects.get(code="ai_assistant")
    PlanFactory(
        code="euro_plan", name="Euro", version__currency="EUR", version__base_fee=Decimal("10.00")
    )

    response = subscribe(
        api,
        customer="euro",
        plan="euro_plan",
        start="2026-11-17T10:00:00Z",
        billing_anchor="calendar",
    )

    # Berlin is UTC+1 in winter: local midnight of December 1st is 23:00 UTC.
    assert response.json()["current_period_end"] == "2026-11-30T23:00:00Z"


def test_trial_days_start_a_trialing_subscription(api, catalog):
    PlanFactory(
        code="trial_plan",
        name="Trial",
        version__base_fee=Decimal("5.00"),
        version__trial_days=14,
    )

    body = subscribe(api, plan="trial_plan").json()

    assert body["status"] == "trialing"
    assert body["trial_end"] == "2026-11-15T00:00:00Z"


def test_new_subscriptions_get_the_latest_published_version(api, catalog):
    plan = Plan.objects.get(code="ai_assistant")
    draft = PlanVersionFactory(plan=plan, base_fee=Decimal("24.99"), status=PlanVersion.DRAFT)
    assert subscribe(api, customer="acme").json()["version"] == 1  # a draft is not offered

    plan_version_publish(version=draft)
    CustomerFactory(external_id="later", name="Later")

    assert subscribe(api, customer="later").json()["version"] == 2
    assert Subscription.objects.get(customer__external_id="acme").version.number == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"customer": "nobody"}, 400, "customer"),
        ({"plan": "nope"}, 400, "plan"),
        ({"customer": "euro"}, 400, "plan"),  # EUR customer, USD plan
        ({"version": 9}, 404, None),
        ({"seats": 0}, 400, "seats"),
        ({"seats": True}, 400, "seats"),
        ({"billing_anchor": "weekly"}, 400, "billing_anchor"),
        ({"start": "2026-11-01T00:00:00"}, 400, "start"),
        ({"start": "yesterday"}, 400, "start"),
    ],
)
def test_refused_subscriptions_create_nothing(api, catalog, body, status, field):
    response = subscribe(api, **body)

    assert response.status_code == status, response.content
    if field:
        assert field in response.json()["error"]["fields"]
    assert not Subscription.objects.exists()
    assert not SubscriptionChange.objects.exists()


def test_a_draft_version_takes_no_subscription(api, catalog):
    PlanVersionFactory(
        plan=Plan.objects.get(code="ai_assistant"),
        base_fee=Decimal("1.00"),
        status=PlanVersion.DRAFT,
    )

    response = subscribe(api, version=2)

    assert response.status_code == 409
    assert not Subscription.objects.exists()


def test_one_live_subscription_per_customer(api, catalog):
    assert subscribe(api).status_code == 201

    response = subscribe(api)

    assert response.status_code == 409
    assert Subscription.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_make_one_subscription(api_key_secret, catalog):
    from rest_framework.test import APIClient

    statuses = []
    barrier = threading.Barrier(2)

    def create():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        barrier.wait()
        statuses.append(subscribe(client).status_code)
        connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 409]
    assert Subscription.objects.count() == 1


def post_usage(count: int, event_name: str, day: int, prefix: str) -> None:
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": event_name,
            "timestamp": f"2026-11-{day:02d}T10:00:00Z",
        }
        for i in range(count)
    ]
    for start in range(0, count, 1000):
        assert not events_ingest(events=events[start : start + 1000], now=NOW).rejected


def test_usage_gives_included_and_billable_units_per_charge(api, catalog):
    # given: S1 at 400 prompts, plus SMS past the cap and credit-drawn runs
    subscribe(api)
    post_usage(400, "prompt", 5, "p")
    post_usage(520, "sms.sent", 6, "s")
    post_usage(7, "agent.run", 7, "r")

    # when
    with time_machine.travel(NOW, tick=False):
        body = api.get("/api/v1/customers/acme/usage").json()

    # then
    assert (body["period_start"], body["period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert body["subscription"] == Subscription.objects.get().pk
    assert body["lines"] == [
        {
            "meter": "prompts",
            "aggregation": "count",
            "model": "overage",
            "quantity": "400",
            "included": "200",
            "billable": "200",
            "amount": "10.00",
        },
        {
            "meter": "sms",
            "aggregation": "count",
            "model": "hard_cap",
            "quantity": "520",
            "included": "500",
            "billable": "0",
            "amount": "0.00",
        },
        {
            "meter": "agent_runs",
            "aggregation": "count",
            "model": "credits",
            "quantity": "7",
            "included": None,
            "billable": "7",
            "amount": "0.00",
            # No credits were bought: the 7 runs are stored and counted, not paid.
            "uncovered": "7",
        },
    ]


def test_usage_within_the_allowance_bills_nothing(api, catalog):
    subscribe(api)
    post_usage(180, "prompt", 5, "p")

    body = api.get("/api/v1/customers/acme/usage").json()
    line = body["lines"][0]

    assert (line["quantity"], line["included"], line["billable"]) == ("180", "200", "0")
    assert (line["amount"], body["base_fee"], body["subtotal"]) == ("0.00", "19.99", "19.99")


def test_usage_amounts_subtotal_and_projected_total(api, catalog):
    # given: S1's plan, 150 prompts in the first 10 of November's 30 days
    subscribe(api)
    post_usage(150, "prompt", 5, "p")

    # when
    with time_machine.travel(datetime(2026, 11, 11, tzinfo=UTC), tick=False):
        body = api.get("/api/v1/customers/acme/usage").json()

    # then: none over the allowance yet; the month at this pace is 450 prompts,
    # 250 over at 0.05 = 12.50, plus the 19.99 base fee
    assert (body["lines"][0]["amount"], body["subtotal"]) == ("0.00", "19.99")
    assert body["projected_total"] == "32.49"


def test_a_past_period_projects_what_it_used(api, catalog):
    subscribe(api, start="2026-10-15T00:00:00Z")
    post_usage(400, "prompt", 5, "p")

    with time_machine.travel(NOW, tick=False):
        body = api.get("/api/v1/customers/acme/usage?period_start=2026-10-20T00:00:00Z").json()

    assert (body["lines"][0]["amount"], body["subtotal"], body["projected_total"]) == (
        "10.00",
        "29.99",
        "29.99",
    )


def test_period_start_selects_the_period_that_contains_it(api, catalog):
    subscribe(api, start="2026-10-15T00:00:00Z")
    post_usage(3, "prompt", 5, "nov")  # November 5th: the period Oct 15 - Nov 15

    body = api.get("/api/v1/customers/acme/usage?period_start=2026-11-01T00:00:00Z").json()

    assert (body["period_start"], body["period_end"]) == (
        "2026-10-15T00:00:00Z",
        "2026-11-15T00:00:00Z",
    )
    assert body["lines"][0]["quantity"] == "3"


def test_period_arithmetic_keeps_local_time_across_daylight_saving():
    new_york = ZoneInfo("America/New_York")
    anchor = datetime(2026, 11, 17, 15, tzinfo=UTC)  # 10:00 in New York (EST)

    assert period_boundary(anchor, new_york, interval="quarter", calendar_aligned=False, k=2) == (
        datetime(2027, 5, 17, 14, tzinfo=UTC)  # 10:00 EDT
    )
    assert period_containing(
        anchor,
        new_york,
        interval="month",
        calendar_aligned=True,
        moment=datetime(2027, 3, 20, tzinfo=UTC),
    ) == (datetime(2027, 3, 1, 5, tzinfo=UTC), datetime(2027, 4, 1, 4, tzinfo=UTC))
    assert period_containing(
        anchor,
        new_york,
        interval="year",
        calendar_aligned=False,
        moment=datetime(2028, 1, 1, tzinfo=UTC),
    ) == (datetime(2027, 11, 17, 15, tzinfo=UTC), datetime(2028, 11, 17, 15, tzinfo=UTC))
