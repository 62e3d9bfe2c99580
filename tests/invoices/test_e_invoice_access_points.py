"""Issued UBL e-invoices go to the Peppol access point (invoices.e_invoices.
access_points): the folder writes exactly the XML, whole, once; the task sends a
document once and records when; a Factur-X document, or none set, sends nothing."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from config.celery import DEFAULT_QUEUE
from customers.models import Customer
from customers.services import customer_create
from invoices import tasks
from invoices.e_invoices.access_points import (
    FakeAccessPoint,
    FolderAccessPoint,
    OutboxConflict,
    e_invoices_unsent,
)
from invoices.e_invoices.ubl import document_ubl
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import period_draft
from tests.invoices import test_s36_e_invoices as s36
from tests.invoices.test_e_invoice_documents import belgian_reverse_charge
from tests.workers import celery_worker, tasks_on_the_broker, worker_broker, workers_wait

DEC_2 = datetime(2026, 12, 2, 9, tzinfo=UTC)
XML = document_ubl(belgian_reverse_charge())
SENDER, RECEIVER = "0009:30326504500011", "0208:0123456749"


@pytest.fixture(autouse=True)
def _nothing_sent_before():
    FakeAccessPoint.sent.clear()
    yield
    FakeAccessPoint.sent.clear()


@pytest.fixture
def quiet(settings):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    return settings


def issued(profile: str = "peppol", *, xml: bytes = XML, external_id: str = "be-1") -> Invoice:
    """A finalized invoice issued as an e-invoice in `profile` (as finalization
    writes one: invoices.services._e_invoice_issue)."""
    customer = customer_create(external_id=external_id, name="Société Belge SA", currency="EUR")
    line = LineInput("base_fee", "Base", None, D(1), D("250.00"), D("250.00"))
    invoice = invoice_finalize(invoice=period_draft(customer, [line]), now=DEC_2)
    Invoice.objects.filter(pk=invoice.pk).update(
        e_invoice_format=profile, e_invoice_xml=xml.decode("utf-8")
    )
    return Invoice.objects.get(pk=invoice.pk)


# The folder adapter


def test_the_folder_writes_exactly_the_xml_and_its_sidecar(tmp_path):
    outbox = FolderAccessPoint(tmp_path / "outbox")

    message_id = outbox.send(number="INV-2026-000002", xml=XML, sender=SENDER, receiver=RECEIVER)

    assert (tmp_path / "outbox" / "INV-2026-000002.xml").read_bytes() == XML
    sidecar = json.loads((tmp_path / "outbox" / "INV-2026-000002.json").read_text())
    assert {key: sidecar[key] for key in list(sidecar)[:6]} == {
        "number": "INV-2026-000002",
        "sender": SENDER,
        "receiver": RECEIVER,
        "root": "Invoice",
        "document_type": (
            "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
            "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
        ),
        "process": "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0",
    }
    # no temporary file left behind
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [
        "INV-2026-000002.json",
        "INV-2026-000002.sbd.xml",
        "INV-2026-000002.xml",
    ]
    assert len(message_id) == 64


def test_the_same_document_sent_again_is_one_file(tmp_path):
    outbox = FolderAccessPoint(tmp_path)
    first = outbox.send(number="INV-1", xml=XML, sender=SENDER, receiver=RECEIVER)
    written = (tmp_path / "INV-1.xml").stat().st_mtime_ns

    again = outbox.send(number="INV-1", xml=XML, sender=SENDER, receiver=RECEIVER)

    assert again == first
    assert (tmp_path / "INV-1.xml").stat().st_mtime_ns == written
    assert (tmp_path / "INV-1.xml").read_bytes() == XML


def test_another_document_under_the_same_number_is_refused_and_nothing_changes(tmp_path):
    outbox = FolderAccessPoint(tmp_path)
    outbox.send(number="INV-1", xml=XML, sender=SENDER, receiver=RECEIVER)
    other = XML.replace(b"250.00", b"260.00")

    with pytest.raises(OutboxConflict, match=r"INV-1\.xml holds another document"):
        outbox.send(number="INV-1", xml=other, sender=SENDER, receiver=RECEIVER)

    assert (tmp_path / "INV-1.xml").read_bytes() == XML
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "INV-1.json",
        "INV-1.sbd.xml",
        "INV-1.xml",
    ]


def test_the_fake_keeps_what_it_was_sent():
    assert FakeAccessPoint().send(number="N-1", xml=b"<a/>", sender="s:1", receiver="r:2") == (
        "fake-1"
    )
    assert FakeAccessPoint.sent == [
        {"number": "N-1", "xml": b"<a/>", "sender": "s:1", "receiver": "r:2"}
    ]


# The task


@pytest.mark.django_db
def test_the_task_sends_once_and_records_when(quiet):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "fake"
    invoice = issued()

    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() == "fake-1"
    sent_at = Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at
    # run again (a broker delivers at least once): nothing more is sent
    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() is None

    assert sent_at is not None
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at == sent_at
    assert FakeAccessPoint.sent == [
        {"number": invoice.number, "xml": XML, "sender": SENDER, "receiver": RECEIVER}
    ]


@pytest.mark.django_db
def test_the_task_writes_the_invoice_into_the_folder(quiet, tmp_path):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "folder"
    quiet.BILLING_PEPPOL_FOLDER = tmp_path
    invoice = issued("xrechnung")

    tasks.e_invoice_send.delay("invoice", invoice.pk).get()

    assert (tmp_path / f"{invoice.number}.xml").read_bytes() == XML
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is not None


@pytest.mark.django_db
def test_a_folder_that_cannot_be_written_fails_the_task_for_a_retry(quiet, tmp_path):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "folder"
    (tmp_path / "a-file").write_text("not a folder")
    quiet.BILLING_PEPPOL_FOLDER = tmp_path / "a-file" / "outbox"
    invoice = issued()

    result = tasks.e_invoice_send.apply(args=("invoice", invoice.pk))

    # OSError is what the task retries (autoretry_for); eagerly the retry raises it
    assert isinstance(result.result, OSError)
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is None


@pytest.mark.django_db
def test_a_factur_x_document_is_not_sent(quiet):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "fake"
    invoice = issued("facturx")

    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() is None

    assert FakeAccessPoint.sent == []
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is None


@pytest.mark.django_db
def test_without_an_access_point_nothing_is_sent(quiet):
    quiet.BILLING_PEPPOL_ACCESS_POINT = ""
    invoice = issued()

    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() is None
    assert tasks.send_unsent_e_invoices.delay().get() == 0

    assert FakeAccessPoint.sent == []
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is None


@pytest.mark.django_db
def test_a_credit_note_is_sent_as_an_invoice_is(quiet):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "fake"
    invoice = issued()
    note = CreditNote.objects.create(
        number="CN-2026-000001",
        created_at=DEC_2,
        invoice=invoice,
        customer=invoice.customer,
        currency="EUR",
        reason=CreditNote.REASONS[0][0],
        subtotal=D(10),
        tax=D(0),
        total=D(10),
        e_invoice_format="peppol",
        e_invoice_xml=XML.decode("utf-8"),
    )

    assert tasks.e_invoice_send.delay("creditnote", note.pk).get() == "fake-1"

    assert [sent["number"] for sent in FakeAccessPoint.sent] == ["CN-2026-000001"]
    assert CreditNote.objects.get(pk=note.pk).e_invoice_sent_at is not None


# Enqueued when the invoice is finalized


@pytest.mark.django_db
def test_finalizing_an_e_invoiced_draft_sends_it_after_commit(
    quiet, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a French seller e-invoicing a Belgian company by Peppol BIS 3 (S36's)
    quiet.BILLING_PEPPOL_ACCESS_POINT = "fake"
    s36.sellers()
    s36.customers()
    customer = Customer.objects.get(external_id="bruxelles")
    line = LineInput("base_fee", "Base", None, D(1), D("250.00"), D("250.00"))
    draft = period_draft(customer, [line])

    # when
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=draft, now=DEC_2)
        assert FakeAccessPoint.sent == []  # not before it commits

    # then
    assert invoice.e_invoice_format == "peppol"
    assert [sent["number"] for sent in FakeAccessPoint.sent] == [invoice.number]
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is not None


# The beat's sweep


@pytest.mark.django_db
def test_the_sweep_sends_what_was_left_unsent_after_a_few_minutes(quiet, time_machine):
    quiet.BILLING_PEPPOL_ACCESS_POINT = "fake"
    time_machine.move_to(DEC_2, tick=False)
    invoice = issued()
    Invoice.objects.filter(pk=invoice.pk).update(finalized_at=DEC_2)

    time_machine.move_to(DEC_2 + timedelta(minutes=4), tick=False)
    assert e_invoices_unsent(now=DEC_2 + timedelta(minutes=4)) == []
    time_machine.move_to(DEC_2 + timedelta(minutes=6), tick=False)
    assert tasks.send_unsent_e_invoices.delay().get() == 1
    assert tasks.send_unsent_e_invoices.delay().get() == 0

    assert [sent["number"] for sent in FakeAccessPoint.sent] == [invoice.number]


# A real worker


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_writes_the_invoice_into_the_folder(tmp_path, quiet):
    worker_broker()
    invoice = issued()
    env = {"BILLING_PEPPOL_ACCESS_POINT": "folder", "BILLING_PEPPOL_FOLDER": str(tmp_path)}
    with tasks_on_the_broker(), celery_worker(DEFAULT_QUEUE, name="peppol", env=env) as worker:
        workers_wait(worker)
        tasks.e_invoice_send.delay("invoice", invoice.pk)
        target = tmp_path / f"{invoice.number}.xml"
        for _ in range(150):
            invoice.refresh_from_db()
            if invoice.e_invoice_sent_at is not None:
                break
            time.sleep(0.2)

    assert invoice.e_invoice_sent_at is not None
    assert target.read_bytes() == XML
