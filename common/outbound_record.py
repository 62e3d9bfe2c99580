"""What left the building, recorded outside the database: an append-only file kept
in the documents folder (MEDIA_ROOT/outbound-record.jsonl), one JSON object a line,
written when a document's PDF is stored and when an email is actually sent.

A database restored from a backup has lost what happened after its snapshot; the
documents folder, kept apart, has not. The restore step (manage.py after_restore)
reads this file to learn which document numbers customers may hold and which emails
they have received, so that no number is issued twice and no email sent twice.

Each line is written with one write() to a file opened O_APPEND, then fsync'd: lines
of several processes never interleave (a line is far below the size an append writes
at once), and a line is on disk before the caller goes on (records its outcome in the
database). Cheap: one small write and one fsync per document or email. A line the
machine's crash cut short is skipped by the reader.
"""

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings

FILENAME = "outbound-record.jsonl"

# What a line says left: a document's PDF stored (its number may be in a customer's
# hands: downloaded, attached), a document's email sent, an alert's email sent, and
# numbers a restore skipped.
DOCUMENT_STORED = "document_stored"
DOCUMENT_EMAILED = "document_emailed"
ALERT_EMAILED = "alert_emailed"
NUMBERS_SKIPPED = "numbers_skipped"


def record_path() -> Path:
    return Path(settings.MEDIA_ROOT) / FILENAME


def record_append(*, what: str, at: datetime, **facts) -> None:
    """Append one line (`what`, `at` and the facts, JSON values) and fsync it."""
    line = json.dumps({"what": what, "at": at.isoformat(), **facts}, sort_keys=True) + "\n"
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def record_read(path: Path | None = None) -> Iterator[dict]:
    """The record's lines, oldest first; a line that is not whole JSON (cut short
    by a crash) is skipped. Nothing when there is no record."""
    path = path or record_path()
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and "what" in entry:
                yield entry
