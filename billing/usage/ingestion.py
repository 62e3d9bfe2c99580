"""Usage ingestion: the hot path. One validation pass over the batch (metering
each event as it goes), then set-based writes in one transaction
(billing.usage.rollups): the new events with their rollups, the distinct values
of unique_count meters, the draw-down of prepaid credits and balances, and the
usage alert check enqueued after commit. No ORM object per event and no
serializer."""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import msgspec
from django.conf import settings
from django.db import transaction

from billing.usage.alerts import usage_alerts_enqueue
from billing.usage.drawdown import usage_draw_for_events
from billing.usage.folding import fold_clock
from billing.usage.group_limits import OtherGroups, group_values_limit
from billing.usage.metering import EventRejected, MeterDef, contributions, meter_cache
from billing.usage.rollups import PreparedEvent, rollup_lock, store_groups, unique_values
from billing.usage.rollups import writer as rollups_writer
from common import nesting
from common.metrics import usage_events_counted
from common.nesting import MAX_BODY_DEPTH, may_nest_deeper_than
from common.periods import parse_instant
from common.storable import (
    SURROGATE_MESSAGE,
    number_or_marker,
    reject_json_constant,
    unstorable_json_reason,
    unstorable_text_reason,
)
from customers.models import Customer

MAX_EVENTS_PER_BATCH = 1000


MAX_ID_LENGTH = 255


MAX_NAME_LENGTH = 255


CUSTOMER_CACHE_SECONDS = 60


MAX_PROPERTY_DEPTH = 32

# Why an event was refused, for a caller that acts on it (billing.integrations keeps
# a gateway's refused records by reason): its customer is not known (yet), or else.
INVALID = "invalid"
UNKNOWN_CUSTOMER = "unknown_customer"


class UnknownCustomer(EventRejected):
    """An event naming an external id no customer has."""


@dataclass(slots=True)
class Rejection:
    index: int
    id: str | None
    message: str
    code: str = INVALID


@dataclass(slots=True)
class Unmetered:
    """A stored event whose event_name no meter reads: billed as nothing (a typo?)."""

    index: int
    id: str
    event_name: str


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # Stored events whose values of some grouped properties count under "other".
    other: list[OtherGroups] = field(default_factory=list)
    # Stored events that no meter reads (by their event_name).
    unmetered: list[Unmetered] = field(default_factory=list)
    # The events stored (new), for a caller that tells them from the duplicates.
    stored: list[PreparedEvent] = field(default_factory=list)


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


# msgspec reads a body in about two thirds of json.loads' time. It refuses some bodies
# json.loads reads (a lone surrogate, escaped or in UTF-8 bytes; a byte order mark;
# an integer of thousands of digits), and for all it reads both give the same values:
# numbers with a fraction or an exponent through the same hook, the last of repeated
# keys. Both recurse once per level of nesting, so they read only a body that nests at
# most MAX_BODY_DEPTH levels; a deeper one is read without recursion
# (common.nesting), what lies past that depth as TOO_DEEP, and the event holding
# it is rejected (its properties nest at most MAX_PROPERTY_DEPTH levels), not the batch.
_FAST_DECODER = msgspec.json.Decoder(float_hook=number_or_marker)


def batch_parse(body: bytes):
    """A batch's JSON, numbers as exact Decimals. Raises ValueError (or
    UnicodeDecodeError) for a body that is not JSON. A number no column could hold is
    no such error: it parses as UNSTORABLE_NUMBER, and validation rejects the event
    that carries it; nor is nesting at any depth (TOO_DEEP past MAX_BODY_DEPTH). What
    the fast decoder refuses is read again by json.loads (json_parse), whose answer or
    error is the batch's."""
    if may_nest_deeper_than(body, MAX_BODY_DEPTH):
        return json_parse(body, max_depth=MAX_BODY_DEPTH)
    try:
        return _FAST_DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return json_parse(body)


def json_parse(body: bytes, *, max_depth: int | None = None):
    """batch_parse by json.loads alone: the reference the fast decoder agrees with.
    With `max_depth`, by common.nesting's reader, which reads as json.loads does
    without recursion, containers past that depth as TOO_DEEP."""
    loads = json.loads if max_depth is None else partial(nesting.loads, max_depth=max_depth)
    try:
        return loads(body, parse_float=number_or_marker, parse_constant=reject_json_constant)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer of over 4,300 digits, which Python will not read as an int.
        return loads(
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
    """The properties can be stored as they are (common.storable): no NUL or lone
    surrogate (looked for only when the body may hold one), no number outside a
    column's range, nesting at most MAX_PROPERTY_DEPTH deep."""
    reason = unstorable_json_reason(
        properties, check_text=may_hold_unstorable, max_depth=MAX_PROPERTY_DEPTH
    )
    if reason is not None:
        raise EventRejected(f"properties: {reason}")


def parse_timestamp(value: object, *, earliest: datetime, latest: datetime) -> datetime:
    """An event's moment: ISO 8601 text with an offset, or (from a caller that
    read it elsewhere: billing.integrations) an aware datetime; within the
    window of late and future events either way."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        moment = value
    elif not isinstance(value, str) or len(value) > 64:
        raise EventRejected(
            "timestamp must be an ISO 8601 string with an offset, e.g. 2026-11-03T10:00:00Z"
        )
    else:
        try:
            moment = parse_instant(value)
        except ValueError as exc:
            raise EventRejected(f"timestamp {value!r} {exc}") from exc
    if moment < earliest or moment > latest:
        value = value if isinstance(value, str) else moment.isoformat()
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
                raise UnknownCustomer(f"unknown customer {external_id[:MAX_ID_LENGTH]!r}")
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
            code = UNKNOWN_CUSTOMER if isinstance(exc, UnknownCustomer) else INVALID
            rejected.append(Rejection(index, _event_id_of(raw), str(exc), code))
            continue
        key = (customer_id, event_id)
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        prepared.append(
            PreparedEvent(customer_id, event_id, event_name, timestamp, properties, found, index)
        )
    return prepared, rejected, repeats


def events_ingest(
    *,
    events: list,
    now: datetime | None = None,
    may_hold_unstorable: bool = True,
    fold: bool = True,
) -> IngestResult:
    """Store a batch of usage events and their rollups (on PostgreSQL the events
    with their contributions, then a fold when one is due: billing.usage.folding),
    atomically.

    Idempotent per (customer, event id): an event already stored, or repeated
    in the batch, counts as a duplicate and changes nothing, also when the
    same batch arrives from several clients at once (the key's unique index
    decides). Returns only after the transaction has committed.
    `may_hold_unstorable=False` is the caller's word that the JSON it parsed
    cannot hold a NUL or a lone surrogate (common.storable.may_hold_unstorable_text).
    `fold=False`: no fold after the batch, for a caller whose transaction goes on
    (a fold takes the rollup lock alone: it waits for that transaction's commit).
    """
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise ValueError(f"at most {MAX_EVENTS_PER_BATCH} events a batch")
    now = now or datetime.now(UTC)
    writer = rollups_writer()
    with transaction.atomic():
        # Meters are read under the rollup lock: a rebuild of a new meter's rollups
        # waits for this batch, and this batch sees any meter a rebuild covered. Pinned:
        # the batch's metering and its draw-down read the same meters, checked once
        # (here, under the lock: so never call this inside another pin).
        rollup_lock(shared=True)
        with meter_cache.pinned():
            prepared, rejected, repeats = events_prepare(
                events, now=now, may_hold_unstorable=may_hold_unstorable
            )
            result = IngestResult(rejected=rejected, duplicates=repeats)
            if not prepared:
                return _counted(result)
            # Before the store: the events are stored with the groups they count under.
            other = group_values_limit(prepared)
            new = writer.store(prepared, received_at=now)
            # Every key new (no duplicate): the batch's events, without a pass over them.
            stored = (
                prepared
                if len(new) == len(prepared)
                else [e for e in prepared if (e.customer_id, e.event_id) in new]
            )
            uniques = unique_values(stored)
            if uniques:
                writer.insert_uniques(uniques)
            store_groups(stored, rollups=not writer.FOLDS)
            metered = [e for e in stored if e.contributions]
            if metered:
                usage_draw_for_events(events=metered, now=now)
                usage_alerts_enqueue(customer_ids={e.customer_id for e in metered})
            if len(metered) < len(stored):
                result.unmetered = unmetered_of(stored)
    result.accepted = len(stored)
    result.stored = stored
    if other:
        indexes = {e.index for e in stored}
        result.other = [o for o in other if o.index in indexes]
    result.duplicates += len(prepared) - len(stored)
    if fold:
        fold_clock.fold_if_due()
    return _counted(result)


def unmetered_of(stored: list[PreparedEvent]) -> list[Unmetered]:
    """The events no meter reads, named for the answer. Only the events without a
    contribution are looked at (a meter's filters may have passed over the others),
    in the meters the batch was metered with: the cache is pinned, so no query."""
    by_event = meter_cache.by_event_name()
    return [
        Unmetered(e.index, e.event_id, e.event_name)
        for e in stored
        if not e.contributions and e.event_name not in by_event
    ]


def _counted(result: IngestResult) -> IngestResult:
    """`result`, its events counted in the metrics (common.metrics)."""
    usage_events_counted(
        accepted=result.accepted, duplicates=result.duplicates, rejected=len(result.rejected)
    )
    return result
