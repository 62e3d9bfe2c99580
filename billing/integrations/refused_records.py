"""The records a usage source sent that could not be billed, kept
BILLING_REFUSED_RECORD_DAYS (billing.integration_models.RefusedRecord): written once
a request by the ingestion (billing.integrations.ingest.calls_ingest), read by the API
and the admin, purged by the beat; billing.integrations.replay takes one again.

A record is kept as its JSON text, numbers exactly as sent (a cost of 0.0000123 stays
that, not a float), so that a replay reads what the first reading read. Two things are
not kept whole, both said on the row:
- a text longer than LONG_TEXT characters (a prompt, an answer) keeps its first
  LONG_TEXT and a note of how many were cut: no reader takes so long a text as a field
  (ids, customers and models are at most 255 characters), and it stays too long to be
  taken, so a replay reads the record as the first reading did;
- a record whose JSON is still over BILLING_REFUSED_RECORD_MAX_BYTES, or that JSON
  cannot carry as it was read (a lone surrogate, a number no column holds, nesting
  past what a reader reads), is kept cut to that size, for reading, and is not
  replayable: the gateway sends it again;
- a line of an NDJSON body that is not JSON is kept as nothing (shown as null), not
  replayable."""

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from django.conf import settings

from billing.integration_models import RefusedRecord

# A text longer than this is kept shortened (see the module's note); longer than any
# field a reader takes (billing.integrations.calls.MAX_TEXT).
LONG_TEXT = 1000
# Deeper than any record a reader reads (JSON bodies nest at most 64 levels,
# common.nesting; protobuf messages at most 100).
MAX_DEPTH = 128
# Rows inserted a statement, deleted a statement.
INSERT_BATCH = 200
PURGE_BATCH = 1000

_ENCODER = msgspec.json.Encoder(decimal_format="number")


class _NotJson(Exception):
    """A record JSON cannot carry as it was read."""


def _shortened(value: object, depth: int = 0) -> object:
    """`value` with its long texts shortened; the same object where none is."""
    kind = type(value)
    if kind is str:
        if len(value) <= LONG_TEXT:
            return value
        return f"{value[:LONG_TEXT]}… [{len(value) - LONG_TEXT:,} more characters not kept]"
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise _NotJson
        items = value.items() if kind is dict else enumerate(value)
        changed = {}
        for key, inner in items:
            if type(inner) in (dict, list, str):
                shorter = _shortened(inner, depth + 1)
                if shorter is not inner:
                    changed[key] = shorter
        if not changed:
            return value
        if kind is dict:
            return {**value, **changed}
        return [changed.get(position, inner) for position, inner in enumerate(value)]
    return value


def record_text(record: object) -> tuple[str, bool]:
    """A refused record as kept: its JSON text and whether it can be replayed (see
    the module's note)."""
    if record is None:
        return "", False  # a line that was not JSON: nothing to read again
    limit = settings.BILLING_REFUSED_RECORD_MAX_BYTES
    try:
        text = _ENCODER.encode(_shortened(record))
    except (_NotJson, TypeError, ValueError, msgspec.EncodeError):
        # Decimals as text, markers by their names, surrogates escaped: to read only.
        text = json.dumps(record, default=str, ensure_ascii=True).encode()
        return text[:limit].decode("utf-8", "ignore"), False
    if len(text) > limit:
        return text[:limit].decode("utf-8", "ignore"), False
    return text.decode(), True


def storable_text(text: str) -> str:
    """A message as a text column holds it: a NUL or a lone surrogate escaped."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def refused_records_keep(*, source: str, rejections: Sequence, now: datetime) -> int:
    """Keep a request's refused records (billing.integrations.ingest.RecordRejection:
    its record, code, message and call id), in one bulk insert. Not idempotent: a
    record sent and refused twice is kept twice, each refusal as it happened."""
    rows = []
    for rejection in rejections:
        text, replayable = record_text(rejection.record)
        rows.append(
            RefusedRecord(
                source=source,
                received_at=now,
                reason=rejection.code,
                message=storable_text(rejection.message),
                call_id=(rejection.id or "")[:255],
                record=text,
                replayable=replayable,
            )
        )
    RefusedRecord.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    return len(rows)


def refused_records_purge(*, now: datetime) -> int:
    """Delete the refused records received more than BILLING_REFUSED_RECORD_DAYS
    before `now`, oldest first, PURGE_BATCH rows a statement (each committed on its
    own: a run stopped halfway has deleted what it deleted, the next goes on).
    Idempotent. The number of rows deleted."""
    before = now - timedelta(days=settings.BILLING_REFUSED_RECORD_DAYS)
    old = RefusedRecord.objects.filter(received_at__lt=before)
    deleted = 0
    while ids := list(old.order_by("received_at").values_list("id", flat=True)[:PURGE_BATCH]):
        deleted += RefusedRecord.objects.filter(id__in=ids).delete()[0]
    return deleted


def refused_records_of(*, source: str, since: datetime | None = None, reason: str | None = None):
    """A source's refused records, newest first (by id: rows are inserted as they
    are received), received at `since` or later, of one reason if given."""
    rows = RefusedRecord.objects.filter(source=source)
    if since is not None:
        rows = rows.filter(received_at__gte=since)
    if reason:
        rows = rows.filter(reason=reason)
    return rows.order_by("-id")


def record_value(row: RefusedRecord) -> object:
    """A kept record as the API and the admin show it: the record (parsed from its
    JSON text), or the kept text itself when it was cut (not replayable); None for
    nothing kept."""
    if not row.record:
        return None
    return json.loads(row.record) if row.replayable else row.record
