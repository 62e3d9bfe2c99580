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
import logging
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from lxml import etree

from billing.notifications.outbound_pause import outbound_paused
from common.e_invoice_codes import PEPPOL_EAS, peppol_id_errors
from common.task_sending import enqueue_on_commit
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
# The Peppol envelope (Business Message Envelope: the SBDH an Oxalis or phase4
# outbox reads): its namespace and the schemes of the identifiers it carries.
SBDH = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOCUMENT_TYPE_SCHEME = "busdox-docid-qns"
PROCESS_SCHEME = "cenbii-procid-ubl"
NO_PEPPOL_ADDRESS = "for upload or e-mail: no Peppol address"
# What the folder's files suit (said in the sidecar, for whoever sets up the pickup).
FOLDER_SUITS = (
    "<number>.sbd.xml: the document in its Peppol SBDH envelope, as Oxalis(-standalone) "
    "and phase4 take an outbound message; <number>.xml with this sidecar: the bare UBL "
    "with its routing ids, for a file-drop service that reads the document itself "
    "(Storecove, ecosio and alike)"
)

logger = logging.getLogger(__name__)


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


def is_peppol_address(address: str) -> bool:
    """Whether "scheme:id" is a Peppol participant id an access point can route:
    its scheme on Peppol's EAS list (e_invoice_codes.PEPPOL_EAS, the one list), an
    identifier after it in that scheme's form, with its check digits where it has
    some (e_invoice_codes.peppol_id_errors, as a Peppol id is checked on save: a
    Leitweg-ID, which is saved on its own and addressed 0204:<Leitweg-ID>, too).
    An e-mail address (EM) is a valid BT-49 for XRechnung but routes on no network."""
    return not _unroutable(address)


def _unroutable(address: str) -> str:
    """'' when `address` is a Peppol address; else the address, and why when its
    scheme is Peppol's but its identifier is not that scheme's."""
    scheme, _colon, identifier = (address or "").partition(":")
    if scheme not in PEPPOL_EAS or not identifier.strip():
        return address or "none"
    errors = peppol_id_errors(address)
    return f"{address}: {'; '.join(errors)}" if errors else ""


def peppol_unreachable(sender: str, receiver: str) -> str:
    """'' when both parties have a Peppol address; else what the operator is told
    (the document is for upload or e-mail), naming the party without one."""
    missing = [
        f"{who} {unroutable}"
        for who, address in (("seller", sender), ("buyer", receiver))
        if (unroutable := _unroutable(address))
    ]
    return f"{NO_PEPPOL_ADDRESS} ({', '.join(missing)})" if missing else ""


# The seller's country (BT-40) in a UBL document.
SELLER_COUNTRY = (
    f"{{{CAC}}}AccountingSupplierParty/{{{CAC}}}Party/{{{CAC}}}PostalAddress/"
    f"{{{CAC}}}Country/{{{CBC}}}IdentificationCode"
)


def sbd(xml: bytes, *, sender: str, receiver: str, now: datetime) -> bytes:
    """The document in its Peppol envelope (a StandardBusinessDocument: its SBDH,
    then the UBL document as it was issued): the sender's and receiver's
    participant ids, the document type and process ids, the seller's country as
    the document says it (COUNTRY_C1). Its instance id is derived from the
    document's bytes, so the same document enveloped again is the same message to
    the access point."""
    kind = document_type(xml)
    document = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    country = (document.findtext(SELLER_COUNTRY) or "").strip()
    root = etree.Element(etree.QName(SBDH, "StandardBusinessDocument"), nsmap={None: SBDH})
    header = etree.SubElement(root, etree.QName(SBDH, "StandardBusinessDocumentHeader"))

    def add(parent, name: str, text: str | None = None, **attributes):
        element = etree.SubElement(parent, etree.QName(SBDH, name), **attributes)
        if text is not None:
            element.text = text
        return element

    add(header, "HeaderVersion", "1.0")
    for role, participant in (("Sender", sender), ("Receiver", receiver)):
        add(add(header, role), "Identifier", participant, Authority=PARTICIPANT_SCHEME)
    identification = add(header, "DocumentIdentification")
    add(identification, "Standard", etree.QName(document).namespace)
    add(identification, "TypeVersion", "2.1")
    instance = uuid.uuid5(uuid.NAMESPACE_URL, f"sha256:{hashlib.sha256(xml).hexdigest()}")
    add(identification, "InstanceIdentifier", str(instance))
    add(identification, "Type", kind["root"])
    moment = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    add(identification, "CreationDateAndTime", moment)
    scope = add(header, "BusinessScope")
    for scope_type, value, scheme in (
        ("DOCUMENTID", kind["document_type"], DOCUMENT_TYPE_SCHEME),
        ("PROCESSID", kind["process"], PROCESS_SCHEME),
        ("COUNTRY_C1", country, None),
    ):
        each = add(scope, "Scope")
        add(each, "Type", scope_type)
        add(each, "InstanceIdentifier", value)
        if scheme:
            add(each, "Identifier", scheme)
    root.append(document)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class FolderAccessPoint:
    """Writes, for an external access point to pick up, <folder>/<number>.json (the
    sidecar: sender, receiver, document type and process ids, their schemes, and
    which file suits which access point: FOLDER_SUITS), <number>.xml (the UBL
    document as issued) and <number>.sbd.xml (the same in its Peppol SBDH
    envelope). Each file appears whole: written under a temporary name in the same
    folder, synced, then renamed, in that order, so a file that appears has the
    ones before it. The same bytes sent again change nothing; different bytes
    under the same number raise OutboxConflict."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def send(self, *, number: str, xml: bytes, sender: str, receiver: str) -> str:
        if not number or Path(number).name != number or number.startswith("."):
            raise NotSendable(f"{number!r} cannot name a file")
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{number}.xml"
        digest = hashlib.sha256(xml).hexdigest()
        envelope = self.path / f"{number}.sbd.xml"
        if target.exists():
            if target.read_bytes() != xml:
                raise OutboxConflict(f"{target} holds another document")
            if not envelope.exists():  # the run that wrote the XML stopped before it
                enveloped = sbd(xml, sender=sender, receiver=receiver, now=timezone.now())
                self._write(envelope, enveloped)
            return digest
        sidecar = {
            "number": number,
            "sender": sender,
            "receiver": receiver,
            **document_type(xml),
            "participant_scheme": PARTICIPANT_SCHEME,
            "document_type_scheme": DOCUMENT_TYPE_SCHEME,
            "process_scheme": PROCESS_SCHEME,
            "envelope": envelope.name,
            "suits": FOLDER_SUITS,
        }
        self._write(self.path / f"{number}.json", json.dumps(sidecar, indent=2).encode())
        self._write(target, xml)
        self._write(envelope, sbd(xml, sender=sender, receiver=receiver, now=timezone.now()))
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
        if unreachable := peppol_unreachable(sender, receiver):
            # Not put in the Peppol folder: no access point could route it.
            logger.warning("%s %s not sent: %s", model, document.number, unreachable)
            return None
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
    # A document addressed by e-mail (EM) is for upload or e-mail: never sent here.
    by_email = {"e_invoice_xml__contains": 'schemeID="EM"'}
    invoices = Invoice.objects.filter(**unsent, finalized_at__range=(since, until))
    notes = CreditNote.objects.filter(**unsent, created_at__range=(since, until))
    invoices, notes = invoices.exclude(**by_email), notes.exclude(**by_email)
    invoice_ids = invoices.order_by("pk").values_list("pk", flat=True)
    note_ids = notes.order_by("pk").values_list("pk", flat=True)
    return [
        *(("invoice", pk) for pk in invoice_ids[:limit]),
        *(("creditnote", pk) for pk in note_ids[:limit]),
    ]
