"""Stored events whose properties a later rule restates: re-rating prices a gateway's
calls again at today's mapping (billing.integrations.remapping), which may name
some of them another rate-card model than ingestion did. What the source sent
stays in each event (its `source_model`, `requested_model`); only what was derived
from it changes: the properties the meters read, the contributions stored with the
event (what a fold adds to the rollups, and what reads count of the events not
folded yet: billing.usage.folding), and the rollups of the days it lies in, rebuilt
from the stored events (billing.usage.rebuild.usage_window_rebuild). The one
write to a stored event besides its insert."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction

from billing.usage.folding import committed_bound, fold_through, folds
from billing.usage.group_limits import group_values_limit
from billing.usage.metering import EventRejected, contributions, meter_cache
from billing.usage.partitions import EVENTS_TABLE
from billing.usage.rebuild import usage_window_rebuild
from billing.usage.rollups import (
    PreparedEvent,
    contributions_json,
    day_of,
    exact_json,
    rollup_lock,
)

DAY = timedelta(days=1)
# Events rewritten by one statement.
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Restatement:
    """A stored event (its row id, and what finds its partition) with the
    properties it is to have now, whole."""

    row_id: int
    customer_id: int
    event_id: str
    event_name: str
    timestamp: datetime
    properties: dict


def _update_sql() -> str:
    # The events table is partitioned by time on PostgreSQL: the timestamp finds the
    # row's partition, the id the row.
    properties = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    return (
        f"UPDATE {EVENTS_TABLE} SET properties = {properties}, contributions = %s "  # noqa: S608 (constants only)
        'WHERE id = %s AND "timestamp" = %s'
    )


def events_restate(*, restatements: list[Restatement]) -> int:
    """Give these stored events their new properties, metered again as ingestion
    would meter them now (the group limit included), and rebuild the rollups of
    their customers, of every meter of their event names, over the UTC days from
    the first to the last of them. In the caller's transaction: takes the rollup
    lock exclusively until it ends (ingestion and folds wait), folding every stored
    event first on PostgreSQL. An event whose new properties a meter cannot read is
    left as it is. Returns the number of events rewritten."""
    if not restatements:
        return 0
    with transaction.atomic():
        rollup_lock(shared=False)
        if folds():
            # Every stored event into the rollups first: the rebuilt days must hold
            # each event once, and the next fold must not add any of them again.
            fold_through(committed_bound())
        meters = meter_cache.by_event_name()
        prepared: list[tuple[Restatement, PreparedEvent]] = []
        for index, restated in enumerate(restatements):
            of_name = meters.get(restated.event_name, [])
            try:
                found = contributions(of_name, restated.properties)
            except EventRejected:
                continue
            event = PreparedEvent(
                restated.customer_id,
                restated.event_id,
                restated.event_name,
                restated.timestamp,
                restated.properties,
                found,
                index,
            )
            prepared.append((restated, event))
        # As at ingestion: a value given a group keeps it, one past the limit is "other".
        group_values_limit([event for _, event in prepared])
        rows = [
            (
                exact_json(event.properties),
                exact_json(contributions_json(event)) if event.contributions else None,
                restated.row_id,
                restated.timestamp,
            )
            for restated, event in prepared
        ]
        with connection.cursor() as cursor:
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(_update_sql(), rows[start : start + CHUNK])
        _windows_rebuild(restated for restated, _ in prepared)
    return len(prepared)


def _windows_rebuild(restated) -> None:
    """Rebuild, per event name, the rollups of every meter of it for the customers
    of the restated events, over the UTC days from the first to the last of them."""
    windows: dict[str, tuple[set[int], list[datetime]]] = defaultdict(lambda: (set(), []))
    for event in restated:
        customers, days = windows[event.event_name]
        customers.add(event.customer_id)
        days.append(day_of(event.timestamp))
    meters = meter_cache.by_event_name()
    for event_name, (customers, days) in sorted(windows.items()):
        usage_window_rebuild(
            meter_ids=[meter.id for meter in meters.get(event_name, [])],
            customer_ids=sorted(customers),
            start=min(days),
            end=max(days) + DAY,
        )
