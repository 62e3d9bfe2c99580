"""Rebuild one meter's rollups from every stored event, e.g. for a meter created
or redefined after its events arrived; and the daily rollups (of the meters and of
the groups) from the hourly ones."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast, Greatest, Now

from billing.models import (
    UsageDailyRollup,
    UsageEvent,
    UsagePropertyDailyRollup,
    UsagePropertyRollup,
    UsagePropertyUniqueValue,
    UsageRollup,
    UsageUniqueValue,
)
from billing.usage.folding import committed_bound, days_added_up, fold_through, folds
from billing.usage.group_limits import group_values_limit
from billing.usage.metering import (
    PROPERTIES_DECODER,
    EventRejected,
    contributions,
    meter_cache,
    meter_def,
)
from billing.usage.partitions import attached_events_start
from billing.usage.rollups import (
    GROUP_ROLLUP_COLUMNS,
    ROLLUP_COLUMNS,
    PreparedEvent,
    daily_deltas,
    rollup_deltas,
    rollup_lock,
    store_groups,
    unique_values,
    writer,
)
from plans.models import Meter

REBUILD_CHUNK = 2000


def meter_usage_rebuild(*, meter_id: int) -> int:
    """Recompute one meter's rollups from every event still attached to the events
    table, e.g. for a meter created or redefined after its events arrived: the
    rollups from the first attached month on (all of them on SQLite), those of
    months detached before it kept as they are (billing.usage.detaching).
    Idempotent. Takes the rollup lock exclusively, so concurrent ingestion waits
    and then meters with the new definition. A stored event the meter cannot read
    (say, without its value property) is left out, as it would have been refused
    had the meter existed. Returns the number of events the meter counted."""
    meter = Meter.objects.filter(pk=meter_id).first()
    if meter is None:
        return 0
    definition = meter_def(meter)
    with transaction.atomic():
        rollup_lock(shared=False)
        if folds():
            # Every stored event into the rollups first: the events after the
            # watermark would otherwise be counted again by the next fold.
            fold_through(committed_bound())
        # A new revision: aggregates kept against the old rollups' counts
        # (billing.usage.edge_cache, billing.usage.closed_days) are never compared
        # with the new ones.
        meters_revise(Meter.objects.filter(pk=meter_id))
        # Months are UTC months, so no hour or day of a rollup straddles `since`.
        since = attached_events_start()
        hours = {"meter_id": meter_id} | ({"hour__gte": since} if since else {})
        UsageRollup.objects.filter(**hours).delete()
        days = {"meter_id": meter_id} | ({"day__gte": since} if since else {})
        UsageDailyRollup.objects.filter(**days).delete()
        UsagePropertyDailyRollup.objects.filter(**days).delete()
        UsageUniqueValue.objects.filter(**hours).delete()
        UsagePropertyRollup.objects.filter(**hours).delete()
        UsagePropertyUniqueValue.objects.filter(**hours).delete()
        events = {"event_name": meter.event_name} | ({"timestamp__gte": since} if since else {})
        counted = _rollups_write(definition, UsageEvent.objects.filter(**events))
    return counted


def _rollups_write(definition, events) -> int:
    """Add these stored events (a queryset) to the rollups of the meter `definition`
    describes, as ingestion would meter them now: hourly and daily rows, distinct
    values and groups (past the group limit as at ingestion). The caller deleted the
    rollups they add to and holds the rollup lock exclusively. How many it counted."""
    rows = (
        events.annotate(raw=Cast("properties", TextField()))
        .values_list("customer_id", "event_id", "timestamp", "raw")
        .order_by()
        .iterator(chunk_size=REBUILD_CHUNK)
    )
    prepared: list[PreparedEvent] = []
    for customer_id, event_id, timestamp, raw in rows:
        try:
            found = contributions([definition], PROPERTIES_DECODER.decode(raw))
        except EventRejected:
            continue
        if found:
            prepared.append(PreparedEvent(customer_id, event_id, "", timestamp, {}, found))
    rollups, uniques = rollup_deltas(prepared), unique_values(prepared)
    for start in range(0, len(rollups), REBUILD_CHUNK):
        writer().upsert_rollups(rollups[start : start + REBUILD_CHUNK])
    for start in range(0, len(uniques), REBUILD_CHUNK):
        writer().insert_uniques(uniques[start : start + REBUILD_CHUNK])
    for start in range(0, len(prepared), REBUILD_CHUNK):
        chunk = prepared[start : start + REBUILD_CHUNK]
        # As at ingestion: values given a group keep it, the rest past the limit are "other".
        group_values_limit(chunk)
        store_groups(chunk)
    return len(prepared)


def usage_window_rebuild(
    *, meter_ids: Iterable[int], customer_ids: list[int], start: datetime, end: datetime
) -> int:
    """Recompute these customers' rollups of these meters over [start, end) (whole
    UTC days, so that no hourly or daily row straddles an edge) from their stored
    events, e.g. after re-rating rewrote some of their properties
    (billing.usage.restated_events): the rest of each meter's rollups stay as they
    are. A few statements a meter, whatever the number of customers. The caller's
    transaction holds the rollup lock exclusively and, on PostgreSQL, has folded
    every stored event (fold_through(committed_bound())), so that no event of the
    window is counted again by the next fold. The meters get a new revision
    (meters_revise), so that nothing kept from their rollups before is used again.
    The days before the first attached month keep their rollups (their events were
    detached). Returns the events counted."""
    since = attached_events_start()
    start = max(start, since) if since else start
    meter_ids = sorted(set(meter_ids))
    if start >= end or not meter_ids or not customer_ids:
        return 0
    meters = meter_cache.by_id()
    counted = 0
    for meter_id in meter_ids:
        definition = meters.get(meter_id)
        if definition is None:
            continue
        keys = {"customer_id__in": customer_ids, "meter_id": meter_id}
        hours = keys | {"hour__gte": start, "hour__lt": end}
        days = keys | {"day__gte": start, "day__lt": end}
        UsageRollup.objects.filter(**hours).delete()
        UsageDailyRollup.objects.filter(**days).delete()
        UsagePropertyDailyRollup.objects.filter(**days).delete()
        UsageUniqueValue.objects.filter(**hours).delete()
        UsagePropertyRollup.objects.filter(**hours).delete()
        UsagePropertyUniqueValue.objects.filter(**hours).delete()
        events = UsageEvent.objects.filter(
            customer_id__in=customer_ids,
            event_name=definition.event_name,
            timestamp__gte=start,
            timestamp__lt=end,
        )
        counted += _rollups_write(definition, events)
    meters_revise(Meter.objects.filter(pk__in=meter_ids))
    return counted


def meters_revise(meters) -> None:
    """Give these meters (a queryset) a new revision (updated_at): later than both
    the database's clock and their last one, so never one they had before, whatever
    the clocks of the processes that wrote them."""
    meters.update(
        updated_at=Greatest(Now(), F("updated_at") + timedelta(microseconds=1)),
    )
    meter_cache.clear()


def daily_rollups_rebuild() -> int:
    """Recompute every daily rollup row, of the meters and of the groups, from the
    hourly rollups (the events not folded yet are added to both by the next fold),
    e.g. after an upgrade during which processes of the code before the daily rollups
    (billing 0017) or the daily group rollups (billing 0031) kept writing hourly rows
    only. Takes the rollup lock exclusively, so ingestion and folds wait. Idempotent.
    Returns the number of daily rows."""
    with transaction.atomic():
        rollup_lock(shared=False)
        # A new revision of every meter, as meter_usage_rebuild's: what was kept from
        # the daily rows before (billing.usage.closed_days) is never used again.
        meters_revise(Meter.objects.all())
        UsageDailyRollup.objects.all().delete()
        UsagePropertyDailyRollup.objects.all().delete()
        if folds():
            written = 0
            with connection.cursor() as cursor:
                for hourly, grouped in ((UsageRollup, False), (UsagePropertyRollup, True)):
                    cursor.execute(days_added_up("", hourly._meta.db_table, grouped=grouped))
                    written += cursor.rowcount
            return written
        days = daily_deltas(
            list(
                UsageRollup.objects.order_by("customer_id", "meter_id", "hour").values_list(
                    *ROLLUP_COLUMNS.split(", ")
                )
            )
        )
        group_days = daily_deltas(
            list(
                UsagePropertyRollup.objects.order_by(
                    "customer_id", "meter_id", "hour", "position", "group_value"
                ).values_list(*GROUP_ROLLUP_COLUMNS.split(", "))
            )
        )
        for start in range(0, len(days), REBUILD_CHUNK):
            writer().upsert_daily(days[start : start + REBUILD_CHUNK])
        for start in range(0, len(group_days), REBUILD_CHUNK):
            writer().upsert_group_daily(group_days[start : start + REBUILD_CHUNK])
        return len(days) + len(group_days)
