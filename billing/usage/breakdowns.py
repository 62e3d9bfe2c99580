"""Usage broken down by one of a meter's `group_by` properties, for any range
[start, end): whole UTC hours from the group rollups (billing.breakdown_models),
the partial hours at the edges from the raw events, metered by the function
ingestion uses, as every usage read (billing.usage.reads). Each group's
quantity is the meter's aggregation over its events: for count and sum the
groups add up to the meter's quantity exactly; for max, latest and
unique_count each group is its own maximum, latest value or distinct count."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.breakdown_models import GROUP_COLUMNS
from billing.core import rawsql
from billing.models import UsageGroupRollup, UsageGroupUniqueValue
from billing.usage.metering import MeterDef, meter_cache
from billing.usage.reads import Tally, edge_contributions, hour_edges
from plans.models import Meter


@dataclass(frozen=True)
class Group:
    # The group's value of each property asked for; None: events without it.
    key: dict[str, str | None]
    quantity: Decimal


_GROUP_SUMS = (
    "SELECT {columns}, SUM(event_count), SUM(value_sum), MAX(value_max) "
    "FROM billing_usagegrouprollup "
    "WHERE customer_id = %s AND meter_id = %s AND hour >= %s AND hour < %s "
    "GROUP BY {columns}"
)
_SUM_FIELDS = tuple(
    UsageGroupRollup._meta.get_field(n) for n in ("event_count", "value_sum", "value_max")
)


def usage_groups(
    *, customer_id: int, meter: MeterDef, by: tuple[str, ...], start: datetime, end: datetime
) -> list[Group]:
    """The meter's quantity in [start, end) per combination of values of its `by`
    properties (some of its group_by), largest first, then by value; a group
    whose value is `null` (events without the property) after the others."""
    indexes = [meter.group_by.index(name) for name in by]
    columns = [GROUP_COLUMNS[i] for i in indexes]
    width = len(columns)
    tally = Tally()
    uniques: dict[tuple, set[str]] = {}
    if start >= end:
        return []
    first, last, ranges = hour_edges(start, end)
    if first < last:
        whole = {"customer_id": customer_id, "meter_id": meter.id, "hour__gte": first}
        whole["hour__lt"] = last
        fields = (*(UsageGroupRollup._meta.get_field(c) for c in columns), *_SUM_FIELDS)
        for *group, n, value_sum, value_max in rawsql.rows(
            _GROUP_SUMS.format(columns=", ".join(columns)),
            [customer_id, meter.id, first, last],
            fields,
        ):
            tally.add_hours(tuple(group), n, value_sum, value_max)
        if meter.aggregation == Meter.LATEST:
            for row in (
                UsageGroupRollup.objects.filter(**whole, latest_at__isnull=False)
                .values_list(*columns, "latest_at", "latest_event_id", "latest_value")
                .order_by()
            ):
                tally.add_latest(tuple(row[:width]), *row[width:])
        if meter.aggregation == Meter.UNIQUE_COUNT:
            for row in (
                UsageGroupUniqueValue.objects.filter(**whole)
                .values_list(*columns, "value")
                .distinct()
                .order_by()
            ):
                uniques.setdefault(tuple(row[:width]), set()).add(row[width])
    for contribution, timestamp, event_id in edge_contributions(customer_id, [meter], ranges):
        group = tuple(contribution.group[i] if contribution.group else "" for i in indexes)
        tally.add_event(group, contribution, timestamp, event_id)
        if contribution.unique is not None:
            uniques.setdefault(group, set()).add(contribution.unique)
    groups = [
        (
            group,
            tally.quantity(group, meter.aggregation, distinct=len(uniques.get(group, ()))),
        )
        for group in set(tally.counts) | set(uniques)
    ]
    groups.sort(key=lambda g: (-g[1], ["" in g[0]], g[0]))
    return [
        Group(key={name: value or None for name, value in zip(by, group, strict=True)}, quantity=q)
        for group, q in groups
    ]


# A breakdown shown to people names this many groups, the rest as "Other".
TOP_GROUPS = 5
ADDITIVE = (Meter.COUNT, Meter.SUM)
OTHER = "Other"
NONE_LABEL = "(none)"
# The key of the "Other" row: no value of a property can be it.
OTHER_KEY = object()


def group_label(value: str | None) -> str:
    return value if value is not None else NONE_LABEL


def meter_breakdown(
    *, customer_id: int, meter_code: str, start: datetime, end: datetime
) -> tuple[str, tuple[tuple[object, str, Decimal], ...]]:
    """A grouping meter's quantity in [start, end) by its first group_by
    property, as the portal and the admin show it: the property, and the
    largest groups then the rest as "Other" (summed for count and sum meters;
    left out for the others, whose groups do not add up), each row (its value,
    None or OTHER_KEY; its label; its quantity). ("", ()) for a meter that
    does not group."""
    meter = meter_cache.by_code(meter_code)
    if meter is None or not meter.group_by:
        return "", ()
    by = meter.group_by[0]
    groups = usage_groups(customer_id=customer_id, meter=meter, by=(by,), start=start, end=end)
    rows = [(g.key[by], group_label(g.key[by]), g.quantity) for g in groups[:TOP_GROUPS]]
    rest = groups[TOP_GROUPS:]
    if rest and meter.aggregation in ADDITIVE:
        rows.append((OTHER_KEY, OTHER, sum((g.quantity for g in rest), Decimal(0))))
    return by, tuple(rows)
