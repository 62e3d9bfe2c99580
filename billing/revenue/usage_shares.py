"""When usage happened within a line's service period: the share of the
period's usage that happened before a moment, for earned revenue's lines that
are earned as their usage happened (billing.revenue.earned) and straddle a
window's edge.

A line of a grouping meter is read for its own combination of values (the
group rollups and the edges' raw events, as the period statement read it);
any other line for its meter. Both sides of the moment are read as they are
now, so the shares of a line always lie between 0 and 1. A line whose usage
cannot be read this way (a meter whose quantities do not add up, none stored
any more) has no share: it is earned straight-line."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from billing.models import UsagePropertyRollup
from billing.usage.breakdowns import usage_combinations
from billing.usage.folding import GROUPS, HOURLY
from billing.usage.metering import (
    MeterDef,
    combination_position,
    combination_values,
    meter_cache,
)
from billing.usage.reads import usage_quantities
from common import rawsql
from common.periods import on_the_hour
from plans.pricing import EXACT_PRECISION
from plans.rate_card_pricing import Combination
from plans.rate_cards import RATED_AGGREGATIONS

ZERO = Decimal(0)


@dataclass(frozen=True)
class Cut:
    """A line's usage of `meter` (and combination `values`, () for the meter
    whole) in [start, end), cut at `at` (start < at < end)."""

    customer_id: int
    meter: str
    values: Combination
    start: datetime
    end: datetime
    at: datetime


def additive(meter: MeterDef | None) -> bool:
    """Whether the meter's quantities add up over time (count, sum)."""
    return meter is not None and meter.aggregation in RATED_AGGREGATIONS


def usage_shares(cuts: Iterable[Cut]) -> dict[Cut, Decimal | None]:
    """Each cut's share of its usage before `at` (exact), None when its usage
    could not be read (none stored in the span, a meter that does not add up).
    Cuts whose span and moment fall on whole hours are read from the hourly
    rollups, those of one span and moment together whoever the customer (a
    month of ten thousand customers' lines cut at a window's edge: a query);
    any other cut from the customer's usage read exactly, the cuts of one
    customer, span and moment together."""
    by_read: dict[tuple, list[Cut]] = defaultdict(list)
    hourly: dict[tuple, list[Cut]] = defaultdict(list)
    for cut in cuts:
        if on_the_hour(cut.start) and on_the_hour(cut.end) and on_the_hour(cut.at):
            hourly[cut.start, cut.end, cut.at].append(cut)
        else:
            by_read[cut.customer_id, cut.start, cut.end, cut.at].append(cut)
    shares: dict[Cut, Decimal | None] = {}
    for (start, end, at), of_span in hourly.items():
        for first in range(0, len(of_span), HOURLY_CHUNK):
            shares.update(_hourly_shares(of_span[first : first + HOURLY_CHUNK], start, end, at))
    for (customer_id, start, end, at), of_read in by_read.items():
        meters = meter_cache.by_codes({cut.meter for cut in of_read})
        before = _quantities(customer_id, meters, start, at)
        after = _quantities(customer_id, meters, at, end)
        for cut in of_read:
            meter = meters.get(cut.meter)
            if not additive(meter):
                shares[cut] = None
                continue
            key = (meter.code, cut.values if meter.group_by and cut.values else ())
            ahead, behind = before.get(key, ZERO), after.get(key, ZERO)
            if ahead + behind <= 0:
                shares[cut] = None
                continue
            with localcontext(prec=EXACT_PRECISION):
                shares[cut] = ahead / (ahead + behind)
    return shares


def _quantities(
    customer_id: int, meters: dict[str, MeterDef], start: datetime, end: datetime
) -> dict[tuple[str, Combination], Decimal]:
    """The customer's usage in [start, end) by (meter code, combination): each
    meter whole under (), a grouping meter's combinations under theirs too."""
    found: dict[tuple[str, Combination], Decimal] = {}
    listed = list(meters.values())
    whole = usage_quantities(customer_id=customer_id, meters=listed, start=start, end=end)
    for meter in listed:
        found[meter.code, ()] = whole.get(meter.id, ZERO)
    grouping = [meter for meter in listed if meter.group_by]
    if grouping:
        combos = usage_combinations(customer_id=customer_id, meters=grouping, start=start, end=end)
        for meter in grouping:
            for combination, quantity in combos[meter.id].items():
                found[meter.code, combination] = quantity
    return found


# Cuts read from the rollups in one query at most (the customers' ids are listed).
HOURLY_CHUNK = 5000
_COLUMNS = "customer_id, meter_id, {group} AS group_value, hour, event_count, value_sum"
_FIELDS = (
    None,
    None,
    None,
    None,
    UsagePropertyRollup._meta.get_field("event_count"),
    UsagePropertyRollup._meta.get_field("value_sum"),
)


def _hourly_shares(cuts: list[Cut], start, end, at) -> dict[Cut, Decimal | None]:
    """usage_shares of cuts of one span and moment, all on whole hours: one
    aggregate of the customers' hourly rows before and after the moment, each
    meter whole (the plain rollups) and each grouping meter's combinations (the
    group rollups at its combination position), with the rows not folded yet."""
    meters = meter_cache.by_codes({cut.meter for cut in cuts})
    adding = [meter for meter in meters.values() if additive(meter)]
    grouping = [meter for meter in adding if meter.group_by]
    customers = sorted({cut.customer_id for cut in cuts})
    shares: dict[Cut, Decimal | None] = dict.fromkeys(cuts)
    if not adding:
        return shares
    window = f"hour >= %s AND hour < %s AND customer_id IN ({', '.join(['%s'] * len(customers))})"
    window_params = [start, end, *customers]
    parts, params = [], []
    where = f"{window} AND meter_id IN ({', '.join(['%s'] * len(adding))})"
    parts.append(HOURLY.rows(_COLUMNS.format(group="NULL"), where))
    params += [*window_params, *(m.id for m in adding)] * 2
    if grouping:
        which = " OR ".join(["(meter_id = %s AND position = %s)"] * len(grouping))
        parts.append(GROUPS.rows(_COLUMNS.format(group="group_value"), f"{window} AND ({which})"))
        pairs = [p for m in grouping for p in (m.id, combination_position(m))]
        params += [*window_params, *pairs] * 2
    sql = (
        "SELECT customer_id, meter_id, group_value, hour < %s, "  # noqa: S608 (constants only)
        "SUM(event_count), SUM(value_sum) FROM ("
        + " UNION ALL ".join(parts)
        + ") AS r GROUP BY 1, 2, 3, 4"
    )
    by_id = {meter.id: meter for meter in adding}
    sides: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for customer_id, meter_id, text, before, count, total in rawsql.rows(
        sql, [at, *params], _FIELDS
    ):
        meter = by_id[meter_id]
        quantity = Decimal(count or 0) if meter.aggregation == "count" else total or ZERO
        values = () if text is None else combination_values(meter, text)
        sides[customer_id, meter.code, values][0 if before else 1] += quantity
    for cut in cuts:
        meter = meters.get(cut.meter)
        if meter is None or meter.id not in by_id:
            continue
        key = (cut.customer_id, meter.code, cut.values if meter.group_by else ())
        ahead, behind = sides.get(key, (ZERO, ZERO))
        if ahead + behind > 0:
            with localcontext(prec=EXACT_PRECISION):
                shares[cut] = ahead / (ahead + behind)
    return shares
