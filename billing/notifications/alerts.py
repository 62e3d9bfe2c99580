"""Alerts: usage thresholds, low balance, auto top-up done, spend limit reached,
payment failed, margin low. An alert fires once per customer, kind, period and
key; it is announced by a signed webhook to each endpoint that takes its type
and an email to the customer (not for TEAM_ONLY kinds) and to the seller's team
addresses that take its kind, both sent after commit. Which alerts to raise is
decided where the fact is known (billing.usage.alerts, wallets,
invoices.collection, billing.margins.alerts)."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction

from billing.core import customer_text
from billing.core.customer_text import CustomerText
from billing.core.errors import InvalidRequest
from billing.core.money import format_money
from billing.core.periods import iso
from billing.core.vocabulary import ConsumptionModel
from billing.models import Alert, AlertTeamRecipient
from billing.notifications import webhooks
from config.celery import enqueue_on_commit
from customers.models import Customer

SPEND_LIMIT_KEY = "spend_limit"


# A Stripe charge that failed (invoices.collection): raised once per attempt. Not
# among the model's choices, which would need a migration for a label only.
PAYMENT_FAILED = Alert.PAYMENT_FAILED


KINDS = {kind for kind, _ in Alert.KINDS}
# Kinds about the seller's business, never emailed to the customer they are about.
TEAM_ONLY = frozenset({Alert.MARGIN_LOW})


def customer_emailed(*, kind: str, customer: Customer) -> bool:
    """Whether an alert of this kind is emailed to the customer it is about."""
    return bool(customer.email) and kind not in TEAM_ONLY


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
    enabled endpoint that takes it. After commit: the deliveries are sent and the
    customer (if it has an email address) is emailed. `payload` is the event's
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


SUBJECTS = {
    Alert.USAGE_THRESHOLD: "A usage threshold is reached",
    Alert.SPEND_LIMIT: "Your spend limit is reached",
    Alert.LOW_BALANCE: "Your balance is low",
    Alert.AUTO_TOP_UP: "Your balance was topped up automatically",
    PAYMENT_FAILED: "A payment failed",
    Alert.MARGIN_LOW: "A customer's margin is below the threshold",
}


def alert_email(alert: Alert) -> tuple[str, str]:
    """The subject and plain-text body of an alert's email: a sentence per kind,
    with the period in the customer's time zone. Reads the payload leniently
    (rows raised before a key existed lack it): a payload without the facts its
    sentence needs is listed as it is."""
    customer, data = alert.customer, alert.payload
    period = ""
    if data.get("period"):
        period = f" in the period {data['period']}"
    elif data.get("period_start") and data.get("period_end"):
        period = f" in the period from {data['period_start'][:10]} to {data['period_end'][:10]}"
    write = _SENTENCES.get(alert.kind)
    written = write(customer, data, period) if write else None
    if written is None:
        subject = SUBJECTS.get(alert.kind, alert.kind)
        details = "\n".join(f"{name}: {value}" for name, value in sorted(data.items()))
        written = subject, f"{subject} ({customer.name}).\n\n{details}"
    subject, text = written
    return subject, f"Hello,\n\n{text}\n"


def _usage_threshold_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"meter", "threshold"} <= data.keys():
        return None
    beyond = (
        "Usage beyond the included units is refused until the next period."
        if data.get("model") == ConsumptionModel.HARD_CAP
        else "Usage beyond the included units is billed at your plan's prices."
    )
    name = data.get("meter_name") or data["meter"]
    percentage = data.get("percentage") or data["threshold"]
    return (
        f"You have used {percentage}% of your included {name}",
        f"{customer.name} has used {_grouped(data.get('quantity'))} of the "
        f"{_grouped(data.get('included'))} {name} included{period}: {percentage}%.\n\n{beyond}",
    )


def _spend_limit_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"spend", "spend_limit"} <= data.keys():
        return None
    currency = data.get("currency") or customer.currency
    beyond = (
        "Usage continues and is billed."
        if data.get("mode", customer.spend_limit_mode) == Customer.SPEND_LIMIT_SOFT
        else "Further usage is refused until the next period."
    )
    return (
        SUBJECTS[Alert.SPEND_LIMIT],
        f"{customer.name} has spent {data['spend']} {currency}{period}, reaching "
        f"its spend limit of {data['spend_limit']} {currency}.\n\n{beyond}",
    )


def _low_balance_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"balance", "threshold"} <= data.keys():
        return None
    if data.get("wallet") == "money":
        unit = f" {data.get('currency') or customer.currency}"
        wallet, advice = "balance", "Top up the balance to keep your usage paid for."
    else:
        unit = ""
        wallet, advice = "credits balance", "Buy credits to keep your usage paid for."
    return (
        SUBJECTS[Alert.LOW_BALANCE],
        f"{customer.name}'s prepaid {wallet} is {data['balance']}{unit} (at or below the "
        f"{data['threshold']}{unit} threshold){period}.\n\n{advice}",
    )


def _auto_top_up_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"pack", "credits", "price"} <= data.keys():
        return None
    currency = data.get("currency") or customer.currency
    invoice = f" (invoice {data['invoice']})" if data.get("invoice") else ""
    balance = f"; the credits balance is now {data['balance']}" if data.get("balance") else ""
    return (
        SUBJECTS[Alert.AUTO_TOP_UP],
        f"{customer.name}'s auto top-up bought a pack of {data['credits']} credits "
        f"({data['pack']}) for {data['price']} {currency}{invoice}{period}{balance}.",
    )


def _payment_failed_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"amount", "attempt"} <= data.keys():
        return None
    currency = data.get("currency") or customer.currency
    what = f"invoice {data['invoice']}" if data.get("invoice") else "a purchase"
    attempts = f" of {data['attempts']}" if data.get("attempts") else ""
    error = f"\n\nReason: {data['error']}" if data.get("error") else ""
    then = (
        f"It will be tried again at {data['next_attempt_at']}."
        if data.get("next_attempt_at")
        else "It will not be tried again."
    )
    return (
        SUBJECTS[PAYMENT_FAILED],
        f"The payment of {data['amount']} {currency} for {what}{period} failed "
        f"(attempt {data['attempt']}{attempts}).{error}\n\n{then}",
    )


def _margin_low_email(customer: Customer, data: dict, period: str) -> tuple[str, str] | None:
    if not {"revenue", "cost", "margin", "margin_percent", "threshold"} <= data.keys():
        return None
    currency = data.get("currency") or customer.currency
    return (
        SUBJECTS[Alert.MARGIN_LOW],
        f"{customer.name}'s margin{period} so far is {data['margin_percent']}%, below the "
        f"{data['threshold']}% threshold: revenue {data['revenue']} {currency}, cost "
        f"{data['cost']} {currency}, margin {data['margin']} {currency}.",
    )


_SENTENCES = {
    Alert.USAGE_THRESHOLD: _usage_threshold_email,
    Alert.SPEND_LIMIT: _spend_limit_email,
    Alert.LOW_BALANCE: _low_balance_email,
    Alert.AUTO_TOP_UP: _auto_top_up_email,
    PAYMENT_FAILED: _payment_failed_email,
    Alert.MARGIN_LOW: _margin_low_email,
}


def _grouped(number: object) -> str:
    """A payload's quantity with thousands separators: '250000' -> '250,000'."""
    try:
        return customer_text.quantity(Decimal(str(number)))
    except (ArithmeticError, ValueError):
        return "?"


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
    row; two runs at the same moment may both send (an alert email is at least once)."""
    customer = alert.customer
    to_customer = customer_emailed(kind=alert.kind, customer=customer)
    team = team_recipients(alert.kind)
    if (
        not (to_customer or team)
        or Alert.objects.filter(pk=alert.pk, emailed_at__isnull=False).exists()
    ):
        return False
    subject, text = alert_email(alert)
    if to_customer:
        send_mail(subject, text, settings.BILLING_ALERT_FROM_EMAIL, [customer.email])
    if team:
        # The team's copy says whose alert it is.
        send_mail(
            f"[{customer.name}] {subject}",
            text,
            settings.BILLING_ALERT_FROM_EMAIL,
            team,
        )
    Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=now)
    return True
