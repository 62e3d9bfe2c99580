"""Usage alerts (SCENARIOS S12) end to end: events posted through the API, the
check that runs after the ingest commits, a signed webhook received by a real
HTTP receiver and an email per alert; each alert once per period and threshold.
Also the spend limit alert, alert_raise's idempotency (for real under
concurrency on PostgreSQL), the threshold settings and the admin pages."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from billing.invoicing.close import periods_close
from billing.models import Alert, AlertTeamRecipient, Subscription, WebhookDelivery, WebhookEndpoint
from billing.notifications.alerts import alert_raise
from billing.notifications.webhooks import webhook_event_publish, webhook_signature
from billing.tasks import deliver_alert_webhook, deliver_webhook
from billing.usage.alerts import usage_alerts_check
from common.errors import InvalidRequest
from customers.models import Customer
from customers.services import customer_update
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ai_assistant_plan,
    credits,
    hard_cap,
    prompts_meter,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
# A period as an alert states it: its instants, and its days in the customer's zone.
NOVEMBER = {
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
}
DECEMBER = {
    "period_start": "2026-12-01T00:00:00Z",
    "period_end": "2027-01-01T00:00:00Z",
    "period": "1 Dec \u2013 31 Dec 2026 (UTC)",
}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", email="billing@acme.test")


@pytest.fixture
def ai_assistant(db):
    """S1's plan: 19.99 a month, 200 prompts included, 0.05 a prompt beyond; and
    100 SMS under a hard cap, 50 agent runs on credits (no allowance: no alert)."""
    prompts_meter()
    MeterFactory(code="sms", name="SMS", event_name="sms.sent")
    MeterFactory(code="agent_runs", event_name="agent.run")
    return ai_assistant_plan(hard_cap("sms", 100), credits("agent_runs", 1))


@pytest.fixture
def subscribed(acme, ai_assistant):
    return subscribe(acme, ai_assistant)


class Poster:
    """Posts events through POST /api/v1/events at a set time, running what the
    commit enqueues (the alert check, then the webhooks and emails) as a worker
    would; the receiver verifies signatures at the same time."""

    def __init__(self, api, receiver, capture):
        self.api, self.receiver, self.capture = api, receiver, capture
        self.sent = 0

    def post(self, count: int, *, now: datetime, event_name: str = "prompt", customer="acme"):
        events = [
            {
                "id": f"evt_{self.sent + i}",
                "customer": customer,
                "event_name": event_name,
                "timestamp": iso(now - timedelta(minutes=1)),
            }
            for i in range(count)
        ]
        self.sent += count
        self.receiver.now = now
        with time_machine.travel(now, tick=False), self.capture(execute=True):
            response = self.api.post("/api/v1/events", {"events": events}, format="json")
        assert response.status_code == 202, response.content
        assert response.json() == {"accepted": count, "duplicates": 0, "rejected": []}


@pytest.fixture
def poster(api, webhook_receiver, django_capture_on_commit_callbacks):
    return Poster(api, webhook_receiver, django_capture_on_commit_callbacks)


def keys(**filters) -> list[str]:
    return [a.key for a in Alert.objects.filter(**filters).order_by("id")]


def threshold_data(
    threshold: str, quantity: str, period=NOVEMBER, meter="prompts", percentage=None
) -> dict:
    return {
        "meter": meter,
        "meter_name": "Prompts" if meter == "prompts" else "SMS",
        "model": "overage" if meter == "prompts" else "hard_cap",
        "threshold": threshold,
        "percentage": percentage or threshold,
        "quantity": quantity,
        "included": "200" if meter == "prompts" else "100",
        **period,
    }


# S12


def test_s12_each_threshold_fires_once_with_a_signed_webhook_and_an_email(
    subscribed, endpoint, poster, webhook_receiver, mailoutbox
):
    # given: thresholds 50, 75, 90 and 100% (the default) of 200 included prompts
    steps = [
        (99, []),
        (1, ["prompts:50"]),
        (49, []),
        (1, ["prompts:75"]),
        (29, []),
        (1, ["prompts:90"]),
        (19, []),
        (1, ["prompts:100"]),
        (50, []),
        (150, []),
    ]
    fired = []
    for minute, (count, expected) in enumerate(steps):
        # when
        before = Alert.objects.count()
        poster.post(count, now=NOV_10 + timedelta(minutes=minute))

        # then: at 100, 150, 180 and 200 prompts one alert each, and nothing after
        new = list(Alert.objects.order_by("id")[before:])
        assert [a.key for a in new] == expected, poster.sent
        fired += [(a, NOV_10 + timedelta(minutes=minute), poster.sent) for a in new]

    assert [(a.kind, a.period_start, a.payload) for a, _, _ in fired] == [
        ("usage_threshold", NOV_1, threshold_data("50", "100")),
        ("usage_threshold", NOV_1, threshold_data("75", "150")),
        ("usage_threshold", NOV_1, threshold_data("90", "180")),
        ("usage_threshold", NOV_1, threshold_data("100", "200")),
    ]
    # one signed webhook each, verified by the receiver, body as stored
    assert [r.refused for r in webhook_receiver.received] == [None] * 4
    assert webhook_receiver.events == [
        {
            "id": f"evt_alert_{alert.pk}",
            "type": "alert.usage_threshold",
            "created": iso(at),
            "customer": "acme",
            "data": alert.payload,
        }
        for alert, at, _ in fired
    ]
    for received, (alert, at, _) in zip(webhook_receiver.received, fired, strict=True):
        delivery = WebhookDelivery.objects.get(alert=alert)
        timestamp = int(at.timestamp())
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["Billing-Signature"] == (
            f"t={timestamp},v1="
            + webhook_signature(secret=endpoint.secret, timestamp=timestamp, body=received.body)
        )
        assert received.body == delivery.body.encode()
        assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("succeeded", 1, at)
        assert (delivery.last_status_code, delivery.last_error) == (200, "")
    # one email each, to the customer
    assert [(m.subject, m.to, m.from_email) for m in mailoutbox] == [
        (
            f"You have used {pct}% of your included Prompts",
            ["billing@acme.test"],
            "billing@example.com",
        )
        for pct in (50, 75, 90, 100)
    ]
    assert mailoutbox[0].body == (
        "Hello,\n\nAcme Inc has used 100 of the 200 Prompts included in the period "
        "1 Nov \u2013 30 Nov 2026 (UTC): 50%.\n\n"
        "Usage beyond the included units is billed at your plan's prices.\n"
    )
    assert [a.emailed_at for a in Alert.objects.order_by("id")] == [at for _, at, _ in fired]


def test_s12_the_next_period_arms_the_alerts_again(
    subscribed, endpoint, poster, webhook_receiver, mailoutbox
):
    # given: all four fired in November
    poster.post(250, now=NOV_10)
    assert keys() == ["prompts:50", "prompts:75", "prompts:90", "prompts:100"]

    # when: November closes and December's usage grows
    periods_close(as_of=DEC_1)
    poster.post(99, now=DEC_1 + timedelta(days=2))
    poster.post(60, now=DEC_1 + timedelta(days=3))

    # then: December's 50% and 75% fire, in December's period, announced as one
    # alert (one batch crossed both): 75%, at the true 79%
    assert keys(period_start=DEC_1) == ["prompts:50", "prompts:75"]
    assert [a.payload for a in Alert.objects.filter(period_start=DEC_1).order_by("id")] == [
        {**threshold_data("50", "159", DECEMBER, percentage="79"), "announced_with": "prompts:75"},
        threshold_data("75", "159", DECEMBER, percentage="79"),
    ]
    assert keys(period_start=NOV_1) == ["prompts:50", "prompts:75", "prompts:90", "prompts:100"]
    # one message for November's one crossing (250 prompts: 125%), one for December's
    assert [e["data"]["percentage"] for e in webhook_receiver.events] == ["125", "79"]
    assert len(mailoutbox) == 2


def test_a_period_the_close_has_not_reached_yet_is_armed_too(subscribed, poster):
    """The close runs every few minutes; usage in the new period before it runs
    counts in the new period, not in the one that ended."""
    poster.post(200, now=NOV_10)

    poster.post(100, now=DEC_1 + timedelta(minutes=3))

    assert Subscription.objects.get().current_period_start == NOV_1
    assert keys(period_start=DEC_1) == ["prompts:50"]
    assert Alert.objects.get(period_start=DEC_1).payload == threshold_data("50", "100", DECEMBER)


def test_one_batch_over_several_thresholds_sends_one_alert_with_the_true_percentage(
    subscribed, endpoint, poster, mailoutbox
):
    # when: 185 of 200 prompts in one batch, past 50, 75 and 90%
    poster.post(185, now=NOV_10)

    # then: each threshold is recorded (none fires later this period), one is told:
    # the highest, 90%, with the true percentage, 92
    assert keys() == ["prompts:50", "prompts:75", "prompts:90"]
    assert [(e["data"]["threshold"], e["data"]["percentage"]) for e in poster.receiver.events] == [
        ("90", "92")
    ]
    assert [m.subject for m in mailoutbox] == ["You have used 92% of your included Prompts"]
    assert "has used 185 of the 200 Prompts included in the period" in mailoutbox[0].body
    poster.post(1, now=NOV_10 + timedelta(minutes=1))
    assert len(poster.receiver.events) == 1


def test_hard_cap_charges_alert_and_charges_without_allowance_do_not(subscribed, poster):
    poster.post(75, now=NOV_10, event_name="sms.sent")
    poster.post(500, now=NOV_10, event_name="agent.run")

    assert [
        (a.key, a.payload) for a in Alert.objects.filter(kind="usage_threshold").order_by("id")
    ] == [
        (
            "sms:50",
            {
                **threshold_data("50", "75", meter="sms", percentage="75"),
                "announced_with": "sms:75",
            },
        ),
        ("sms:75", threshold_data("75", "75", meter="sms")),
    ]


def test_the_customers_own_thresholds_replace_the_default(acme, subscribed, poster):
    customer_update(customer=acme, alert_thresholds=[80, 12.5, 150])

    poster.post(300, now=NOV_10)

    assert keys() == ["prompts:12.5", "prompts:80", "prompts:150"]


def test_thresholds_come_from_the_setting_when_the_customer_sets_none(subscribed, poster, settings):
    settings.BILLING_ALERT_THRESHOLDS = [D(100), D(25)]

    poster.post(60, now=NOV_10)

    assert keys() == ["prompts:25"]


def test_no_alert_without_a_live_subscription(acme, ai_assistant, poster):
    poster.post(300, now=NOV_10)

    assert Alert.objects.count() == 0


def test_an_email_needs_the_customers_address(acme, subscribed, poster, mailoutbox):
    customer_update(customer=acme, email="")

    poster.post(100, now=NOV_10)

    assert keys() == ["prompts:50"]
    assert mailoutbox == []
    assert Alert.objects.get().emailed_at is None


# Spend limit


def test_a_soft_spend_limit_alert_fires_once_a_period(
    acme, subscribed, endpoint, poster, webhook_receiver, mailoutbox
):
    # given: a soft limit of 25.00 on 19.99 a month plus 0.05 a prompt over 200
    customer_update(
        customer=acme, spend_limit=D("25.00"), spend_limit_mode="soft", alert_thresholds=[1000]
    )

    # when: 300 prompts spend 24.99, one more 25.04, more after that
    poster.post(300, now=NOV_10)
    assert Alert.objects.count() == 0
    poster.post(1, now=NOV_10 + timedelta(minutes=1))
    poster.post(40, now=NOV_10 + timedelta(minutes=2))

    # then
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.period_start) == ("spend_limit", "spend_limit", NOV_1)
    assert alert.payload == {
        "spend": "25.04",
        "spend_limit": "25.00",
        "currency": "USD",
        "mode": "soft",
        **NOVEMBER,
    }
    assert [(e["type"], e["data"]) for e in webhook_receiver.events] == [
        ("alert.spend_limit", alert.payload)
    ]
    assert [m.subject for m in mailoutbox] == ["Your spend limit is reached"]
    assert mailoutbox[0].body == (
        "Hello,\n\nAcme Inc has spent 25.04\xa0USD in the period 1 Nov \u2013 30 Nov 2026 (UTC), "
        "reaching its spend limit of 25.00\xa0USD.\n\nUsage continues and is billed.\n"
    )


def test_the_spend_limit_alert_is_armed_again_next_period(acme, subscribed, poster):
    customer_update(customer=acme, spend_limit=D("19.99"), spend_limit_mode="soft")
    poster.post(1, now=NOV_10)
    assert keys(kind="spend_limit") == ["spend_limit"]

    periods_close(as_of=DEC_1)
    poster.post(1, now=DEC_1 + timedelta(days=1))

    assert list(
        Alert.objects.filter(kind="spend_limit").order_by("id").values_list("period_start")
    ) == [(NOV_1,), (DEC_1,)]


# alert_raise


def raise_alert(customer, key: str = "credits", now: datetime = NOV_10) -> Alert | None:
    return alert_raise(
        customer=customer,
        kind="low_balance",
        period_start=NOV_1,
        key=key,
        payload={"balance": "5", "threshold": "10"},
        now=now,
    )


def test_alert_raise_twice_records_and_announces_once(
    acme, endpoint, webhook_receiver, mailoutbox, django_capture_on_commit_callbacks
):
    webhook_receiver.now = NOV_10
    with time_machine.travel(NOV_10, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            first = raise_alert(acme)
        with django_capture_on_commit_callbacks(execute=True) as again:
            second = raise_alert(acme, now=NOV_10 + timedelta(hours=1))

    assert first is not None and second is None
    assert again == []
    alert = Alert.objects.get()
    assert (alert.pk, alert.created_at, alert.emailed_at) == (first.pk, NOV_10, NOV_10)
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert webhook_receiver.events == [
        {
            "id": f"evt_alert_{alert.pk}",
            "type": "alert.low_balance",
            "created": "2026-11-10T12:00:00Z",
            "customer": "acme",
            "data": {"balance": "5", "threshold": "10"},
        }
    ]
    assert [m.subject for m in mailoutbox] == ["Your balance is low"]


def test_an_alert_s_deliveries_are_sent_from_the_urgent_queue_other_events_from_default(
    acme, endpoint, monkeypatch, django_capture_on_commit_callbacks
):
    # The tasks' queues are config.celery's (tests/billing/test_urgent_queue.py).
    queued = []
    for task in (deliver_webhook, deliver_alert_webhook):
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda args, kwargs=None, name=task.name, **options: queued.append((name, *args)),
        )

    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert(acme)
        webhook_event_publish(
            event_type="invoice.paid", data={}, customer=acme, now=NOV_10, event_id="evt_paid"
        )

    assert queued == [
        ("billing.tasks.deliver_alert_webhook", WebhookDelivery.objects.get(alert=alert).pk),
        ("billing.tasks.deliver_webhook", WebhookDelivery.objects.get(event_id="evt_paid").pk),
    ]


def test_alert_raise_fires_per_key_period_and_customer(acme, beta):
    assert raise_alert(acme, key="credits") is not None
    assert raise_alert(acme, key="money:USD") is not None
    assert raise_alert(beta, key="credits") is not None
    assert (
        alert_raise(
            customer=acme,
            kind="low_balance",
            period_start=DEC_1,
            key="credits",
            payload={},
            now=DEC_1,
        )
        is not None
    )

    assert Alert.objects.count() == 4


def test_alert_raise_refuses_an_unknown_kind(acme):
    with pytest.raises(InvalidRequest, match="unknown alert kind 'nope'"):
        alert_raise(customer=acme, kind="nope", period_start=NOV_1, key="k", payload={}, now=NOV_1)

    assert Alert.objects.count() == 0


def test_alerts_go_to_the_enabled_endpoints_that_take_their_type(acme):
    wanted = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/a", event_types=[])
    typed = WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/b", event_types=["alert.low_balance"]
    )
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/c", event_types=["alert.spend_limit"])
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/d", enabled=False)

    alert = raise_alert(acme)

    deliveries = WebhookDelivery.objects.filter(alert=alert).order_by("endpoint_id")
    assert [(d.endpoint_id, d.status, d.next_attempt_at) for d in deliveries] == [
        (wanted.pk, "pending", NOV_10),
        (typed.pk, "pending", NOV_10),
    ]
    assert deliveries[0].body == deliveries[1].body


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_record_one_alert(transactional_db):
    customer = CustomerFactory(external_id="acme", name="Acme")
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks")
    threads = 8
    barrier = threading.Barrier(threads)
    results, errors = [], []

    def raise_once():
        try:
            barrier.wait()
            results.append(raise_alert(customer))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=raise_once) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert sum(r is not None for r in results) == 1
    assert Alert.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


# Cost


def test_customers_whose_alerts_all_fired_cost_no_usage_reads(ai_assistant):
    customers = []
    for n in range(5):
        customer = CustomerFactory(external_id=f"c{n}", name=f"C{n}")
        subscribe(customer, ai_assistant)
        for key in ("prompts", "sms"):
            for pct in (50, 75, 90, 100):
                alert_raise(
                    customer=customer,
                    kind="usage_threshold",
                    period_start=NOV_1,
                    key=f"{key}:{pct}",
                    payload={},
                    now=NOV_10,
                )
        customers.append(customer.pk)
    usage_alerts_check(customer_ids=customers[:1], now=NOV_10)  # warms the caches

    with CaptureQueriesContext(connection) as one:
        assert usage_alerts_check(customer_ids=customers[:1], now=NOV_10) == []
    with CaptureQueriesContext(connection) as five:
        assert usage_alerts_check(customer_ids=customers, now=NOV_10) == []

    assert len(one) == len(five) == 3


# Settings on the customer


def test_thresholds_are_validated(acme):
    with pytest.raises(InvalidRequest) as refused:
        customer_update(customer=acme, alert_thresholds=[50, 0, 1001, "x", True, 50])

    assert refused.value.fields == {
        "alert_thresholds": [
            "0 must be above 0 and at most 1000",
            "1001 must be above 0 and at most 1000",
            "'x' is not a number",
            "True is not a number",
            "50 is listed twice",
        ]
    }
    acme.refresh_from_db()
    assert acme.alert_thresholds == []


def test_spend_limit_mode_is_validated(acme):
    with pytest.raises(InvalidRequest) as refused:
        customer_update(customer=acme, spend_limit_mode="maybe")

    assert refused.value.fields == {"spend_limit_mode": ["must be one of hard, soft"]}
    assert Customer.objects.get().spend_limit_mode == "hard"


# Admin


def customer_form(**changes) -> dict:
    return {
        "name": "Acme Inc",
        "email": "billing@acme.test",
        "timezone": "UTC",
        "address": "{}",
        "tax_id": "",
        "spend_limit": "",
        "spend_limit_mode": "hard",
        "alert_thresholds": "",
        "locale": "en",
        "tax_exempt": "none",
        **changes,
    }


def test_customer_admin_edits_the_alert_settings(admin_client, acme):
    url = f"/admin/customers/customer/{acme.pk}/change/"
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        url,
        customer_form(spend_limit="30", spend_limit_mode="soft", alert_thresholds="80, 100"),
    )

    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.spend_limit, acme.spend_limit_mode, acme.alert_thresholds) == (
        D(30),
        "soft",
        [80, 100],
    )


def test_customer_admin_refuses_bad_thresholds_and_changes_nothing(admin_client, acme):
    response = admin_client.post(
        f"/admin/customers/customer/{acme.pk}/change/",
        customer_form(alert_thresholds="80, 80, -5"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "alert_thresholds": ["80 is listed twice", "-5 must be above 0 and at most 1000"]
    }
    acme.refresh_from_db()
    assert acme.alert_thresholds == []


def test_customer_admin_empty_thresholds_mean_the_default(admin_client, acme):
    customer_update(customer=acme, alert_thresholds=[80])

    response = admin_client.post(
        f"/admin/customers/customer/{acme.pk}/change/", customer_form(alert_thresholds="")
    )

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.alert_thresholds == []


def test_alert_admin_pages_load(admin_client, acme):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks")
    alert = raise_alert(acme)

    for url in [
        "/admin/billing/alert/",
        "/admin/billing/alert/?kind__exact=low_balance",
        f"/admin/billing/alert/?customer__id__exact={acme.pk}",
        f"/admin/billing/alert/{alert.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/billing/alert/add/").status_code == 403


def test_alert_checks_are_throttled_per_customer_and_never_dropped():
    from billing.usage.alerts import AlertCheckThrottle

    throttle = AlertCheckThrottle()
    # The first batch of customers 1 and 2 is checked at once.
    assert throttle.plan({1, 2}, interval=10, now=100.0) == ([1, 2], {})
    # Within the interval: one trailing check each, at the end of the interval.
    assert throttle.plan({1}, interval=10, now=103.5) == ([], {7: [1]})
    assert throttle.plan({1, 2}, interval=10, now=104.0) == ([], {6: [2]})
    # Further batches before then add nothing: the trailing check covers them.
    assert throttle.plan({1, 2}, interval=10, now=109.0) == ([], {})
    # After the interval, a batch is checked at once again.
    assert throttle.plan({2, 3}, interval=10, now=110.0) == ([2, 3], {})
    # With no interval every batch is checked at once.
    assert throttle.plan({1}, interval=0, now=111.0) == ([1], {})


def test_the_sellers_team_gets_a_copy_of_the_kinds_it_chose(subscribed, poster, mailoutbox):
    # given: the account owner takes usage thresholds, finance only spend limits
    AlertTeamRecipient.objects.create(email="owner@seller.test", kinds=["usage_threshold"])
    AlertTeamRecipient.objects.create(email="finance@seller.test", kinds=["spend_limit"])

    # when: acme passes 50% of its prompts
    poster.post(100, now=NOV_10)

    # then: acme is told, and the owner gets a copy naming acme
    assert [(m.to, m.subject) for m in mailoutbox] == [
        (["billing@acme.test"], "You have used 50% of your included Prompts"),
        (["owner@seller.test"], "[Acme Inc] You have used 50% of your included Prompts"),
    ]
    assert mailoutbox[0].body == mailoutbox[1].body


def test_the_team_recipients_are_named_in_words(admin_client):
    index = admin_client.get("/admin/").content.decode()

    assert ">Team alert recipients</a>" in index
    assert "on the team" not in index
    meta = AlertTeamRecipient._meta
    for language, one, many in [
        (
            "fr",
            "destinataire des alertes dans l\N{RIGHT SINGLE QUOTATION MARK}équipe",
            "destinataires des alertes dans l\N{RIGHT SINGLE QUOTATION MARK}équipe",
        ),
        ("de", "Alarmempfänger im Team", "Alarmempfänger im Team"),
    ]:
        with translation.override(language):
            assert (str(meta.verbose_name), str(meta.verbose_name_plural)) == (one, many)
