"""Peppol access points: who takes an issued UBL e-invoice (XRechnung, Peppol BIS
3) to its receiver. A Factur-X document travels as its PDF and is not sent here.

The access point is chosen by settings.BILLING_PEPPOL_ACCESS_POINT: "" sends
nothing (the documents stay unsent, e_invoice_sent_at null), "folder" writes each
document into BILLING_PEPPOL_FOLDER for an external access point (an Oxalis or
phase4 outbox) to pick up, "fake" keeps them in memory (tests).

A document is sent after its issue commits (e_invoice_send_on_commit, the task
invoices.tasks.e_invoice_send), and by the beat's sweep when that enqueue was lost
(e_invoices_unsent). Sending is idempotent: a document whose e_invoice_sent_at is
set is not sent again, and the folder takes the same bytes twice as one file."""

import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, Protocol

from django.conf import settings
from django.db import transaction
from lxml import etree

from billing.notifications.outbound_pause import outbound_paused
from config.celery import enqueue_on_commit
from customers.e_invoice_details import XRECHNUNG
from invoices.e_invoices.ubl import CBC, PEPPOL_PROFILE
from invoices.models import CreditNote, Invoice

# The formats an access point carries (UBL); Factur-X is a PDF for the customer.
SENT_FORMATS = frozenset({XRECHNUNG, "peppol"})
# The documents the task sends, by the name it is given.
MODELS = {"invoice": Invoice, "creditnote": CreditNote}
# How long after its issue an unsent document is the sweep's (its own task runs
# first), and how far back the sweep looks (an older one is an operator's).
SWEEP_AFTER = timedelta(minutes=5)
SWEEP_WITHIN = timedelta(days=2)
SWEEP_BATCH = 500

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"


class AccessPoint(Protocol):
    def send(self, *, number: str, xml: bytes, sender: str, receiver: str) -> str:
        """Hand the document over; its message id. Sending the same document
        again is harmless. Raises OSError when it may succeed later."""
        ...


class OutboxConflict(Exception):
    """Another document is already in the outbox under this number: nothing is
    written (not an OSError: trying again cannot help)."""


class NotSendable(Exception):
    """The document cannot be sent as it is (no endpoint, an unsafe number)."""


def document_type(xml: bytes) -> dict:
    """The Peppol document type of a UBL document: its root, customization and profile."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    qname = etree.QName(root)
    customization = root.findtext(f"{{{CBC}}}CustomizationID") or ""
    return {
        "root": qname.localname,
        "document_type": f"{qname.namespace}::{qname.localname}##{customization}::2.1",
        "process": root.findtext(f"{{{CBC}}}ProfileID") or PEPPOL_PROFILE,
    }


def endpoints(xml: bytes) -> tuple[str, str]:
    """The seller's and the buyer's electronic addresses (BT-34, BT-49) as
    "scheme:id", read off the document as it was issued."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    found = []
    for party in ("AccountingSupplierParty", "AccountingCustomerParty"):
        endpoint = root.find(f"{{{CAC}}}{party}/{{{CAC}}}Party/{{{CBC}}}EndpointID")
        if endpoint is None or not (endpoint.text or "").strip():
            raise NotSendable(f"the document has no {party} EndpointID")
        found.append(f"{endpoint.get('schemeID', '')}:{endpoint.text.strip()}")
    return found[0], found[1]


class FolderAccessPoint:
    """Writes <folder>/<number>.xml (and <number>.json: sender, receiver, document
    type) for an external access point to pick up. Each file appears whole: written
    under a temporary name in the same folder, synced, then renamed. The sidecar is
    written first, so an XML that appears has its sidecar. The same bytes sent
    again change nothing; different bytes under the same number raise OutboxConflict."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def send(self, *, number: str, xml: bytes, sender: str, receiver: str) -> str:
        if not number or Path(number).name != number or number.startswith("."):
            raise NotSendable(f"{number!r} cannot name a file")
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{number}.xml"
        digest = hashlib.sha256(xml).hexdigest()
        if target.exists():
            if target.read_bytes() != xml:
                raise OutboxConflict(f"{target} holds another document")
            return digest
        sidecar = {"number": number, "sender": sender, "receiver": receiver, **document_type(xml)}
        self._write(self.path / f"{number}.json", json.dumps(sidecar, indent=2).encode())
        self._write(target, xml)
        return digest

    def _write(self, target: Path, content: bytes) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.path, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)


class FakeAccessPoint:
    """Keeps what it is sent in `sent` (shared by every instance: tests read it)."""

    sent: ClassVar[list[dict]] = []

    def send(self, *, number: str, xml: bytes, sender: str, receiver: str) -> str:
        self.sent.append({"number": number, "xml": xml, "sender": sender, "receiver": receiver})
        return f"fake-{len(self.sent)}"


def access_point() -> AccessPoint | None:
    """The access point the settings choose; None when nothing is sent."""
    chosen = settings.BILLING_PEPPOL_ACCESS_POINT
    if chosen == "folder":
        return FolderAccessPoint(settings.BILLING_PEPPOL_FOLDER)
    if chosen == "fake":
        return FakeAccessPoint()
    return None


def e_invoice_send_on_commit(model: str, pk: int, profile: str) -> None:
    """Send the document once its issue commits, when its format goes through an
    access point and one is set."""
    if profile in SENT_FORMATS and access_point() is not None:
        enqueue_on_commit("invoices.tasks.e_invoice_send", model, pk)


def e_invoice_send(*, model: str, pk: int, now: datetime) -> str | None:
    """Send an issued document's e-invoice to the access point and record when it
    took it. Under the document's row lock, so two runs at once send it once; a
    document already sent, not found, not sent by an access point, or with none
    set, is left as it is (None), and so is every document while sending is paused
    after a restore (billing.notifications.outbound_pause). Returns the access
    point's message id."""
    point = access_point()
    if point is None or outbound_paused():
        return None
    with transaction.atomic():
        document = MODELS[model].objects.select_for_update().filter(pk=pk).first()
        if (
            document is None
            or document.e_invoice_sent_at is not None
            or document.e_invoice_format not in SENT_FORMATS
            or not document.e_invoice_xml
            or not document.number
        ):
            return None
        xml = document.e_invoice_xml.encode("utf-8")
        sender, receiver = endpoints(xml)
        message_id = point.send(number=document.number, xml=xml, sender=sender, receiver=receiver)
        document.e_invoice_sent_at = now
        document.save(update_fields=["e_invoice_sent_at"])
    return message_id


def e_invoices_unsent(*, now: datetime) -> list[tuple[str, int]]:
    """The issued UBL documents no access point took, issued between SWEEP_WITHIN
    and SWEEP_AFTER ago (the beat sends them again); none when no access point is
    set, or while sending is paused after a restore."""
    if outbound_paused():
        return []
    return e_invoices_not_sent(since=now - SWEEP_WITHIN, until=now - SWEEP_AFTER)


def e_invoices_not_sent(
    *, since: datetime, until: datetime, limit: int | None = SWEEP_BATCH
) -> list[tuple[str, int]]:
    """The issued UBL documents no access point took, issued between `since` and
    `until`, as (model, id), at most `limit` of each model (None: all); none when
    no access point is set."""
    if access_point() is None:
        return []
    unsent = {"e_invoice_format__in": SENT_FORMATS, "e_invoice_sent_at": None}
    invoices = Invoice.objects.filter(**unsent, finalized_at__range=(since, until))
    notes = CreditNote.objects.filter(**unsent, created_at__range=(since, until))
    invoice_ids = invoices.order_by("pk").values_list("pk", flat=True)
    note_ids = notes.order_by("pk").values_list("pk", flat=True)
    return [
        *(("invoice", pk) for pk in invoice_ids[:limit]),
        *(("creditnote", pk) for pk in note_ids[:limit]),
    ]
