"""A kept refused record taken again (POST /api/v1/integrations/{source}/refused/{id}/
replay, and the admin's action), once its mapping or its customer is fixed: read by
its source's reader with the source's mapping as it is now, its call stored through
the same ingestion (billing.integrations.ingest.calls_ingest). A call already stored
is a duplicate there (its events' ids are the call's): a record replayed twice, or
sent again by its gateway as well, is billed once."""

from dataclasses import dataclass
from datetime import datetime

from billing.integration_models import IntegrationSource, RefusedRecord
from billing.integrations import litellm, openrouter, otlp
from billing.integrations.ingest import (
    IntegrationResult,
    Received,
    RecordRejection,
    calls_ingest,
    mapping_of,
    records_received,
    source_row,
)
from billing.integrations.refused_records import storable_text
from billing.usage.ingestion import batch_parse
from common.errors import Conflict
from common.task_sending import enqueue_on_commit

# What a replay became (RefusedRecord.replay_outcome).
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
SKIPPED = "skipped"
REFUSED = "refused"

# A source's reader of one record (an OTLP export is read as POST /v1/traces reads one).
READERS = {
    IntegrationSource.LITELLM: litellm.call_of,
    IntegrationSource.OPENROUTER: openrouter.call_of,
}


@dataclass(slots=True)
class Replayed:
    result: IntegrationResult
    outcome: str


def _received(source: str, record: object, mapping) -> Received:
    """The record read again as its source's request would read it. A span is kept as
    an export of it alone (otlp.span_record), from /v1/traces or from OpenRouter's
    Broadcast (an OTLP export posted to OpenRouter's path)."""
    broadcast = source == IntegrationSource.OPENROUTER and (
        isinstance(record, dict) and "resourceSpans" in record
    )
    if broadcast:
        mapping = openrouter.broadcast_mapping(mapping)
    if source == IntegrationSource.OTLP or broadcast:
        try:
            return otlp.received_of_export(record, mapping)
        except (otlp.MalformedExport, otlp.TooManySpans) as exc:
            return Received(rejected=[RecordRejection(0, None, str(exc), record=record)])
    return records_received([record], mapping, READERS[source])


def _outcome(result: IntegrationResult) -> str:
    if result.rejected:
        return REFUSED
    if result.skipped and not result.calls:
        return SKIPPED
    return DUPLICATE if result.duplicates and not result.accepted else ACCEPTED


def refused_record_replay(*, row: RefusedRecord, now: datetime) -> Replayed:
    """Take `row`'s record again; its events stored as a request's are (each batch in
    its own transaction). Marks the row: replayed_at and replay_outcome, and when it
    is refused again, the reason and message of this refusal (no new row). A row once
    accepted keeps that mark: replaying it again is a duplicate, changing nothing.
    Raises Conflict for a record kept cut (not replayable)."""
    if not row.replayable:
        raise Conflict(
            f"refused record {row.pk} was kept cut (larger than its limit, or not JSON as "
            "read): it cannot be replayed; send it again from the gateway"
        )
    source = source_row(row.source)
    received = _received(row.source, batch_parse(row.record.encode()), mapping_of(source))
    result = calls_ingest(source, received, now=now, keep_refused=False)
    outcome = _outcome(result)
    changes = {"replayed_at": now, "replay_outcome": outcome}
    if outcome == REFUSED:
        rejection = result.rejected[0]
        changes |= {"reason": rejection.code, "message": storable_text(rejection.message)}
    marked = (
        RefusedRecord.objects.filter(pk=row.pk).exclude(replay_outcome=ACCEPTED).update(**changes)
    )
    if marked:
        for name, value in changes.items():
            setattr(row, name, value)
    return Replayed(result, outcome)


# Rows the admin replays while the page waits; more are replayed by a task.
REPLAY_AT_ONCE = 100


def refused_records_replay(*, record_ids: list[int], now: datetime) -> dict[str, int]:
    """Replay each of these rows that is still kept (refused_record_replay), in id
    order; those not replayable are counted under "not_replayable". Safe to run
    twice (a replayed call is a duplicate). How many rows became what."""
    outcomes: dict[str, int] = {}
    for row in RefusedRecord.objects.filter(pk__in=record_ids).order_by("pk"):
        try:
            outcome = refused_record_replay(row=row, now=now).outcome
        except Conflict:
            outcome = "not_replayable"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def refused_records_replay_enqueue(*, record_ids: list[int]) -> None:
    """refused_records_replay in a task, sent once the current transaction commits."""
    enqueue_on_commit("billing.tasks.replay_refused_records", sorted(record_ids))
