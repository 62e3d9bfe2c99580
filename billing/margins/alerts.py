"""The margin alert: a customer whose margin in its current period so far falls
below BILLING_MARGIN_ALERT_PERCENT raises `margin_low`, to the seller's team
only (billing.notifications.alerts.TEAM_ONLY; webhook `customer.margin_low`).

The margin is billing.margins.report's by customer over [the period's start,
now), both on the hour below them (costs are computed per hour): the figures
GET /api/v1/margins answers for that window. A customer without revenue in it
has no margin percent and raises nothing.

Once per period and crossing: the first time the margin is below the threshold
in a period raises `below:1`; while it stays below nothing more is raised. When
a later check finds it back at or above the threshold, `above:1` is recorded
(not announced), and the next fall below raises `below:2`, and so on. The next
period arms it again."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from billing.margins.report import Margin, margins
from billing.models import Alert, Subscription
from billing.notifications.alerts import alert_payload, alert_raise
from billing.usage import reads
from common.money import format_decimal, format_money
from common.periods import iso
from customers.models import Customer

# Up to this many customers sharing a period start, their margins are read for
# them alone (customers on anniversary periods: a window each); beyond, the
# report of all the currency's customers is cheaper than a long list of ids.
FEW_CUSTOMERS = 500


@dataclass(frozen=True)
class _Period:
    subscription: Subscription
    start: datetime
    end: datetime


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _crossings(keys: set[str]) -> tuple[int, bool]:
    """The last crossing below raised in the period (0: none), and whether the
    margin went back above since."""
    below = [int(key.split(":")[1]) for key in keys if key.startswith("below:")]
    last = max(below, default=0)
    return last, last == 0 or f"above:{last}" in keys


def margin_alerts_check(*, now: datetime) -> list[Alert]:
    """Raise `margin_low` for each customer with a live subscription whose margin
    in its current period so far is below BILLING_MARGIN_ALERT_PERCENT, once per
    period and crossing; record its return above the threshold. Nothing when the
    setting is unset. Idempotent. The alerts announced.

    Cost: one margins report per distinct period start and currency (customers on
    calendar-aligned periods in one zone share one), of those customers alone when
    they are few (FEW_CUSTOMERS), then one query for the alerts already raised."""
    threshold = settings.BILLING_MARGIN_ALERT_PERCENT
    if threshold is None:
        return []
    until = _hour(now)
    periods: dict[tuple[datetime, str], list[_Period]] = defaultdict(list)
    seen = set()
    for subscription in (
        Subscription.objects.select_related("customer")
        .filter(status__in=Subscription.LIVE)
        .order_by("customer_id", "-started_at", "-id")
    ):
        # A customer's margin is its own, whatever its subscriptions: the
        # period of its latest one.
        if subscription.customer_id in seen:
            continue
        seen.add(subscription.customer_id)
        period = reads.period_now(subscription=subscription, now=now)
        if period is None or _hour(period[0]) >= until:
            continue
        found = _Period(subscription, *period)
        periods[(_hour(found.start), subscription.customer.currency)].append(found)
    measured: list[tuple[_Period, Margin]] = []
    for (start, currency), found in sorted(periods.items()):
        # A window's few customers are read alone; many, with the currency's others.
        customers = (
            [p.subscription.customer_id for p in found] if len(found) <= FEW_CUSTOMERS else None
        )
        by_customer = {
            row.key["customer"]: row
            for row in margins(
                start=start, end=until, group_by="customer", currency=currency, customers=customers
            )
        }
        for period in found:
            row = by_customer.get(period.subscription.customer.external_id)
            if row is not None and row.margin_percent is not None:
                measured.append((period, row))
    if not measured:
        return []
    fired: dict[tuple[int, datetime], set[str]] = defaultdict(set)
    for customer_id, period_start, key in Alert.objects.filter(
        kind=Alert.MARGIN_LOW,
        customer_id__in=[p.subscription.customer_id for p, _ in measured],
        period_start__in=list({p.start for p, _ in measured}),
    ).values_list("customer_id", "period_start", "key"):
        fired[(customer_id, period_start)].add(key)
    raised = []
    for period, row in measured:
        customer = period.subscription.customer
        last, armed = _crossings(fired[(customer.pk, period.start)])
        below = row.margin_percent < threshold
        if below == armed:
            # Below and armed: a crossing. At or above after one: its end.
            alert = alert_raise(
                customer=customer,
                kind=Alert.MARGIN_LOW,
                period_start=period.start,
                key=f"below:{last + 1}" if below else f"above:{last}",
                payload=margin_low_payload(
                    customer=customer,
                    period=period,
                    margin=row,
                    threshold=threshold,
                    measured_until=until,
                ),
                now=now,
                announce=below,
            )
            if below and alert is not None:
                raised.append(alert)
    return raised


def margin_low_payload(
    *,
    customer: Customer,
    period: _Period,
    margin: Margin,
    threshold: Decimal,
    measured_until: datetime,
) -> dict:
    """The data of a `margin_low` alert: the customer, the period, the margin so
    far (revenue, cost, margin in the customer's currency, margin percent),
    measured over [measured_from, measured_until), and the threshold."""
    currency = customer.currency
    return {"customer": customer.external_id} | alert_payload(
        customer=customer,
        period_start=period.start,
        period_end=period.end,
        revenue=format_money(margin.revenue, currency),
        cost=format_money(margin.cost, currency),
        margin=format_money(margin.margin, currency),
        margin_percent=format(margin.margin_percent, "f"),
        currency=currency,
        threshold=format_decimal(threshold),
        measured_from=iso(_hour(period.start)),
        measured_until=iso(measured_until),
    )
