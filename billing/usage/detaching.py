"""Old months of the usage events detached from the events table (PostgreSQL), hourly
by the beat and by `manage.py detach_event_months`.

Which months: the close and the late-usage lines read rollups, and raw events only at
a period's partial edge hours and after the fold's watermark; a period is read again
for late usage until BILLING_LATE_EVENT_DAYS and a day after its end
(billing.invoicing.period_lines), and lasts at most a year. So a month is detached
once it ends before every period that may still be closed or read again: a year
before the late-event window (and a day more, for the zones' shifts), and before the
start of every live subscription's current period and of every billed period still
within that window, whichever is earliest (a close that has not run for weeks, a
period longer than the rule expects). BILLING_EVENT_MONTHS_ATTACHED keeps more months
attached, never fewer. A month with an event the fold has not added to the rollups
yet stays attached too.

A detached month leaves every read, fold and meter rebuild: its rollups stay as they
are (billing.usage.rebuild recomputes only from the first attached month). Its keys
in billing_eventkey (deduplication) are deleted: an event of that month is older than
the late-event window and refused before its key is looked at, so they guard nothing,
and every batch pays for a bigger key index.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Max, Min
from psycopg.errors import LockNotAvailable

from billing.models import BilledPeriod, EventKey, Subscription
from billing.usage.folding import FOLDED_THROUGH, folds
from billing.usage.partitions import (
    add_months,
    month_of,
    month_table_drop,
    month_tables,
    partition_detach,
    partition_name,
)
from common.periods import INTERVAL_MONTHS, add_months_clamped

logger = logging.getLogger(__name__)

# The longest billing period (a year): a period ending now may read events that old.
LONGEST_PERIOD_MONTHS = max(INTERVAL_MONTHS.values())
# Customers whose keys one statement trims (each by the keys' index, customer first).
KEY_TRIM_CUSTOMERS = 500


@dataclass
class Detached:
    """What a run did: the instant the months it may detach end by, the months it
    detached (and dropped), those it kept attached with events not folded yet, the
    month it found the table too busy to detach (and stopped at), the keys it
    deleted."""

    before: datetime | None = None
    detached: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unfolded: list[str] = field(default_factory=list)
    busy: str | None = None
    keys_trimmed: int = 0


def events_needed_from(*, now: datetime) -> datetime:
    """The earliest instant whose events a period may still need, to be closed or
    read again for late usage (the module's docstring says why)."""
    window = now - timedelta(days=settings.BILLING_LATE_EVENT_DAYS + 2)
    needed = [add_months_clamped(window, -LONGEST_PERIOD_MONTHS, day=window.day)]
    needed.append(
        Subscription.objects.filter(status__in=Subscription.LIVE).aggregate(
            first=Min("current_period_start")
        )["first"]
    )
    needed.append(
        BilledPeriod.objects.filter(period_end__gt=window).aggregate(first=Min("usage_from"))[
            "first"
        ]
    )
    return min(moment for moment in needed if moment is not None)


def detach_before(*, now: datetime, months_attached: int) -> datetime:
    """The months ending at or before this instant may be detached: those before
    events_needed_from, and before `months_attached` whole months before now's."""
    kept = add_months(date(now.year, now.month, 1), -months_attached)
    return min(events_needed_from(now=now), datetime(kept.year, kept.month, 1, tzinfo=UTC))


def event_months_detach(
    *, now: datetime, months_attached: int | None = None, drop: bool = False
) -> Detached:
    """Detach every month of the events table that ends at or before detach_before,
    oldest first, each in a transaction of its own, as a plain table of its own
    (`drop`: dropped, and months detached before too); then delete those months'
    event keys. `months_attached` defaults to BILLING_EVENT_MONTHS_ATTACHED; None
    (`off`) detaches nothing. Idempotent: a detached month is no partition any more,
    and a run that stopped between the detach and the keys leaves them to the next
    month's, which deletes every key before it. A no-op without partitioning."""
    if months_attached is None:
        months_attached = settings.BILLING_EVENT_MONTHS_ATTACHED
    done = Detached()
    if not folds() or months_attached is None:
        return done
    done.before = detach_before(now=now, months_attached=months_attached)
    for month, attached in sorted(month_tables().items()):
        end = add_months(month, 1)
        if datetime(end.year, end.month, 1, tzinfo=UTC) > done.before:
            break
        name = partition_name(month)
        if not attached:
            if drop:
                month_table_drop(month)
                done.dropped.append(name)
            continue
        if _holds_unfolded(name):
            logger.warning("%s holds events not folded yet: left attached", name)
            done.unfolded.append(name)
            continue
        try:
            partition_detach(month, drop=drop)
        except OperationalError as exc:
            if not isinstance(exc.__cause__, LockNotAvailable):
                raise
            # Reads and batches held the table: this month and the next wait for
            # the next run rather than queue every read behind this one.
            logger.warning("%s not detached: the events table was busy", name)
            done.busy = name
            break
        done.detached.append(name)
        if drop:
            done.dropped.append(name)
        logger.info("detached %s%s", name, " and dropped it" if drop else "")
    if done.detached:
        end = add_months(max(month_of(name) for name in done.detached), 1)
        done.keys_trimmed = event_keys_trim(before=datetime(end.year, end.month, 1, tzinfo=UTC))
    return done


def event_keys_trim(*, before: datetime) -> int:
    """Delete the event keys of events before `before`, KEY_TRIM_CUSTOMERS customers
    a transaction (a batch storing keys meanwhile waits only on the same keys). How
    many were deleted."""
    bounds = EventKey.objects.aggregate(low=Min("customer_id"), high=Max("customer_id"))
    if bounds["low"] is None:
        return 0
    trimmed = 0
    for low in range(bounds["low"], bounds["high"] + 1, KEY_TRIM_CUSTOMERS):
        with transaction.atomic():
            trimmed += EventKey.objects.filter(
                customer_id__gte=low,
                customer_id__lt=low + KEY_TRIM_CUSTOMERS,
                timestamp__lt=before,
            ).delete()[0]
    return trimmed


def _holds_unfolded(name: str) -> bool:
    """Whether the month's table holds an event after the fold's watermark (by the
    events' id index)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT FROM {name} WHERE id > {FOLDED_THROUGH})")  # noqa: S608
        return cursor.fetchone()[0]
