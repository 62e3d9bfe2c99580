"""The outbound record (common.outbound_record), written when a PDF is stored
and when an email is sent, and the restore step that reads it (manage.py
after_restore): a database put back to a snapshot taken before documents left
issues no number again, sends no email again, and has its missing files rendered
again byte-identical. Here the snapshot is made by hand: what happened after it
is taken out of the database (a row put back as it was, a sequence moved back)
while the documents folder keeps it. Time is set."""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection

from billing.models import Alert
from billing.notifications.alerts import alert_email_send
from common import outbound_record
from customers.models import Customer
from customers.services import customer_create
from invoices.after_restore import restore_reconcile
from invoices.models import DocumentEmail, Invoice, InvoiceSequence, ReceivedPayment
from invoices.payments_received import invoice_payment_record
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 3, tzinfo=UTC)
DEC_9 = datetime(2026, 12, 9, 8, tzinfo=UTC)
LINES = [LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("29.99"), D("29.99"))]
# What an invoice of issued() bills, as the record keeps it (a restore matches the
# period billed again by it).
BILLED = {
    "subscription": None,
    "reason": "period",
    "period_start": "2026-11-01T00:00:00+00:00",
    "period_end": "2026-12-01T00:00:00+00:00",
}


@pytest.fixture(autouse=True)
def _documents(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_EMAILS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def issued(owner, capture) -> Invoice:
    """Finalized at DEC_2; its PDF stored and its email sent on commit."""
    draft = invoice_write_draft(
        customer=owner,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=DEC_1,
        lines=LINES,
        now=DEC_1,
    )
    with time_machine.travel(DEC_2, tick=False), capture(execute=True):
        invoice_finalize(invoice=draft, now=DEC_2)
    return Invoice.objects.get(pk=draft.pk)


def customer(external_id: str):
    return customer_create(
        external_id=external_id,
        name=external_id.title(),
        currency="USD",
        email=f"billing@{external_id}.test",
    )


def content(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return stored.read()


def test_a_stored_pdf_and_a_sent_email_are_recorded_outside_the_database(
    django_capture_on_commit_callbacks, mailoutbox
):
    invoice = issued(customer("acme"), django_capture_on_commit_callbacks)

    email = DocumentEmail.objects.get()
    stored, emailed = outbound_record.record_read()
    assert stored == {
        "what": "document_stored",
        "at": DEC_2.isoformat(),
        "kind": "invoices",
        "id": invoice.pk,
        "number": "INV-2026-000001",
        "customer": invoice.customer_id,
        "file": invoice.pdf_file.name,
        "sha256": invoice.pdf_sha256,
        **BILLED,
    }
    assert emailed == {
        "what": "document_emailed",
        "at": DEC_2.isoformat(),
        "id": email.pk,
        "number": "INV-2026-000001",
        "customer": invoice.customer_id,
        "dunning_run": None,
        **BILLED,
    }
    assert len(mailoutbox) == 1


def test_a_line_cut_short_by_a_crash_is_skipped(settings):
    outbound_record.record_append(what="document_emailed", at=DEC_2, id=1, number="INV-2026-1")
    with outbound_record.record_path().open("a") as record:
        record.write('{"what": "document_emailed", "at": "2026-12')

    assert [entry["id"] for entry in outbound_record.record_read()] == [1]


def test_the_restore_step_skips_held_numbers_marks_sent_emails_and_renders_lost_files(
    django_capture_on_commit_callbacks, mailoutbox
):
    # given: two invoices issued, stored and emailed; then the database is put back
    # to a snapshot taken before the second's email was sent, before the first's
    # file was stored (lost from the documents folder), and before a third invoice,
    # which the record and the folder keep, was issued
    first = issued(customer("acme"), django_capture_on_commit_callbacks)
    second = issued(customer("globex"), django_capture_on_commit_callbacks)
    third = issued(customer("initech"), django_capture_on_commit_callbacks)
    first_bytes = content(first.pdf_file.name)
    default_storage.delete(first.pdf_file.name)
    DocumentEmail.objects.filter(invoice=second).update(
        status=DocumentEmail.PENDING, sent_at=None, attempts=0
    )
    Invoice.objects.filter(pk=second.pk).update(pdf_file="", pdf_sha256="", pdf_rendered_at=None)
    third_email = DocumentEmail.objects.get(invoice=third)
    DocumentEmail.objects.filter(invoice=third).delete()
    Invoice.objects.filter(pk=third.pk).delete()
    InvoiceSequence.objects.filter(name="INV-2026").update(next_number=3)
    sent_before = len(mailoutbox)

    # when
    out = StringIO()
    call_command("after_restore", stdout=out)

    # then: the file is back, byte for byte; the email is sent as the record says;
    # number 3 (held by initech, lost here) is never issued again
    assert content(first.pdf_file.name) == first_bytes
    assert hashlib.sha256(first_bytes).hexdigest() == first.pdf_sha256
    email = DocumentEmail.objects.get(invoice=second)
    assert (email.status, email.sent_at) == (DocumentEmail.SENT, DEC_2)
    # the second's PDF, stored after the snapshot, is its own again (not rendered)
    adopted = Invoice.objects.get(pk=second.pk)
    assert (adopted.pdf_file.name, adopted.pdf_sha256, adopted.pdf_rendered_at) == (
        second.pdf_file.name,
        second.pdf_sha256,
        DEC_2,
    )
    assert InvoiceSequence.objects.get(name="INV-2026").next_number == 4
    printed = out.getvalue()
    assert "1 missing and rendered again byte-identical" in printed
    assert "1 stored after the backup and given their file" in printed
    assert "INV-2026 next 3 -> 4: 1 number(s) skipped (3)" in printed
    held_by = Customer.objects.get(pk=third.customer_id).external_id
    assert f"INV-2026-000003 (customer {held_by}, emailed " in printed
    assert "emails: 1 marked sent (sent after the backup), 1 already sent here, 1 sent" in printed
    assert third_email.pk not in set(DocumentEmail.objects.values_list("pk", flat=True))
    *_, gap = outbound_record.record_read()
    assert (gap["what"], gap["sequence"], gap["first"], gap["last"]) == (
        "numbers_skipped",
        "INV-2026",
        3,
        3,
    )
    assert gap["held_by_customers"] == ["INV-2026-000003"]
    assert "sending: PAUSED since " in printed
    # the next invoice issued takes the number after every number customers hold;
    # its email waits while sending is paused, and is sent once when it resumes
    fourth = issued(customer("umbrella"), django_capture_on_commit_callbacks)
    assert fourth.number == "INV-2026-000004"
    assert len(mailoutbox) == sent_before
    resumed = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("after_restore", "--resume", stdout=resumed)
    assert len(mailoutbox) == sent_before + 1  # its own email, nothing sent again
    assert mailoutbox[-1].subject.startswith("Invoice INV-2026-000004 ")
    assert "held: 1 document e-mails, 0 alert e-mails" in resumed.getvalue()
    assert (
        "INV-2026-000003 -> not billed again yet: initech (Initech), 1 Nov – 30 Nov 2026 (UTC)"  # noqa: RUF001
        in resumed.getvalue()
    )

    # and run twice, it changes nothing (no second gap is recorded)
    again = StringIO()
    restore_reconcile(now=DEC_9)
    call_command("after_restore", stdout=again)
    assert InvoiceSequence.objects.get(name="INV-2026").next_number == 5
    assert "every sequence is already past" in again.getvalue()
    assert "0 missing" in again.getvalue()
    assert "emails: 0 marked sent" in again.getvalue()
    gaps = [e for e in outbound_record.record_read() if e["what"] == "numbers_skipped"]
    assert len(gaps) == 1


def test_a_lost_file_of_an_invoice_paid_since_is_stored_as_it_renders_now_and_said(
    django_capture_on_commit_callbacks,
):
    # given: the PDF was stored unpaid; the invoice was paid later; the file is lost
    invoice = issued(customer("acme"), django_capture_on_commit_callbacks)
    as_issued = (invoice.pdf_file.name, invoice.pdf_sha256)
    invoice_payment_record(
        invoice=invoice,
        amount=D("29.99"),
        received_at=DEC_9,
        method=ReceivedPayment.BANK_TRANSFER,
        reference="wire 1",
        now=DEC_9,
    )
    default_storage.delete(invoice.pdf_file.name)

    # when
    report = restore_reconcile(now=DEC_9)

    # then: it cannot be the bytes sent (it says PAID now): stored under a name of
    # its own, recorded, and said
    assert (report.rendered_identical, report.rendered_different) == ([], ["INV-2026-000001"])
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert (invoice.pdf_file.name, invoice.pdf_sha256) != as_issued
    stored = content(invoice.pdf_file.name)
    assert hashlib.sha256(stored).hexdigest() == invoice.pdf_sha256
    assert not default_storage.exists(as_issued[0])


def test_an_email_id_taken_again_by_another_document_is_not_marked(
    django_capture_on_commit_callbacks,
):
    # given: the record says email 1 of INV-2026-000009 was sent; here email 1 is
    # another document's, pending
    invoice = issued(customer("acme"), django_capture_on_commit_callbacks)
    email = DocumentEmail.objects.get()
    DocumentEmail.objects.filter(pk=email.pk).update(status=DocumentEmail.PENDING, sent_at=None)
    outbound_record.record_path().unlink()
    outbound_record.record_append(
        what="document_emailed", at=DEC_2, id=email.pk, number="INV-2026-000009", customer=1
    )

    report = restore_reconcile(now=DEC_9)

    assert (report.emails_marked, report.emails_not_here) == (0, 1)
    assert DocumentEmail.objects.get().status == DocumentEmail.PENDING
    assert invoice.number == "INV-2026-000001"


def test_an_alert_emailed_after_the_snapshot_is_marked_and_not_sent_again(mailoutbox):
    owner = customer("acme")
    alert = Alert.objects.create(
        customer=owner,
        kind=Alert.USAGE_THRESHOLD,
        period_start=DEC_1,
        key="prompts:80",
        payload={"meter": "prompts", "threshold": 80},
        created_at=DEC_2,
    )
    assert alert_email_send(alert=alert, now=DEC_2)
    Alert.objects.filter(pk=alert.pk).update(emailed_at=None)  # the snapshot's
    sent = len(mailoutbox)

    report = restore_reconcile(now=DEC_9)

    assert (report.alerts_marked, report.alerts_not_here) == (1, 0)
    assert Alert.objects.get(pk=alert.pk).emailed_at == DEC_2
    assert not alert_email_send(alert=Alert.objects.get(pk=alert.pk), now=DEC_9)
    assert len(mailoutbox) == sent


def next_id(model) -> int:
    """The id the table would give its next row (taking it, on PostgreSQL)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            return cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        return (row[0] if row else 0) + 1


def test_ids_the_record_names_are_not_given_to_other_rows(django_capture_on_commit_callbacks):
    # given: the record names an invoice and an email issued after the snapshot, their
    # ids above any this database gave (on PostgreSQL the sequences outlive each test's
    # rollback: earlier tests may have taken hundreds)
    invoice_id, email_id = next_id(Invoice) + 700, next_id(DocumentEmail) + 500
    outbound_record.record_append(
        what="document_stored",
        at=DEC_2,
        kind="invoices",
        id=invoice_id,
        number="INV-2026-000001",
        customer=1,
        file="invoices/INV-2026/INV-2026-000001-0123456789abcdef.pdf",
        sha256="0" * 64,
    )
    outbound_record.record_append(
        what="document_emailed", at=DEC_2, id=email_id, number="INV-2026-000001", customer=1
    )

    # when
    report = restore_reconcile(now=DEC_9)
    again = restore_reconcile(now=DEC_9)

    # then: the next invoice and its email take ids above them (so a Stripe key
    # invoice-<id>-... names one invoice); a second run moves nothing
    assert report.ids == [("invoices_invoice", invoice_id), ("invoices_documentemail", email_id)]
    assert again.ids == []
    invoice = issued(customer("acme"), django_capture_on_commit_callbacks)
    assert invoice.pk == invoice_id + 1
    assert invoice.number == "INV-2026-000002"
    assert DocumentEmail.objects.get().pk == email_id + 1
