"""Webhooks: signatures verified as a receiver would (valid, tampered, expired),
delivery to a real HTTP receiver, retries with backoff driven by explicit
times, failures shown on the delivery, the beat's safety net, and the admin."""

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from billing.errors import WebhookSignatureError
from billing.models import WebhookDelivery, WebhookEndpoint
from billing.tasks import deliver_webhook, retry_due_webhooks
from billing.webhooks import (
    SWEEP_GRACE,
    webhook_deliver,
    webhook_event_publish,
    webhook_signature,
    webhook_signature_header,
    webhook_signature_verify,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)
SECRET = "whsec_test"
BODY = '{"id":"evt_1","type":"alert.low_balance"}'


def header_at(moment: datetime, body: str = BODY, secret: str = SECRET) -> str:
    return webhook_signature_header(secret=secret, body=body, now=moment)


# Signatures


def test_a_valid_signature_verifies():
    header = header_at(T0)

    assert header == f"t={int(T0.timestamp())},v1=" + webhook_signature(
        secret=SECRET, timestamp=int(T0.timestamp()), body=BODY
    )
    assert webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T0) is None
    # bytes or text, and up to the tolerance either way
    for now in (T0 + timedelta(seconds=300), T0 - timedelta(seconds=300)):
        webhook_signature_verify(secret=SECRET, header=header, body=BODY.encode(), now=now)


def test_a_tampered_body_is_rejected():
    with pytest.raises(WebhookSignatureError, match="does not match the body and secret"):
        webhook_signature_verify(
            secret=SECRET, header=header_at(T0), body=BODY.replace("evt_1", "evt_2"), now=T0
        )


def test_an_expired_timestamp_is_rejected():
    with pytest.raises(WebhookSignatureError) as expired:
        webhook_signature_verify(
            secret=SECRET, header=header_at(T0), body=BODY, now=T0 + timedelta(seconds=301)
        )

    assert expired.value.message == (
        "the signature's timestamp is 301 seconds old, more than the 300 tolerated"
    )


def test_a_timestamp_too_far_ahead_is_rejected():
    with pytest.raises(WebhookSignatureError, match="is 600 seconds ahead"):
        webhook_signature_verify(
            secret=SECRET, header=header_at(T0 + timedelta(minutes=10)), body=BODY, now=T0
        )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no Billing-Signature header"),
        ("", "no Billing-Signature header"),
        ("v1=abc", "needs one t=<unix seconds>"),
        ("t=soon,v1=abc", "needs one t=<unix seconds>"),
        ("t=1,t=2,v1=abc", "needs one t=<unix seconds>"),
        (f"t={int(T0.timestamp())}", "has no v1 signature"),
        (f"t={int(T0.timestamp())},v1=00", "does not match"),
    ],
)
def test_a_malformed_header_is_rejected(header, message):
    with pytest.raises(WebhookSignatureError, match=message):
        webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T0)


def test_another_secret_is_rejected_and_a_rolled_one_accepted():
    other = header_at(T0, secret="whsec_other")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        webhook_signature_verify(secret=SECRET, header=other, body=BODY, now=T0)

    both = other + "," + header_at(T0).split(",")[1]
    webhook_signature_verify(secret=SECRET, header=both, body=BODY, now=T0)


# Delivery


def publish(now: datetime = T0, event_id: str = "evt_invoice_7", **data) -> WebhookDelivery:
    """One delivery per endpoint, not sent yet (this test's transaction never commits)."""
    webhook_event_publish(
        event_type="invoice.finalized",
        data=data or {"total": "29.99"},
        customer=None,
        now=now,
        event_id=event_id,
    )
    return WebhookDelivery.objects.get(event_id=event_id)


def deliver(delivery, receiver, at: datetime) -> WebhookDelivery | None:
    receiver.now = at
    return webhook_deliver(delivery=delivery, now=at)


def test_a_delivery_is_sent_signed_as_stored(endpoint, webhook_receiver, acme):
    webhook_event_publish(
        event_type="invoice.finalized",
        data={"total": "29.99"},
        customer=acme,
        now=T0,
        event_id="evt_invoice_7",
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.body == (
        '{"id":"evt_invoice_7","type":"invoice.finalized","created":"2026-11-10T12:00:00Z",'
        '"customer":"acme","data":{"total":"29.99"}}'
    )

    sent = deliver(delivery, webhook_receiver, T0 + timedelta(seconds=5))

    (received,) = webhook_receiver.received
    assert received.refused is None
    assert received.body == delivery.body.encode()
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Billing-Signature"] == webhook_signature_header(
        secret=endpoint.secret, body=delivery.body, now=T0 + timedelta(seconds=5)
    )
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == (
        "succeeded",
        1,
        200,
        "",
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at, delivery.next_attempt_at) == (
        "succeeded",
        T0 + timedelta(seconds=5),
        None,
    )


def test_publishing_an_event_twice_delivers_it_once(endpoint):
    publish()
    publish()

    assert WebhookDelivery.objects.count() == 1


def test_a_tampered_request_is_refused_by_the_receiver(endpoint, webhook_receiver):
    deliver(publish(), webhook_receiver, T0)
    signed = webhook_receiver.received[0]

    request = urllib.request.Request(  # noqa: S310 (the test receiver)
        webhook_receiver.url,
        data=signed.body.replace(b"29.99", b"0.01"),
        headers={"Billing-Signature": signed.headers["Billing-Signature"]},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310

    assert answer.value.code == 400
    assert webhook_receiver.received[1].refused == (
        "the signature does not match the body and secret"
    )


def test_a_request_the_receiver_finds_expired_is_a_failed_attempt(endpoint, webhook_receiver):
    delivery = publish()
    webhook_receiver.now = T0 + timedelta(seconds=301)

    sent = webhook_deliver(delivery=delivery, now=T0)

    assert webhook_receiver.received[0].refused == (
        "the signature's timestamp is 301 seconds old, more than the 300 tolerated"
    )
    assert (sent.status, sent.attempts, sent.last_status_code) == ("pending", 1, 400)


def test_a_failing_receiver_is_retried_with_backoff_then_the_delivery_fails(
    endpoint, webhook_receiver
):
    # given: a receiver that answers 500 every time
    webhook_receiver.statuses = [500] * 10
    delivery = publish()

    # when: each attempt is made when it falls due, and not a second before
    at, record = T0, []
    for attempt in range(1, 9):
        if attempt > 1:
            assert webhook_deliver(delivery=delivery, now=at - timedelta(seconds=1)) is None
        sent = deliver(delivery, webhook_receiver, at)
        wait = sent.next_attempt_at - at if sent.next_attempt_at else None
        record.append((sent.attempts, sent.status, sent.last_status_code, wait))
        at = sent.next_attempt_at or at

    # then: 30 s, 1, 2, 4, 8, 16, 32 minutes apart; failed after the eighth
    minutes = [timedelta(seconds=30)] + [timedelta(minutes=2**n) for n in range(6)]
    assert record == [(n, "pending", 500, wait) for n, wait in enumerate(minutes, 1)] + [
        (8, "failed", 500, None)
    ]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 8, None)
    assert delivery.last_error == "HTTP 500 Internal Server Error: no"
    assert delivery.delivered_at is None
    # a failed delivery is not sent again
    assert deliver(delivery, webhook_receiver, at + timedelta(days=1)) is None
    assert len(webhook_receiver.received) == 8


def test_a_receiver_that_recovers_gets_the_delivery(endpoint, webhook_receiver):
    webhook_receiver.statuses = [500, 503]
    delivery = publish()

    first = deliver(delivery, webhook_receiver, T0)
    second = deliver(delivery, webhook_receiver, T0 + timedelta(seconds=30))
    third = deliver(delivery, webhook_receiver, T0 + timedelta(seconds=90))

    assert [(d.attempts, d.status, d.last_status_code) for d in (first, second, third)] == [
        (1, "pending", 500),
        (2, "pending", 503),
        (3, "succeeded", 200),
    ]
    delivery.refresh_from_db()
    assert (delivery.delivered_at, delivery.last_error, delivery.next_attempt_at) == (
        T0 + timedelta(seconds=90),
        "",
        None,
    )


def test_a_succeeded_delivery_is_not_sent_again(endpoint, webhook_receiver):
    delivery = publish()
    deliver(delivery, webhook_receiver, T0)

    assert deliver(delivery, webhook_receiver, T0 + timedelta(hours=1)) is None
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert deliver_webhook.delay(delivery.pk).get() is None

    assert len(webhook_receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_the_task_makes_one_attempt_and_schedules_the_next(endpoint, webhook_receiver):
    """Run eagerly, the retry the task schedules comes back at once: it finds
    nothing due and stops, so a test drives the next attempts with the clock."""
    webhook_receiver.statuses = [500]
    delivery = publish()
    webhook_receiver.now = T0

    with time_machine.travel(T0, tick=False):
        assert deliver_webhook.delay(delivery.pk).get() == "pending"

    assert len(webhook_receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.next_attempt_at) == (1, T0 + timedelta(seconds=30))


def test_the_beat_sends_deliveries_overdue_past_the_grace(endpoint, webhook_receiver):
    webhook_receiver.statuses = [500]
    delivery = publish()
    deliver(delivery, webhook_receiver, T0)  # next attempt due at T0 + 30 s
    due = T0 + timedelta(seconds=30)

    with time_machine.travel(due + SWEEP_GRACE - timedelta(seconds=1), tick=False):
        assert retry_due_webhooks.delay().get() == 0
    webhook_receiver.now = due + SWEEP_GRACE
    with time_machine.travel(due + SWEEP_GRACE, tick=False):
        assert retry_due_webhooks.delay().get() == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_an_unreachable_receiver_is_a_failed_attempt(db):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hooks")
    delivery = publish()

    sent = webhook_deliver(delivery=delivery, now=T0)

    assert (sent.status, sent.attempts, sent.last_status_code) == ("pending", 1, None)
    assert sent.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_a_redirect_is_not_followed(endpoint, webhook_receiver):
    webhook_receiver.statuses = [302]

    sent = deliver(publish(), webhook_receiver, T0)

    assert (sent.status, sent.last_status_code) == ("pending", 302)
    assert len(webhook_receiver.received) == 1


def test_a_disabled_endpoint_is_not_sent_to(endpoint, webhook_receiver):
    delivery = publish()
    WebhookEndpoint.objects.update(enabled=False)

    sent = deliver(delivery, webhook_receiver, T0)

    assert (sent.status, sent.attempts, sent.last_error) == (
        "failed",
        0,
        "the endpoint is disabled",
    )
    assert webhook_receiver.received == []


def test_an_endpoint_url_must_be_http(db):
    from django.core.exceptions import ValidationError

    endpoint = WebhookEndpoint(url="ftp://files.acme.test/hooks")
    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()

    assert refused.value.message_dict == {"url": ["must be an http:// or https:// URL"]}


def test_setup_periodic_tasks_schedules_the_webhook_safety_net(db):
    call_command("setup_periodic_tasks", stdout=StringIO())

    task = PeriodicTask.objects.get(name="Send overdue webhook deliveries")
    assert (task.task, task.interval.every, task.interval.period) == (
        "billing.tasks.retry_due_webhooks",
        1,
        "minutes",
    )


# Admin


def test_webhook_admin_pages_load(admin_client, endpoint, webhook_receiver):
    delivery = publish()
    deliver(delivery, webhook_receiver, T0)

    for url in [
        "/admin/billing/webhookendpoint/",
        "/admin/billing/webhookendpoint/add/",
        f"/admin/billing/webhookendpoint/{endpoint.pk}/change/",
        "/admin/billing/webhookdelivery/",
        "/admin/billing/webhookdelivery/?status__exact=succeeded",
        f"/admin/billing/webhookdelivery/?endpoint__id__exact={endpoint.pk}",
        f"/admin/billing/webhookdelivery/{delivery.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/billing/webhookdelivery/add/").status_code == 403
    page = admin_client.get(f"/admin/billing/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret in page.content.decode()


def test_an_endpoint_is_added_in_the_admin_with_a_generated_secret(admin_client):
    response = admin_client.post(
        "/admin/billing/webhookendpoint/add/",
        {
            "url": "https://hooks.acme.test/billing",
            "description": "Acme ops",
            "enabled": "on",
            "event_types": ["alert.usage_threshold", "alert.spend_limit"],
        },
    )

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.event_types, endpoint.enabled) == (
        "https://hooks.acme.test/billing",
        ["alert.usage_threshold", "alert.spend_limit"],
        True,
    )
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == 49


def test_retry_now_sends_a_failed_delivery_again(
    admin_client, endpoint, webhook_receiver, django_capture_on_commit_callbacks
):
    # given: a delivery that failed while the receiver was down
    webhook_receiver.statuses = [500]
    delivery = publish()
    deliver(delivery, webhook_receiver, T0)
    WebhookDelivery.objects.update(status="failed", next_attempt_at=None)
    later = T0 + timedelta(days=1)
    webhook_receiver.now = later

    # when: ops retries it now, the receiver being back
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/billing/webhookdelivery/",
            {"action": "retry_now", "_selected_action": [delivery.pk]},
        )

    # then
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("succeeded", 2, later)
    assert [r.answered for r in webhook_receiver.received] == [500, 200]


def test_retry_now_leaves_a_succeeded_delivery_alone(admin_client, endpoint, webhook_receiver):
    delivery = publish()
    deliver(delivery, webhook_receiver, T0)

    admin_client.post(
        "/admin/billing/webhookdelivery/",
        {"action": "retry_now", "_selected_action": [delivery.pk]},
    )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    assert len(webhook_receiver.received) == 1
