"""The SQL that adds rollup rows up per key, for the fold (billing.usage.folding),
the daily rollups and the rebuilds: counts and sums added, maxima kept, the latest
row's latest columns."""

from plans.models import Meter


def added_up(
    table: str,
    columns: str,
    key: str,
    on_conflict: str,
    source: str,
    *,
    latest_meters_only: bool = False,
) -> str:
    """An INSERT adding the rows of `source` (in `columns`), added up per `key`, to
    `table`, in key order (sums_per_key)."""
    sums = sums_per_key(key, source, latest_meters_only=latest_meters_only)
    return f"INSERT INTO {table} ({columns}) {sums} {on_conflict}"


def sums_per_key(key: str, source: str, *, latest_meters_only: bool = False) -> str:
    """A SELECT of the rows of `source` (in the rollups' columns) added up per `key`,
    in key order: counts and sums added, maxima kept, and the latest row's
    (latest_at, then latest_event_id, greatest) latest columns. The latest row of
    each key is ranked in one sort of all the rows, where an ordered aggregate per
    column sorts each key's rows three times.

    `latest_meters_only`: the latest columns only for the meters that read them
    (aggregation `latest`, as the meters table says in this statement's snapshot),
    NULL for the others' rows, which are added up without the ranking (a fifth of a
    fold's time) and add nothing to a rollup row's latest columns (ROLLUP_ON_CONFLICT
    keeps what a row has). A meter redefined as `latest` has its rollups rebuilt from its
    events by a task after the change (billing.usage.rebuild), as for any change of
    definition: until it has run, its rollups are the old definition's."""
    first = "FILTER (WHERE latest_rank = 1)"
    sums = (
        "sum(event_count) AS event_count, sum(value_sum) AS value_sum,\n"
        "        max(value_max) AS value_max"
    )

    def ranked(where: str = "") -> str:
        return f"""
    SELECT {key}, {sums}, max(latest_at) {first} AS latest_at,
        max(latest_event_id) {first} AS latest_event_id,
        max(latest_value) {first} AS latest_value
    FROM (
        SELECT *, row_number() OVER (
            PARTITION BY {key} ORDER BY latest_at DESC NULLS LAST, latest_event_id DESC NULLS LAST
        ) AS latest_rank
        FROM {source}{where}
    ) AS ranked
    GROUP BY {key}"""  # noqa: S608 (constants only)

    if not latest_meters_only:
        return ranked() + f"\n    ORDER BY {key}"
    latest = f"SELECT id FROM plans_meter WHERE aggregation = '{Meter.LATEST}'"  # noqa: S608
    return f"""
    SELECT {key}, {sums}, NULL::timestamptz AS latest_at,
        ''::varchar AS latest_event_id, NULL::numeric AS latest_value
    FROM {source} WHERE meter_id NOT IN ({latest})
    GROUP BY {key}
    UNION ALL {ranked(f" WHERE meter_id IN ({latest})")}
    ORDER BY {key}"""  # noqa: S608 (constants only)
