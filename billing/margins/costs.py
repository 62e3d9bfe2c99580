"""What usage cost the seller: each customer's quantities per meter and
combination of group_by values, from the hourly rollups (the group rollups at
the meter's combination_position, the plain ones for a meter without group_by),
each priced at the cost rate in effect at its hour that matches it best (the
rate cards' matching: most properties wins, `{}` the default). Cost rates begin
on the hour (plans.cost_rules), so a window is split at each one's
effective_from and every hour lies wholly in one segment. Quantities no rate
matches cost nothing and are counted as uncosted.

A cost rate in another currency than the report's costs its usage converted at
the exchange rate in effect at the usage's hour (plans.exchange_rates, one
RateBook read per call): the window is split at each rate of the pair too, so
every hour lies in a segment of one exchange rate. Without a rate of the pair
(or its inverse) in effect, the quantity is uncosted and the usage names the
pair (`missing_rates`, "USD->EUR"), rather than counting it as costing nothing.
Of a meter's rates for the same usage the latest in effect applies, whatever
its currency (plans.cost_rules keeps one a usage and hour).

In a report currency (`billed_in`: the customers billed in those currencies),
a cost rate is converted straight into the report's currency the same way,
and a missing rate is named with the day it is missing from
(billing.revenue.conversion.MissingRate).

Only meters whose quantities add up (count, sum) are costed; on PostgreSQL the
rows not folded yet are read with the rollups (billing.usage.folding).

A row stored before the bound on a unit's cost (common.money.MAX_UNIT_PRICE),
or a cost larger than an amount holds, costs nothing either: its quantity is
counted as uncosted and the usage says why (`problems`), so that a report shows
the row instead of failing on it."""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from functools import cached_property

from billing.models import UsagePropertyRollup
from billing.revenue.conversion import MissingRate, missing_rate
from billing.usage.folding import GROUPS, HOURLY
from billing.usage.metering import (
    MeterDef,
    combination_position,
    combination_values,
    meter_cache,
)
from common import rawsql
from common.money import MAX_INTEGER_DIGITS, unit_price_too_large
from customers.models import Customer
from plans.exchange_rates import RateBook, pair_name
from plans.models import CostRate, Meter
from plans.pricing import EXACT_PRECISION
from plans.rate_card_pricing import Combination, RateSpec, row_index, when_of
from plans.rate_cards import RATED_AGGREGATIONS

ZERO = Decimal(0)
# A cost this large or larger is more than an amount holds (AMOUNT's 18 digits).
TOO_LARGE = Decimal(10) ** MAX_INTEGER_DIGITS
_FIELDS = (
    None,
    None,
    None,
    None,
    UsagePropertyRollup._meta.get_field("event_count"),
    UsagePropertyRollup._meta.get_field("value_sum"),
)
_COLUMNS = "customer_id, meter_id, {group} AS group_value, hour, event_count, value_sum"
# The window's hours of the customers billed in some currencies.
_WINDOW = (
    "hour >= %s AND hour < %s AND customer_id IN "  # noqa: S608 (constants only)
    f"(SELECT id FROM {Customer._meta.db_table} WHERE currency IN ({{currencies}}))"
)


@dataclass
class UsageCost:
    """One customer's usage of one meter and combination in the window: its
    quantity, its cost (exact, rounded by whoever shows it), and the part of
    the quantity no cost rate matched."""

    customer_id: int | None
    meter: MeterDef
    values: Combination
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    uncosted: Decimal = ZERO
    part: int = 0  # of the window, when usage_costs split it
    # Why some of the quantity could not be costed (counted in `uncosted`).
    problems: set[str] = field(default_factory=set)
    # The exchange rates missing to cost some of it ({"USD->EUR"}; that quantity
    # is in `uncosted`).
    missing_rates: set[str] = field(default_factory=set)
    # The same with the (UTC) day each is missing from.
    missing_days: set[MissingRate] = field(default_factory=set)


@dataclass(frozen=True)
class _Rate:
    when: tuple
    unit_cost: Decimal
    per: Decimal
    effective_from: datetime
    id: int = 0
    meter: str = ""
    currency: str = ""

    @cached_property
    def refused(self) -> str | None:
        """Why the rate costs nothing: one unit at it costs more than the bound
        (a row stored before it was checked); None for a rate that costs."""
        if not unit_price_too_large(self.unit_cost, self.per):
            return None
        return (
            f"cost rate {self.id} ({self.meter}, from {self.effective_from.isoformat()}) "
            "costs more than the most a unit may cost: its usage is counted as uncosted; "
            "supersede it with a corrected rate"
        )


def _in_effect(rates: Sequence[_Rate], at: datetime) -> tuple[list[RateSpec], list[_Rate]]:
    """The meter's rows in effect at `at`: for each `when`, its latest rate from
    before then (rates oldest first); as RateSpecs to match usage, and the rates."""
    latest: dict[tuple, _Rate] = {}
    for rate in rates:
        if rate.effective_from <= at:
            latest[rate.when] = rate
    chosen = list(latest.values())
    return [RateSpec(when=rate.when) for rate in chosen], chosen


def _costed_meters() -> list[MeterDef]:
    return [m for m in meter_cache.by_id().values() if m.aggregation in RATED_AGGREGATIONS]


def _usage_sql(
    grouping: list[MeterDef],
    plain: list[MeterDef],
    bounds: list[datetime],
    span,
    billed_in: Sequence[str],
    customers: Sequence[int] | None,
    per_customer: bool,
) -> tuple[str, list]:
    """One aggregate of the window's hourly rows of the customers billed in
    `billed_in` (of `customers` only, when given), per customer (all together,
    a null customer, unless `per_customer`), meter, group text and segment (the
    index of the cost-rate boundary each hour follows)."""
    start, end = span
    window = _WINDOW.format(currencies=", ".join(["%s"] * len(billed_in)))
    window_params = [start, end, *billed_in]
    if customers is not None:
        window += f" AND customer_id IN ({', '.join(['%s'] * len(customers))})"
        window_params += list(customers)
    parts, params = [], []
    if grouping:
        which = " OR ".join(["(meter_id = %s AND position = %s)"] * len(grouping))
        where = f"{window} AND ({which})"
        parts.append(GROUPS.rows(_COLUMNS.format(group="group_value"), where))
        pairs = [p for m in grouping for p in (m.id, combination_position(m))]
        params += [*window_params, *pairs] * 2
    if plain:
        where = f"{window} AND meter_id IN ({', '.join(['%s'] * len(plain))})"
        parts.append(HOURLY.rows(_COLUMNS.format(group="''"), where))
        params += [*window_params, *(m.id for m in plain)] * 2
    cases = " ".join(f"WHEN hour < %s THEN {i}" for i in range(len(bounds)))
    segment = f"CASE {cases} ELSE {len(bounds)} END" if bounds else "0"
    who, by = ("customer_id", "customer_id, ") if per_customer else ("NULL", "")
    sql = (
        f"SELECT {who}, meter_id, group_value, {segment} AS segment, "  # noqa: S608 (constants only)
        "SUM(event_count), SUM(value_sum) FROM ("
        + " UNION ALL ".join(parts)
        + f") AS r GROUP BY {by}meter_id, group_value, segment"
    )
    return sql, [*bounds, *params]


def usage_costs(
    *,
    start: datetime,
    end: datetime,
    currency: str,
    customers: Sequence[int] | None = None,
    per_customer: bool = True,
    splits: Sequence[datetime] = (),
    exchange_rates: RateBook | None = None,
    billed_in: Sequence[str] | None = None,
) -> list[UsageCost]:
    """The cost of the usage in [start, end) (whole UTC hours) of every customer
    billed in `currency` (of these `customers` only, when given), at the cost
    rates in it, per customer, meter and combination; not `per_customer`: of
    all of them together per meter and combination (customer_id None), their
    quantities added up before they are costed (a total of the window).
    `splits`: hours inside the window that part it (a chart's months), each
    part's usage apart, its `part` the index of the part (0 before the first).
    `exchange_rates`: a RateBook of the cost rates' currencies to `currency`
    (read here when not given, in one query, and only when some rate needs it).
    `billed_in`: the usage of the customers billed in these currencies instead,
    costed in `currency` (a report currency)."""
    rates: dict[int, list[_Rate]] = {}
    for meter_id, code, when, unit_cost, per, effective_from, pk, of_currency in (
        # A superseded row costs nothing: its correction costs its hours.
        CostRate.objects.filter(effective_from__lt=end, superseded_by__isnull=True)
        .order_by("effective_from", "id")
        .values_list(
            "meter_id",
            "meter__code",
            "when",
            "unit_cost",
            "per",
            "effective_from",
            "id",
            "currency",
        )
    ):
        rate = _Rate(when_of(when), unit_cost, per, effective_from, pk, code, of_currency)
        rates.setdefault(meter_id, []).append(rate)
    meters = _costed_meters()
    if not meters or start >= end or customers == []:
        return []
    foreign = sorted(
        {(r.currency, currency) for of in rates.values() for r in of} - {(currency,) * 2}
    )
    if exchange_rates is None:
        exchange_rates = RateBook.load(foreign) if foreign else RateBook()
    # Each hour in one segment: segment i+1 begins at bounds[i].
    parts = sorted({moment for moment in splits if start < moment < end})
    bounds = sorted(
        {r.effective_from for of in rates.values() for r in of if start < r.effective_from < end}
        | set(parts)
        | exchange_rates.changes(foreign, start, end)
    )
    grouping = [m for m in meters if m.group_by]
    plain = [m for m in meters if not m.group_by]
    sql, params = _usage_sql(
        grouping, plain, bounds, (start, end), billed_in or [currency], customers, per_customer
    )
    by_id = {m.id: m for m in meters}
    counted = {m.id for m in meters if m.aggregation == Meter.COUNT}
    starts = [start, *bounds]
    part_of = [bisect_right(parts, moment) for moment in starts]
    in_effect: dict[tuple[int, int], tuple[list[RateSpec], list[_Rate]]] = {}
    # A meter's group text and segment stand for the same values and rate on
    # every customer's row: each is read and matched once, and its values
    # numbered (one number a meter and combination) to key the customers' rows.
    priced: dict[tuple[int, int, str], tuple[int, Combination, _Rate | None, int]] = {}
    numbers: dict[tuple[int, Combination], int] = {}
    found: dict[tuple[int | None, int, int], UsageCost] = {}
    converted: dict[tuple[str, int], Decimal | None] = {}  # by currency and segment
    with localcontext(prec=EXACT_PRECISION):
        for customer_id, meter_id, text, segment, count, total in rawsql.rows(sql, params, _FIELDS):
            quantity = Decimal(count or 0) if meter_id in counted else total or ZERO
            if not quantity:
                continue
            match = priced.get((meter_id, segment, text))
            if match is None:
                values, rate = _priced(
                    by_id[meter_id], text, in_effect, (meter_id, segment), rates, starts
                )
                number = numbers.setdefault((meter_id, values), len(numbers))
                match = priced[meter_id, segment, text] = (number, values, rate, part_of[segment])
            number, values, rate, part = match
            usage = found.get((customer_id, number, part))
            if usage is None:
                usage = UsageCost(customer_id, by_id[meter_id], values, part=part)
                found[customer_id, number, part] = usage
            usage.quantity += quantity
            if rate is None:
                usage.uncosted += quantity
            elif rate.refused:
                usage.uncosted += quantity
                usage.problems.add(rate.refused)
            elif rate.currency == currency:
                usage.cost += quantity * rate.unit_cost / rate.per
            else:
                key = (rate.currency, segment)
                if key not in converted:
                    converted[key] = exchange_rates.rate(rate.currency, currency, starts[segment])
                if converted[key] is None:
                    usage.uncosted += quantity
                    usage.missing_rates.add(pair_name(rate.currency, currency))
                    usage.missing_days.add(missing_rate(rate.currency, currency, starts[segment]))
                else:
                    usage.cost += quantity * rate.unit_cost / rate.per * converted[key]
    usages = list(found.values())
    for usage in usages:
        if abs(usage.cost) >= TOO_LARGE:
            _too_large(usage)
    return usages


def _too_large(usage: UsageCost) -> None:
    """A cost more than an amount holds is not given: all the usage is uncosted."""
    usage.cost = ZERO
    usage.uncosted = usage.quantity
    usage.problems.add(
        f"the cost of {usage.meter.code} is more than an amount holds: that usage is "
        "counted as uncosted"
    )


def _priced(meter: MeterDef, text: str, in_effect: dict, at: tuple[int, int], rates, starts):
    """The values a group text of the meter stands for, and the rate (None: none)
    that costs them in the segment `at` ((meter id, segment))."""
    meter_id, segment = at
    values = combination_values(meter, text) if meter.group_by else ()
    specs, chosen = in_effect.get(at) or in_effect.setdefault(
        at, _in_effect(rates.get(meter_id, ()), starts[segment])
    )
    index = row_index(specs, dict(values))
    return values, None if index is None else chosen[index]
