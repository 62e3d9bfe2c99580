"""The restore step (manage.py after_restore): run once on a database restored from
a backup, with the documents folder (MEDIA_ROOT) restored beside it, before the
services start. A backup is a snapshot: what happened after it is lost from the
database, but not from the customers' hands nor from the documents folder, whose
outbound record (common.outbound_record) says what left. The step makes
the restored database agree with that:

- numbers: each document sequence is moved past the highest number a customer may
  hold (a stored PDF's file, a stored or emailed document in the record), so no
  number is issued again to another document. The numbers skipped are the gap; the
  documents the database lost under them are named, and the gap is appended to the
  record itself, which is kept with the documents;
- emails: an invoice, credit note or reminder email, or an alert's email, that the
  record says was sent is marked sent (as of the record's time) and never sent
  again. An email is matched by its id and by its document's number (or its
  alert's customer and key): ids taken again after a restore never match;
- ids: the ids the record names (documents, emails, alerts) are never taken again by
  other rows: their tables' id sequences are moved past them, so a Stripe idempotency
  key made from a document's id (invoice-<id>-..., credit-note-<id>-refund) and an
  email's id in the record each name one row;
- documents: a numbered document whose recorded PDF file is missing is rendered
  again and stored under its name when the render is byte-identical to what was
  recorded (its SHA-256; renders are deterministic, invoices.pdf); one that is not
  is stored as it renders now, under a name of its own, and said. A document the
  snapshot has no PDF for, whose PDF was stored after it (the record and the file
  agree), is given that file;
- sending: paused (billing.notifications.outbound_pause), with the documents lost
  kept on the pause: e-mails, webhooks, Peppol e-invoices and charges of invoices
  are held until an operator has read which periods were billed again under which
  new numbers (invoices.restore_pause) and resumes.

Safe to run twice: a second run finds every sequence past, every email marked,
every file present and sending paused, and changes nothing.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models.functions import Length

from billing.models import Alert
from billing.notifications.outbound_pause import outbound_pause_set
from common import outbound_record
from invoices.models import DocumentEmail, InvoiceSequence
from invoices.rendering import DOCUMENTS, pdf_file_store, pdf_storage_name
from invoices.sequences import number_of, number_parts

# A stored PDF's name: <number>-<first 16 hex digits of its SHA-256>.pdf
# (rendering.pdf_storage_name); a number is <sequence>-<digits>.
STORED_NAME = re.compile(r"^(?P<number>(?P<sequence>.+)-(?P<position>\d+))-[0-9a-f]{16}\.pdf$")
MODELS = {kind.folder: model for model, kind in DOCUMENTS.items()}
# What an invoice billed, as the record says it (rendering.document_billed).
BILLED = ("subscription", "reason", "period_start", "period_end")


@dataclass
class SequenceMove:
    """A sequence moved past the numbers customers may hold: next_number was
    `was`, is `now`; from `was` to `now - 1` no number will be issued."""

    name: str
    was: int
    now: int

    @property
    def skipped(self) -> int:
        return self.now - self.was


@dataclass
class LostDocument:
    """A number a customer may hold that the restored database does not have, with
    what the record says of it: its kind (the storage's folder) and id, its
    customer's id, when it was emailed, and for an invoice what it billed (its
    subscription, reason and period, ISO instants: rendering.document_billed; None
    in a record written before they were recorded)."""

    number: str
    customer: int | None
    emailed_at: str | None
    kind: str | None = None
    document: int | None = None
    subscription: int | None = None
    reason: str | None = None
    period_start: str | None = None
    period_end: str | None = None


PAUSED_BECAUSE = "database restored from a backup (manage.py after_restore)"


@dataclass
class RestoreReport:
    sequences: list[SequenceMove] = field(default_factory=list)
    lost: list[LostDocument] = field(default_factory=list)
    emails_marked: int = 0
    emails_were_sent: int = 0
    # Sent, says the record, but not in this database (lost with the snapshot's
    # future, or its id taken since by another email).
    emails_not_here: int = 0
    alerts_marked: int = 0
    alerts_were_emailed: int = 0
    alerts_not_here: int = 0
    files_present: int = 0
    rendered_identical: list[str] = field(default_factory=list)
    rendered_different: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    # Tables whose next id was moved past the record's: (table, highest id recorded).
    ids: list[tuple[str, int]] = field(default_factory=list)
    # Since when sending is paused (billing.notifications.outbound_pause).
    paused_since: datetime | None = None


def restore_reconcile(*, now: datetime, record: Path | None = None) -> RestoreReport:
    """The restore step (the module's docstring). Reads the outbound record (at
    `record`, else the documents folder's) and the documents folder; writes the
    sequences, the emails' and alerts' sent marks, missing PDF files, and a line of
    the record for each gap; pauses sending, keeping the documents lost on the
    pause. Idempotent. Meant for a database no service is using."""
    entries = list(outbound_record.record_read(record))
    report = RestoreReport()
    _documents_restore(entries, report)
    _sequences_advance(entries, report, now)
    _emails_mark_sent(entries, report)
    _alerts_mark_emailed(entries, report)
    _ids_advance(entries, report)
    pause = outbound_pause_set(
        now=now, reason=PAUSED_BECAUSE, lost=[asdict(lost) for lost in report.lost]
    )
    report.paused_since = pause.paused_at
    return report


# Numbers.


def _held_numbers(entries: list[dict]) -> dict[str, dict]:
    """Every number a customer may hold, with what the record says of it: its
    files in the documents folder, and the record's stored and emailed documents."""
    held: dict[str, dict] = {}
    for folder in MODELS:
        for path in sorted((Path(settings.MEDIA_ROOT) / folder).glob("*/*.pdf")):
            if match := STORED_NAME.match(path.name):
                held.setdefault(match["number"], {})
    told = (outbound_record.DOCUMENT_STORED, outbound_record.DOCUMENT_EMAILED)
    for entry in entries:
        number = entry.get("number")
        if entry["what"] in told and isinstance(number, str) and number_parts(number):
            facts = held.setdefault(number, {})
            facts.setdefault("customer", entry.get("customer"))
            for fact in BILLED:
                if entry.get(fact) is not None:
                    facts.setdefault(fact, entry[fact])
            if entry["what"] == outbound_record.DOCUMENT_EMAILED:
                facts.setdefault("emailed_at", entry["at"])
            elif entry.get("kind") in MODELS:
                # A stored document's id is its own (an email's is the email's).
                facts.setdefault("kind", entry["kind"])
                facts.setdefault("document", entry.get("id"))
    return held


def _sequences_advance(entries: list[dict], report: RestoreReport, now: datetime) -> None:
    held: dict[str, dict[int, dict]] = {}
    for number, facts in _held_numbers(entries).items():
        sequence, position = number_parts(number)
        held.setdefault(sequence, {})[position] = facts
    with transaction.atomic():
        for name, positions in sorted(held.items()):
            InvoiceSequence.objects.get_or_create(name=name)
            sequence = InvoiceSequence.objects.select_for_update().get(name=name)
            # Numbers are gap-free up to the highest this database issued: a number
            # held above it is a document the database lost.
            issued = _highest_issued(name)
            report.lost += [
                LostDocument(
                    number=number_of(name, at),
                    customer=facts.get("customer"),
                    emailed_at=facts.get("emailed_at"),
                    kind=facts.get("kind"),
                    document=facts.get("document"),
                    **{fact: facts.get(fact) for fact in BILLED},
                )
                for at, facts in sorted(positions.items())
                if at > issued
            ]
            if sequence.next_number > max(positions):
                continue
            move = SequenceMove(name=name, was=sequence.next_number, now=max(positions) + 1)
            sequence.next_number = move.now
            sequence.save(update_fields=["next_number"])
            report.sequences.append(move)
    lost = [document.number for document in report.lost]
    for move in report.sequences:
        in_gap = [number for number in lost if number_parts(number)[0] == move.name]
        # The gap is explained where the documents are kept: the record.
        outbound_record.record_append(
            what=outbound_record.NUMBERS_SKIPPED,
            at=now,
            sequence=move.name,
            first=move.was,
            last=move.now - 1,
            held_by_customers=in_gap,
            reason="database restored from a backup taken before these numbers were issued",
        )


# Ids.


def _ids_advance(entries: list[dict], report: RestoreReport) -> None:
    recorded: dict[type, int] = {}
    for entry in entries:
        if entry["what"] == outbound_record.DOCUMENT_STORED and entry.get("kind") in MODELS:
            model = MODELS[entry["kind"]]
        elif entry["what"] == outbound_record.DOCUMENT_EMAILED:
            model = DocumentEmail
        elif entry["what"] == outbound_record.ALERT_EMAILED:
            model = Alert
        else:
            continue
        recorded[model] = max(recorded.get(model, 0), int(entry["id"]))
    for model, highest in recorded.items():
        table = model._meta.db_table
        if _id_sequence_advance(table, highest):
            report.ids.append((table, highest))


def _id_sequence_advance(table: str, highest: int) -> bool:
    """Have the table's next id be above `highest`; True when it was not."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute(
                f"SELECT last_value, is_called FROM {sequence}"  # noqa: S608 (a sequence's name)
            )
            last, called = cursor.fetchone()
            if (last if called else last - 1) >= highest:
                return False
            cursor.execute("SELECT setval(%s, %s)", [sequence, highest])
            return True
        # SQLite's AUTOINCREMENT keeps the highest id given in sqlite_sequence.
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        if row is not None and row[0] >= highest:
            return False
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
        cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, highest])
        return True


def _highest_issued(sequence: str) -> int:
    """The highest position of the sequence among this database's documents (0 for
    none). Positions are written with 6 digits or more: the longest is the highest."""
    highest = 0
    for model in MODELS.values():
        numbers = model.objects.filter(number__startswith=f"{sequence}-").values_list(
            "number", flat=True
        )
        for number in numbers.order_by(Length("number").desc(), "-number")[:1]:
            parts = number_parts(number)
            if parts and parts[0] == sequence:
                highest = max(highest, parts[1])
    return highest


# Emails.


def _emails_mark_sent(entries: list[dict], report: RestoreReport) -> None:
    sent = [e for e in entries if e["what"] == outbound_record.DOCUMENT_EMAILED]
    emails = DocumentEmail.objects.select_related("invoice", "credit_note").in_bulk(
        [e["id"] for e in sent]
    )
    for entry in sent:
        email = emails.get(entry["id"])
        if (
            email is None
            or email.document.number != entry.get("number")
            or email.dunning_run_id != entry.get("dunning_run")
        ):
            report.emails_not_here += 1
            continue
        marked = DocumentEmail.objects.filter(pk=email.pk).exclude(status=DocumentEmail.SENT)
        if marked.update(
            status=DocumentEmail.SENT,
            sent_at=datetime.fromisoformat(entry["at"]),
            next_attempt_at=None,
            last_error="",
        ):
            report.emails_marked += 1
        else:
            report.emails_were_sent += 1


def _alerts_mark_emailed(entries: list[dict], report: RestoreReport) -> None:
    sent = [e for e in entries if e["what"] == outbound_record.ALERT_EMAILED]
    alerts = Alert.objects.in_bulk([e["id"] for e in sent])
    for entry in sent:
        alert = alerts.get(entry["id"])
        if alert is None or (alert.customer_id, alert.key) != (entry["customer"], entry["key"]):
            report.alerts_not_here += 1
            continue
        marked = Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True)
        if marked.update(emailed_at=datetime.fromisoformat(entry["at"])):
            report.alerts_marked += 1
        else:
            report.alerts_were_emailed += 1


# Documents.


def _documents_restore(entries: list[dict], report: RestoreReport) -> None:
    stored = {
        (entry["kind"], entry["id"], entry["number"]): entry
        for entry in entries
        if entry["what"] == outbound_record.DOCUMENT_STORED
    }
    for model, kind in DOCUMENTS.items():
        numbered = model.objects.exclude(number=None).exclude(number="").order_by("pk")
        for document in numbered.filter(pdf_sha256=""):
            _adopt(document, stored.get((kind.folder, document.pk, document.number)), report)
        for document in numbered.exclude(pdf_sha256=""):
            if default_storage.exists(document.pdf_file.name):
                report.files_present += 1
            else:
                _render_again(document, report)


def _adopt(document, entry: dict | None, report: RestoreReport) -> None:
    """Give a document the PDF stored after the snapshot, when the file is there with
    the SHA-256 the record says."""
    if entry is None or not default_storage.exists(entry["file"]):
        return
    if _sha256(_read(entry["file"])) != entry["sha256"]:
        return
    with transaction.atomic():
        locked = DOCUMENTS[type(document)].lock(document.pk)
        if locked.pdf_sha256:
            return
        locked.pdf_file.name = entry["file"]
        locked.pdf_sha256 = entry["sha256"]
        locked.pdf_rendered_at = datetime.fromisoformat(entry["at"])
        locked.save(update_fields=["pdf_file", "pdf_sha256", "pdf_rendered_at"])
    report.adopted.append(document.number)


def _render_again(document, report: RestoreReport) -> None:
    """Render a document whose recorded file is missing: stored under its recorded
    name when byte-identical, else under the name of what it renders now."""
    content = DOCUMENTS[type(document)].render(document)
    sha256 = _sha256(content)
    if sha256 == document.pdf_sha256:
        pdf_file_store(document.pdf_file.name, content)
        report.rendered_identical.append(document.number)
        return
    with transaction.atomic():
        locked = DOCUMENTS[type(document)].lock(document.pk)
        name = pdf_file_store(pdf_storage_name(document=locked, sha256=sha256), content)
        locked.pdf_file.name = name
        locked.pdf_sha256 = sha256
        locked.save(update_fields=["pdf_file", "pdf_sha256"])
    report.rendered_different.append(document.number)


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return stored.read()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def number_ranges(numbers: Iterable[int]) -> str:
    """'3-5, 9' for 3, 4, 5, 9."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
