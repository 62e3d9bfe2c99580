"""The rollup tables' columns and the SQL that adds a batch's aggregates to their
rows (re-exported by billing.usage.rollups): upserts that add counts and sums,
keep maxima and the latest event."""

ROLLUP_COLUMNS = (
    "customer_id, meter_id, hour, event_count, value_sum, value_max, "
    "latest_at, latest_event_id, latest_value"
)
DAILY_ROLLUP_COLUMNS = ROLLUP_COLUMNS.replace("hour", "day")


def _on_conflict(table: str, key: str) -> str:
    """The upsert that adds a batch's aggregates to a rollup row of `table`."""
    newer = (
        f"({table}.latest_at IS NULL OR (excluded.latest_at, excluded.latest_event_id) "
        f"> ({table}.latest_at, {table}.latest_event_id))"
    )
    return f"""
ON CONFLICT ({key}) DO UPDATE SET
    event_count = {table}.event_count + excluded.event_count,
    value_sum = {table}.value_sum + excluded.value_sum,
    value_max = CASE
        WHEN {table}.value_max IS NULL THEN excluded.value_max
        WHEN excluded.value_max > {table}.value_max THEN excluded.value_max
        ELSE {table}.value_max END,
    latest_value = CASE WHEN {newer} THEN excluded.latest_value
        ELSE {table}.latest_value END,
    latest_event_id = CASE WHEN {newer} THEN excluded.latest_event_id
        ELSE {table}.latest_event_id END,
    latest_at = CASE WHEN {newer} THEN excluded.latest_at
        ELSE {table}.latest_at END
"""


ROLLUP_ON_CONFLICT = _on_conflict("billing_usagerollup", "customer_id, meter_id, hour")
DAILY_ROLLUP_ON_CONFLICT = _on_conflict("billing_usagedailyrollup", "customer_id, meter_id, day")

# Breakdowns (billing.breakdown_models): the same aggregates per group.
GROUP_ROLLUP_COLUMNS = (
    "customer_id, meter_id, hour, position, group_value, event_count, value_sum, value_max, "
    "latest_at, latest_event_id, latest_value"
)
GROUP_ROLLUP_ON_CONFLICT = _on_conflict(
    "billing_usagepropertyrollup", "customer_id, meter_id, hour, position, group_value"
)
GROUP_DAILY_TABLE = "billing_usagepropertydailyrollup"
GROUP_DAILY_ROLLUP_COLUMNS = GROUP_ROLLUP_COLUMNS.replace("hour", "day")
GROUP_DAILY_ROLLUP_ON_CONFLICT = _on_conflict(
    GROUP_DAILY_TABLE, "customer_id, meter_id, day, position, group_value"
)
# A day's group rows rolled up from its hours (billing.usage.folding.group_days_roll)
# replace what the day's rows held.
GROUP_DAILY_ROLLUP_REPLACE = (
    "ON CONFLICT (customer_id, meter_id, day, position, group_value) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}" for column in GROUP_DAILY_ROLLUP_COLUMNS.split(", ")[5:]
    )
)


_ROLLUP_ROWS = (
    "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::bigint, "
    "(r->>4)::numeric, (r->>5)::numeric, (r->>6)::timestamptz, r->>7, (r->>8)::numeric "
    "FROM json_array_elements(%s::json) AS r ORDER BY 1, 2, 3"
)
ROLLUP_INSERT = (
    f"INSERT INTO billing_usagerollup ({ROLLUP_COLUMNS}) " + _ROLLUP_ROWS + ROLLUP_ON_CONFLICT
)
DAILY_ROLLUP_INSERT = (
    f"INSERT INTO billing_usagedailyrollup ({DAILY_ROLLUP_COLUMNS}) "
    + _ROLLUP_ROWS
    + DAILY_ROLLUP_ON_CONFLICT
)

# The group rollups of a batch (rows from rollup_deltas(grouped=True)), upserted in
# key order; also the statement bench/ingest.py --grouped adds to its raw ceiling.
_GROUP_ROWS = (
    "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::smallint, "
    "r->>4, (r->>5)::bigint, (r->>6)::numeric, (r->>7)::numeric, "
    "(r->>8)::timestamptz, r->>9, (r->>10)::numeric "
    "FROM json_array_elements(%s::json) AS r ORDER BY 1, 2, 3, 4, 5"
)
GROUP_ROLLUP_INSERT = (
    f"INSERT INTO billing_usagepropertyrollup ({GROUP_ROLLUP_COLUMNS}) "
    + _GROUP_ROWS
    + GROUP_ROLLUP_ON_CONFLICT
)
# The same rows added up per day (daily_deltas), to the daily group rollups.
GROUP_DAILY_ROLLUP_INSERT = (
    f"INSERT INTO {GROUP_DAILY_TABLE} ({GROUP_DAILY_ROLLUP_COLUMNS}) "
    + _GROUP_ROWS
    + GROUP_DAILY_ROLLUP_ON_CONFLICT
)
