"""SMTP that reaches internationalized addresses too (the default EMAIL_BACKEND
when not in DEBUG).

Django's SMTP backend writes a non-ASCII local part as an RFC 2047 encoded word
(`=?utf-8?b?57WM55CG?=@sakura.jp`), in the envelope and in the To header: a
mailbox nobody has. An email to or from such an address (`経理@sakura.jp`,
accepted by common.email_addresses) is sent here with SMTPUTF8 (RFC 6531):
the addresses as they are written, the domain IDNA-encoded, the headers in
UTF-8. A server that does not offer SMTPUTF8 refuses it (SMTPNotSupportedError,
an SMTPException: the invoice email is tried again, then recorded failed, with
that reason). Every other email is sent exactly as Django sends it."""

import email.message
import email.policy
import smtplib
from email.generator import BytesGenerator
from email.utils import parseaddr
from io import BytesIO

from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend
from django.utils.encoding import punycode

SMTPUTF8_OPTIONS = ["SMTPUTF8", "BODY=8BITMIME"]
# The headers that name addresses, and the message's addresses each holds.
ADDRESS_HEADERS = {"To": "to", "Cc": "cc", "Reply-To": "reply_to"}


def addr_spec(address: str) -> str:
    """The address of 'Name <local@domain>' or 'local@domain'."""
    return parseaddr(address)[1] or address


def is_international(address: str) -> bool:
    """An address whose local part is not ASCII (an IDN domain alone is
    IDNA-encoded by Django, and needs no SMTPUTF8)."""
    local, _, _domain = addr_spec(address).rpartition("@")
    return not local.isascii()


def envelope_address(address: str) -> str:
    """An address as the SMTP envelope names it under SMTPUTF8: its local part
    as written, its domain IDNA-encoded."""
    local, _, domain = addr_spec(address).rpartition("@")
    return f"{local}@{punycode(domain)}"


def smtputf8_bytes(email_message) -> bytes:
    """The message with its address headers as written (UTF-8), CRLF lines."""
    message = email_message.message()
    for header, attribute in ADDRESS_HEADERS.items():
        addresses = getattr(email_message, attribute)
        if addresses:
            del message[header]
            # Past Django's header check, which would encode the local part.
            email.message.Message.__setitem__(message, header, ", ".join(addresses))
    if is_international(email_message.from_email):
        del message["From"]
        email.message.Message.__setitem__(message, "From", email_message.from_email)
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=email.policy.SMTPUTF8).flatten(message)
    return out.getvalue()


class EmailBackend(DjangoSmtpBackend):
    def _send(self, email_message):
        addresses = [email_message.from_email, *email_message.recipients()]
        if not any(is_international(address) for address in addresses):
            return super()._send(email_message)
        try:
            self.connection.sendmail(
                envelope_address(email_message.from_email),
                [envelope_address(address) for address in email_message.recipients()],
                smtputf8_bytes(email_message),
                mail_options=SMTPUTF8_OPTIONS,
            )
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
