"""Usage reads. A quantity for any time range [start, end) is exact: whole UTC
hours come from the rollups (whole UTC days from the daily rollups, the other
hours from the hourly ones, and the events not folded yet: billing.usage.folding),
and the partial hours at either edge from the raw events (billing.usage.edges:
aggregated in SQL on PostgreSQL with the metering rules ingestion applies, metered
by the very function on SQLite). Raw events are never scanned beyond those two
partial hours."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from django.db.models import Count

from billing.models import (
    Subscription,
    UsageRollup,
    UsageUniqueValue,
)
from billing.usage.edges import edges_add
from billing.usage.metering import MeterDef, meter_cache
from billing.usage.rollups import HOUR, hour_of
from billing.usage.whole_hours import whole_hours_params, whole_hours_rows
from common import rawsql
from common.customer_text import customer_zone
from common.periods import period_containing
from common.vocabulary import ALLOWANCE_MODELS
from plans.models import Meter
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION
from plans.rating import billable_units

ZERO = Decimal(0)


def hour_edges(start: datetime, end: datetime) -> tuple[datetime, datetime, list[tuple]]:
    """The whole hours [first, last) inside [start, end), and the partial ranges around them."""
    first = hour_of(start) if start == hour_of(start) else hour_of(start) + HOUR
    last = hour_of(end)
    if first >= last:
        return first, first, [(start, end)]
    return first, last, [r for r in ((start, first), (last, end)) if r[0] < r[1]]


# Per meter over the whole hours of a range (whole_hours_params): count, sum and
# maximum. Written out, as the check and the usage read run it on every call
# (see common.rawsql).
_ROLLUP_SUMS = (
    "SELECT meter_id, SUM(event_count), SUM(value_sum), MAX(value_max) FROM ("  # noqa: S608 (constants only)
    + whole_hours_rows("meter_id, event_count, value_sum, value_max", " AND meter_id IN ({meters})")
    + ") AS r GROUP BY meter_id"
)


# The same over every meter with a rollup in [hour of start, end), for a customer
# without a subscription: the sums count whole hours only (NULL: none).
_ROLLUP_SUMS_ANY_METER = (
    "SELECT meter_id, SUM(CASE WHEN hour >= %s AND hour < %s THEN event_count END), "  # noqa: S608 (constants only)
    "SUM(CASE WHEN hour >= %s AND hour < %s THEN value_sum END), "
    "MAX(CASE WHEN hour >= %s AND hour < %s THEN value_max END) FROM ("
    + whole_hours_rows("meter_id, {bucket}, event_count, value_sum, value_max")
    + ") AS r GROUP BY meter_id"
)

# The latest value of a `latest` meter over whole hours.
_ROLLUP_LATEST = (
    "SELECT latest_at, latest_event_id, latest_value FROM ("  # noqa: S608 (constants only)
    + whole_hours_rows(
        "latest_at, latest_event_id, latest_value",
        " AND meter_id = %s AND latest_at IS NOT NULL",
    )
    + ") AS r ORDER BY latest_at DESC, latest_event_id DESC LIMIT 1"
)

_ROLLUP_LATEST_FIELDS = tuple(
    UsageRollup._meta.get_field(name) for name in ("latest_at", "latest_event_id", "latest_value")
)


_ROLLUP_SUM_FIELDS = tuple(
    UsageRollup._meta.get_field(name) for name in ("meter", "event_count", "value_sum", "value_max")
)


def usage_quantities(
    *, customer_id: int, meters: list[MeterDef] | None, start: datetime, end: datetime
) -> dict[int, Decimal]:
    """The exact quantity of each meter for the customer in [start, end); with
    `meters=None`, of each meter the customer has usage on in it (to the hour)."""
    if meters is not None and (not meters or start >= end):
        return dict.fromkeys((m.id for m in meters), ZERO)
    if start >= end:
        return {}
    first, last, ranges = hour_edges(start, end)
    if meters is None:
        known = meter_cache.by_id()
        whole_hours = [first, last] * 3
        rows = [
            row
            for row in rawsql.rows(
                _ROLLUP_SUMS_ANY_METER,
                [
                    *whole_hours,
                    *whole_hours_params(customer_id, hour_of(start), end, days_in=(first, last)),
                ],
                _ROLLUP_SUM_FIELDS,
                ahead=True,
            )
            if row[0] in known
        ]
        meters = [known[row[0]] for row in rows]
    elif first < last:
        ids = [m.id for m in meters]
        rows = rawsql.rows(
            _ROLLUP_SUMS.format(meters=", ".join(["%s"] * len(ids))),
            whole_hours_params(customer_id, first, last, ids),
            _ROLLUP_SUM_FIELDS,
            ahead=True,
        )
    else:
        rows = []
    tally = Tally()
    for meter_id, n, value_sum, value_max in rows:
        tally.add_hours(meter_id, n, value_sum, value_max)
    if first < last:
        for meter in meters:
            if meter.aggregation == Meter.LATEST:
                for row in rawsql.rows(
                    _ROLLUP_LATEST,
                    whole_hours_params(customer_id, first, last, [meter.id]),
                    _ROLLUP_LATEST_FIELDS,
                    ahead=True,
                ):
                    tally.add_latest(meter.id, *row)

    edges_add(tally, customer_id=customer_id, meters=meters, ranges=ranges)

    quantities = {}
    for meter in meters:
        distinct = None
        if meter.aggregation == Meter.UNIQUE_COUNT:
            distinct = _unique_count(
                customer_id, meter.id, first, last, tally.uniques.get(meter.id, set())
            )
        quantities[meter.id] = tally.quantity(meter.id, meter.aggregation, distinct=distinct)
    return quantities


class Tally:
    """A meter's aggregates (count, sum, max, latest, distinct values) by key: by
    meter for a usage read, by group for a breakdown; from whole hours' rollups
    and the edges' events alike, and read as the meter's aggregation."""

    def __init__(self):
        self.counts: dict = {}
        self.sums: dict = {}
        self.maxima: dict = {}
        self.latest: dict = {}
        self.uniques: dict = {}

    def add_hours(self, key, n, value_sum, value_max) -> None:
        self.counts[key] = self.counts.get(key, 0) + (n or 0)
        self.sums[key] = self.sums.get(key, ZERO) + (ZERO if value_sum is None else value_sum)
        self._max(key, value_max)

    def add_latest(self, key, at, event_id, value) -> None:
        if at is not None and (key not in self.latest or (at, event_id) > self.latest[key][:2]):
            self.latest[key] = (at, event_id, value)

    def add_event(self, key, contribution, timestamp, event_id) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        if contribution.unique is not None:
            self.uniques.setdefault(key, set()).add(contribution.unique)
        if contribution.value is not None:
            self.sums[key] = self.sums.get(key, ZERO) + contribution.value
            self._max(key, contribution.value)
            self.add_latest(key, timestamp, event_id, contribution.value)

    def add_tally(self, other: "Tally") -> None:
        """Add another tally's aggregates (of ranges this one has not seen)."""
        if not (self.counts or self.latest or self.uniques):
            # Nothing yet (a read starting from kept sums): copies, as adding to
            # nothing would make them (its sums were added to ZERO already).
            self.counts, self.sums = dict(other.counts), dict(other.sums)
            self.maxima, self.latest = dict(other.maxima), dict(other.latest)
            self.uniques = {key: set(values) for key, values in other.uniques.items()}
            return
        for key, n in other.counts.items():
            self.add_hours(key, n, other.sums.get(key), other.maxima.get(key))
        for key, latest in other.latest.items():
            self.add_latest(key, *latest)
        for key, values in other.uniques.items():
            self.uniques.setdefault(key, set()).update(values)

    def _max(self, key, value) -> None:
        if value is not None and (self.maxima.get(key) is None or value > self.maxima[key]):
            self.maxima[key] = value

    def quantity(self, key, aggregation: str, *, distinct: int | None = None) -> Decimal:
        """The key's quantity under the aggregation; `distinct`: a unique_count's
        number of distinct values, counted by the caller."""
        if aggregation == Meter.COUNT:
            quantity = Decimal(self.counts.get(key, 0))
        elif aggregation == Meter.SUM:
            quantity = Decimal(self.sums.get(key, ZERO))
        elif aggregation == Meter.MAX:
            quantity = self.maxima.get(key) if self.maxima.get(key) is not None else ZERO
        elif aggregation == Meter.LATEST:
            quantity = self.latest[key][2] if key in self.latest else ZERO
        else:
            quantity = Decimal(distinct or 0)
        return exact_quantity(quantity)


def _unique_count(customer_id: int, meter_id: int, first, last, edge_values: set[str]) -> int:
    """Distinct values over the whole hours (in the database) and the edges (given)."""
    if first >= last:
        return len(edge_values)
    stored = UsageUniqueValue.objects.filter(
        customer_id=customer_id, meter_id=meter_id, hour__gte=first, hour__lt=last
    )
    if not edge_values:
        return stored.aggregate(n=Count("value", distinct=True))["n"]
    # Values seen in the edges that the whole hours also saw must count once.
    already = set(stored.filter(value__in=list(edge_values)).values_list("value", flat=True))
    return stored.aggregate(n=Count("value", distinct=True))["n"] + len(edge_values - already)


def exact_quantity(quantity: Decimal) -> Decimal:
    # Stored quantities carry 10 decimal places; 150000.0000000000 reads as 150000.
    if quantity == quantity.to_integral_value():
        return quantity.quantize(Decimal(1))
    return quantity.normalize()


def subscription_live(*, customer_id: int) -> Subscription | None:
    return (
        Subscription.objects.select_related("version__plan", "customer")
        .filter(customer_id=customer_id, status__in=Subscription.LIVE)
        .first()
    )


@dataclass(frozen=True)
class UsageLine:
    meter: str
    aggregation: str
    model: str | None
    quantity: Decimal
    included: Decimal | None
    billable: Decimal | None


def usage_lines(
    *, customer_id: int, subscription: Subscription | None, start: datetime, end: datetime
) -> list[UsageLine]:
    """One line per charge of the subscription's version; without a subscription,
    one per meter the customer used, with no allowance."""
    if subscription is None:
        quantities = usage_quantities(customer_id=customer_id, meters=None, start=start, end=end)
        by_id = meter_cache.by_id()
        meters = sorted((by_id[i] for i in quantities), key=lambda m: m.code)
        return [
            UsageLine(m.code, m.aggregation, None, quantities[m.id], None, None) for m in meters
        ]
    # The version's charges from its spec: cached, as a published version never changes.
    charges = subscription_spec(subscription).charges
    by_code = meter_cache.by_codes(c.meter for c in charges)
    meters = list(by_code.values())
    quantities = usage_quantities(customer_id=customer_id, meters=meters, start=start, end=end)
    lines = []
    for charge in charges:
        meter = by_code[charge.meter]
        quantity = quantities.get(meter.id, ZERO)
        included = None
        if charge.model in ALLOWANCE_MODELS:
            included = (
                ZERO if charge.included_units is None else exact_quantity(charge.included_units)
            )
        lines.append(
            UsageLine(
                meter.code,
                meter.aggregation,
                charge.model,
                quantity,
                included,
                billable_units(charge.model, quantity, included),
            )
        )
    return lines


def units_covered(amount: Decimal, per_unit: Decimal, per: Decimal = Decimal(1)) -> Decimal:
    """Units `amount` pays for at `per_unit` for every `per` units (each, by
    default), to 10 places, rounded down."""
    if per != 1:
        with localcontext(prec=EXACT_PRECISION):
            amount = amount * per
    return exact_quantity((amount / per_unit).quantize(Decimal("1e-10"), rounding=ROUND_DOWN))


def period_now(*, subscription: Subscription, now: datetime) -> tuple[datetime, datetime] | None:
    """The [start, end) of the subscription's period that `now` falls in: the
    current one, or, when it has ended and the close has not advanced the
    subscription yet, the one the close will start. None when the subscription
    ends with the period that ended (canceled at period end)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if now < end:
        return start, end
    if subscription.cancel_at_period_end:
        return None
    version = subscription.scheduled_version or subscription.version
    return period_containing(
        subscription.anchor_at,
        customer_zone(subscription.customer),
        interval=version.interval,
        calendar_aligned=subscription.billing_anchor == Subscription.CALENDAR,
        moment=now,
    )
