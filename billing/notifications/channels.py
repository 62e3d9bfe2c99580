"""Messages to the customer's own channels (services): a budget threshold alert to
each channel its limits name (customers.limits: e-mail addresses, Slack, Microsoft
Teams and Discord incoming webhooks), and the e-mail that tells its billing
contact its limits changed. Each is a ChannelMessage row, written once per source,
kind and target (an alert's in the alert's own transaction), sent after commit on
the urgent queue, and retried by the beat's sweep when it failed (the backoff and
the number of attempts of webhooks): nothing waits in the broker.

A webhook channel is POSTed through the same outbound guard as the merchant's
endpoints (webhooks.webhook_post: https:// to public addresses only, connected to
the addresses checked, no redirects), checked again at every attempt; a failed
attempt keeps one of a few fixed texts, never the receiver's answer. The message
is unsigned: incoming webhooks take none, their URL is the secret."""

import hashlib
import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from billing.locks import channel_message_claim
from billing.models import Alert, ChannelMessage
from billing.notifications.alert_emails import alert_email
from billing.notifications.channel_messages import (
    budget_words,
    limit_change_email,
    webhook_body,
)
from billing.notifications.outbound_pause import outbound_paused
from billing.notifications.webhooks import (
    SWEEP_GRACE,
    USER_AGENT,
    attempt_recorded,
    attempts_due,
    due_again,
    retry_delay,
    webhook_post,
)
from common.customer_text import CustomerText
from common.task_sending import enqueue_on_commit
from customers.billing_entities import customer_billing_entity, seller_from_email
from customers.limits import EMAIL, limits_of
from customers.models import CustomerLimitChange
from customers.portal_links import portal_email_url
from plans.models import Meter

logger = logging.getLogger(__name__)

# A limit change whose e-mail task was lost is found by the sweep this long after.
CHANGE_WINDOW = timedelta(days=1)
MAIL_FAILED = "the mail server could not be reached or refused the message"
TASK = "billing.tasks.deliver_channel_message"


def target_digest(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()


def alert_channel_messages_create(*, alert: Alert, now: datetime) -> list[int]:
    """In the alert's transaction: one pending message of a budget threshold alert
    per channel of the customer's limits, in the customer's language (an e-mail
    is the alert's e-mail, alert_email; a webhook its format's JSON), and their
    sending after commit. Idempotent per (alert, kind, target). The ids."""
    customer = alert.customer
    channels = limits_of(customer).channels
    if not channels:
        return []
    words = budget_words(
        write=CustomerText.of_customer(customer), data=alert.payload, customer_name=customer.name
    )
    if words is None:
        return []
    rows = []
    for channel in channels:
        kind = channel["kind"]
        if kind == EMAIL:
            target = channel["to"]
            subject, body = alert_email(alert)
        else:
            target = channel["url"]
            subject, body = "", webhook_body(kind, words)
        rows.append(
            ChannelMessage(
                customer=customer,
                alert=alert,
                kind=kind,
                target=target,
                target_digest=target_digest(target),
                name=channel.get("name", ""),
                subject=subject[:255],
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
        )
    ChannelMessage.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        ChannelMessage.objects.filter(alert=alert).order_by("id").values_list("id", flat=True)
    )
    for message_id in ids:
        enqueue_on_commit(TASK, message_id)
    return ids


def limit_change_message_create(*, change: CustomerLimitChange, now: datetime) -> int | None:
    """The e-mail telling the customer's billing contact (customer.email) that its
    limits changed (channel_messages.limit_change_email, in its language), as a
    pending message, sent after commit; None when the customer has no address.
    Idempotent: a change is e-mailed once to an address."""
    customer = change.customer
    if not customer.email:
        return None
    subject, body = limit_change_email(
        write=CustomerText.of_customer(customer),
        customer_name=customer.name,
        currency=customer.currency,
        by=change.by,
        via=change.via,
        changed_at=change.changed_at,
        before=change.before or {},
        after=change.after or {},
        names=dict(Meter.objects.values_list("code", "name")),
        url=portal_email_url(customer=customer, now=now),
    )
    with transaction.atomic():
        ChannelMessage.objects.bulk_create(
            [
                ChannelMessage(
                    customer=customer,
                    limit_change=change,
                    kind=EMAIL,
                    target=customer.email,
                    target_digest=target_digest(customer.email),
                    subject=subject[:255],
                    body=body,
                    next_attempt_at=now,
                    created_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        message = ChannelMessage.objects.get(
            limit_change=change, kind=EMAIL, target_digest=target_digest(customer.email)
        )
        if message.status == ChannelMessage.PENDING and message.attempts == 0:
            enqueue_on_commit(TASK, message.pk)
    return message.pk


def channel_message_send(*, message: ChannelMessage, now: datetime) -> ChannelMessage | None:
    """Make the message's next attempt if one is due at `now` and record the
    outcome: an e-mail sent (the mail server took it), a webhook answered 2xx,
    mark it succeeded; anything else is tried again after webhooks.retry_delay and
    marked failed after MAX_ATTEMPTS attempts.

    Safe to call twice and from several workers at once: the attempt is claimed
    under the row's lock by moving `next_attempt_at` on (a lease: a worker that
    dies sending leaves it to the sweep then), so a concurrent call finds nothing
    due. None when no attempt was due, as while sending is paused after a restore
    (billing.notifications.outbound_pause): the message is left as it is."""
    if outbound_paused():
        return None
    with transaction.atomic():
        claimed = channel_message_claim(message.pk)
        if claimed is None or (claimed.next_attempt_at and claimed.next_attempt_at > now):
            return None
        claimed.attempts += 1
        claimed.next_attempt_at = now + retry_delay(claimed.attempts)
        claimed.save(update_fields=["attempts", "next_attempt_at"])

    if claimed.kind == EMAIL:
        status_code, error = None, _email(claimed)
        sent = not error
    else:
        status_code, error = webhook_post(
            claimed.target,
            claimed.body.encode(),
            {"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        sent = status_code is not None and 200 <= status_code < 300
    attempt_recorded(
        claimed,
        sent=sent,
        status_code=status_code,
        error=error,
        now=now,
        what=f"channel message ({claimed.kind})",
    )
    return claimed


def _email(message: ChannelMessage) -> str:
    """Send an e-mail message; '' when the mail server took it, else a fixed text."""
    entity = customer_billing_entity(message.customer)
    sender = seller_from_email(
        sender_email=entity.sender_email,
        contact_email=entity.email,
        configured=settings.BILLING_ALERT_FROM_EMAIL,
    )
    try:
        send_mail(message.subject, message.body, sender, [message.target])
    except (OSError, smtplib.SMTPException):
        return MAIL_FAILED
    return ""


def channel_message_retry(*, message: ChannelMessage, now: datetime) -> bool:
    """Send a pending or failed message again now (the admin's "retry now"); a
    failed one gets one more attempt. False for one that already succeeded."""
    with transaction.atomic():
        updated = due_again(ChannelMessage, pk=message.pk, now=now)
        if updated:
            enqueue_on_commit(TASK, message.pk)
    return updated


def channel_messages_due(*, now: datetime, limit: int = 1000) -> list[int]:
    """The pending messages whose attempt is due at `now`, oldest first, for the
    beat to send: a retry, an attempt whose lease ran out, and one never attempted
    SWEEP_GRACE after it was written (its task lost). Sending one twice attempts
    it once (channel_message_send claims it under the row lock). None while
    sending is paused after a restore."""
    if outbound_paused():
        return []
    return list(attempts_due(ChannelMessage, now=now).values_list("id", flat=True)[:limit])


def limit_changes_unsent(*, now: datetime) -> list[int]:
    """The limit changes of the last day, SWEEP_GRACE old at least, of customers
    with an address, that have no e-mail message yet: their task was lost (the
    broker out of reach when the change committed). The sweep writes them."""
    return list(
        CustomerLimitChange.objects.filter(
            changed_at__gte=now - CHANGE_WINDOW,
            changed_at__lte=now - SWEEP_GRACE,
            channel_messages__isnull=True,
        )
        .exclude(customer__email="")
        .order_by("changed_at", "id")
        .values_list("id", flat=True)
    )
