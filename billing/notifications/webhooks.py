"""Webhooks (services): events POSTed as JSON to the endpoints that take their
type, signed with each endpoint's secret; every attempt recorded; failures
retried with exponential backoff, then given up and shown as failed.

The signature is the header `Billing-Signature: t=<unix seconds>,v1=<hex>`,
the hex being HMAC-SHA256(secret, f"{t}.{body}"). A receiver recomputes it over
the raw body and refuses an old timestamp, which stops replays
(webhook_signature_verify does exactly that).

A delivery goes only where common.webhook_targets allows (https:// to public
addresses), checked again at every attempt and sent to the addresses checked.
An attempt that failed keeps its status code and a short fixed text, never the
receiver's answer.
"""

import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import ssl
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q

from billing.locks import webhook_delivery_claim
from billing.models import Alert, WebhookDelivery, WebhookEndpoint
from billing.notifications.outbound_pause import outbound_paused
from common.errors import WebhookSignatureError
from common.periods import iso
from common.task_sending import enqueue_on_commit
from common.webhook_targets import WebhookTarget, WebhookTargetRefused, webhook_target_resolve
from customers.models import Customer

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Billing-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
# The beat leaves a delivery not yet attempted this long to the task enqueued for it
# (webhook_deliveries_enqueue); a retry has no task and is swept once due.
SWEEP_GRACE = timedelta(minutes=1)
USER_AGENT = "usage-billing-webhooks/1"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def webhook_signature(*, secret: str, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}.{body}" with the secret."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), b"%d." % timestamp + raw, hashlib.sha256).hexdigest()


def webhook_signature_header(*, secret: str, body: str | bytes, now: datetime) -> str:
    timestamp = int(now.timestamp())
    return f"t={timestamp},v1={webhook_signature(secret=secret, timestamp=timestamp, body=body)}"


def webhook_signature_verify(
    *,
    secret: str,
    header: str | None,
    body: str | bytes,
    now: datetime,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """Check a received webhook as its receiver should: the header must hold a v1
    signature of exactly these body bytes with this secret, made within
    `tolerance` seconds of `now`. Raises WebhookSignatureError saying which check
    failed; returns None when the request is authentic."""
    if not header:
        raise WebhookSignatureError(f"no {SIGNATURE_HEADER} header")
    timestamps, signatures = [], []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header needs one t=<unix seconds>")
    if not signatures:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header has no v1 signature")
    timestamp = int(timestamps[0])
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    # Several v1 values are allowed, so that a receiver can roll its secret.
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookSignatureError("the signature does not match the body and secret")
    drift = int(now.timestamp()) - timestamp
    if abs(drift) > tolerance:
        raise WebhookSignatureError(
            f"the signature's timestamp is {abs(drift)} seconds "
            f"{'old' if drift > 0 else 'ahead'}, more than the {tolerance} tolerated"
        )


def event_body(
    *, event_id: str, event_type: str, created: datetime, customer: Customer | None, data: dict
) -> str:
    """The JSON text of an event, as it is stored and sent (and signed)."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created": iso(created),
            "customer": customer.external_id if customer is not None else None,
            "data": data,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


def webhook_deliveries_create(
    *, event_type: str, event_id: str, body: str, now: datetime, alert: Alert | None = None
) -> list[int]:
    """One pending delivery of the event per enabled endpoint that takes its type,
    due now; returns their ids. Idempotent per (endpoint, event id). The caller
    sends them after commit (webhook_deliveries_enqueue)."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(enabled=True).order_by("id")
        if endpoint.subscribes_to(event_type)
    ]
    if not endpoints:
        return []
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                alert=alert,
                event_type=event_type,
                event_id=event_id,
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ],
        ignore_conflicts=True,
    )
    return list(
        WebhookDelivery.objects.filter(event_id=event_id, endpoint__in=endpoints)
        .order_by("id")
        .values_list("id", flat=True)
    )


def webhook_deliveries_enqueue(*, delivery_ids: list[int], urgent: bool = False) -> None:
    """Send these deliveries once the current transaction commits; `urgent` (an
    alert's) on the urgent queue (deliver_alert_webhook). A lost enqueue is not lost
    work: the beat (retry_due_webhooks) finds pending deliveries."""
    task = "billing.tasks.deliver_alert_webhook" if urgent else "billing.tasks.deliver_webhook"
    for delivery_id in delivery_ids:
        enqueue_on_commit(task, delivery_id)


def webhook_event_publish(
    *,
    event_type: str,
    data: dict,
    customer: Customer | None,
    now: datetime,
    event_id: str | None = None,
) -> list[int]:
    """Announce an event that is not an alert (e.g. "invoice.finalized") to every
    enabled endpoint that takes its type, after commit. Idempotent per event_id
    when the caller gives one derived from its own row. Returns the delivery ids."""
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    body = event_body(
        event_id=event_id, event_type=event_type, created=now, customer=customer, data=data
    )
    with transaction.atomic():
        ids = webhook_deliveries_create(
            event_type=event_type, event_id=event_id, body=body, now=now
        )
        webhook_deliveries_enqueue(delivery_ids=ids)
    return ids


def retry_delay(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1, 2, 4, 8, 16 and 32 minutes."""
    return FIRST_RETRY * 2 ** (attempts - 1)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the addresses checked, the Host header naming the URL's host."""

    def __init__(self, target: WebhookTarget, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self):
        self.sock = _connect(self.target.addresses, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the addresses checked; the certificate is verified against the
    URL's host, which is also the TLS server name (SNI) and the Host header."""

    def __init__(self, target: WebhookTarget, timeout: float):
        # Made per send, so that it reads the system's CA certificates as they are now.
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.target = target

    def connect(self):
        sock = _connect(self.target.addresses, self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def _connect(addresses, timeout: float) -> socket.socket:
    """A TCP connection to the first of these resolved addresses that answers."""
    error = OSError("no address to connect to")
    for family, kind, proto, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
        else:
            return sock
    raise error


def webhook_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST the body where the outbound guard allows (webhook_target_resolve, to
    the addresses it checked): merchants' endpoints and customers' channels
    (billing.notifications.channels) alike. The status code (None when no answer
    came) and, when it went wrong, one of a few fixed texts. Nothing the receiver
    sent is kept beyond its status code: its answer, reason phrase or a garbled
    status line could be the reply of an internal service. Redirects are not
    followed."""
    try:
        target = webhook_target_resolve(url=url)
    except WebhookTargetRefused as refused:
        return None, f"refused: {refused.message}"
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, TIMEOUT_SECONDS)
    try:
        # A URL may hold text beyond ASCII (the admin's URL field takes it); the
        # request line carries it percent-encoded, as a browser would send it.
        path = quote(target.path, safe="/?#[]@!$&'()*+,;=:%~")
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
    except TimeoutError:
        return None, "timed out"
    except ssl.SSLError:
        return None, "TLS handshake failed"
    except OSError:
        return None, "connection failed"
    except ValueError:
        # http.client.InvalidURL, or text a request line or header cannot carry
        return None, "the URL is not valid"
    except http.client.HTTPException:
        return None, "the receiver's answer is not HTTP"
    finally:
        connection.close()
    if 200 <= status < 300:
        return status, ""
    return status, f"receiver answered HTTP {status}"


def attempt_recorded(
    row, *, sent: bool, status_code: int | None, error: str, now: datetime, what: str
) -> None:
    """Record an attempt's outcome on a row sent with retries (a webhook delivery, a
    channel message: the same status, attempts and next_attempt_at fields): sent,
    it succeeded; not, its error is kept, and after MAX_ATTEMPTS attempts it failed
    (else it waits for the lease set when it was claimed: retry_delay)."""
    row.last_status_code = status_code
    if sent:
        row.status = row.SUCCEEDED
        row.delivered_at = now
        row.next_attempt_at = None
        row.last_error = ""
    else:
        row.last_error = error
        if row.attempts >= MAX_ATTEMPTS:
            row.status = row.FAILED
            row.next_attempt_at = None
        logger.warning("%s %s failed (attempt %s): %s", what, row.pk, row.attempts, error)
    row.save(
        update_fields=[
            "status",
            "last_status_code",
            "last_error",
            "delivered_at",
            "next_attempt_at",
        ]
    )


def webhook_deliver(*, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery | None:
    """Make the delivery's next attempt if one is due at `now`: POST its body,
    signed with a timestamp of `now`, and record the outcome. A 2xx answer marks
    it succeeded; anything else is retried after `retry_delay` and marked failed
    after MAX_ATTEMPTS attempts.

    Safe to call twice and from several workers at once: the attempt is claimed
    under a row lock by moving `next_attempt_at` on, so a concurrent call finds
    nothing due; a succeeded or failed delivery is never sent again. Returns the
    delivery after the attempt, or None when no attempt was due, as while sending
    is paused after a restore (billing.notifications.outbound_pause): the delivery
    is left as it is."""
    if outbound_paused():
        return None
    with transaction.atomic():
        claimed = webhook_delivery_claim(delivery.pk)
        if claimed is None or (claimed.next_attempt_at and claimed.next_attempt_at > now):
            return None
        if not claimed.endpoint.enabled:
            claimed.status = WebhookDelivery.FAILED
            claimed.next_attempt_at = None
            claimed.last_error = "the endpoint is disabled"
            claimed.save(update_fields=["status", "next_attempt_at", "last_error"])
            return claimed
        claimed.attempts += 1
        # A lease until the outcome is recorded: if this worker dies while
        # sending, the beat sends the delivery again at this time.
        claimed.next_attempt_at = now + retry_delay(claimed.attempts)
        claimed.save(update_fields=["attempts", "next_attempt_at"])

    endpoint = claimed.endpoint
    body = claimed.body.encode()
    status_code, error = webhook_post(
        endpoint.url,
        body,
        {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: webhook_signature_header(secret=endpoint.secret, body=body, now=now),
        },
    )
    sent = status_code is not None and 200 <= status_code < 300
    attempt_recorded(
        claimed, sent=sent, status_code=status_code, error=error, now=now, what="webhook delivery"
    )
    return claimed


def webhook_delivery_retry(*, delivery: WebhookDelivery, now: datetime) -> bool:
    """Send a pending or failed delivery again now (the admin's "retry now"); a
    failed one gets one more attempt. False for one that already succeeded."""
    with transaction.atomic():
        updated = due_again(WebhookDelivery, pk=delivery.pk, now=now)
        if updated:
            webhook_deliveries_enqueue(delivery_ids=[delivery.pk])
    return updated


def due_again(model, *, pk: int, now: datetime) -> bool:
    """Make a pending or failed row sent with retries (a webhook delivery, a channel
    message) due now, pending; False for one that already succeeded."""
    return bool(
        model.objects.filter(pk=pk, status__in=(model.PENDING, model.FAILED)).update(
            status=model.PENDING, next_attempt_at=now
        )
    )


def attempts_due(model, *, now: datetime):
    """The pending rows sent with retries whose attempt is due at `now`: a retry,
    and an attempt whose lease ran out (its worker died), once next_attempt_at has
    come; one never attempted, which a task was sent for when it was written, only
    SWEEP_GRACE after that, when the broker lost it. Never one whose attempt is under
    way (its lease runs). Oldest first."""
    retried = Q(attempts__gt=0, next_attempt_at__lte=now)
    lost = Q(attempts=0, next_attempt_at__lte=now - SWEEP_GRACE)
    return model.objects.filter(retried | lost, status=model.PENDING).order_by(
        "next_attempt_at", "id"
    )


def webhook_deliveries_due(*, now: datetime, limit: int = 1000) -> list[tuple[int, bool]]:
    """The pending deliveries whose attempt is due at `now`, oldest first, each as
    (id, whether it is an alert's), for the beat to send: a retry, and an attempt
    whose lease ran out (its worker died), once next_attempt_at has come; one never
    attempted, which a task was sent for when it was written, only SWEEP_GRACE after
    that, when the broker lost it. Never one whose attempt is under way (its lease
    runs). Sending one twice attempts it once (webhook_deliver claims it under the
    row lock). None while sending is paused after a restore."""
    if outbound_paused():
        return []
    rows = attempts_due(WebhookDelivery, now=now).values_list("id", "alert_id")[:limit]
    return [(delivery_id, alert_id is not None) for delivery_id, alert_id in rows]
