"""Usage ingestion: the hot path. One validation pass over the batch (metering
each event as it goes), then set-based writes in one transaction:

1. on PostgreSQL, one statement: the event keys (`INSERT ... ON CONFLICT DO
   NOTHING RETURNING`), the events whose key was new, and the hourly rollups of
   those events, aggregated in SQL and upserted in a fixed order (so concurrent
   batches cannot deadlock); the batch travels as one JSON document;
2. the distinct values of unique_count meters.

No ORM object per event and no serializer. SQLite, the embedded default, gets
the same writes row by row through executemany, the rollups aggregated here.
"""

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from billing.core.periods import parse_instant
from billing.core.storable import (
    SURROGATE_MESSAGE,
    number_or_marker,
    reject_json_constant,
    unstorable_json_reason,
    unstorable_text_reason,
)
from billing.notifications.alerts import usage_alerts_enqueue
from billing.usage.drawdown import usage_draw_for_events
from billing.usage.metering import Contribution, EventRejected, MeterDef, contributions, meter_cache
from customers.models import Customer

MAX_EVENTS_PER_BATCH = 1000
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
CUSTOMER_CACHE_SECONDS = 60
MAX_PROPERTY_DEPTH = 32
ZERO = Decimal(0)


@dataclass(slots=True)
class Rejection:
    index: int
    id: str | None
    message: str


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class PreparedEvent:
    customer_id: int
    event_id: str
    event_name: str
    timestamp: datetime
    properties: dict
    contributions: list[Contribution]


class CustomerCache:
    """external_id -> customer id, per process. Customers are never deleted."""

    def __init__(self):
        self._ids: dict[str, tuple[int, float]] = {}

    def clear(self) -> None:
        self._ids = {}

    def resolve(self, external_ids: set[str]) -> dict[str, int]:
        now = time.monotonic()
        found = {}
        missing = []
        for external_id in external_ids:
            cached = self._ids.get(external_id)
            if cached is not None and cached[1] > now:
                found[external_id] = cached[0]
            else:
                missing.append(external_id)
        if missing:
            rows = Customer.objects.filter(external_id__in=missing).values_list("external_id", "id")
            expires = now + CUSTOMER_CACHE_SECONDS
            for external_id, customer_id in rows:
                self._ids[external_id] = (customer_id, expires)
                found[external_id] = customer_id
        return found


customer_cache = CustomerCache()


def _decimal_marker(value):
    if isinstance(value, Decimal):
        return f"\x00{value}\x00"
    raise TypeError(f"{type(value).__name__} is not JSON")


_MARKED_DECIMAL = re.compile(r'"\\u0000([^"\\]*)\\u0000"')


def exact_json(value) -> str:
    """JSON text with Decimals written as the exact numbers they are (json.dumps
    would refuse them, or lose digits through float). Properties never hold
    U+0000 (checked at validation), so the marker cannot collide."""
    text = json.dumps(value, default=_decimal_marker, separators=(",", ":"))
    return _MARKED_DECIMAL.sub(r"\1", text) if "\\u0000" in text else text


def batch_parse(body: bytes):
    """A batch's JSON, numbers as exact Decimals. Raises ValueError (or
    UnicodeDecodeError, RecursionError) for a body that is not JSON. A number no
    column could hold is no such error: it parses as UNSTORABLE_NUMBER, and
    validation rejects the event that carries it."""
    try:
        return json.loads(body, parse_float=number_or_marker, parse_constant=reject_json_constant)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer of over 4,300 digits, which Python will not read as an int.
        return json.loads(
            body,
            parse_float=number_or_marker,
            parse_int=number_or_marker,
            parse_constant=reject_json_constant,
        )


def _check_text(text: str) -> None:
    reason = unstorable_text_reason(text)
    if reason is not None:
        raise EventRejected(reason)


def check_properties(properties: dict, *, may_hold_unstorable: bool) -> None:
    """The properties can be stored as they are (billing.core.storable): no NUL or lone
    surrogate (looked for only when the body may hold one), no number outside a
    column's range, nesting at most MAX_PROPERTY_DEPTH deep."""
    reason = unstorable_json_reason(
        properties, check_text=may_hold_unstorable, max_depth=MAX_PROPERTY_DEPTH
    )
    if reason is not None:
        raise EventRejected(f"properties: {reason}")


def parse_timestamp(value: object, *, earliest: datetime, latest: datetime) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise EventRejected(
            "timestamp must be an ISO 8601 string with an offset, e.g. 2026-11-03T10:00:00Z"
        )
    try:
        moment = parse_instant(value)
    except ValueError as exc:
        raise EventRejected(f"timestamp {value!r} {exc}") from exc
    if moment < earliest:
        raise EventRejected(
            f"timestamp {value} is older than {settings.BILLING_LATE_EVENT_DAYS} days"
        )
    if moment > latest:
        raise EventRejected(
            f"timestamp {value} is more than {settings.BILLING_FUTURE_EVENT_SECONDS} seconds ahead"
        )
    return moment


def _event_id_of(raw: object) -> str | None:
    """The id to name a rejected event by; None where there is none, or where it
    could not be written into the answer (a lone surrogate)."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        event_id = raw["id"][:MAX_ID_LENGTH]
        return None if unstorable_text_reason(event_id) == SURROGATE_MESSAGE else event_id
    return None


def events_prepare(
    events: list, *, now: datetime, may_hold_unstorable: bool = True
) -> tuple[list[PreparedEvent], list[Rejection], int]:
    """Validate every event once. Returns the events to store, the rejections and
    the number of repeats of an id within this batch (duplicates). Whatever the
    database could not store is rejected here, per event, before any write."""
    earliest = now - timedelta(days=settings.BILLING_LATE_EVENT_DAYS)
    latest = now + timedelta(seconds=settings.BILLING_FUTURE_EVENT_SECONDS)
    customers = customer_cache.resolve(
        {
            e["customer"]
            for e in events
            if isinstance(e, dict)
            and isinstance(e.get("customer"), str)
            and not (may_hold_unstorable and unstorable_text_reason(e["customer"]))
        }
    )
    meters_by_event: dict[str, list[MeterDef]] = meter_cache.by_event_name()
    prepared: list[PreparedEvent] = []
    rejected: list[Rejection] = []
    seen: set[tuple[int, str]] = set()
    repeats = 0
    for index, raw in enumerate(events):
        try:
            if not isinstance(raw, dict):
                raise EventRejected("each event must be a JSON object")
            event_id = raw.get("id")
            if not isinstance(event_id, str) or not event_id:
                raise EventRejected("id must be a non-empty string")
            if len(event_id) > MAX_ID_LENGTH:
                raise EventRejected(f"id must be at most {MAX_ID_LENGTH} characters")
            external_id = raw.get("customer")
            if not isinstance(external_id, str):
                raise EventRejected("customer must be the customer's external_id, a string")
            if may_hold_unstorable:
                _check_text(event_id)
                _check_text(external_id)
            customer_id = customers.get(external_id)
            if customer_id is None:
                raise EventRejected(f"unknown customer {external_id[:MAX_ID_LENGTH]!r}")
            event_name = raw.get("event_name")
            if (
                not isinstance(event_name, str)
                or not event_name
                or len(event_name) > MAX_NAME_LENGTH
            ):
                raise EventRejected(
                    f"event_name must be a string of 1 to {MAX_NAME_LENGTH} characters"
                )
            if may_hold_unstorable:
                _check_text(event_name)
            timestamp = parse_timestamp(raw.get("timestamp"), earliest=earliest, latest=latest)
            properties = raw.get("properties", {})
            if not isinstance(properties, dict):
                raise EventRejected("properties must be a JSON object")
            check_properties(properties, may_hold_unstorable=may_hold_unstorable)
            meters = meters_by_event.get(event_name)
            found = contributions(meters, properties) if meters else []
        except EventRejected as exc:
            rejected.append(Rejection(index, _event_id_of(raw), str(exc)))
            continue
        key = (customer_id, event_id)
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        prepared.append(
            PreparedEvent(customer_id, event_id, event_name, timestamp, properties, found)
        )
    return prepared, rejected, repeats


def events_ingest(
    *, events: list, now: datetime | None = None, may_hold_unstorable: bool = True
) -> IngestResult:
    """Store a batch of usage events and maintain their rollups, atomically.

    Idempotent per (customer, event id): an event already stored, or repeated
    in the batch, counts as a duplicate and changes nothing, also when the
    same batch arrives from several clients at once (the key's unique index
    decides). Returns only after the transaction has committed.
    `may_hold_unstorable=False` is the caller's word that the JSON it parsed
    cannot hold a NUL or a lone surrogate (billing.core.storable.may_hold_unstorable_text).
    """
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise ValueError(f"at most {MAX_EVENTS_PER_BATCH} events a batch")
    now = now or datetime.now(UTC)
    writer = _postgres if connection.vendor == "postgresql" else _generic
    with transaction.atomic():
        # Meters are read under the rollup lock: a rebuild of a new meter's rollups
        # waits for this batch, and this batch sees any meter a rebuild covered.
        rollup_lock(shared=True)
        prepared, rejected, repeats = events_prepare(
            events, now=now, may_hold_unstorable=may_hold_unstorable
        )
        result = IngestResult(rejected=rejected, duplicates=repeats)
        if not prepared:
            return result
        new = writer.store(prepared, received_at=now)
        stored = [e for e in prepared if (e.customer_id, e.event_id) in new]
        uniques = unique_values(stored)
        if uniques:
            writer.insert_uniques(uniques)
        metered = [e for e in stored if e.contributions]
        if metered:
            usage_draw_for_events(events=metered, now=now)
            usage_alerts_enqueue(customer_ids={e.customer_id for e in metered})
    result.accepted = len(stored)
    result.duplicates += len(prepared) - len(stored)
    return result


# An arbitrary, fixed key for PostgreSQL's advisory lock between ingestion (shared)
# and rollup rebuilds (exclusive).
ROLLUP_LOCK_KEY = 7_310_624_001


def rollup_lock(*, shared: bool) -> None:
    """Take the rollup lock for the current transaction. On SQLite a writing
    transaction already excludes every other writer."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [ROLLUP_LOCK_KEY])


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def unique_values(events: list[PreparedEvent]) -> list[tuple]:
    """The distinct (customer, meter, hour, value) of unique_count meters, sorted."""
    return sorted(
        {
            (event.customer_id, c.meter_id, hour_of(event.timestamp), c.unique)
            for event in events
            for c in event.contributions
            if c.unique is not None
        }
    )


def rollup_deltas(events: list[PreparedEvent]) -> list[tuple]:
    """Per (customer, meter, hour): count, sum, max and latest of the new events,
    sorted by key (what _postgres.STORE computes in SQL)."""
    rollups: dict[tuple, list] = {}
    for event in events:
        hour = hour_of(event.timestamp)
        for c in event.contributions:
            key = (event.customer_id, c.meter_id, hour)
            row = rollups.get(key)
            if row is None:
                # ZERO, not 0: a numeric[] array must not mix int and Decimal.
                value_sum = ZERO if c.value is None else c.value
                rollups[key] = [1, value_sum, c.value, event.timestamp, event.event_id, c.value]
                continue
            row[0] += 1
            if c.value is not None:
                row[1] += c.value
                row[2] = c.value if row[2] is None or c.value > row[2] else row[2]
            if (event.timestamp, event.event_id) > (row[3], row[4]):
                row[3], row[4], row[5] = event.timestamp, event.event_id, c.value
    return [(*key, *values) for key, values in sorted(rollups.items())]


ROLLUP_COLUMNS = (
    "customer_id, meter_id, hour, event_count, value_sum, value_max, "
    "latest_at, latest_event_id, latest_value"
)
_NEWER = (
    "(billing_usagerollup.latest_at IS NULL OR (excluded.latest_at, excluded.latest_event_id) "
    "> (billing_usagerollup.latest_at, billing_usagerollup.latest_event_id))"
)
ROLLUP_ON_CONFLICT = f"""
ON CONFLICT (customer_id, meter_id, hour) DO UPDATE SET
    event_count = billing_usagerollup.event_count + excluded.event_count,
    value_sum = billing_usagerollup.value_sum + excluded.value_sum,
    value_max = CASE
        WHEN billing_usagerollup.value_max IS NULL THEN excluded.value_max
        WHEN excluded.value_max > billing_usagerollup.value_max THEN excluded.value_max
        ELSE billing_usagerollup.value_max END,
    latest_value = CASE WHEN {_NEWER} THEN excluded.latest_value
        ELSE billing_usagerollup.latest_value END,
    latest_event_id = CASE WHEN {_NEWER} THEN excluded.latest_event_id
        ELSE billing_usagerollup.latest_event_id END,
    latest_at = CASE WHEN {_NEWER} THEN excluded.latest_at
        ELSE billing_usagerollup.latest_at END
"""


def _server_side_cursor():
    """A cursor that sends parameters separately (Django's default for psycopg
    quotes them into the SQL text, slow for a batch). Runs in Django's
    transaction on the same connection."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


ROLLUP_INSERT = (
    f"INSERT INTO billing_usagerollup ({ROLLUP_COLUMNS}) "  # noqa: S608
    "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::bigint, "
    "(r->>4)::numeric, (r->>5)::numeric, (r->>6)::timestamptz, r->>7, (r->>8)::numeric "
    "FROM json_array_elements(%s::json) AS r ORDER BY 1, 2, 3" + ROLLUP_ON_CONFLICT
)


# The batch, its new keys and its new events: the first part of the statement that
# stores a batch on PostgreSQL.
_NEW_EVENTS = """
WITH batch AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS b(c bigint, e text, n text, t timestamptz, p jsonb, m json)
), new_keys AS (
    INSERT INTO billing_eventkey (customer_id, event_id, "timestamp")
    SELECT c, e, t FROM batch ORDER BY c, e
    ON CONFLICT DO NOTHING
    RETURNING customer_id, event_id
), new_events AS (
    INSERT INTO billing_usageevent
        (customer_id, event_id, event_name, "timestamp", properties, received_at)
    SELECT b.c, b.e, b.n, b.t, b.p, %s
    FROM batch b JOIN new_keys k ON k.customer_id = b.c AND k.event_id = b.e
    RETURNING customer_id, event_id
)"""

# The new events' contributions (`m`: [meter id, value or null] per meter the event
# feeds, from metering.contributions) aggregated per customer, meter and UTC hour:
# count, sum, max, and the latest by (timestamp, event id); upserted in key order,
# so that concurrent batches cannot deadlock.
_NEW_ROLLUPS = f""", contributions AS (
    SELECT b.c, (x->>0)::bigint AS meter, date_trunc('hour', b.t, 'UTC') AS hour,
        (x->>1)::numeric AS v, b.t, b.e
    FROM batch b
    JOIN new_events k ON k.customer_id = b.c AND k.event_id = b.e
    CROSS JOIN LATERAL json_array_elements(b.m) AS x
), rollups AS (
    INSERT INTO billing_usagerollup ({ROLLUP_COLUMNS})
    SELECT c, meter, hour, count(*), coalesce(sum(v), 0), max(v),
        (array_agg(t ORDER BY t DESC, e DESC))[1],
        (array_agg(e ORDER BY t DESC, e DESC))[1],
        (array_agg(v ORDER BY t DESC, e DESC))[1]
    FROM contributions
    GROUP BY c, meter, hour
    ORDER BY c, meter, hour
    {ROLLUP_ON_CONFLICT}
)"""  # noqa: S608 (constants only)


class _postgres:
    """Each write is one statement over the whole batch, sent as one JSON document:
    the keys, the events and their rollups together."""

    STORE = _NEW_EVENTS + _NEW_ROLLUPS + " SELECT customer_id, event_id FROM new_events"  # noqa: S608
    # The same rows without rollups: the raw ceiling bench/ingest.py measures.
    INSERT_EVENTS = _NEW_EVENTS + " SELECT customer_id, event_id FROM new_events"  # noqa: S608

    @staticmethod
    def batch_json(events: list[PreparedEvent]) -> str:
        return exact_json(
            [
                {
                    "c": e.customer_id,
                    "e": e.event_id,
                    "n": e.event_name,
                    "t": e.timestamp.isoformat(),
                    "p": e.properties,
                    "m": [[c.meter_id, c.value] for c in e.contributions],
                }
                for e in events
            ]
        )

    @classmethod
    def store(cls, events: list[PreparedEvent], *, received_at: datetime) -> set:
        """Store the events whose key is new, with their rollups; returns those keys."""
        with _server_side_cursor() as cursor:
            cursor.execute(cls.STORE, [cls.batch_json(events), received_at])
            return set(cursor.fetchall())

    @staticmethod
    def rollup_json(rows: list[tuple]) -> str:
        return exact_json(
            [
                [c, m, h.isoformat(), n, total, top, at.isoformat() if at else None, eid, latest]
                for c, m, h, n, total, top, at, eid, latest in rows
            ]
        )

    @classmethod
    def upsert_rollups(cls, rows: list[tuple]) -> None:
        with _server_side_cursor() as cursor:
            cursor.execute(ROLLUP_INSERT, [cls.rollup_json(rows)])

    @staticmethod
    def insert_uniques(rows: list[tuple]) -> None:
        document = json.dumps([[c, m, h.isoformat(), v] for c, m, h, v in rows])
        with _server_side_cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_usageuniquevalue (customer_id, meter_id, hour, value) "
                "SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, r->>3 "
                "FROM json_array_elements(%s::json) AS r ORDER BY 1, 2, 3, 4 "
                "ON CONFLICT DO NOTHING",
                [document],
            )


class _generic:
    """The same writes, row by row through executemany (SQLite, the embedded default)."""

    @classmethod
    def store(cls, events: list[PreparedEvent], *, received_at: datetime) -> set:
        new = cls.insert_events(events, received_at=received_at)
        rollups = rollup_deltas([e for e in events if (e.customer_id, e.event_id) in new])
        if rollups:
            cls.upsert_rollups(rollups)
        return new

    @staticmethod
    def insert_events(events: list[PreparedEvent], *, received_at: datetime) -> set:
        new = set()
        with connection.cursor() as cursor:
            for e in sorted(events, key=lambda e: (e.customer_id, e.event_id)):
                cursor.execute(
                    'INSERT INTO billing_eventkey (customer_id, event_id, "timestamp") '
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [e.customer_id, e.event_id, e.timestamp],
                )
                if cursor.rowcount == 1:
                    new.add((e.customer_id, e.event_id))
            cursor.executemany(
                "INSERT INTO billing_usageevent "
                '(customer_id, event_id, event_name, "timestamp", properties, received_at) '
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.customer_id,
                        e.event_id,
                        e.event_name,
                        e.timestamp,
                        exact_json(e.properties),
                        received_at,
                    )
                    for e in events
                    if (e.customer_id, e.event_id) in new
                ],
            )
        return new

    @staticmethod
    def upsert_rollups(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO billing_usagerollup ({ROLLUP_COLUMNS}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)" + ROLLUP_ON_CONFLICT,
                rows,
            )

    @staticmethod
    def insert_uniques(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO billing_usageuniquevalue (customer_id, meter_id, hour, value) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )
