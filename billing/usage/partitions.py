"""Monthly partitions of the usage events table on PostgreSQL.

The table is partitioned by range of `timestamp`, one partition a month, with a
DEFAULT partition so that an insert never fails for want of one. Partitions are
created ahead of time (by the migration and then by a periodic task), so the
default partition only ever holds timestamps outside the prepared range.
"""

from datetime import UTC, date, datetime

from django.db import connection

EVENTS_TABLE = "billing_usageevent"


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{EVENTS_TABLE}_y{month.year:04d}m{month.month:02d}"


def event_partitions_ensure(
    *, around: datetime | None = None, back: int = 2, ahead: int = 12
) -> list[str]:
    """Create the monthly partitions from `back` months before `around` to `ahead`
    months after it. Idempotent; a no-op on databases without partitioning."""
    if connection.vendor != "postgresql":
        return []
    around = around or datetime.now(UTC)
    first = add_months(date(around.year, around.month, 1), -back)
    names = []
    with connection.cursor() as cursor:
        for offset in range(back + ahead + 1):
            start = add_months(first, offset)
            name = partition_name(start)
            # DDL takes no bind parameters; both bounds are dates we formatted.
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {EVENTS_TABLE} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{add_months(start, 1).isoformat()}')"
            )
            names.append(name)
    return names


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
