"""The margin alert (issue 51): a customer whose margin in its current period so
far falls below BILLING_MARGIN_ALERT_PERCENT raises `margin_low` to the seller's
team (email and webhook `customer.margin_low`), once per period and crossing,
never to the customer."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.models import Alert, AlertTeamRecipient, WebhookDelivery, WebhookEndpoint
from billing.tasks import check_margin_alerts
from billing.usage.ingestion import events_ingest
from common.periods import iso
from config.celery import DEFAULT_QUEUE, URGENT_QUEUE
from customers.services import customer_create
from plans.pricing import PricingSpec
from plans.services import credit_pack_create, meter_create
from plans.validation import ChargeSpec
from tests.beat import scheduled
from tests.factories import api_client, published_version, subscribe
from tests.workers import celery_worker, tasks_on_the_broker, worker_broker, workers_wait
from wallets.purchases import credit_pack_purchase

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
NOV_21 = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
TEAM = "finance@seller.test"


def calls(customer: str, count: int, at: datetime, first: int = 0) -> None:
    result = events_ingest(
        events=[
            {
                "id": f"{customer}-{first + i}",
                "customer": customer,
                "event_name": "api.call",
                "timestamp": at.isoformat(),
                "properties": {},
            }
            for i in range(count)
        ],
        now=at,
    )
    assert (result.rejected, result.duplicates) == ([], 0)


def cost_rate() -> None:
    """Each API call costs the seller 0.40 from November 1."""
    response = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "api_calls",
            "unit_cost": "0.40",
            "currency": "USD",
            "effective_from": "2026-11-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.fixture
def month(db, settings):
    """Two customers on credits, 0.50 a credit (100 for 50.00), each call costing
    the seller 0.40: acme's plan takes 1 credit a call, globex's 2. After 30 calls
    each on Nov 20, acme has earned 15.00 for 12.00 of cost (20.00 %), globex
    30.00 for 12.00 (60.00 %)."""
    settings.BILLING_MARGIN_ALERT_PERCENT = D(25)
    meter_create(code="api_calls", name="API calls", event_name="api.call", aggregation="count")
    published_version("cheap", charges=(ChargeSpec("api_calls", "credits", credits_per_unit=D(1)),))
    published_version("calls", charges=(ChargeSpec("api_calls", "credits", credits_per_unit=D(2)),))
    acme = customer_create(
        external_id="acme", name="Acme", currency="USD", email="billing@acme.test"
    )
    globex = customer_create(
        external_id="globex", name="Globex", currency="USD", email="billing@globex.test"
    )
    subscribe(acme, "cheap")
    subscribe(globex, "calls")
    pack = credit_pack_create(code="p100", credits=D(100), price=D("50.00"), currency="USD")
    credit_pack_purchase(customer=acme, pack=pack, now=NOV_1)
    credit_pack_purchase(customer=globex, pack=pack, now=NOV_1)
    cost_rate()
    AlertTeamRecipient.objects.create(email=TEAM, kinds=["margin_low"])
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    calls("acme", 30, at)
    calls("globex", 30, at)
    return acme, globex


def check(now: datetime, capture) -> int:
    with time_machine.travel(now, tick=False), capture(execute=True):
        return check_margin_alerts()


def alerts() -> list[tuple]:
    return list(
        Alert.objects.order_by("id").values_list(
            "customer__external_id", "kind", "period_start", "key"
        )
    )


ACME_NOVEMBER = {
    "customer": "acme",
    "revenue": "15.00",
    "cost": "12.00",
    "margin": "3.00",
    "margin_percent": "20.00",
    "currency": "USD",
    "threshold": "25",
    "measured_from": "2026-11-01T00:00:00Z",
    "measured_until": "2026-11-20T12:00:00Z",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
}


def test_the_figures_are_those_of_the_margins_api(month):
    response = api_client("finance:read").get(
        "/api/v1/margins?period_start=2026-11-01&period_end=2026-11-20T12:00:00Z"
    )

    assert [
        (r["key"], r["revenue"], r["cost"], r["margin"], r["margin_percent"])
        for r in response.json()["results"]
    ] == [
        ({"customer": "globex"}, "30.00", "12.00", "18.00", "60.00"),
        ({"customer": "acme"}, "15.00", "12.00", "3.00", "20.00"),
    ]


def test_a_customer_below_raises_once_to_the_team_and_one_above_does_not(
    month, endpoint, webhook_receiver, mailoutbox, django_capture_on_commit_callbacks
):
    webhook_receiver.now = NOV_20

    # when: the beat's check runs, then again the same period
    first = check(NOV_20, django_capture_on_commit_callbacks)
    second = check(NOV_21, django_capture_on_commit_callbacks)

    # then: acme (20.00 % < 25) once; globex (60.00 %) never
    assert (first, second) == (1, 0)
    assert alerts() == [("acme", "margin_low", NOV_1, "below:1")]
    alert = Alert.objects.get()
    assert alert.payload == ACME_NOVEMBER
    # the webhook, signed, as customer.margin_low
    assert [r.refused for r in webhook_receiver.received] == [None]
    assert webhook_receiver.events == [
        {
            "id": f"evt_alert_{alert.pk}",
            "type": "customer.margin_low",
            "created": "2026-11-20T12:30:00Z",
            "customer": "acme",
            "data": ACME_NOVEMBER,
        }
    ]
    # the email to the team only, never to acme
    assert [(m.to, m.subject) for m in mailoutbox] == [
        ([TEAM], "[Acme] A customer's margin is below the threshold")
    ]
    assert mailoutbox[0].body == (
        "Hello,\n\nAcme's margin in the period 1 Nov \u2013 30 Nov 2026 (UTC) so far is "
        "20%, below the 25% threshold: revenue 15.00\xa0USD, cost 12.00\xa0USD, margin "
        "3.00\xa0USD.\n"
    )
    assert Alert.objects.get().emailed_at == NOV_20


def test_an_endpoint_that_takes_alerts_only_does_not_get_it(
    month, mailoutbox, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.create(
        url="https://hooks.example.com/a", event_types=["alert.low_balance"]
    )
    WebhookEndpoint.objects.create(
        url="https://hooks.example.com/m", event_types=["customer.margin_low"]
    )

    with time_machine.travel(NOV_20, tick=False):
        assert check_margin_alerts() == 1

    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint.url, delivery.event_type) == (
        "https://hooks.example.com/m",
        "customer.margin_low",
    )
    assert json.loads(delivery.body)["data"] == ACME_NOVEMBER


def test_nothing_when_the_setting_is_unset(
    month, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.BILLING_MARGIN_ALERT_PERCENT = None

    assert check(NOV_20, django_capture_on_commit_callbacks) == 0

    assert (alerts(), mailoutbox) == ([], [])


def test_it_fires_again_only_after_going_back_above_and_crossing_again(
    month, settings, mailoutbox, django_capture_on_commit_callbacks
):
    check(NOV_20, django_capture_on_commit_callbacks)
    # when: the threshold lowered, acme's 20.00 % is above it: recorded, not sent
    settings.BILLING_MARGIN_ALERT_PERCENT = D(10)
    assert check(NOV_21, django_capture_on_commit_callbacks) == 0
    assert check(NOV_21, django_capture_on_commit_callbacks) == 0
    # then raised to 25 again: acme crosses below a second time
    settings.BILLING_MARGIN_ALERT_PERCENT = D(25)
    assert check(NOV_21, django_capture_on_commit_callbacks) == 1
    assert check(NOV_21, django_capture_on_commit_callbacks) == 0

    assert [key for *_, key in alerts()] == ["below:1", "above:1", "below:2"]
    assert Alert.objects.get(key="above:1").emailed_at is None
    assert [m.to for m in mailoutbox] == [[TEAM], [TEAM]]


def test_the_next_period_arms_it_again(month, django_capture_on_commit_callbacks):
    from billing.invoicing.close import periods_close

    check(NOV_20, django_capture_on_commit_callbacks)
    periods_close(as_of=datetime(2026, 12, 1, tzinfo=UTC))
    # December: 10 more calls each; acme earns 5.00 for 4.00 (20.00 %)
    calls("acme", 10, datetime(2026, 12, 2, 10, tzinfo=UTC), first=100)
    calls("globex", 10, datetime(2026, 12, 2, 10, tzinfo=UTC), first=100)

    assert check(DEC_2, django_capture_on_commit_callbacks) == 1

    december = Alert.objects.get(period_start=datetime(2026, 12, 1, tzinfo=UTC))
    assert (december.key, december.payload["revenue"], december.payload["cost"]) == (
        "below:1",
        "5.00",
        "4.00",
    )


def test_a_customer_without_revenue_so_far_raises_nothing(
    db, settings, django_capture_on_commit_callbacks
):
    # acme's period has cost but no revenue yet (postpaid usage is billed at the close)
    settings.BILLING_MARGIN_ALERT_PERCENT = D(25)
    meter_create(code="api_calls", name="API calls", event_name="api.call", aggregation="count")
    published_version(
        "later",
        charges=(ChargeSpec("api_calls", "overage", pricing=PricingSpec("per_unit", D("1.00"))),),
    )
    subscribe(customer_create(external_id="acme", name="Acme", currency="USD"), "later")
    cost_rate()
    calls("acme", 30, datetime(2026, 11, 20, 10, tzinfo=UTC))

    assert check(NOV_20, django_capture_on_commit_callbacks) == 0
    assert alerts() == []


def test_setup_periodic_tasks_schedules_the_margin_check(db):
    assert scheduled("Raise low-margin alerts to the team") == (
        "billing.tasks.check_margin_alerts",
        60,
        "minutes",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_runs_on_a_worker(monkeypatch):
    """For real: Redis or RabbitMQ, PostgreSQL and a `celery worker` per queue, the setting
    read from the worker's environment."""
    worker_broker()
    monkeypatch.setenv("BILLING_MARGIN_ALERT_PERCENT", "25")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    meter_create(code="api_calls", name="API calls", event_name="api.call", aggregation="count")
    published_version("cheap", charges=(ChargeSpec("api_calls", "credits", credits_per_unit=D(1)),))
    acme = customer_create(
        external_id="acme", name="Acme", currency="USD", email="billing@acme.test"
    )
    subscribe(acme, "cheap", hour - timedelta(days=1))
    pack = credit_pack_create(code="p100", credits=D(100), price=D("50.00"), currency="USD")
    credit_pack_purchase(customer=acme, pack=pack, now=hour - timedelta(days=1))
    response = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "api_calls",
            "unit_cost": "0.40",
            "currency": "USD",
            "effective_from": iso(hour - timedelta(days=1)),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    AlertTeamRecipient.objects.create(email=TEAM, kinds=["margin_low"])
    calls("acme", 30, hour - timedelta(hours=2))
    emailed = Alert.objects.filter(kind=Alert.MARGIN_LOW, emailed_at__isnull=False)

    with (
        tasks_on_the_broker(),
        celery_worker(DEFAULT_QUEUE, name="default") as default_worker,
        celery_worker(URGENT_QUEUE, name="urgent") as urgent_worker,
    ):
        workers_wait(default_worker, urgent_worker)
        check_margin_alerts.delay()
        deadline = time.monotonic() + 60
        while not emailed.exists():
            assert time.monotonic() < deadline, "the margin_low alert not emailed in 60 s"
            time.sleep(0.2)

    alert = emailed.get()
    assert (alert.key, alert.period_start) == ("below:1", hour - timedelta(days=1))
    assert {name: alert.payload[name] for name in ("revenue", "cost", "margin_percent")} == {
        "revenue": "15.00",
        "cost": "12.00",
        "margin_percent": "20.00",
    }


def test_many_customers_sharing_a_period_are_read_in_one_report(
    month, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("billing.margins.alerts.FEW_CUSTOMERS", 1)

    assert check(NOV_20, django_capture_on_commit_callbacks) == 1

    assert Alert.objects.get().payload == ACME_NOVEMBER
