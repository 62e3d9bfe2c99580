"""Usage broken down by one of a meter's `group_by` properties, for any range
[start, end): whole UTC hours from the group rollups (billing.breakdown_models:
whole UTC days from the daily ones, the hours around them from the hourly ones),
the partial hours at the edges from the raw events, as every usage read
(billing.usage.edges). Each group's
quantity is the meter's aggregation over its events: for count and sum the
groups add up to the meter's quantity exactly; for max, latest and
unique_count each group is its own maximum, latest value or distinct count."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.models import UsagePropertyRollup, UsagePropertyUniqueValue
from billing.usage.closed_days import closed_days_add
from billing.usage.edges import edges_add
from billing.usage.group_limits import edge_groups_bounded, edge_values_kept, month_of
from billing.usage.metering import (
    MeterDef,
    combination_position,
    combination_text,
    combination_values,
    group_read_position,
    meter_cache,
)
from billing.usage.reads import Tally, hour_edges
from billing.usage.whole_hours import whole_hours_params, whole_hours_rows
from common import rawsql
from common.groups import OTHER_VALUE, top_and_rest
from plans.models import Meter
from plans.rate_card_pricing import Combination


@dataclass(frozen=True)
class Group:
    # The property asked for and the group's value of it; None: events without it.
    key: dict[str, str | None]
    quantity: Decimal


# The whole hours' sums per meter and group: the whole UTC days from the daily group
# rollups, the hours around them from the hourly ones (billing.usage.whole_hours).
_GROUP_SUMS = (
    "SELECT meter_id, group_value, SUM(event_count), SUM(value_sum), MAX(value_max) FROM ("  # noqa: S608 (constants only)
    + whole_hours_rows(
        "meter_id, group_value, event_count, value_sum, value_max", " AND ({meters})", grouped=True
    )
    + ") AS r GROUP BY meter_id, group_value"
)
# The latest of each group of a `latest` meter: every whole hour's (and day's) latest.
_GROUP_LATEST = whole_hours_rows(
    "group_value, latest_at, latest_event_id, latest_value",
    " AND meter_id = %s AND position = %s AND latest_at IS NOT NULL",
    grouped=True,
)
_GROUP_LATEST_FIELDS = tuple(
    UsagePropertyRollup._meta.get_field(n)
    for n in ("group_value", "latest_at", "latest_event_id", "latest_value")
)
_GROUP_SUM_FIELDS = tuple(
    UsagePropertyRollup._meta.get_field(n)
    for n in ("meter", "group_value", "event_count", "value_sum", "value_max")
)


def usage_groups(
    *, customer_id: int, meter: MeterDef, by: str, start: datetime, end: datetime
) -> list[Group]:
    """The meter's quantity in [start, end) per value of its `by` property (one
    of its group_by), largest first, then by value."""
    return usage_groups_of(customer_id=customer_id, meters=[meter], by=by, start=start, end=end)[
        meter.id
    ]


def usage_groups_of(
    *, customer_id: int, meters: list[MeterDef], by: str, start: datetime, end: datetime
) -> dict[int, list[Group]]:
    """usage_groups for several meters grouping by `by` at once (by meter id):
    one query for their whole hours, one read of the edges' raw events."""
    position = {meter.id: meter.group_by.index(by) for meter in meters}
    found = _quantities_at(
        customer_id=customer_id, meters=meters, position=position, span=(start, end)
    )
    return {
        meter_id: [
            Group(key={by: group or None}, quantity=q)
            for group, q in sorted(groups, key=lambda g: (-g[1], g[0] == "", g[0]))
        ]
        for meter_id, groups in found.items()
    }


def usage_combinations(
    *, customer_id: int, meters: list[MeterDef], start: datetime, end: datetime
) -> dict[int, dict[Combination, Decimal]]:
    """Grouping meters' quantities in [start, end) per combination of the values
    of all their group_by properties, by meter id: what rate cards price
    (plans.rate_card_pricing). From the group rollups' combinations
    (metering.combination_position) and the edges' raw events, as every read."""
    position = {meter.id: combination_position(meter) for meter in meters}
    found = _quantities_at(
        customer_id=customer_id, meters=meters, position=position, span=(start, end)
    )
    combinations: dict[int, dict[tuple, Decimal]] = {}
    for meter in meters:
        of_meter = combinations[meter.id] = {}
        for text, quantity in found[meter.id]:
            # An overlong combination ("") and one of no values both read as none.
            key = combination_values(meter, text)
            of_meter[key] = of_meter.get(key, Decimal(0)) + quantity
    return combinations


def combination_quantity(
    *, customer_id: int, meter: MeterDef, values: dict[str, str], start: datetime, end: datetime
) -> Decimal:
    """usage_combinations' quantity of one combination, every group_by property's
    value given (a rate-card row whose `when` names them all: the one combination it
    prices), from that combination's group rows alone and the edges' raw events."""
    texts = [values[name] for name in meter.group_by]
    if not all(isinstance(text, str) and text for text in texts):
        return Decimal(0)  # "" is none of the values, a number no text: no event has it
    text = texts[0] if len(texts) == 1 else combination_text(texts)
    if not text:
        return Decimal(0)  # overlong: such events count as none of the values
    found = _quantities_read(
        customer_id=customer_id,
        meters=[meter],
        position={meter.id: combination_position(meter)},
        span=(start, end),
        group=text,
    )[meter.id]
    return sum((quantity for group, quantity in found if group == text), Decimal(0))


def _quantities_at(
    *,
    customer_id: int,
    meters: list[MeterDef],
    position: dict[int, int],
    span: tuple[datetime, datetime],
) -> dict[int, list[tuple[str, Decimal]]]:
    """Each meter's (group text, quantity) at its `position` of the group rollups.
    A meter that keeps combinations only (metering.combinations_only) has its one
    property's quantities added up from its combinations', whole hours and edges
    alike: exact, its groups being counts or sums; an overlong combination (read as
    none of the values) counts under none."""
    read = {meter.id: group_read_position(meter, position[meter.id]) for meter in meters}
    found = _quantities_read(customer_id=customer_id, meters=meters, position=read, span=span)
    for meter in meters:
        at = position[meter.id]
        if read[meter.id] == at:
            continue
        summed: dict[str, Decimal] = {}
        for text, quantity in found[meter.id]:
            value = combination_values(meter, text)[at][1] or ""
            summed[value] = summed.get(value, Decimal(0)) + quantity
        found[meter.id] = list(summed.items())
    return found


def _quantities_read(
    *,
    customer_id: int,
    meters: list[MeterDef],
    position: dict[int, int],
    span: tuple[datetime, datetime],
    group: str | None = None,
) -> dict[int, list[tuple[str, Decimal]]]:
    """_quantities_at from the group rollups' rows at each meter's `position`
    (`group`: the whole hours' rows of that group text only; the edges' of all)."""
    start, end = span
    tally = Tally()  # keyed by (meter id, group value)
    if start >= end or not meters:
        return {meter.id: [] for meter in meters}
    first, last, ranges = hour_edges(start, end)
    if first < last:
        one = "(meter_id = %s AND position = %s)"
        if group is not None:
            one = "(meter_id = %s AND position = %s AND group_value = %s)"
        which = " OR ".join([one] * len(meters))
        params = [p for meter in meters for p in (meter.id, position[meter.id])]
        if group is not None:
            params = [p for meter in meters for p in (meter.id, position[meter.id], group)]

        def add_sums(into, since: datetime, until: datetime, ahead: bool = False) -> None:
            for meter_id, text, n, value_sum, value_max in rawsql.rows(
                _GROUP_SUMS.format(meters=which),
                whole_hours_params(customer_id, since, until, params, grouped=True),
                _GROUP_SUM_FIELDS,
                ahead=ahead,
            ):
                into.add_hours((meter_id, text), n, value_sum, value_max)

        if group is None:
            closed_days_add(
                tally,
                add_sums,
                customer_id=customer_id,
                meters=meters,
                position=position,
                span=(first, last),
            )
        else:  # one combination's few rows (a check's row): read as they are
            add_sums(tally, first, last)
        for meter in meters:
            whole = {
                "customer_id": customer_id,
                "meter_id": meter.id,
                "position": position[meter.id],
                "hour__gte": first,
                "hour__lt": last,
            }
            if meter.aggregation == Meter.LATEST:
                for group, *latest in rawsql.rows(
                    _GROUP_LATEST,
                    whole_hours_params(
                        customer_id, first, last, [meter.id, position[meter.id]], grouped=True
                    ),
                    _GROUP_LATEST_FIELDS,
                ):
                    tally.add_latest((meter.id, group), *latest)
            if meter.aggregation == Meter.UNIQUE_COUNT:
                for group, value in (
                    UsagePropertyUniqueValue.objects.filter(**whole)
                    .values_list("group_value", "value")
                    .distinct()
                    .order_by()
                ):
                    tally.uniques.setdefault((meter.id, group), set()).add(value)
    for span in ranges:
        # Read from the events as sent: their values past the limit made "other" again
        # (by the statement where no meter keeps them, then each meter's as it keeps).
        month = month_of(span[0])
        bound = {"customer_id": customer_id, "meters": meters, "position": position}
        edge = Tally()
        kept = edge_values_kept(**bound, month=month)
        edges_add(
            edge, customer_id=customer_id, meters=meters, ranges=[span], by=position, kept=kept
        )
        tally.add_tally(edge_groups_bounded(edge, **bound, month=month))
    found: dict[int, list[tuple]] = {meter.id: [] for meter in meters}
    aggregation = {meter.id: meter.aggregation for meter in meters}
    for key in set(tally.counts) | set(tally.uniques):
        meter_id, group = key
        distinct = len(tally.uniques.get(key, ()))
        quantity = tally.quantity(key, aggregation[meter_id], distinct=distinct)
        found[meter_id].append((group, quantity))
    return found


ADDITIVE = (Meter.COUNT, Meter.SUM)
OTHER = "Other"
NONE_LABEL = "(none)"
# The key of the "Other" row: no value of a property can be it.
OTHER_KEY = object()


def group_label(value: str | None) -> str:
    if value == OTHER_VALUE:
        return OTHER
    return value if value is not None else NONE_LABEL


def meter_breakdown(
    *, customer_id: int, meter_code: str, start: datetime, end: datetime
) -> tuple[str, tuple[tuple[object, str, Decimal], ...]]:
    """A grouping meter's quantity in [start, end) by its first group_by
    property, as the portal and the admin show it: the property, and the
    largest groups then the rest as "Other" (top_and_rest), each row (its value,
    None or OTHER_KEY; its label; its quantity). ("", ()) for a meter that
    does not group."""
    meter = meter_cache.by_code(meter_code)
    if meter is None or not meter.group_by:
        return "", ()
    by = meter.group_by[0]
    groups = usage_groups(customer_id=customer_id, meter=meter, by=by, start=start, end=end)
    shown, rest = top_and_rest(
        [(g.key[by], g.quantity) for g in groups], additive=meter.aggregation in ADDITIVE
    )
    rows = [(value, group_label(value), quantity) for value, quantity in shown]
    if rest is not None:
        rows.append((OTHER_KEY, OTHER, rest))
    return by, tuple(rows)
