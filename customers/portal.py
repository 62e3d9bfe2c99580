"""What a customer's portal shows (portal_overview); its links are made and read
by customers.portal_links (re-exported here)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.invoicing.discounts import usage_discounted
from billing.usage.breakdowns import ADDITIVE, OTHER_KEY, meter_breakdown, usage_groups
from billing.usage.metering import meter_cache
from billing.usage.reads import subscription_live, usage_quantities
from billing.usage.summary import PeriodUsage, period_usage
from common.customer_text import customer_zone
from customers.portal_links import (  # noqa: F401 (the names callers import from here)
    SALT,
    PortalSession,
    PortalTokenExpired,
    PortalTokenInvalid,
    portal_customer_id,
    portal_email_url,
    portal_session_create,
)
from invoices.models import Invoice
from plans.feature_grants import granted
from plans.models import Feature, Meter
from plans.overrides import subscription_spec
from wallets.selectors import scoped_remainders, wallet_list


@dataclass(frozen=True)
class FeatureUsage:
    meter: str
    name: str
    model: str | None
    quantity: Decimal
    included: Decimal | None
    amount: Decimal | None
    uncovered: Decimal | None
    # The uncovered usage is billed at the close (when_exhausted "bill"), not refused.
    uncovered_billed: bool
    # Width of the used-vs-included bar, 0-100 (None: nothing included to compare).
    percent: int | None
    # A meter that groups its usage: its first group_by property, and the
    # period's quantity by its values (the largest, then "Other"): rows of
    # (value, label, quantity) (billing.usage.breakdowns.meter_breakdown).
    breakdown_property: str = ""
    breakdown: tuple[tuple[object, str, Decimal], ...] = ()
    # A charge priced by a rate card: each row that priced usage, (its values,
    # quantity, amount) (billing.usage.statement.PeriodStatement.rated).
    rates: tuple[tuple[tuple[str, ...], Decimal, Decimal], ...] = ()


@dataclass(frozen=True)
class DailyChart:
    meter: str
    name: str
    days: list[tuple[date, Decimal]]
    peak: Decimal
    # A grouping count or sum meter: each day's bar stacked by these groups.
    series: tuple[str, ...] = ()
    stacked: tuple[tuple[Decimal, ...], ...] = ()


@dataclass(frozen=True)
class PortalOverview:
    """The portal's page: the period's usage as /usage reads it (its figures are
    the period statement's: billing.usage.priced.UsageSummary), the features'
    rows and charts drawn from it, the wallets and the invoices."""

    customer: object
    # None without a live subscription.
    usage: PeriodUsage | None
    features: list[FeatureUsage]
    wallets: list
    charts: list[DailyChart]
    invoices: list
    # The features the plan (with the deal) grants: (name, value) by name.
    features_granted: tuple[tuple[str, object], ...] = ()
    # Of a wallet's balance, what only some meters can draw: wallet id -> (meter
    # names, remainder) for each set of meters its blocks apply to.
    scoped: dict = field(default_factory=dict)

    @property
    def subscription(self):
        return self.usage.subscription if self.usage else None

    @property
    def usage_since(self) -> datetime | None:
        """Where the features' usage starts when it is not the period's start (after
        an immediate plan change, the usage before it was billed already); None when
        it is the whole period so far. The charts show the whole period."""
        summary = self.usage.summary if self.usage else None
        if summary is None or summary.statement.usage_from <= self.usage.start:
            return None
        return summary.statement.usage_from


def _percent(quantity: Decimal, included: Decimal | None) -> int | None:
    if not included:
        return None
    return int(min(Decimal(100), quantity * 100 / included))


def day_ranges(
    start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """The days (in the customer's time zone) of [start, end), each with the part
    of it in the range."""
    out = []
    day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        following = (day + timedelta(days=1, hours=2)).replace(hour=0)  # DST-proof
        out.append((day.date(), max(day, start), min(following, end)))
        day = following
    return out


def daily_usage(
    *, customer_id: int, meters: list, start: datetime, end: datetime, zone: ZoneInfo
) -> dict[int, list[tuple[date, Decimal]]]:
    """Each meter's quantity per day (in the customer's time zone) of [start, end)."""
    out: dict[int, list[tuple[date, Decimal]]] = {m.id: [] for m in meters}
    for day, since, until in day_ranges(start, end, zone):
        quantities = usage_quantities(
            customer_id=customer_id, meters=meters, start=since, end=until
        )
        for meter in meters:
            out[meter.id].append((day, quantities[meter.id]))
    return out


def _features_granted(subscription) -> tuple[tuple[str, object], ...]:
    """The features the subscription grants with a value other than false, by
    their names."""
    grants = granted(subscription_spec(subscription).features)
    names = dict(Feature.objects.filter(code__in=grants).values_list("code", "name"))
    return tuple(
        sorted(
            (
                (names.get(code, code), value)
                for code, value in grants.items()
                if value is not False
            ),
            key=lambda pair: pair[0].lower(),
        )
    )


def _breakdown(customer_id: int, meter_code: str, *, start, end) -> dict:
    prop, rows = meter_breakdown(
        customer_id=customer_id, meter_code=meter_code, start=start, end=end
    )
    return {"breakdown_property": prop, "breakdown": rows} if rows else {}


def _daily_series(customer_id: int, meter, features, *, start, end, zone) -> dict:
    """A count or sum meter's daily quantities stacked by the groups its table
    shows (the rest as "Other"): the series' labels and, per day, a quantity
    each. Nothing for other meters (their groups do not add up to the bar)."""
    shown = next((f for f in features if f.meter == meter.code), None)
    if shown is None or not shown.breakdown or meter.aggregation not in ADDITIVE:
        return {}
    by = meter.group_by[0]
    keys = [key for key, _, _ in shown.breakdown]
    stacked = []
    for _, since, until in day_ranges(start, end, zone):
        groups = usage_groups(customer_id=customer_id, meter=meter, by=by, start=since, end=until)
        quantities = dict.fromkeys(keys, Decimal(0))
        for group in groups:
            key = group.key[by] if group.key[by] in quantities else OTHER_KEY
            if key in quantities:
                quantities[key] += group.quantity
        stacked.append(tuple(quantities[key] for key in keys))
    return {"series": tuple(label for _, label, _ in shown.breakdown), "stacked": tuple(stacked)}


def portal_overview(*, customer, now: datetime) -> PortalOverview:
    """What the customer's portal shows: the current period's usage per feature,
    amounts so far and projected, wallet balances, a daily usage chart of the
    period so far, and the invoices: issued, and drafts (upcoming, not issued
    yet: the figures count what they bill as such)."""
    subscription = subscription_live(customer_id=customer.pk)
    invoices = list(
        Invoice.objects.filter(customer=customer).prefetch_related("credit_notes").order_by("-id")
    )
    wallets = wallet_list(customer_id=customer.pk)
    scoped = _scoped_balances(wallets, now)
    if subscription is None:
        return PortalOverview(customer, None, [], wallets, [], invoices, scoped=scoped)
    start, end = subscription.current_period_start, subscription.current_period_end
    names = dict(Meter.objects.values_list("code", "name"))
    usage = usage_discounted(
        period_usage(customer=customer, subscription=subscription, start=start, end=end, now=now)
    )
    summary = usage.summary
    billing_uncovered = {
        c.meter for c in subscription_spec(subscription).charges if c.bills_uncovered
    }
    usage_start = summary.statement.usage_from
    features = [
        FeatureUsage(
            meter=row.line.meter,
            name=names.get(row.line.meter, row.line.meter),
            model=row.line.model,
            quantity=row.line.quantity,
            included=row.line.included,
            amount=row.amount,
            uncovered=row.uncovered or None,  # mentioned only when there is some
            uncovered_billed=row.line.meter in billing_uncovered,
            percent=_percent(row.line.quantity, row.line.included),
            rates=tuple(
                (tuple(group.values()), quantity, amount)
                for group, quantity, amount in row.rates or ()
            ),
            **_breakdown(customer.pk, row.line.meter, start=usage_start, end=end),
        )
        for row in usage.lines
    ]
    with meter_cache.pinned():
        charted = list(meter_cache.by_codes(f.meter for f in features).values())
        daily = daily_usage(
            customer_id=customer.pk,
            meters=charted,
            start=start,
            end=min(end, now),
            zone=customer_zone(customer),
        )
        charts = [
            DailyChart(
                meter=m.code,
                name=names.get(m.code, m.code),
                days=daily[m.id],
                peak=max((q for _, q in daily[m.id]), default=Decimal(0)),
                **_daily_series(
                    customer.pk,
                    m,
                    features,
                    start=start,
                    end=min(end, now),
                    zone=customer_zone(customer),
                ),
            )
            for m in charted
        ]
    return PortalOverview(
        customer,
        usage,
        features,
        wallets,
        charts,
        invoices,
        _features_granted(subscription),
        scoped,
    )


def _scoped_balances(wallets: list, now: datetime) -> dict:
    """PortalOverview.scoped: the meters by name."""
    found = scoped_remainders(wallet_ids=[w.pk for w in wallets], now=now)
    if not found:
        return {}
    names = dict(Meter.objects.values_list("code", "name"))
    return {
        wallet_id: [(tuple(names.get(c, c) for c in codes), left) for codes, left in parts]
        for wallet_id, parts in found.items()
    }
