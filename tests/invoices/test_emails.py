"""Invoices and credit notes emailed to the customer on issue (invoices.emails):
to its invoice_emails (else its email), the PDF attached, once per document,
retried while the mail server fails, in the customer's language, in the admin."""

import re
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from pypdf import PdfReader

from customers.portal_links import portal_email_url
from customers.services import customer_create
from invoices import emails, tasks
from invoices.models import DocumentEmail, Invoice
from invoices.services import invoice_finalize, invoice_void, invoice_write_draft
from plans.rating import LineInput
from tests.beat import scheduled

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
# 03:00 UTC: due 30 days later, on Jan 1 03:00 UTC, which is Dec 31 in Seattle.
DEC_2 = datetime(2026, 12, 2, 3, tzinfo=UTC)
LINES = [LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("29.99"), D("29.99"))]
SUBJECT = "Invoice INV-2026-000001 from Usage Billing Inc."

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _emails_on(settings):
    settings.BILLING_INVOICE_EMAILS = True
    settings.BILLING_INVOICE_FROM_EMAIL = "invoices@seller.test"
    settings.BILLING_INVOICE_EMAIL_RETRY_MINUTES = [1, 5]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BILLING_PUBLIC_URL = "https://billing.seller.test"


def customer(**details):
    fields = {
        "external_id": "acme",
        "name": "Acme Inc",
        "currency": "USD",
        "email": "billing@acme.test",
        "timezone_name": "America/Los_Angeles",
        "invoice_emails": ["ap@acme.test", "cfo@acme.test"],
    } | details
    return customer_create(**fields)


def draft(owner) -> Invoice:
    return invoice_write_draft(
        customer=owner,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=DEC_1,
        lines=LINES,
        now=DEC_1,
    )


def finalize(invoice: Invoice, capture, *, execute: bool = True) -> Invoice:
    """Finalized at DEC_2, with what its commit enqueues run (or, `execute` off,
    lost, as by a broker that was down)."""
    with time_machine.travel(DEC_2, tick=False), capture(execute=execute):
        invoice_finalize(invoice=invoice, now=DEC_2)
    return Invoice.objects.get(pk=invoice.pk)


def run_at(at: datetime, capture, task, *args):
    """A worker's task at `at`, with what it enqueues on commit."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return task.delay(*args)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def closed_port() -> int:
    """A port on this host where nothing listens (a mail server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_finalizing_emails_the_pdf_to_the_invoice_addresses(
    django_capture_on_commit_callbacks, mailoutbox
):
    # given
    invoice = draft(customer())

    # when
    invoice = finalize(invoice, django_capture_on_commit_callbacks)

    # then: one email, to the invoice addresses (not the customer's own email)
    (message,) = mailoutbox
    with time_machine.travel(DEC_2, tick=False):  # the token is signed with its time
        portal = portal_email_url(customer=invoice.customer, now=DEC_2)
    assert message.to == ["ap@acme.test", "cfo@acme.test"]
    assert message.subject == SUBJECT
    assert message.from_email == "invoices@seller.test"
    assert message.reply_to == ["billing@example.com"]
    assert message.body == (
        "Hello Acme Inc,\n"
        "\n"
        "Please find attached invoice INV-2026-000001.\n"
        # November in UTC: from 31 Oct, 17:00 to 30 Nov, 16:00 in Los Angeles
        "Period: 31 Oct \N{EN DASH} 29 Nov 2026 (America/Los_Angeles)\n"
        "Amount due: 29.99\N{NO-BREAK SPACE}USD\n"
        "Due date: 31 Dec 2026 (America/Los_Angeles)\n"
        "\n"
        "Your invoices and credit notes can also be downloaded from your billing portal:\n"
        f"{portal}\n"
        "\n"
        "Kind regards,\n"
        "Usage Billing Inc.\n"
    )
    assert portal.startswith("https://billing.seller.test/portal/")
    # the PDF as stored when it was issued
    ((filename, content, mimetype),) = message.attachments
    assert (filename, mimetype) == ("INV-2026-000001.pdf", "application/pdf")
    with invoice.pdf_file.open("rb") as stored:
        assert content == stored.read()
    assert "INV-2026-000001" in pdf_text(content)
    email = DocumentEmail.objects.get()
    assert (email.invoice_id, email.credit_note_id, email.status) == (invoice.pk, None, "sent")
    assert (email.attempts, email.sent_at, email.next_attempt_at) == (1, DEC_2, None)
    assert (email.recipients, email.subject, email.last_error) == (
        ["ap@acme.test", "cfo@acme.test"],
        SUBJECT,
        "",
    )


def test_without_invoice_addresses_the_customers_email_gets_it(
    django_capture_on_commit_callbacks, mailoutbox
):
    invoice = finalize(draft(customer(invoice_emails=[])), django_capture_on_commit_callbacks)

    assert [(m.to, m.subject) for m in mailoutbox] == [(["billing@acme.test"], SUBJECT)]
    assert DocumentEmail.objects.get().invoice_id == invoice.pk


def test_a_customer_without_any_address_gets_nothing_and_nothing_is_recorded(
    django_capture_on_commit_callbacks, mailoutbox
):
    finalize(draft(customer(invoice_emails=[], email="")), django_capture_on_commit_callbacks)

    assert mailoutbox == []
    assert not DocumentEmail.objects.exists()


def test_nothing_is_emailed_when_invoice_emails_are_off(
    settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.BILLING_INVOICE_EMAILS = False

    finalize(draft(customer()), django_capture_on_commit_callbacks)

    assert mailoutbox == []
    assert not DocumentEmail.objects.exists()


def test_a_french_customer_gets_it_in_french(django_capture_on_commit_callbacks, mailoutbox):
    # given: a French customer billed in euros
    owner = customer(locale="fr", currency="EUR", timezone_name="America/Los_Angeles")

    finalize(draft(owner), django_capture_on_commit_callbacks)

    (message,) = mailoutbox
    assert message.subject == "Facture INV-2026-000001 de Usage Billing Inc."
    assert message.body.startswith("Bonjour ")
    assert "Veuillez trouver ci-joint la facture INV-2026-000001." in message.body
    # the amount and the dates as the invoice's PDF writes them, in the customer's zone
    assert "29,99\N{NO-BREAK SPACE}EUR" in message.body
    assert "Période : 31 oct. \N{EN DASH} 29 nov. 2026 (America/Los_Angeles)" in message.body
    assert "31 déc. 2026 (America/Los_Angeles)" in message.body


PORTAL_LINE = re.compile(r"^https://billing\.seller\.test(/portal/[^/\s]+/)$", re.MULTILINE)


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", "Your invoices and credit notes can also be downloaded from your billing portal:"),
        (
            "fr",
            "Vos factures et avoirs peuvent aussi être téléchargés depuis votre portail de "
            "facturation :",
        ),
        (
            "de",
            "Ihre Rechnungen und Gutschriften können Sie auch in Ihrem Abrechnungsportal "
            "herunterladen:",
        ),
    ],
)
def test_the_email_links_to_the_customers_portal_for_45_days(
    client, django_capture_on_commit_callbacks, mailoutbox, locale, words
):
    # given: an invoice emailed on 2 Dec
    invoice = finalize(draft(customer(locale=locale)), django_capture_on_commit_callbacks)
    (message,) = mailoutbox

    # then: the sentence, and the customer's signed portal link on the next line
    assert f"{words}\nhttps://billing.seller.test/portal/" in message.body
    (path,) = PORTAL_LINE.findall(message.body)
    # it opens this customer's portal, 44 days later still; on the 45th it is gone
    with time_machine.travel(DEC_2 + timedelta(days=44), tick=False):
        page = client.get(path)
    assert page.status_code == 200
    assert invoice.number in page.content.decode()
    assert page.context["customer"].pk == invoice.customer_id
    with time_machine.travel(DEC_2 + timedelta(days=45), tick=False):
        assert client.get(path).status_code == 410


def test_scheduling_twice_sends_once(django_capture_on_commit_callbacks, mailoutbox):
    invoice = finalize(draft(customer()), django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = emails.document_email_schedule(invoice=invoice, now=DEC_2 + timedelta(hours=1))

    assert callbacks == []
    assert again == DocumentEmail.objects.get()
    # the task delivered twice (at least once) sends nothing more
    run_at(
        DEC_2 + timedelta(hours=1),
        django_capture_on_commit_callbacks,
        tasks.send_document_email,
        again.pk,
    )
    assert len(mailoutbox) == 1
    assert DocumentEmail.objects.get().attempts == 1


def test_the_beat_sends_an_email_whose_enqueue_was_lost(
    django_capture_on_commit_callbacks, mailoutbox
):
    # given: the broker was down when the invoice was finalized
    finalize(draft(customer()), django_capture_on_commit_callbacks, execute=False)
    email = DocumentEmail.objects.get()
    assert (email.status, email.attempts) == ("pending", 0)

    # within the grace the beat leaves it to the task enqueued for it
    soon = DEC_2 + emails.SWEEP_GRACE - timedelta(seconds=1)
    assert (
        run_at(soon, django_capture_on_commit_callbacks, tasks.send_due_document_emails).get() == 0
    )
    assert mailoutbox == []

    later = DEC_2 + emails.SWEEP_GRACE
    assert (
        run_at(later, django_capture_on_commit_callbacks, tasks.send_due_document_emails).get() == 1
    )
    assert [m.subject for m in mailoutbox] == [SUBJECT]
    # and once sent, never again
    assert (
        run_at(later, django_capture_on_commit_callbacks, tasks.send_due_document_emails).get() == 0
    )
    assert len(mailoutbox) == 1


def test_a_failed_email_is_a_row_the_beat_sends_once_when_due(
    settings, django_capture_on_commit_callbacks, mailoutbox, delayed_sends
):
    # given: the mail server is down at the first attempt; the policy waits 30 minutes
    settings.BILLING_INVOICE_EMAIL_RETRY_MINUTES = [30]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port()
    settings.EMAIL_TIMEOUT = 2

    # when: finalized (the first attempt fails)
    finalize(draft(customer()), django_capture_on_commit_callbacks)

    # then: the retry is the email's row, due in 30 minutes, and nothing waits in the
    # broker for it
    email = DocumentEmail.objects.get()
    due = DEC_2 + timedelta(minutes=30)
    assert (email.status, email.attempts, email.next_attempt_at) == ("pending", 1, due)
    assert delayed_sends == []

    # the mail server is back; the beat's sweep (every minute) sends nothing before
    # the email is due, then sends it once
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sweep = tasks.send_due_document_emails
    capture = django_capture_on_commit_callbacks
    assert run_at(due - timedelta(seconds=1), capture, sweep).get() == 0
    assert mailoutbox == []
    assert run_at(due, capture, sweep).get() == 1
    assert run_at(due, capture, sweep).get() == 0
    assert run_at(due + timedelta(days=1), capture, sweep).get() == 0
    assert [m.subject for m in mailoutbox] == [SUBJECT]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 2)
    assert delayed_sends == []


def test_a_mail_server_that_is_down_is_tried_again_then_the_email_is_failed(
    settings, django_capture_on_commit_callbacks, mailoutbox, admin_client
):
    # given: SMTP to a port where nothing listens; two retries, after 1 and 5 minutes
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port()
    settings.EMAIL_TIMEOUT = 2

    # when: finalized (the first attempt)
    finalize(draft(customer()), django_capture_on_commit_callbacks)

    # then: it failed and waits a minute
    email = DocumentEmail.objects.get()
    assert (email.status, email.attempts, email.next_attempt_at) == (
        "pending",
        1,
        DEC_2 + timedelta(minutes=1),
    )
    assert email.last_error.startswith("ConnectionRefusedError")

    # not before it is due: the task (delivered twice) makes no attempt
    send = tasks.send_document_email
    run_at(DEC_2 + timedelta(seconds=59), django_capture_on_commit_callbacks, send, email.pk)
    email.refresh_from_db()
    assert email.attempts == 1

    second = DEC_2 + timedelta(minutes=1)
    run_at(second, django_capture_on_commit_callbacks, send, email.pk)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == (
        "pending",
        2,
        second + timedelta(minutes=5),
    )

    third = second + timedelta(minutes=5)
    run_at(third, django_capture_on_commit_callbacks, send, email.pk)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == ("failed", 3, None)
    assert email.last_error.startswith("ConnectionRefusedError")
    assert mailoutbox == []
    # and nothing more is attempted, by the task or the beat
    run_at(third + timedelta(days=1), django_capture_on_commit_callbacks, send, email.pk)
    beat = tasks.send_due_document_emails
    assert run_at(third + timedelta(days=1), django_capture_on_commit_callbacks, beat).get() == 0
    email.refresh_from_db()
    assert email.attempts == 3

    # shown in the admin, with its error
    listing = admin_client.get("/admin/invoices/documentemail/?status__exact=failed")
    assert listing.status_code == 200
    assert "ConnectionRefusedError" in listing.text
    assert "ap@acme.test, cfo@acme.test" in listing.text
    page = admin_client.get(f"/admin/invoices/invoice/{email.invoice_id}/change/")
    assert page.status_code == 200
    assert "ConnectionRefusedError" in page.text

    # "Send again" once the mail server is back
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BILLING_PUBLIC_URL = "https://billing.seller.test"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/invoices/documentemail/",
            {"action": "send_again", "_selected_action": [email.pk]},
        )
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 4, "")
    assert [m.to for m in mailoutbox] == [["ap@acme.test", "cfo@acme.test"]]


def test_send_again_refuses_an_email_that_did_not_fail(
    django_capture_on_commit_callbacks, mailoutbox
):
    finalize(draft(customer()), django_capture_on_commit_callbacks)
    email = DocumentEmail.objects.get()

    assert emails.document_email_send_again(email=email, now=DEC_2) is False

    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
    assert len(mailoutbox) == 1


def test_a_voided_invoices_credit_note_is_emailed_with_its_pdf(
    django_capture_on_commit_callbacks, mailoutbox
):
    invoice = finalize(draft(customer()), django_capture_on_commit_callbacks)

    with time_machine.travel(DEC_2, tick=False), django_capture_on_commit_callbacks(execute=True):
        note = invoice_void(invoice=invoice, reason="", now=DEC_2)

    message = mailoutbox[-1]
    assert message.to == ["ap@acme.test", "cfo@acme.test"]
    assert message.subject == f"Credit note {note.number} from Usage Billing Inc."
    assert f"Please find attached credit note {note.number} for invoice INV-2026-000001." in (
        message.body
    )
    assert "Amount credited: 29.99\N{NO-BREAK SPACE}USD" in message.body
    ((filename, content, mimetype),) = message.attachments
    assert (filename, mimetype) == ("CN-2026-000001.pdf", "application/pdf")
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)
    assert "CN-2026-000001" in text and "INV-2026-000001" in text
    sent = DocumentEmail.objects.get(credit_note=note)
    assert (sent.status, sent.invoice_id) == ("sent", None)


def test_an_email_is_for_one_document():
    with pytest.raises(ValueError):
        emails.document_email_schedule(now=DEC_2)


def test_setup_periodic_tasks_schedules_the_email_safety_net(db):
    assert scheduled("Send invoice and credit note emails left pending") == (
        "invoices.tasks.send_due_document_emails",
        1,
        "minutes",
    )
