"""Alerts (services): usage thresholds, low balance, auto top-up done, spend limit
reached. An alert fires once per customer, kind, period and key; it is announced
by a signed webhook to each endpoint that takes its type and an email to the
customer, both sent after commit.

Ingestion calls usage_alerts_enqueue inside its transaction, so this module
imports nothing that imports billing.ingestion (selectors, tasks) at load time.
"""

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction

from billing.core.errors import InvalidRequest
from billing.core.money import format_decimal, format_money
from billing.models import Alert, Subscription
from billing.notifications import webhooks
from billing.usage.metering import meter_cache
from customers.models import Customer
from plans.selectors import version_spec
from plans.validation import VersionSpec

ZERO = Decimal(0)
HUNDRED = Decimal(100)
THRESHOLD_MODELS = ("overage", "hard_cap")
SPEND_LIMIT_KEY = "spend_limit"
# A Stripe charge that failed (invoices.payments): raised once per attempt. Not
# among the model's choices, which would need a migration for a label only.
PAYMENT_FAILED = Alert.PAYMENT_FAILED
KINDS = {kind for kind, _ in Alert.KINDS}


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
) -> Alert | None:
    """Record an alert and announce it, once: None when (customer, kind,
    period_start, key) fired already. The database decides (the unique key and
    ON CONFLICT DO NOTHING), so concurrent callers raise it once between them.

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
    # Imported here: billing.tasks reaches billing.ingestion, which imports this module.
    from billing.tasks import send_alert_email

    with transaction.atomic():
        alert.pk = _insert_once(alert)
        if alert.pk is None:
            return None
        alert._state.adding, alert._state.db = False, connection.alias
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
        webhooks.webhook_deliveries_enqueue(delivery_ids=delivery_ids)
        if customer.email:
            alert_id = alert.pk
            transaction.on_commit(lambda: send_alert_email.delay(alert_id), robust=True)
    return alert


def alert_event_id(alert: Alert) -> str:
    """The webhook event id of an alert: the same for every endpoint and attempt."""
    return f"evt_alert_{alert.pk}"


class AlertCheckThrottle:
    """Per process: how often a customer's usage thresholds are checked after
    ingestion. A customer is checked at once at most every `interval` seconds;
    batches in between schedule one trailing check at the end of the interval, so
    a crossing is never missed, only reported up to `interval` seconds late. This
    keeps a busy customer from costing a usage read per batch."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next_check: dict[int, float] = {}
        self._trailing: dict[int, float] = {}

    def clear(self) -> None:
        with self._lock:
            self._next_check.clear()
            self._trailing.clear()

    def plan(self, customer_ids, *, interval: float, now: float) -> tuple[list, dict]:
        """The customers to check now, and {delay in whole seconds: customers}."""
        immediate, later = [], {}
        with self._lock:
            if len(self._next_check) > 100_000:  # forget old entries now and then
                self._next_check = {c: t for c, t in self._next_check.items() if t > now}
                self._trailing = {c: t for c, t in self._trailing.items() if t > now}
            for customer_id in sorted(customer_ids):
                due = self._next_check.get(customer_id, 0.0)
                if now >= due:
                    immediate.append(customer_id)
                    self._next_check[customer_id] = now + interval
                elif self._trailing.get(customer_id, 0.0) < due:
                    self._trailing[customer_id] = due
                    later.setdefault(math.ceil(due - now), []).append(customer_id)
        return immediate, later


alert_check_throttle = AlertCheckThrottle()


def usage_alerts_enqueue(*, customer_ids) -> None:
    """After the ingest transaction commits, check the usage alert thresholds of
    these customers (a Celery task), throttled per customer (AlertCheckThrottle,
    BILLING_ALERT_CHECK_SECONDS). Costs the ingest nothing but the enqueue; an
    enqueue that fails is logged, and the customer's next batch checks again."""
    from billing.tasks import check_usage_alerts

    immediate, later = alert_check_throttle.plan(
        customer_ids, interval=settings.BILLING_ALERT_CHECK_SECONDS, now=time.monotonic()
    )
    if immediate:
        transaction.on_commit(lambda: check_usage_alerts.delay(immediate), robust=True)
    for delay, ids in later.items():
        transaction.on_commit(
            lambda ids=ids, delay=delay: check_usage_alerts.apply_async((ids,), countdown=delay),
            robust=True,
        )


def alert_thresholds(customer: Customer) -> list[Decimal]:
    """The customer's threshold percentages, or the default setting; ascending."""
    values = customer.alert_thresholds or settings.BILLING_ALERT_THRESHOLDS
    return sorted({Decimal(str(v)) for v in values})


@dataclass(frozen=True)
class _Window:
    """The billing period a check is about, and where its usage starts counting."""

    period_start: datetime
    period_end: datetime
    usage_from: datetime


def _window(subscription: Subscription, now: datetime) -> _Window | None:
    from billing import selectors  # see the module's docstring

    period = selectors.period_now(subscription=subscription, now=now)
    if period is None:
        return None
    start, end = period
    usage_from = start
    if start == subscription.current_period_start:
        # Usage before an immediate plan change was billed on the old version.
        usage_from = max(start, subscription.usage_from or start)
    return _Window(start, end, usage_from)


def usage_alerts_check(*, customer_ids, now: datetime) -> list[Alert]:
    """Raise the usage alerts these customers have reached in their current period:
    `usage_threshold` for each threshold percentage of an overage or hard-cap
    charge's included units (key "<meter>:<percentage>"), and `spend_limit` when
    the period's spend (selectors.period_spend: fixed fees, rated usage and money
    drawn from the prepaid balance) reaches the customer's spend limit. Each fires
    once per period; the next period arms them again. Idempotent.

    Cost: three queries for all the customers (subscriptions, the alerts already
    fired, the meters' freshness), then the usage reads of the customers that
    still have an alert to fire; nothing for those whose alerts all fired."""
    subscriptions = list(
        Subscription.objects.select_related("customer", "version__plan")
        .filter(customer_id__in=list(customer_ids), status__in=Subscription.LIVE)
        .order_by("customer_id")
    )
    checks = []
    for subscription in subscriptions:
        spec = version_spec(version=subscription.version)
        window = _window(subscription, now)
        if window is not None:
            checks.append((subscription, spec, window))
    if not checks:
        return []
    fired = set(
        Alert.objects.filter(
            customer_id__in=[s.customer_id for s, _, _ in checks],
            kind__in=(Alert.USAGE_THRESHOLD, Alert.SPEND_LIMIT),
            period_start__in=list({w.period_start for _, _, w in checks}),
        ).values_list("customer_id", "kind", "period_start", "key")
    )
    raised: list[Alert] = []
    with meter_cache.pinned():
        by_code = {m.code: m for m in meter_cache.by_id().values()}
        for subscription, spec, window in checks:
            raised += _check_subscription(
                subscription,
                spec,
                window,
                fired=fired,
                by_code=by_code,
                now=now,
            )
    return raised


def _check_subscription(
    subscription: Subscription,
    spec: VersionSpec,
    window: _Window,
    *,
    fired: set[tuple],
    by_code: dict,
    now: datetime,
) -> list[Alert]:
    from billing import selectors  # see the module's docstring

    customer = subscription.customer

    def unfired(kind: str, key: str) -> bool:
        return (customer.pk, kind, window.period_start, key) not in fired

    thresholds = alert_thresholds(customer)
    charges = [
        c
        for c in spec.charges
        if c.model in THRESHOLD_MODELS
        and c.included_units
        and c.included_units > 0
        and c.meter in by_code
        and any(unfired(Alert.USAGE_THRESHOLD, _threshold_key(c.meter, p)) for p in thresholds)
    ]
    spend_due = customer.spend_limit is not None and unfired(Alert.SPEND_LIMIT, SPEND_LIMIT_KEY)
    if not charges and not spend_due:
        return []
    period = {
        "period_start": webhooks.iso(window.period_start),
        "period_end": webhooks.iso(window.period_end),
    }
    meters = [by_code[c.meter] for c in charges]
    by_id = selectors.usage_quantities(
        customer_id=customer.pk, meters=meters, start=window.usage_from, end=window.period_end
    )
    quantities = {m.code: by_id[m.id] for m in meters}
    # What counts as spend is what the check endpoint counts (selectors.period_spend).
    spend = (
        selectors.period_spend(
            subscription=subscription, start=window.usage_from, end=window.period_end
        )
        if spend_due
        else None
    )

    raised = []
    for charge in charges:
        quantity = quantities.get(charge.meter, ZERO)
        for percentage in thresholds:
            if quantity * HUNDRED < charge.included_units * percentage:
                break  # ascending: the higher ones are not reached either
            key = _threshold_key(charge.meter, percentage)
            if unfired(Alert.USAGE_THRESHOLD, key):
                payload = {
                    "meter": charge.meter,
                    "model": charge.model,
                    "threshold": format_decimal(percentage),
                    "quantity": format_decimal(quantity),
                    "included": format_decimal(charge.included_units),
                    **period,
                }
                raised.append(
                    alert_raise(
                        customer=customer,
                        kind=Alert.USAGE_THRESHOLD,
                        period_start=window.period_start,
                        key=key,
                        payload=payload,
                        now=now,
                    )
                )
    if spend is not None and spend >= customer.spend_limit:
        raised.append(
            spend_limit_alert_raise(
                customer=customer,
                spend=spend,
                period_start=window.period_start,
                period_end=window.period_end,
                now=now,
            )
        )
    # None: a concurrent check raised it first.
    return [alert for alert in raised if alert is not None]


def _threshold_key(meter: str, percentage: Decimal) -> str:
    return f"{meter}:{format_decimal(percentage)}"


def spend_limit_payload(
    *, customer: Customer, spend: Decimal, period_start: datetime, period_end: datetime
) -> dict:
    """The data of a `spend_limit` alert, whichever check found the limit passed:
    the spend and the limit in the customer's currency (the currency of its plan,
    which must match it), the limit's mode ("soft": usage goes on; "hard": it is
    refused) and the period. The customer is the event's own `customer`."""
    return {
        "spend": format_money(spend, customer.currency),
        "spend_limit": format_money(customer.spend_limit, customer.currency),
        "currency": customer.currency,
        "mode": customer.spend_limit_mode,
        "period_start": webhooks.iso(period_start),
        "period_end": webhooks.iso(period_end),
    }


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


def alert_email(alert: Alert) -> tuple[str, str]:
    """The subject and plain-text body of an alert's email. Reads the payload
    leniently: other apps raise alerts with payloads of their own."""
    customer, data = alert.customer, alert.payload
    period = ""
    if data.get("period_start") and data.get("period_end"):
        period = f" in the period from {data['period_start'][:10]} to {data['period_end'][:10]}"
    if alert.kind == Alert.USAGE_THRESHOLD and {"meter", "threshold"} <= data.keys():
        beyond = (
            "Usage beyond the included units is refused until the next period."
            if data.get("model") == "hard_cap"
            else "Usage beyond the included units is billed at your plan's prices."
        )
        subject = f"You have used {data['threshold']}% of your included {data['meter']}"
        text = (
            f"{customer.name} has used {data.get('quantity', '?')} of the "
            f"{data.get('included', '?')} {data['meter']} included{period} "
            f"({data['threshold']}%).\n\n{beyond}"
        )
    elif alert.kind == Alert.SPEND_LIMIT and {"spend", "spend_limit"} <= data.keys():
        currency = data.get("currency") or customer.currency
        beyond = (
            "Usage continues and is billed."
            if data.get("mode", customer.spend_limit_mode) == Customer.SPEND_LIMIT_SOFT
            else "Further usage is refused until the next period."
        )
        subject = "Your spend limit is reached"
        text = (
            f"{customer.name} has spent {data['spend']} {currency}{period}, reaching "
            f"its spend limit of {data['spend_limit']} {currency}.\n\n{beyond}"
        )
    else:
        subject = {
            Alert.USAGE_THRESHOLD: "A usage threshold is reached",
            Alert.SPEND_LIMIT: "Your spend limit is reached",
            Alert.LOW_BALANCE: "Your balance is low",
            Alert.AUTO_TOP_UP: "Your balance was topped up automatically",
            PAYMENT_FAILED: "A payment failed",
        }.get(alert.kind, alert.kind)
        details = "\n".join(f"{name}: {value}" for name, value in sorted(data.items()))
        text = f"{subject} ({customer.name}).\n\n{details}"
    return subject, f"Hello,\n\n{text}\n"


def alert_email_send(*, alert: Alert, now: datetime) -> bool:
    """Email the alert to its customer, unless it was emailed already or the
    customer has no address; True when sent. Safe to run twice in a row; two runs
    at the same moment may both send (an alert email is at least once)."""
    customer = alert.customer
    if not customer.email or Alert.objects.filter(pk=alert.pk, emailed_at__isnull=False).exists():
        return False
    subject, text = alert_email(alert)
    send_mail(subject, text, settings.BILLING_ALERT_FROM_EMAIL, [customer.email])
    Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=now)
    return True
