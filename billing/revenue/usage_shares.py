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

from billing.rating.pricing import EXACT_PRECISION
from billing.rating.rate_cards import Combination
from billing.usage.breakdowns import usage_combinations
from billing.usage.metering import MeterDef, meter_cache
from billing.usage.reads import usage_quantities
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
    The cuts of one customer, span and moment are read together: one read of
    their meters before the moment and one after."""
    by_read: dict[tuple, list[Cut]] = defaultdict(list)
    for cut in cuts:
        by_read[cut.customer_id, cut.start, cut.end, cut.at].append(cut)
    shares: dict[Cut, Decimal | None] = {}
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
