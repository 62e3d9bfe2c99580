"""Calls from a gateway or a trace, stored as usage events through the one
ingestion of POST /events (billing.usage.ingestion.events_ingest: validation,
per-event errors, draw-down, alerts), and remembered for the source's preview.

A request's calls are stored in batches of at most MAX_EVENTS_PER_BATCH events,
each batch in its own transaction, a call's events never split between two: a
call is stored whole or, when any of its events is refused, the rest are refused
with it before anything is written (its events share the customer, the time and
the event name, the only fields ingestion refuses an event for besides those
checked here), so nothing of a call is half stored.

Each call's model is priced by the rate cards' model values read once a request
(billing.integrations.mapping.card_models); the answer lists the models priced at a
card's default row (`unpriced_models`), the metric counts their calls, and finance
is told of each new one (billing.integrations.unpriced_alerts)."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from billing.integration_models import MODELS_SEEN, RECENT_CALLS, IntegrationSource
from billing.integrations.calls import (
    INVALID,
    PROVIDER_COST_EVENT,
    REFUSAL_CODES,
    UNREADABLE,
    Call,
    RecordRejected,
    RecordSkipped,
    SourceMapping,
    call_events,
    text_field,
)
from billing.integrations.mapping import card_models
from billing.integrations.model_names import PricedModel, unpriced
from billing.integrations.refused_records import refused_records_keep
from billing.integrations.unpriced_alerts import UnpricedCall, unpriced_models_announce
from billing.usage.holds import holds_closed_by_calls
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH, Rejection, batch_parse, events_ingest
from common import metrics

DEFAULT_EVENT_NAME = "llm.tokens"
# customer_from naming no one field: each kind of record the source sends names the
# customer by a field of its own (billing.integrations.openrouter.CUSTOMER_FIELDS).
PER_KIND = "per_kind"
# Where each source names the customer unless finance says otherwise: LiteLLM's
# end user (the `user` of the request), OpenRouter's per kind of record (a
# generation's `external_user`, a completion's `user`), and for OpenTelemetry the
# span's or its resource's `enduser.id`.
DEFAULT_CUSTOMER_FROM = {
    IntegrationSource.LITELLM: "end_user",
    IntegrationSource.OPENROUTER: PER_KIND,
    IntegrationSource.OTLP: "enduser.id",
}
metrics.gateway_records_prepare(sources=list(DEFAULT_CUSTOMER_FROM), reasons=REFUSAL_CODES)


@dataclass(slots=True)
class RecordRejection:
    index: int
    id: str | None
    message: str
    # RecordRejected.code (billing.integrations.calls.REFUSAL_CODES).
    code: str = INVALID
    # The record as received, kept (billing.integrations.refused_records).
    record: object = None


def _no_record(index: int) -> object:
    return None


@dataclass(slots=True)
class Received:
    """What a reader made of a request: the calls to bill, the records refused
    and how many were rightly not billed (failed calls, spans that are not model
    calls); and the record of a call by its index, kept should ingestion refuse it."""

    calls: list[Call] = field(default_factory=list)
    rejected: list[RecordRejection] = field(default_factory=list)
    skipped: int = 0
    record_of: Callable[[int], object] = _no_record
    # The holds the failed calls' runs took, with the customer each call names
    # (RecordSkipped.hold, .customer): released if still open.
    failed_holds: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, skipped: RecordSkipped) -> None:
        """Count a record rightly not billed, and keep the hold it names."""
        self.skipped += 1
        if skipped.customer is not None:
            self.failed_holds.append((skipped.hold, skipped.customer))


@dataclass(slots=True)
class IntegrationResult:
    accepted: int = 0
    duplicates: int = 0
    calls: int = 0
    skipped: int = 0
    rejected: list[RecordRejection] = field(default_factory=list)
    unmetered: list[dict] = field(default_factory=list)
    # The models the calls billed are priced as at a card's default row, or no row
    # (model_names.unpriced): sorted, each once.
    unpriced_models: list[str] = field(default_factory=list)


class TooManyRecords(Exception):
    """A body holding more records than a request may carry (`count` of them)."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def json_records(body: bytes, *, limit: int) -> list:
    """The records of a gateway's body: a JSON array, one object, or NDJSON (one
    object a line, a line that is not JSON kept as UNREADABLE for the reader to
    refuse alone). Raises ValueError for a body that is none of them (a body none
    of whose lines is JSON is a broken document, not NDJSON), TooManyRecords past
    `limit` records (NDJSON's lines counted before any is read: a line that is not
    JSON costs a second reading, and a body of millions of them took a minute)."""
    try:
        parsed = batch_parse(body)
    except (ValueError, UnicodeDecodeError):
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        if len(lines) > limit:
            raise TooManyRecords(len(lines)) from None
        records = []
        for line in lines:
            try:
                records.append(batch_parse(line))
            except (ValueError, UnicodeDecodeError):
                records.append(UNREADABLE)
        if all(record is UNREADABLE for record in records):
            raise
        return records
    records = parsed if isinstance(parsed, list) else [parsed]
    if len(records) > limit:
        raise TooManyRecords(len(records))
    return records


def records_received(records: list, mapping: SourceMapping, call_of) -> Received:
    """The calls of a gateway's records, each read by the source's `call_of(record,
    mapping, index)`: a Call, or skipped, or refused by its index and id (with the
    record, kept)."""
    received = Received(record_of=records.__getitem__)
    for index, record in enumerate(records):
        try:
            received.calls.append(call_of(record, mapping, index))
        except RecordSkipped as skipped:
            received.skip(skipped)
        except RecordRejected as exc:
            kept = None if record is UNREADABLE else record  # nothing to keep
            received.rejected.append(
                RecordRejection(index, _record_id(record), str(exc), exc.code, kept)
            )
    return received


def _record_id(record: object) -> str | None:
    """The id to name a refused record by: its `id`, where that is text the answer
    can hold."""
    if not isinstance(record, dict):
        return None
    try:
        return text_field(record.get("id"), "id")
    except RecordRejected:
        return None


def source_row(source: str) -> IntegrationSource:
    """The source's row, made with its defaults the first time it is asked for."""
    row = IntegrationSource.objects.filter(source=source).first()
    if row is not None:
        return row
    row, _ = IntegrationSource.objects.get_or_create(
        source=source,
        defaults={
            "event_name": DEFAULT_EVENT_NAME,
            "customer_from": DEFAULT_CUSTOMER_FROM[source],
        },
    )
    return row


def mapping_of(row: IntegrationSource) -> SourceMapping:
    return SourceMapping(
        source=row.source,
        event_name=row.event_name,
        customer_from=row.customer_from,
        models=dict(row.models or {}),
        token_types=dict(row.token_types or {}),
    )


def calls_ingest(
    row: IntegrationSource,
    received: Received,
    *,
    now: datetime | None = None,
    keep_refused: bool = True,
) -> IntegrationResult:
    """Store the calls' events; the answer names refused records by their index in
    the request and their call id, and the models priced at a card's default row.
    Every record is counted in the metrics (billing_gateway_records); the refused
    ones are kept (refused_records_keep, one insert after the events are stored)
    unless `keep_refused` is False (a replay, which marks the row it replays
    instead)."""
    now = now or datetime.now(UTC)
    mapping = mapping_of(row)
    card = card_models(mapping.event_name)
    result = IntegrationResult(skipped=received.skipped, rejected=list(received.rejected))
    refused_calls: dict[int, Rejection] = {}
    # The calls with events, and of those the calls with an event stored now (the
    # others were all duplicates), by id().
    batched: set[int] = set()
    stored: set[int] = set()
    # The events of the calls that name a hold, by id(): they settle it.
    holding: dict[int, list[dict]] = {}
    for batch in _batches(received.calls, mapping, card):
        holding.update((id(call), evs) for call, evs in batch if call.hold is not None)
        events = [event for _, call_events_ in batch for event in call_events_]
        owners = [call for call, call_events_ in batch for _ in call_events_]
        ingested = events_ingest(events=events, now=now, may_hold_unstorable=False)
        result.accepted += ingested.accepted
        result.duplicates += ingested.duplicates
        batch_calls = {id(call) for call, _ in batch}
        batched |= batch_calls
        if not ingested.duplicates:
            stored |= batch_calls
        else:
            stored.update(id(owners[event.index]) for event in ingested.stored)
        for rejection in ingested.rejected:
            call = owners[rejection.index]
            refused_calls.setdefault(id(call), rejection)
        for unmetered in ingested.unmetered:
            if unmetered.event_name != PROVIDER_COST_EVENT:
                call = owners[unmetered.index]
                result.unmetered.append(
                    {"index": call.index, "id": unmetered.id, "event_name": unmetered.event_name}
                )
    duplicate_calls = 0
    for call in received.calls:
        rejection = refused_calls.get(id(call))
        if rejection is not None:
            record = received.record_of(call.index)
            result.rejected.append(
                RecordRejection(call.index, call.id, rejection.message, rejection.code, record)
            )
        else:
            result.calls += 1
            duplicate_calls += id(call) in batched and id(call) not in stored
    result.rejected.sort(key=lambda r: r.index)
    metrics.gateway_records_counted(
        source=row.source,
        accepted=result.calls - duplicate_calls,
        duplicates=duplicate_calls,
        skipped=result.skipped,
        refused=Counter(r.code for r in result.rejected),
    )
    if keep_refused and result.rejected:
        refused_records_keep(source=row.source, rejections=result.rejected, now=now)
    names = _names_priced(received.calls, mapping, card)
    billed = [call for call in received.calls if id(call) not in refused_calls]
    if holding or received.failed_holds:
        # Only the calls billed now: a record sent again settles nothing twice.
        holds_closed_by_calls(
            settled=[
                (call.hold, call.customer, holding[id(call)])
                for call in billed
                if id(call) in holding and id(call) in stored
            ],
            failed=received.failed_holds,
            now=now,
        )
    _unpriced_note(row, billed, names, card, result, now=now)
    _remember(row, mapping, received, result, names=names, now=now)
    return result


def _names_priced(
    calls: list[Call], mapping: SourceMapping, card: set[str]
) -> dict[tuple[str, str | None], PricedModel]:
    """What each pair of names (sent, asked for) the calls carry is priced as."""
    names: dict[tuple[str, str | None], PricedModel] = {}
    for call in calls:
        key = (call.model, call.requested_model)
        if key not in names:
            names[key] = mapping.priced(call, card)
    return names


def _unpriced_note(
    row: IntegrationSource,
    billed: list[Call],
    names: dict[tuple[str, str | None], PricedModel],
    card: set[str],
    result: IntegrationResult,
    *,
    now: datetime,
) -> None:
    """The models the billed calls are priced as at a card's default row: listed in
    the answer, their calls counted (billing_unpriced_model_calls_total), and each
    new one announced to finance (unpriced_alerts)."""
    first: dict[str, UnpricedCall] = {}
    count = 0
    for call in billed:
        priced = names[(call.model, call.requested_model)]
        if unpriced(priced, card):
            count += 1
            if priced.model not in first:
                first[priced.model] = UnpricedCall(
                    priced.model, call.model, call.requested_model, call.customer
                )
    if not first:
        return
    result.unpriced_models = sorted(first)
    metrics.unpriced_model_calls_counted(source=row.source, calls=count)
    unpriced_models_announce(source=row.source, calls=list(first.values()), now=now)


def _batches(calls: list[Call], mapping: SourceMapping, card: set[str]):
    """The calls with their events, in batches of at most MAX_EVENTS_PER_BATCH
    events, a call's events never split."""
    batch: list[tuple[Call, list[dict]]] = []
    size = 0
    for call in calls:
        events = call_events(call, mapping, card=card)
        if not events:
            continue
        if size + len(events) > MAX_EVENTS_PER_BATCH and batch:
            yield batch
            batch, size = [], 0
        batch.append((call, events))
        size += len(events)
    if batch:
        yield batch


class PreviewBuffer:
    """What this process received since it last wrote a source's preview: its last
    calls and refusals, and the calls of each model. A request writes the preview
    (one UPDATE of the source's row) when it brings what the preview does not show
    yet (a model name not in models_seen, a refused record) or when
    BILLING_INTEGRATION_PREVIEW_SECONDS have passed since this process last wrote
    it; else it only adds to the buffer, so that busy workers do not queue on the
    row's lock a request each. What a process holds when it stops is not written:
    the preview's counts are a preview's, no usage depends on them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, list[dict]] = {}
        self._calls: dict[str, Counter] = {}
        self._names: dict[str, dict[str, dict]] = {}
        self._written: dict[str, float] = {}
        self.clock = time.monotonic

    def clear(self) -> None:
        with self._lock:
            self._entries, self._calls, self._names, self._written = {}, {}, {}, {}

    def add(
        self,
        row: IntegrationSource,
        entries: list[dict],
        calls: Counter,
        names: dict[str, dict],
        *,
        urgent: bool,
        now: datetime,
    ) -> None:
        """`calls`: the calls of each model name sent; `names`: what each was priced
        as ("mapped") and the name it was asked for by, if another ("requested")."""
        source = row.source
        with self._lock:
            held = self._entries.setdefault(source, [])
            held.extend(entries)
            del held[:-RECENT_CALLS]
            self._calls.setdefault(source, Counter()).update(calls)
            self._names.setdefault(source, {}).update(names)
            due = self.clock() - self._written.get(source, float("-inf"))
            if not urgent and due < settings.BILLING_INTEGRATION_PREVIEW_SECONDS:
                return
            entries = self._entries.pop(source)
            calls = self._calls.pop(source)
            names = self._names.pop(source)
            self._written[source] = self.clock()
        _preview_write(row, entries, calls, names, stamp=now.isoformat())


preview_buffer = PreviewBuffer()


def _remember(
    row: IntegrationSource,
    mapping: SourceMapping,
    received: Received,
    result: IntegrationResult,
    *,
    names: dict[tuple[str, str | None], PricedModel],
    now: datetime,
) -> None:
    """Add the request's last calls (and refusals) and the model names it received
    (`names`: what each pair of them is priced as) to the source's preview
    (PreviewBuffer)."""
    refused = {(r.index, r.id): r.message for r in result.rejected}
    stamp = now.isoformat()
    entries = []
    for call in received.calls[-RECENT_CALLS:]:
        entries.append(
            {
                "at": stamp,
                "id": call.id,
                "customer": call.customer,
                "model": call.model,
                "mapped": names[(call.model, call.requested_model)].model,
                "tokens": {
                    mapping.token_type_of(kind) or f"({kind})": count
                    for kind, count in call.tokens.items()
                    if count
                },
                "provider_cost": None if call.provider_cost is None else str(call.provider_cost),
                "error": refused.get((call.index, call.id)),
            }
        )
    called = {(c.index, c.id) for c in received.calls}
    for rejection in received.rejected[-RECENT_CALLS:]:
        if (rejection.index, rejection.id) not in called:
            entries.append({"at": stamp, "id": rejection.id, "error": rejection.message})
    if not entries:
        return
    calls = Counter(call.model for call in received.calls)
    # A name sent under several names asked for keeps the last (a preview's).
    named = {}
    for (sent, requested), priced in names.items():
        named[sent] = {"mapped": priced.model}
        if requested and requested != sent:
            named[sent]["requested"] = requested
    seen = row.models_seen or {}
    urgent = bool(result.rejected) or any(model not in seen for model in calls)
    preview_buffer.add(row, entries, calls, named, urgent=urgent, now=now)


def _preview_write(
    row: IntegrationSource, entries: list[dict], calls: Counter, names: dict, *, stamp: str
) -> None:
    """One UPDATE: the entries before the row's last calls, the calls added to its
    models (each with what it was priced as and the name it was asked for by).
    Two processes writing at once may each keep its own view (the last to write
    wins)."""
    seen = dict(row.models_seen or {})
    for model, count in calls.items():
        earlier = seen.get(model) or {}
        seen[model] = {
            **names[model],
            "calls": earlier.get("calls", 0) + count,
            "last_seen": stamp,
        }
    if len(seen) > MODELS_SEEN:
        newest = sorted(seen.items(), key=lambda item: item[1]["last_seen"], reverse=True)
        seen = dict(newest[:MODELS_SEEN])
    recent = (list(reversed(entries)) + list(row.recent or []))[:RECENT_CALLS]
    IntegrationSource.objects.filter(pk=row.pk).update(recent=recent, models_seen=seen)
    row.recent, row.models_seen = recent, seen
