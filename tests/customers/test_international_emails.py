"""Issue 76: invoices go to internationalized addresses (`経理@sakura.jp`, RFC
6531), which were refused as "not an email address": accepted as a customer's
email and invoice recipients (the API, the model), garbage still refused; and
sent: the test backend keeps the address as written, and the SMTP backend
(config.email_backend) speaks SMTPUTF8 to a server that offers it (a small one
here, on a local port), names the mailbox as written in the envelope and the
To header, and is refused by a server that does not offer it."""

import socketserver
import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.mail import EmailMessage, get_connection

from common.email_addresses import is_email_address
from customers.models import Customer
from customers.services import customer_create
from invoices.emails import document_email_send
from invoices.models import DocumentEmail
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import api_client, period_draft

JAPANESE = "経理@sakura.jp"

ACCEPTED = [
    JAPANESE,
    "josé.garcía@empresa.es",
    "buchhaltung@bücher.example",
    "müller@bücher.example",
    "billing@example.com",
    "a.b+tag@sub.example.co.uk",
]
REFUSED = [
    "経理",
    "経理@",
    "@sakura.jp",
    "経理@@sakura.jp",
    "経 理@sakura.jp",
    "経理.@sakura.jp",
    ".経理@sakura.jp",
    "経..理@sakura.jp",
    "経理@sakura",
    "経理@-sakura.jp",
    "経理@sakura..jp",
    "経\u200b理@sakura.jp",  # a zero-width space
    "経理\n@sakura.jp",
    "経理" * 30 + "@sakura.jp",  # a local part over 64 bytes
    "Keiri <経理@sakura.jp>",
    '"経理"@sakura.jp',
    "not an address",
    "",
    None,
]


@pytest.mark.parametrize("address", ACCEPTED)
def test_an_internationalized_address_is_an_email_address(address):
    assert is_email_address(address)


@pytest.mark.parametrize("address", REFUSED)
def test_garbage_is_still_refused(address):
    assert not is_email_address(address)


@pytest.mark.django_db
def test_the_api_takes_it_as_the_email_and_an_invoice_recipient_and_locale_ja():
    client = api_client()

    response = client.post(
        "/api/v1/customers",
        {
            "external_id": "sakura",
            "name": "株式会社サクラ",
            "currency": "JPY",
            "email": JAPANESE,
            "invoice_emails": [JAPANESE, "請求書@sakura.jp"],
            "locale": "ja",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(external_id="sakura")
    assert (customer.email, customer.invoice_emails, customer.locale) == (
        JAPANESE,
        [JAPANESE, "請求書@sakura.jp"],
        "ja",
    )
    customer.full_clean()


@pytest.mark.django_db
def test_the_api_still_refuses_garbage_and_changes_nothing():
    client = api_client()

    response = client.post(
        "/api/v1/customers",
        {
            "external_id": "sakura",
            "name": "Sakura",
            "currency": "JPY",
            "invoice_emails": ["経 理@sakura.jp"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "invoice_emails" in str(response.json())
    response = client.post(
        "/api/v1/customers",
        {"external_id": "sakura", "name": "Sakura", "currency": "JPY", "email": "経理@"},
        format="json",
    )
    assert response.status_code == 400
    assert "email" in str(response.json())
    assert not Customer.objects.exists()


# sending


class SmtpUtf8Server(socketserver.ThreadingTCPServer):
    """An SMTP server that keeps what it receives: (MAIL FROM, RCPT TOs, message)."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, *, smtputf8: bool):
        self.smtputf8 = smtputf8
        self.received: list[tuple[str, list[str], bytes]] = []
        super().__init__(("127.0.0.1", 0), SmtpHandler)


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        server = self.server
        sender, recipients = "", []
        self.reply("220 localhost ready")
        while line := self.rfile.readline():
            command = line.decode("utf-8").rstrip("\r\n")
            verb = command[:4].upper()
            if verb == "EHLO":
                extensions = ["250-localhost", "250-8BITMIME"]
                if server.smtputf8:
                    extensions.append("250-SMTPUTF8")
                for extension in [*extensions, "250 HELP"]:
                    self.reply(extension)
            elif verb == "MAIL":
                sender = command.split(":", 1)[1].split(">")[0].strip(" <")
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].split(">")[0].strip(" <"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                server.received.append((sender, recipients, data))
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp_server(request):
    server = SmtpUtf8Server(smtputf8=getattr(request, "param", True))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def connection(server):
    return get_connection(
        "config.email_backend.EmailBackend",
        host="127.0.0.1",
        port=server.server_address[1],
        timeout=5,
    )


def test_smtp_sends_to_the_mailbox_as_written_with_smtputf8(smtp_server):
    message = EmailMessage(
        subject="請求書 INV-2026-000001",
        body="請求書を添付いたします。",
        from_email="Example Billing <billing@example.com>",
        to=[JAPANESE],
        connection=connection(smtp_server),
    )

    assert message.send() == 1

    [(sender, recipients, data)] = smtp_server.received
    assert (sender, recipients) == ("billing@example.com", [JAPANESE])
    headers = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    assert f"To: {JAPANESE}" in headers.splitlines()


def test_smtp_sends_an_ascii_email_as_django_does(smtp_server):
    message = EmailMessage(
        subject="Invoice",
        body="Attached.",
        from_email="billing@example.com",
        to=["ap@bücher.example"],
        connection=connection(smtp_server),
    )

    assert message.send() == 1

    [(_sender, recipients, _data)] = smtp_server.received
    assert recipients == ["ap@xn--bcher-kva.example"]


@pytest.mark.parametrize("smtp_server", [False], indirect=True)
def test_a_server_without_smtputf8_refuses_it(smtp_server):
    import smtplib

    message = EmailMessage(subject="x", body="y", from_email="billing@example.com", to=[JAPANESE])
    message.connection = connection(smtp_server)

    with pytest.raises(smtplib.SMTPNotSupportedError):
        message.send()
    assert smtp_server.received == []


@pytest.mark.django_db
def test_an_invoice_email_to_it_is_sent(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_EMAILS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    customer = customer_create(
        external_id="sakura",
        name="株式会社サクラ",
        currency="JPY",
        invoice_emails=[JAPANESE],
        locale="ja",
    )
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    lines = [LineInput("base_fee", "Pro", None, D(1), D(1000), D(1000))]
    invoice = invoice_finalize(invoice=period_draft(customer, lines), now=now)

    email = DocumentEmail.objects.get(invoice=invoice)
    sent = document_email_send(email=email, now=now)

    assert sent.status == DocumentEmail.SENT
    [message] = mail.outbox
    assert message.to == [JAPANESE]
    assert message.subject.endswith(f"からの請求書 {invoice.number}")
