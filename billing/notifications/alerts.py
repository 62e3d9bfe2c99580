"""Alerts: usage thresholds, low balance, auto top-up done, spend limit reached,
payment failed, margin low, a model no rate card prices. An alert fires once per
customer, kind, period and key; it is announced by a signed webhook to each
endpoint that takes its type and an email to the customer (not for TEAM_ONLY
kinds) and to the seller's team addresses that take its kind, both sent after
commit. Which alerts to raise is decided where the fact is known
(billing.usage.alerts, wallets, invoices.collection, billing.margins.alerts,
billing.integrations.unpriced_alerts)."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction

from billing.models import Alert, AlertTeamRecipient
from billing.notifications import channels, webhooks
from billing.notifications.alert_emails import alert_email
from billing.notifications.outbound_pause import outbound_paused
from common import outbound_record
from common.customer_text import CustomerText
from common.errors import InvalidRequest
from common.money import format_money
from common.periods import iso
from common.task_sending import enqueue_on_commit
from customers.billing_entities import customer_billing_entity, seller_from_email
from customers.models import Customer

SPEND_LIMIT_KEY = "spend_limit"


# A Stripe charge that failed (invoices.collection): raised once per attempt. Not
# among the model's choices, which would need a migration for a label only.
PAYMENT_FAILED = Alert.PAYMENT_FAILED


KINDS = {kind for kind, _ in Alert.KINDS}
# Kinds about the seller's business, never emailed to the customer they are about.
TEAM_ONLY = frozenset({Alert.MARGIN_LOW, Alert.UNPRICED_MODEL})
# Kinds of the limits the customer set itself: sent to the channels it chose there
# (billing.notifications.channels, an e-mail address among them), not to its
# billing contact's address as well; the seller's team still takes its copy.
CUSTOMER_CHANNELS = frozenset({Alert.BUDGET_THRESHOLD})


def customer_emailed(*, kind: str, customer: Customer) -> bool:
    """Whether an alert of this kind is emailed to the customer it is about (at
    its address: a budget's alerts go to the channels of its limits instead)."""
    return bool(customer.email) and kind not in TEAM_ONLY | CUSTOMER_CHANNELS


def _insert_once(alert: Alert) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING on the alert's unique key; the new id, or
    None when the row exists. Under concurrency on PostgreSQL a second insert
    waits for the first transaction and then does nothing."""
    fields = [f for f in Alert._meta.local_concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    unique = ("customer_id", "kind", "period_start", "key")
    sql = (
        f"INSERT INTO {quote(Alert._meta.db_table)} "  # noqa: S608 (names from the model)
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({', '.join(quote(c) for c in unique)}) DO NOTHING "
        f"RETURNING {quote(Alert._meta.pk.column)}"
    )
    params = [f.get_db_prep_save(getattr(alert, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def alert_raise(
    *,
    customer: Customer,
    kind: str,
    period_start: datetime,
    key: str,
    payload: dict,
    now: datetime,
    announce: bool = True,
) -> Alert | None:
    """Record an alert and announce it, once: None when (customer, kind,
    period_start, key) fired already. Without `announce` it is recorded only
    (a lower threshold passed with a higher one, which alone is announced). The
    database decides (the unique key and ON CONFLICT DO NOTHING), so concurrent
    callers raise it once between them.

    In the same transaction: one pending webhook delivery of `alert.<kind>` per
    enabled endpoint that takes it, and for a budget's alert one pending message
    per channel of the customer's limits (billing.notifications.channels). After
    commit: the deliveries and messages are sent and the customer (if it has an
    email address, but for a budget's alert) is emailed. `payload` is the event's
    `data` and must be JSON (amounts and quantities as strings)."""
    if kind not in KINDS:
        raise InvalidRequest(f"unknown alert kind {kind!r}", fields={"kind": ["unknown"]})
    alert = Alert(
        customer=customer,
        kind=kind,
        period_start=period_start,
        key=key,
        payload=payload,
        created_at=now,
    )
    with transaction.atomic():
        alert.pk = _insert_once(alert)
        if alert.pk is None:
            return None
        alert._state.adding, alert._state.db = False, connection.alias
        if not announce:
            return alert
        delivery_ids = webhooks.webhook_deliveries_create(
            event_type=alert.event_type,
            event_id=alert_event_id(alert),
            body=webhooks.event_body(
                event_id=alert_event_id(alert),
                event_type=alert.event_type,
                created=now,
                customer=customer,
                data=payload,
            ),
            now=now,
            alert=alert,
        )
        webhooks.webhook_deliveries_enqueue(delivery_ids=delivery_ids, urgent=True)
        if kind in CUSTOMER_CHANNELS:
            channels.alert_channel_messages_create(alert=alert, now=now)
        if customer_emailed(kind=kind, customer=customer) or team_recipients(kind):
            enqueue_on_commit("billing.tasks.send_alert_email", alert.pk)
    return alert


def alert_event_id(alert: Alert) -> str:
    """The webhook event id of an alert: the same for every endpoint and attempt."""
    return f"evt_alert_{alert.pk}"


def alert_period(*, customer: Customer, start: datetime, end: datetime) -> dict:
    """The period an alert is about: its instants, and its days in the customer's
    time zone as people read them ("1 Nov - 30 Nov 2026 (Europe/Paris)")."""
    write = CustomerText.of_customer(customer)
    return {
        "period_start": iso(start),
        "period_end": iso(end),
        "period": write.named(write.dates(start, end)),
    }


def alert_payload(
    *, customer: Customer, period_start: datetime, period_end: datetime, **facts
) -> dict:
    """The data of an alert about a period, as its webhook and email read it: the
    facts of its kind (JSON: amounts and quantities as strings, money in the
    currency the facts name), and the period [period_start, period_end) in the
    customer's time zone (alert_period). The one builder of the payloads of usage
    threshold, spend limit, low balance and auto top-up alerts."""
    return {**facts, **alert_period(customer=customer, start=period_start, end=period_end)}


def spend_limit_payload(
    *, customer: Customer, spend: Decimal, period_start: datetime, period_end: datetime
) -> dict:
    """The data of a `spend_limit` alert, whichever check found the limit passed:
    the spend and the limit in the customer's currency (the currency of its plan,
    which must match it), the limit's mode ("soft": usage goes on; "hard": it is
    refused) and the period. The customer is the event's own `customer`."""
    return alert_payload(
        customer=customer,
        period_start=period_start,
        period_end=period_end,
        spend=format_money(spend, customer.currency),
        spend_limit=format_money(customer.spend_limit, customer.currency),
        currency=customer.currency,
        mode=customer.spend_limit_mode,
    )


def spend_limit_alert_raise(
    *,
    customer: Customer,
    spend: Decimal,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
) -> Alert | None:
    """Raise the `spend_limit` alert of the period [period_start, period_end):
    once a period (alert_raise), with spend_limit_payload. Raised by the usage
    check after ingestion and by the check endpoint (a soft limit passed)."""
    return alert_raise(
        customer=customer,
        kind=Alert.SPEND_LIMIT,
        period_start=period_start,
        key=SPEND_LIMIT_KEY,
        payload=spend_limit_payload(
            customer=customer, spend=spend, period_start=period_start, period_end=period_end
        ),
        now=now,
    )


def team_recipients(kind: str) -> list[str]:
    """The seller's own addresses that take a copy of alerts of this kind."""
    return [
        recipient.email
        for recipient in AlertTeamRecipient.objects.filter(active=True)
        if kind in (recipient.kinds or [])
    ]


def alert_email_send(*, alert: Alert, now: datetime) -> bool:
    """Email the alert to its customer (customer_emailed), and a copy to the
    seller's team addresses that take its kind (AlertTeamRecipient), unless it was
    emailed already or has nobody to go to; True when sent. Safe to run twice in a
    row; two runs at the same moment may both send (an alert email is at least once).
    While sending is paused after a restore (billing.notifications.outbound_pause)
    nothing is sent: the alert stays unemailed, for the resume to send."""
    if outbound_paused():
        return False
    customer = alert.customer
    to_customer = customer_emailed(kind=alert.kind, customer=customer)
    team = team_recipients(alert.kind)
    if (
        not (to_customer or team)
        or Alert.objects.filter(pk=alert.pk, emailed_at__isnull=False).exists()
    ):
        return False
    entity = customer_billing_entity(customer)
    sender = seller_from_email(
        sender_email=entity.sender_email,
        contact_email=entity.email,
        configured=settings.BILLING_ALERT_FROM_EMAIL,
    )
    if to_customer:
        # In the customer's language, figures in their convention.
        subject, text = alert_email(alert)
        send_mail(subject, text, sender, [customer.email])
    if team:
        # The team's copy says whose alert it is, in the team's language (the
        # installation's), the period still in the customer's time zone.
        subject, text = alert_email(alert, locale=settings.LANGUAGE_CODE)
        send_mail(
            f"[{customer.name}] {subject}",
            text,
            sender,
            team,
        )
    # Sent: said outside the database first (common.outbound_record).
    outbound_record.record_append(
        what=outbound_record.ALERT_EMAILED,
        at=now,
        id=alert.pk,
        customer=customer.pk,
        key=alert.key,
    )
    Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=now)
    return True


# The beat's sweep of alert emails (unsent_alert_emails_enqueue): an alert this old
# whose email has not gone is taken to have lost its task; older than the window, it
# is news no longer.
UNSENT_EMAIL_GRACE = timedelta(minutes=2)
UNSENT_EMAIL_WINDOW = timedelta(days=1)


def unsent_alert_emails_enqueue(*, now: datetime, grace: timedelta = UNSENT_EMAIL_GRACE) -> int:
    """Queue the email (send_alert_email) of each announced alert raised between a
    day and `grace` ago that has somebody to go to and is not emailed yet: its task
    was never queued (the broker was out of reach when the alert committed) or was
    lost with the broker. An email still waiting in a queue longer than `grace` may
    be queued twice, and alert_email_send sends it once unless both run at the same
    moment. Nothing while sending is paused after a restore (the resume queues what
    was held). How many were queued."""
    if outbound_paused():
        return 0
    unsent = unsent_alert_emails(since=now - UNSENT_EMAIL_WINDOW, until=now - grace)
    for alert_id in unsent:
        enqueue_on_commit("billing.tasks.send_alert_email", alert_id)
    return len(unsent)


def unsent_alert_emails(*, since: datetime, until: datetime) -> list[int]:
    """The announced alerts raised between `since` and `until` that have somebody to
    go to and are not emailed yet, oldest first. Not announced, so never emailed: a
    threshold passed with a higher one (payload `announced_with`) and a low margin's
    end (`above:N`), as billing.usage.alerts and billing.margins.alerts raise them."""
    unsent = (
        Alert.objects.filter(emailed_at__isnull=True, created_at__gte=since, created_at__lte=until)
        .exclude(payload__has_key="announced_with")
        .exclude(kind=Alert.MARGIN_LOW, key__startswith="above:")
        .select_related("customer")
        .order_by("created_at", "id")
    )
    team_kinds = {
        kind
        for recipient in AlertTeamRecipient.objects.filter(active=True)
        for kind in recipient.kinds or []
    }
    return [
        alert.pk
        for alert in unsent
        if customer_emailed(kind=alert.kind, customer=alert.customer) or alert.kind in team_kinds
    ]
