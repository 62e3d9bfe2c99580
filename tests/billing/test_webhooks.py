"""Webhooks: signatures verified as a receiver would (valid, tampered, expired),
delivery to a real HTTP receiver, retries with backoff driven by explicit
times, failures shown on the delivery, the beat's safety net, and the admin;
where webhooks may go (public https:// only, at save and at send, connecting to
the addresses checked) and that nothing a receiver answers is kept.

No test asks a real DNS server: common.webhook_targets resolves through the
`dns` fixture, which knows the names a test gives it and IP addresses."""

import importlib
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest
import time_machine

from billing import tasks as billing_tasks
from billing.models import Alert, WebhookDelivery, WebhookEndpoint
from billing.notifications import webhooks
from billing.notifications.webhooks import (
    SWEEP_GRACE,
    webhook_deliver,
    webhook_event_publish,
    webhook_signature,
    webhook_signature_header,
    webhook_signature_verify,
)
from billing.tasks import deliver_webhook, retry_due_webhooks
from common import webhook_targets
from common.errors import WebhookSignatureError
from common.webhook_targets import address_is_public
from tests.beat import scheduled

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)
SECRET = "whsec_test"
BODY = '{"id":"evt_1","type":"alert.low_balance"}'


# Resolves to nothing of ours; never connected to (every send to it is refused first).
PUBLIC = "52.20.30.40"


def header_at(moment: datetime, body: str = BODY, secret: str = SECRET) -> str:
    return webhook_signature_header(secret=secret, body=body, now=moment)


class FakeDNS:
    """The resolver of common.webhook_targets, as a test sets it: `answers` maps a
    name to the addresses it resolves to; an IP address resolves to itself; any
    other name does not resolve. `questions` lists the names asked, in order."""

    def __init__(self):
        self.answers: dict[str, list[str]] = {}
        self.questions: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.questions.append(host)
        if host not in self.answers:
            return socket.getaddrinfo(
                host, port, family, type, proto, flags | socket.AI_NUMERICHOST
            )
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ip_address(a).version == 6
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in self.answers[host]
        ]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(webhook_targets, "getaddrinfo", fake)
    return fake


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
    assert delivery.last_error == "receiver answered HTTP 500"
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


def test_the_task_makes_one_attempt_and_leaves_the_next_to_the_beat(
    endpoint, webhook_receiver, delayed_sends
):
    webhook_receiver.statuses = [500]
    delivery = publish()
    webhook_receiver.now = T0

    with time_machine.travel(T0, tick=False):
        assert deliver_webhook.delay(delivery.pk).get() == "pending"

    assert len(webhook_receiver.received) == 1
    delivery.refresh_from_db()
    # the next attempt is the row's due time, not a task waiting in the broker
    assert (delivery.attempts, delivery.next_attempt_at) == (1, T0 + timedelta(seconds=30))
    assert delayed_sends == []


def test_a_failed_delivery_is_a_row_the_beat_sends_once_when_due(
    endpoint, webhook_receiver, delayed_sends
):
    # given: four failed attempts (at T0, then 30 s, 1 and 2 minutes apart): the next
    # is due 4 minutes after the fourth
    webhook_receiver.statuses = [500, 500, 500, 500]
    delivery = publish()
    fourth = T0 + timedelta(seconds=30 + 60 + 120)
    for at in (T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=90), fourth):
        deliver(delivery, webhook_receiver, at)
    delivery.refresh_from_db()
    due = fourth + timedelta(minutes=4)
    assert (delivery.attempts, delivery.next_attempt_at) == (4, due)

    def sweep(at: datetime) -> int:
        webhook_receiver.now = at
        with time_machine.travel(at, tick=False):
            return retry_due_webhooks.delay().get()

    # when: the beat sweeps (every minute); not before it is due
    assert sweep(due - timedelta(seconds=1)) == 0
    assert len(webhook_receiver.received) == 4
    # then: once due it is sent, once, and no task waited in the broker for it
    assert sweep(due) == 1
    assert sweep(due) == 0
    assert sweep(due + timedelta(hours=1)) == 0
    assert len(webhook_receiver.received) == 5
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 5)
    assert delayed_sends == []


def test_the_beat_leaves_a_new_delivery_to_its_task_for_the_grace(endpoint, webhook_receiver):
    # given: published at T0, its task lost by the broker
    delivery = publish()

    # when: the beat sweeps within the grace, then past it
    with time_machine.travel(T0 + SWEEP_GRACE - timedelta(seconds=1), tick=False):
        assert retry_due_webhooks.delay().get() == 0
    webhook_receiver.now = T0 + SWEEP_GRACE
    with time_machine.travel(T0 + SWEEP_GRACE, tick=False):
        assert retry_due_webhooks.delay().get() == 1

    # then: sent once, past the grace
    assert len(webhook_receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_the_beat_sends_an_alert_delivery_on_the_urgent_queue(endpoint, acme, monkeypatch):
    # given: an alert's delivery whose retry is due, and an invoice event's
    alert = Alert.objects.create(
        customer=acme, kind="usage_threshold", period_start=T0, key="k", payload={}, created_at=T0
    )
    ids = webhooks.webhook_deliveries_create(
        event_type="alert.usage_threshold", body="{}", event_id="evt_a", alert=alert, now=T0
    )
    publish()
    WebhookDelivery.objects.update(attempts=1)
    sent = []
    monkeypatch.setattr(billing_tasks.deliver_webhook, "delay", lambda pk: sent.append(("", pk)))
    monkeypatch.setattr(
        billing_tasks.deliver_alert_webhook, "delay", lambda pk: sent.append(("urgent", pk))
    )

    # when: the beat sweeps
    with time_machine.travel(T0, tick=False):
        assert retry_due_webhooks() == 2

    # then: the alert's by the task of the urgent queue
    other = WebhookDelivery.objects.get(event_id="evt_invoice_7").pk
    assert sorted(sent) == [("", other), ("urgent", ids[0])]


def test_an_unreachable_receiver_is_a_failed_attempt(db, settings):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hooks")
    delivery = publish()

    sent = webhook_deliver(delivery=delivery, now=T0)

    assert (sent.status, sent.attempts, sent.last_status_code) == ("pending", 1, None)
    assert sent.last_error == "connection failed"


def test_a_redirect_is_not_followed(endpoint, webhook_receiver):
    webhook_receiver.statuses = [302]

    sent = deliver(publish(), webhook_receiver, T0)

    assert (sent.status, sent.last_status_code, sent.last_error) == (
        "pending",
        302,
        "receiver answered HTTP 302",
    )
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


def test_setup_periodic_tasks_schedules_the_webhook_safety_net(db):
    assert scheduled("Send overdue webhook deliveries") == (
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


def test_an_endpoint_is_added_in_the_admin_with_a_generated_secret(admin_client, dns):
    dns.answers["hooks.acme.test"] = [PUBLIC]

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


def test_an_endpoint_can_take_only_the_paid_invoices_and_purchases(admin_client, dns):
    """Every published event type is offered in the admin, not only the alerts."""
    dns.answers["hooks.acme.test"] = [PUBLIC]

    response = admin_client.post(
        "/admin/billing/webhookendpoint/add/",
        {
            "url": "https://hooks.acme.test/paid",
            "enabled": "on",
            "event_types": ["invoice.paid", "purchase.paid"],
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["invoice.paid", "purchase.paid"]
    assert endpoint.subscribes_to("invoice.paid")
    assert not endpoint.subscribes_to("alert.usage_threshold")


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


# Where webhooks may go


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address judged, not bound)
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::10.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::", False),
        ("2002:808:808::", True),
    ],
)
def test_which_addresses_are_public(address, public):
    assert address_is_public(ip_address(address)) is public


# A URL that a saved endpoint may not have, why, and the DNS its names get.
REFUSED_URLS = [
    ("https://127.0.0.1/hooks", "address 127.0.0.1 is not public"),
    ("https://10.0.0.1/hooks", "address 10.0.0.1 is not public"),
    ("https://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is not public"),
    ("https://[::1]/hooks", "address ::1 is not public"),
    ("https://[::ffff:10.0.0.1]/hooks", "address ::ffff:10.0.0.1 is not public"),
    ("http://example.com/hooks", "must be an https:// URL"),
    ("ftp://files.acme.test/hooks", "must be an https:// URL"),
    ("https://internal.acme.test/hooks", "the host resolves to an address that is not public"),
    ("https://mixed.acme.test/hooks", "the host resolves to an address that is not public"),
    ("https://nowhere.acme.test/hooks", "the host does not resolve"),
    ("https://ops:pw@hooks.acme.test/hooks", "the URL must not contain a user name or password"),
]
NAMES = {
    "example.com": [PUBLIC],
    "hooks.acme.test": [PUBLIC],
    "internal.acme.test": ["10.1.2.3"],
    # any address not public is enough
    "mixed.acme.test": [PUBLIC, "192.168.1.5"],
}


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_an_endpoint_to_a_url_that_is_not_public_https_is_not_valid(db, dns, url, message):
    from django.core.exceptions import ValidationError

    dns.answers.update(NAMES)
    with pytest.raises(ValidationError) as refused:
        WebhookEndpoint(url=url).full_clean()

    assert refused.value.message_dict == {"url": [message]}


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_the_admin_refuses_an_endpoint_that_is_not_public_https(admin_client, dns, url, message):
    dns.answers.update(NAMES)

    response = admin_client.post(
        "/admin/billing/webhookendpoint/add/", {"url": url, "enabled": "on"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"url": [message]}
    assert WebhookEndpoint.objects.count() == 0


def test_a_public_https_endpoint_is_valid(db, dns):
    dns.answers["hooks.acme.test"] = [PUBLIC, "2606:4700::1111"]

    for url in [
        "https://hooks.acme.test/billing?team=ops",
        "https://hooks.acme.test:8443/billing",
        f"https://{PUBLIC}/billing",
        "https://[2606:4700::1111]/billing",
    ]:
        WebhookEndpoint(url=url).full_clean()


def test_an_allowed_host_may_be_private_and_plain_http(db, dns, settings):
    from django.core.exceptions import ValidationError

    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["Hooks.Internal.test", "[::1]"]
    dns.answers.update({"hooks.internal.test": ["10.0.0.5"], "other.internal.test": ["10.0.0.6"]})

    WebhookEndpoint(url="http://hooks.internal.test:8080/in").full_clean()
    WebhookEndpoint(url="https://hooks.internal.test/in").full_clean()
    WebhookEndpoint(url="http://[::1]:8000/in").full_clean()
    with pytest.raises(ValidationError) as refused:
        WebhookEndpoint(url="https://other.internal.test/in").full_clean()
    assert refused.value.message_dict == {
        "url": ["the host resolves to an address that is not public"]
    }


# A URL that an endpoint saved without validation has (or has now, its DNS
# changed), and what the delivery records. "{port}" is the receiver's.
REFUSED_AT_SEND = [
    ("https://127.0.0.1:{port}/hooks", "refused: address 127.0.0.1 is not public"),
    ("http://127.0.0.1:{port}/hooks", "refused: must be an https:// URL"),
    ("https://10.0.0.1/hooks", "refused: address 10.0.0.1 is not public"),
    ("https://169.254.169.254/latest/meta-data/", "refused: address 169.254.169.254 is not public"),
    ("https://[::1]:{port}/hooks", "refused: address ::1 is not public"),
    ("http://example.com/hooks", "refused: must be an https:// URL"),
    # another spelling of 127.0.0.1, which the resolver understands
    (
        "https://2130706433:{port}/hooks",
        "refused: the host resolves to an address that is not public",
    ),
    (
        "https://internal.acme.test:{port}/hooks",
        "refused: the host resolves to an address that is not public",
    ),
]


@pytest.mark.parametrize(("url", "message"), REFUSED_AT_SEND)
def test_a_delivery_to_an_address_that_is_not_public_is_refused_and_nothing_sent(
    db, dns, settings, webhook_receiver, url, message
):
    # given: an endpoint written without validation, and no host allowed
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = []
    dns.answers.update({"example.com": [PUBLIC], "internal.acme.test": ["127.0.0.1"]})
    WebhookEndpoint.objects.create(url=url.format(port=webhook_receiver.port))
    delivery = publish()

    # when
    sent = deliver(delivery, webhook_receiver, T0)

    # then: a failed attempt, retried later, and the receiver never reached
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == (
        "pending",
        1,
        None,
        message,
    )
    assert sent.next_attempt_at == T0 + timedelta(seconds=30)
    assert webhook_receiver.connections == 0
    assert webhook_receiver.received == []


def test_an_endpoint_whose_dns_changed_after_it_was_saved_is_refused_at_send(
    db, dns, settings, webhook_receiver
):
    # given: a valid endpoint, its name public when it was saved
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = []
    dns.answers["hooks.acme.test"] = [PUBLIC]
    endpoint = WebhookEndpoint(url=f"https://hooks.acme.test:{webhook_receiver.port}/hooks")
    endpoint.full_clean()
    endpoint.save()
    delivery = publish()

    # when: the name now resolves to the receiver on loopback as well
    dns.answers["hooks.acme.test"] = [PUBLIC, "127.0.0.1"]
    sent = deliver(delivery, webhook_receiver, T0)

    # then
    assert (sent.status, sent.last_status_code, sent.last_error) == (
        "pending",
        None,
        "refused: the host resolves to an address that is not public",
    )
    assert webhook_receiver.connections == 0
    assert dns.questions == ["hooks.acme.test", "hooks.acme.test"]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, str]:
    """A CA and a certificate it signed for hooks.acme.test (openssl's command line)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:hooks.acme.test\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = [
        *("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"),
        *("-subj", "/CN=Webhook test CA", "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    ]
    request = [
        "req",
        *key,
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=hooks.acme.test",
    ]
    leaf = [
        *("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-set_serial", "1", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem"),
    ]
    for command in (ca, request, leaf):
        # a fixed command line, run in the test's own folder
        subprocess.run([openssl, *command], cwd=folder, check=True, capture_output=True)  # noqa: S603
    return {name: str(folder / name) for name in ("ca.pem", "leaf.pem", "leaf.key")}


@pytest.fixture
def tls_receiver(tls_files, settings, monkeypatch):
    """The receiver over HTTPS, with a certificate for hooks.acme.test that the
    sender trusts (its CA in SSL_CERT_FILE, read by ssl.create_default_context)."""
    from tests.billing.webhook_receiver import WebhookReceiver

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tls_files["leaf.pem"], tls_files["leaf.key"])
    monkeypatch.setenv("SSL_CERT_FILE", tls_files["ca.pem"])
    receiver = WebhookReceiver(tls=tls).start()
    yield receiver
    receiver.stop()


def test_an_https_delivery_goes_to_the_address_checked_under_the_urls_name(
    db, dns, settings, tls_receiver
):
    # given: an allowed name (its address is loopback) that a real DNS server
    # would not know, so that only the answer the check got can be connected to
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["hooks.acme.test"]
    dns.answers["hooks.acme.test"] = ["127.0.0.1"]
    endpoint = WebhookEndpoint(url=f"https://hooks.acme.test:{tls_receiver.port}/hooks?v=1")
    endpoint.full_clean()
    endpoint.save()
    tls_receiver.secret = endpoint.secret
    dns.questions.clear()

    sent = deliver(publish(), tls_receiver, T0)

    # then: one question to DNS; the certificate verified for the name, which
    # the request also carries as its Host
    assert (sent.status, sent.last_status_code, sent.last_error) == ("succeeded", 200, "")
    assert dns.questions == ["hooks.acme.test"]
    (received,) = tls_receiver.received
    assert received.refused is None
    assert received.headers["Host"] == f"hooks.acme.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_fails_the_attempt(db, dns, settings, tls_receiver):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["other.acme.test"]
    dns.answers["other.acme.test"] = ["127.0.0.1"]
    WebhookEndpoint.objects.create(url=f"https://other.acme.test:{tls_receiver.port}/hooks")

    sent = deliver(publish(), tls_receiver, T0)

    assert (sent.status, sent.last_status_code, sent.last_error) == (
        "pending",
        None,
        "TLS handshake failed",
    )
    assert tls_receiver.received == []


# What a failed delivery keeps

LEAK = "db_password=hunter2"


def stored_text() -> str:
    return repr(list(WebhookDelivery.objects.values())) + repr(
        list(WebhookEndpoint.objects.values())
    )


def test_a_receivers_answer_is_neither_stored_nor_shown(admin_client, endpoint, webhook_receiver):
    # given: a receiver whose error answer (reason phrase and body) holds a secret
    webhook_receiver.statuses = [500]
    webhook_receiver.error_text = f"internal error {LEAK}"
    delivery = publish()

    # when
    sent = deliver(delivery, webhook_receiver, T0)

    # then: its status code and a fixed text, nothing of the answer
    assert (sent.last_status_code, sent.last_error) == (500, "receiver answered HTTP 500")
    assert LEAK not in stored_text()
    for url in [
        "/admin/billing/webhookdelivery/",
        f"/admin/billing/webhookdelivery/{delivery.pk}/change/",
    ]:
        page = admin_client.get(url).content.decode()
        assert "receiver answered HTTP 500" in page, url
        assert LEAK not in page, url
    endpoint_page = admin_client.get(f"/admin/billing/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint_page.status_code == 200
    assert LEAK not in endpoint_page.content.decode()


class _NotHTTP(socketserver.BaseRequestHandler):
    """Answers like a Redis server would to an HTTP request."""

    def handle(self):
        self.request.recv(65536)
        self.request.sendall(f"-ERR unknown command 'POST' {LEAK}\r\n".encode())


def test_a_service_that_does_not_speak_http_is_a_failed_attempt_that_quotes_nothing(db, settings):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with socketserver.TCPServer(("127.0.0.1", 0), _NotHTTP) as server:
        threading.Thread(target=server.handle_request, daemon=True).start()
        WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{server.server_address[1]}/")

        sent = webhook_deliver(delivery=publish(), now=T0)

    assert (sent.status, sent.last_status_code, sent.last_error) == (
        "pending",
        None,
        "the receiver's answer is not HTTP",
    )
    assert LEAK not in stored_text()


def test_a_receiver_that_never_answers_is_timed_out(db, settings, monkeypatch):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.2)
    with socket.socket() as silent:  # takes connections, never reads them
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{silent.getsockname()[1]}/")

        sent = webhook_deliver(delivery=publish(), now=T0)

    assert (sent.last_status_code, sent.last_error) == (None, "timed out")


def test_the_migration_replaces_the_errors_recorded_before_by_fixed_texts(endpoint):
    scrub = importlib.import_module(
        "billing.migrations.0008_webhook_public_urls"
    ).delivery_errors_scrub
    recorded = {
        "evt_1": (500, f"HTTP 500 Internal Server Error: {LEAK}"),
        "evt_2": (302, "HTTP 302 Found: moved"),
        "evt_3": (None, f"BadStatusLine: -ERR {LEAK}"),
        "evt_4": (None, "the endpoint is disabled"),
        "evt_5": (200, ""),
    }
    for event_id, (status_code, error) in recorded.items():
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type="invoice.finalized",
            event_id=event_id,
            body="{}",
            last_status_code=status_code,
            last_error=error,
            created_at=T0,
        )

    from django.apps import apps

    scrub(apps, None)

    assert dict(WebhookDelivery.objects.values_list("event_id", "last_error")) == {
        "evt_1": "receiver answered HTTP 500",
        "evt_2": "receiver answered HTTP 302",
        "evt_3": "connection failed",
        "evt_4": "the endpoint is disabled",
        "evt_5": "",
    }


def test_a_url_with_text_beyond_ascii_is_sent_percent_encoded(endpoint, webhook_receiver):
    """The admin's URL field takes "/hooks/ü"; the request line carries it as
    /hooks/%C3%BC instead of failing the attempt with no error kept."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=webhook_receiver.url + "/ü")

    sent = deliver(publish(), webhook_receiver, T0)

    assert (sent.status, sent.last_status_code, sent.last_error) == ("succeeded", 200, "")
    (received,) = webhook_receiver.received
    assert received.refused is None
