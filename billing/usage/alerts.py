"""Usage threshold alerts: after an ingest, which customers crossed which of
their thresholds of a metered allowance (overage and hard-cap charges), once per
period, meter and threshold; the spend limit passed; and the thresholds of the
budget the customer set itself (customers.limits), once per period and threshold. Raised through
billing.notifications.alerts.

Ingestion calls usage_alerts_enqueue inside its transaction, so this module
imports nothing that imports billing.usage.ingestion at load time."""

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.conf import settings

from billing.models import Alert, Subscription
from billing.notifications.alerts import (
    SPEND_LIMIT_KEY,
    alert_payload,
    alert_raise,
    spend_limit_alert_raise,
)
from billing.usage.metering import meter_cache
from common.money import format_decimal, format_money
from common.task_sending import enqueue_on_commit
from common.vocabulary import ALLOWANCE_MODELS
from customers.limits import ALERT, Limits, limits_of
from customers.models import Customer
from customers.portal_links import portal_email_url
from plans.overrides import subscription_spec
from plans.validation import VersionSpec

HUNDRED = Decimal(100)


ZERO = Decimal(0)


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
    immediate, later = alert_check_throttle.plan(
        customer_ids, interval=settings.BILLING_ALERT_CHECK_SECONDS, now=time.monotonic()
    )
    if immediate:
        enqueue_on_commit("billing.tasks.check_usage_alerts", immediate)
    for delay, ids in later.items():
        enqueue_on_commit("billing.tasks.check_usage_alerts", ids, countdown=delay)


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
    from billing.usage import reads

    period = reads.period_now(subscription=subscription, now=now)
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
    the period's spend (billing.usage.priced.period_spend: fixed fees, rated usage and money
    drawn from the prepaid balance) reaches the customer's spend limit, and
    `budget_threshold` for each percentage of the budget the customer set itself
    that the same spend reaches (key "budget:<percentage>", budget_thresholds).
    Each fires once per period; the next period arms them again. Idempotent.

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
        spec = subscription_spec(subscription)
        window = _window(subscription, now)
        if window is not None:
            checks.append((subscription, spec, window))
    if not checks:
        return []
    fired = set(
        Alert.objects.filter(
            customer_id__in=[s.customer_id for s, _, _ in checks],
            kind__in=(Alert.USAGE_THRESHOLD, Alert.SPEND_LIMIT, Alert.BUDGET_THRESHOLD),
            period_start__in=list({w.period_start for _, _, w in checks}),
        ).values_list("customer_id", "kind", "period_start", "key")
    )
    raised: list[Alert] = []
    with meter_cache.pinned():
        by_code = meter_cache.by_codes(c.meter for _, spec, _ in checks for c in spec.charges)
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
    from billing.usage import priced, reads

    customer = subscription.customer

    def unfired(kind: str, key: str) -> bool:
        return (customer.pk, kind, window.period_start, key) not in fired

    thresholds = alert_thresholds(customer)
    charges = [
        c
        for c in spec.charges
        if c.model in ALLOWANCE_MODELS
        and c.included_units
        and c.included_units > 0
        and c.meter in by_code
        and any(unfired(Alert.USAGE_THRESHOLD, _threshold_key(c.meter, p)) for p in thresholds)
    ]
    spend_due = customer.spend_limit is not None and unfired(Alert.SPEND_LIMIT, SPEND_LIMIT_KEY)
    limits = limits_of(customer)
    budget_due = [
        p for p in budget_thresholds(limits) if unfired(Alert.BUDGET_THRESHOLD, _budget_key(p))
    ]
    if not charges and not spend_due and not budget_due:
        return []
    meters = [by_code[c.meter] for c in charges]
    by_id = reads.usage_quantities(
        customer_id=customer.pk, meters=meters, start=window.usage_from, end=window.period_end
    )
    quantities = {m.code: by_id[m.id] for m in meters}
    # What counts as spend is what the check endpoint counts (billing.usage.priced.period_spend):
    # one statement for the spend limit and the budget the customer set.
    spend = (
        priced.period_spend(
            subscription=subscription, start=window.period_start, end=window.period_end
        )
        if spend_due or budget_due
        else None
    )

    raised = []
    for charge in charges:
        quantity = quantities.get(charge.meter, ZERO)
        crossed = [
            percentage
            for percentage in thresholds
            if quantity * HUNDRED >= charge.included_units * percentage
            and unfired(Alert.USAGE_THRESHOLD, _threshold_key(charge.meter, percentage))
        ]
        if not crossed:
            continue
        # One alert for one crossing, however many thresholds it passed: the
        # highest is announced with the true percentage; the lower ones are
        # recorded with it, so that none fires later in the period.
        highest = crossed[-1]
        payload = usage_threshold_payload(
            customer=customer,
            meter=by_code[charge.meter],
            model=charge.model,
            threshold=highest,
            quantity=quantity,
            included=charge.included_units,
            period_start=window.period_start,
            period_end=window.period_end,
        )
        for percentage in crossed:
            alert = alert_raise(
                customer=customer,
                kind=Alert.USAGE_THRESHOLD,
                period_start=window.period_start,
                key=_threshold_key(charge.meter, percentage),
                payload=payload
                if percentage == highest
                else {
                    **payload,
                    "threshold": format_decimal(percentage),
                    "announced_with": _threshold_key(charge.meter, highest),
                },
                now=now,
                announce=percentage == highest,
            )
            if percentage == highest:
                raised.append(alert)
    if budget_due:
        raised += _budget_alerts(customer, limits, budget_due, spend, window, now)
    if spend_due and spend >= customer.spend_limit:
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


def budget_thresholds(limits: Limits) -> list[Decimal]:
    """The percentages of the customer's budget that alert, ascending: those it
    set, and 100 for a budget that only alerts (a `stop` budget refuses instead)."""
    if limits.budget is None:
        return []
    found = set(limits.thresholds)
    if limits.action == ALERT:
        found.add(HUNDRED)
    return sorted(found)


def _budget_alerts(
    customer: Customer,
    limits: Limits,
    due: list[Decimal],
    spend: Decimal,
    window: _Window,
    now: datetime,
) -> list[Alert | None]:
    """The budget_threshold alerts the spend reached among those `due`: the highest
    announced (to the customer's channels), the lower ones recorded with it."""
    crossed = [p for p in due if spend * HUNDRED >= limits.budget * p]
    if not crossed:
        return []
    highest = crossed[-1]
    payload = budget_threshold_payload(
        customer=customer,
        limits=limits,
        threshold=highest,
        spend=spend,
        period_start=window.period_start,
        period_end=window.period_end,
        now=now,
    )
    raised = []
    for percentage in crossed:
        alert = alert_raise(
            customer=customer,
            kind=Alert.BUDGET_THRESHOLD,
            period_start=window.period_start,
            key=_budget_key(percentage),
            payload=payload
            if percentage == highest
            else {
                **payload,
                "threshold": format_decimal(percentage),
                "announced_with": _budget_key(highest),
            },
            now=now,
            announce=percentage == highest,
        )
        if percentage == highest:
            raised.append(alert)
    return raised


def budget_threshold_payload(
    *,
    customer: Customer,
    limits: Limits,
    threshold: Decimal,
    spend: Decimal,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
) -> dict:
    """The data of a `budget_threshold` alert: the threshold reached, the true
    percentage of the budget spent (whole, rounded down), the spend, the budget
    and what is left of it in the customer's currency, the budget's action, a
    read-only portal link, and the period."""
    currency = customer.currency
    return alert_payload(
        customer=customer,
        period_start=period_start,
        period_end=period_end,
        threshold=format_decimal(threshold),
        percentage=format_decimal((spend * HUNDRED / limits.budget).to_integral_value(ROUND_DOWN)),
        spend=format_money(spend, currency),
        budget=format_money(limits.budget, currency),
        remaining=format_money(max(ZERO, limits.budget - spend), currency),
        currency=currency,
        action=limits.action,
        portal_url=portal_email_url(customer=customer, now=now),
    )


def _budget_key(percentage: Decimal) -> str:
    return f"budget:{format_decimal(percentage)}"


def usage_threshold_payload(
    *,
    customer: Customer,
    meter,
    model: str,
    threshold: Decimal,
    quantity: Decimal,
    included: Decimal,
    period_start: datetime,
    period_end: datetime,
) -> dict:
    """The data of a `usage_threshold` alert: the meter (code and name), the
    threshold crossed, the true percentage of the included units used (whole,
    rounded down: never more than was used), and the period."""
    return alert_payload(
        customer=customer,
        period_start=period_start,
        period_end=period_end,
        meter=meter.code,
        meter_name=meter.name or meter.code,
        model=model,
        threshold=format_decimal(threshold),
        percentage=format_decimal((quantity * HUNDRED / included).to_integral_value(ROUND_DOWN)),
        quantity=format_decimal(quantity),
        included=format_decimal(included),
    )


def _threshold_key(meter: str, percentage: Decimal) -> str:
    return f"{meter}:{format_decimal(percentage)}"
