"""Monthly partitions of the usage events table on PostgreSQL.

The table is partitioned by range of `timestamp`, one partition a month, with a
DEFAULT partition so that an insert never fails for want of one. Partitions are
created ahead of time, by the migration and then every hour by a periodic task
(billing.tasks.ensure_event_partitions), so the default partition holds events only
when that task has not run for months; the task then moves them into their month's
partition as it creates it, locking out every read and fold of the table while they
move (_partition_create says why).

Few partitions are made ahead: a read of the events after the fold's watermark (every
check's) runs a prepared plan that opens every partition, empty ones too (up to three
times in a check of a period starting mid-hour; ten empty months more cost a few
percent of PostgreSQL's time for a check, bench/RESULTS.md).
"""

from datetime import UTC, date, datetime

from django.db import connection, transaction

EVENTS_TABLE = "billing_usageevent"
DEFAULT_PARTITION = f"{EVENTS_TABLE}_default"

# Months of partitions made after the current one. An event is at most
# BILLING_FUTURE_EVENT_SECONDS ahead, so next month's is needed only as this one ends;
# the second leaves a month to notice a periodic task that stopped.
MONTHS_AHEAD = 2
# Months made before the current one: events are accepted BILLING_LATE_EVENT_DAYS
# (35) late.
MONTHS_BACK = 2

# How long a new partition waits for the locks it needs (the events table's, held by
# every batch and read): past it, the task gives up until its next run rather than
# queue every read behind it.
PARTITION_LOCK_TIMEOUT = "2s"


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{EVENTS_TABLE}_y{month.year:04d}m{month.month:02d}"


def event_partitions_ensure(
    *, around: datetime | None = None, back: int = MONTHS_BACK, ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the monthly partitions from `back` months before `around` to `ahead`
    months after it that do not exist yet; the names of those created. A month whose
    events the default partition holds gets them moved into its new partition, in
    the same transaction. A month whose table exists but is no partition (detached to
    cheaper storage, docs/scaling.md) is left alone. Idempotent; a no-op on databases
    without partitioning."""
    if connection.vendor != "postgresql":
        return []
    around = around or datetime.now(UTC)
    first = add_months(date(around.year, around.month, 1), -back)
    tables = month_tables()
    created = []
    for offset in range(back + ahead + 1):
        start = add_months(first, offset)
        name = partition_name(start)
        if start in tables:
            continue
        _partition_create(name, start, add_months(start, 1))
        created.append(name)
    return created


def month_of(name: str) -> date | None:
    """The month a table named by partition_name is for; None for any other name."""
    prefix = f"{EVENTS_TABLE}_y"
    if not name.startswith(prefix) or len(name) != len(prefix) + 7 or name[-3] != "m":
        return None
    year, month = name[-7:-3], name[-2:]
    if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        return None
    return date(int(year), int(month), 1)


def month_tables() -> dict[date, bool]:
    """Each table named as a month of the events table, by its month: True while it
    is a partition of the table, False once detached (a plain table). Empty on
    databases without partitioning."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid "
            "AND i.inhparent = %s::regclass) FROM pg_class c "
            "WHERE c.relname LIKE %s AND c.relkind IN ('r', 'p')",
            [EVENTS_TABLE, f"{EVENTS_TABLE}\\_y%"],
        )
        found = {month_of(name): attached for name, attached in cursor.fetchall()}
    return {month: attached for month, attached in found.items() if month is not None}


def attached_events_start() -> datetime | None:
    """The earliest instant whose events may still be attached to the events table:
    the start of the earliest attached month, or of the month of the default
    partition's oldest event when that is earlier (a task that stopped for months).
    No attached event is older, so the rollups before it come from detached months
    (or from nothing). None on databases without partitioning: every event is there."""
    if connection.vendor != "postgresql":
        return None
    starts = [month for month, attached in month_tables().items() if attached]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT min("timestamp") FROM {DEFAULT_PARTITION}')  # noqa: S608
        (oldest,) = cursor.fetchone()
    if oldest is not None:
        starts.append(date(oldest.year, oldest.month, 1))
    if not starts:  # no month made and no event: nothing older is attached
        now = datetime.now(UTC)
        starts.append(date(now.year, now.month, 1))
    first = min(starts)
    return datetime(first.year, first.month, 1, tzinfo=UTC)


def partition_detach(month: date, *, drop: bool = False) -> None:
    """Detach the month's partition from the events table, leaving it a plain table
    of its own (archived: a tablespace on cheaper disks, a dump, ...), or dropping
    it with `drop`. Its events leave every read, fold and rebuild; ids and rollups
    stay as they are. Waits PARTITION_LOCK_TIMEOUT at most for the events table's
    exclusive lock (a detach without CONCURRENTLY, which a table with a default
    partition refuses), else raises and leaves the month attached."""
    name = partition_name(month)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {name}")
        if drop:
            cursor.execute(f"DROP TABLE {name}")


def month_table_drop(month: date) -> None:
    """Drop a month's table detached before (never an attached one: detach it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {partition_name(month)}")


class _EventsToMove(Exception):
    """The default partition took events of the month after it was found to hold none."""


def _partition_create(name: str, start: date, end: date) -> None:
    """The partition `name` for [start, end), holding the default partition's events
    of that range: made apart, given those events, then attached (PostgreSQL refuses
    a new partition whose range the default partition holds rows of). Event ids stay
    as they were, so the fold's watermark and the deduplication keys
    (billing_eventkey) still hold.

    No batch stores events until the end (reads go on): one that did would route
    its events by the partitions it found as it began, and an event of the new month
    that it sent to the default partition after the attach would fail it. And when
    events move, no read either: a statement planned while the month is attached
    waits for it on the default partition, then runs on the partitions it was
    planned on (without the month) in a snapshot taken after the move, so it finds
    the moved events in neither partition. A fold did so (its watermark then passed
    events it never added to the rollups: lost to billing for good), and so did every
    read of usage. Locked exclusively, the table makes such a statement wait before
    it is planned, and it is planned on the partitions with the month. A month with
    nothing to move needs no such lock: a statement planned without it finds no
    events of its range in the default partition, nor in the month, empty."""
    # DDL takes no bind parameters: the names and bounds are ones we formatted, the
    # bounds UTC midnights.
    first, after = (datetime(d.year, d.month, 1, tzinfo=UTC) for d in (start, end))
    try:
        _partition_attach(name, first, after, moving=_default_holds(first, after))
    except _EventsToMove:  # a batch stored some before the lock: again, exclusively
        _partition_attach(name, first, after, moving=True)


def _default_holds(first: datetime, after: datetime) -> bool:
    """Whether the default partition holds events of [first, after)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT EXISTS (SELECT FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s '  # noqa: S608
            'AND "timestamp" < %s)',
            [first, after],
        )
        return cursor.fetchone()[0]


def _partition_attach(name: str, first: datetime, after: datetime, *, moving: bool) -> None:
    """_partition_create's transaction; `moving`: the default partition's events of
    the month move into it, under the exclusive lock. Raises _EventsToMove (rolled
    back) when there are events to move and `moving` is False."""
    bounds = f"FOR VALUES FROM ('{first.isoformat()}') TO ('{after.isoformat()}')"
    mode = "ACCESS EXCLUSIVE" if moving else "SHARE ROW EXCLUSIVE"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
        columns = ", ".join(f'"{column}"' for column in _columns(cursor))
        cursor.execute(f"LOCK TABLE ONLY {EVENTS_TABLE} IN {mode} MODE")
        if not moving and _default_holds(first, after):
            raise _EventsToMove
        cursor.execute(f"CREATE TABLE {name} (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS)")
        if moving:
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 (names from the catalog)
                f'WHERE "timestamp" >= %s AND "timestamp" < %s RETURNING {columns}) '
                f"INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
                [first, after],
            )
        # Attaching builds the partition's indexes and checks its rows against the range.
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION {name} {bounds}")


def _columns(cursor) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [EVENTS_TABLE],
    )
    return [name for (name,) in cursor.fetchall()]


CREATE_PARTITIONED_TABLE = f"""
CREATE TABLE {EVENTS_TABLE} (
    id bigserial NOT NULL,
    customer_id bigint NOT NULL,
    event_id varchar(255) NOT NULL,
    event_name varchar(255) NOT NULL,
    "timestamp" timestamptz NOT NULL,
    properties jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY ("timestamp", id)
) PARTITION BY RANGE ("timestamp");
CREATE INDEX usage_event_cust_name_ts ON {EVENTS_TABLE} (customer_id, event_name, "timestamp");
CREATE TABLE {EVENTS_TABLE}_default PARTITION OF {EVENTS_TABLE} DEFAULT;
"""
