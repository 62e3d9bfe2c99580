"""Invoices and credit notes emailed to their customers, the PDF attached (services),
and beside it an XML e-invoice (XRechnung, Peppol BIS; a Factur-X is the PDF).

- When a document is issued, document_email_schedule writes its DocumentEmail row
  in the issuing transaction (one per document: a unique constraint) and a worker
  sends it once that commits (tasks.send_document_email).
- Sent to the customer's `invoice_emails`, or to its `email` when it lists none;
  a customer with neither gets no email and no row.
- An attempt is claimed under the row's lock and committed before the mail server
  is called (no network call inside a transaction): two workers never send it at
  once, and one that died mid-attempt leaves a claim that runs out (SEND_LEASE),
  after which the beat (tasks.send_due_document_emails) sends it again.
- A mail server that refuses or cannot be reached (SMTPException is an OSError)
  is tried again after each wait of BILLING_INVOICE_EMAIL_RETRY_MINUTES, then the
  email is recorded failed; the admin's "Send again" makes one more attempt. A
  retry is the row's next_attempt_at, which the beat's sweep (every minute) sends
  when due: never a task waiting in the broker.
- Subject and body are in the customer's locale (gettext), amounts and dates
  formatted for it, dates in its time zone.

BILLING_INVOICE_EMAILS off: nothing is scheduled (emails already scheduled are
still sent)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from billing.notifications.outbound_pause import outbound_paused
from common import outbound_record
from common.metrics import EMAIL_FAILED, EMAIL_RETRYING, EMAIL_SENT
from common.task_sending import enqueue_on_commit
from customers.billing_entities import seller_from_email
from customers.portal_links import portal_email_url
from invoices import render_claims, rendering
from invoices.e_invoice_delivery import e_invoice_xml_file
from invoices.locks import document_email_lock
from invoices.models import CreditNote, DocumentEmail, Invoice
from invoices.reminders import reminder_body, reminder_subject
from invoices.sellers import credit_note_seller, invoice_seller

logger = logging.getLogger(__name__)

# How long an attempt may take before the beat makes it again.
SEND_LEASE = timedelta(minutes=10)
# The beat leaves an email not yet attempted this long to the task enqueued for it;
# a retry has no task and is swept once due.
SWEEP_GRACE = timedelta(minutes=2)


def document_recipients(customer) -> list[str]:
    """Where the customer's invoices and credit notes go: its invoice_emails, else
    its email, else nowhere."""
    listed = [address for address in (customer.invoice_emails or []) if address]
    if listed:
        return listed
    return [customer.email] if customer.email else []


def document_email_schedule(
    *,
    invoice: Invoice | None = None,
    credit_note: CreditNote | None = None,
    now: datetime,
) -> DocumentEmail | None:
    """Have the issued invoice or credit note (one of the two) emailed to its
    customer once the caller's transaction commits. Idempotent: a document has
    one email (a unique constraint), so scheduling it again returns that one and
    sends nothing more. None when BILLING_INVOICE_EMAILS is off or the customer
    has no address. Runs in the caller's transaction (the credit-note API calls
    it in the one that issues the note)."""
    if (invoice is None) == (credit_note is None):
        raise ValueError("an email is for one invoice or one credit note")
    if not settings.BILLING_INVOICE_EMAILS:
        return None
    document = invoice if invoice is not None else credit_note
    recipients = document_recipients(document.customer)
    if not recipients:
        return None
    email, created = DocumentEmail.objects.get_or_create(
        invoice=invoice,
        credit_note=credit_note,
        dunning_run=None,
        defaults={
            "recipients": recipients,
            "subject": document_email_subject(document),
            "created_at": now,
        },
    )
    if created:
        send_after_commit(email.pk)
    return email


def reminder_email_schedule(*, run, now: datetime) -> DocumentEmail | None:
    """Have a dunning step's reminder (`run`, a DunningRun) emailed with its invoice
    attached, once the caller's transaction commits: one email per run. None when
    BILLING_INVOICE_EMAILS is off or the customer has no address."""
    if not settings.BILLING_INVOICE_EMAILS:
        return None
    invoice = run.invoice
    recipients = document_recipients(invoice.customer)
    if not recipients:
        return None
    email, created = DocumentEmail.objects.get_or_create(
        dunning_run=run,
        defaults={
            "invoice": invoice,
            "recipients": recipients,
            "subject": reminder_subject(invoice, overdue=run.days_after_due > 0),
            "created_at": now,
        },
    )
    if created:
        send_after_commit(email.pk)
    return email


def send_after_commit(email_id: int, *, countdown: float = 0) -> None:
    # A broker that is down must not undo the commit (robust); the beat
    # (send_due_document_emails) finds the email pending.
    enqueue_on_commit("invoices.tasks.send_document_email", email_id, countdown=countdown)


def _seller(document: Invoice | CreditNote) -> dict:
    """The seller the document carries (invoices.sellers): its name signs the
    email, its addresses send it and take the replies."""
    if isinstance(document, CreditNote):
        return credit_note_seller(document)
    return invoice_seller(document)


def document_email_subject(document: Invoice | CreditNote) -> str:
    """The subject, in the language the document is written in."""
    invoice = document.invoice if isinstance(document, CreditNote) else document
    with invoice.text.speaking():
        if isinstance(document, CreditNote):
            return _("Credit note %(number)s from %(seller)s") % {
                "number": document.number,
                "seller": _seller(document)["name"],
            }
        return _("Invoice %(number)s from %(seller)s") % {
            "number": document.number,
            "seller": _seller(document)["name"],
        }


def document_email_body(document: Invoice | CreditNote, *, now: datetime) -> str:
    """The text of the email, written as its document is (Invoice.text: the
    customer's language and time zone as invoiced, the zone named): the same
    days as its PDF, whatever the customer changed since; with a signed link to
    the customer's portal made at `now` (customers.portal.portal_email_url)."""
    invoice = document.invoice if isinstance(document, CreditNote) else document
    write = invoice.text
    with write.speaking():
        lines = [_("Hello %(name)s,") % {"name": document.customer.name}, ""]
        if isinstance(document, CreditNote):
            lines.append(
                _("Please find attached credit note %(number)s for invoice %(invoice)s.")
                % {"number": document.number, "invoice": invoice.number}
            )
            lines.append(
                _("Amount credited: %(amount)s") % {"amount": write.money_text(document.total)}
            )
        else:
            lines.append(
                _("Please find attached invoice %(number)s.") % {"number": document.number}
            )
            lines.append(
                _("Period: %(dates)s") % {"dates": write.named(invoice.document_dates(write))}
            )
            due = document.amount_due
            if due > 0:
                lines.append(_("Amount due: %(amount)s") % {"amount": write.money_text(due)})
                if document.due_at is not None:
                    lines.append(
                        _("Due date: %(date)s (%(time_zone)s)")
                        % {"date": write.day(document.due_at), "time_zone": write.zone}
                    )
            else:
                lines.append(_("Nothing is left to pay on this invoice."))
        lines += [
            "",
            _("Your invoices and credit notes can also be downloaded from your billing portal:"),
            portal_email_url(customer=document.customer, now=now),
            "",
            _("Kind regards,"),
            _seller(document)["name"],
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Attachment:
    content: bytes
    filename: str


def _attachment(email: DocumentEmail, now: datetime, claimant: str) -> Attachment:
    """The document's PDF as stored (rendered and stored now, under the render's
    claim, if its render has not run yet: the render task then finds it stored).
    PdfRendering while the render task renders it: never a second render beside it."""
    if email.credit_note_id is not None:
        document = rendering.credit_note_pdf(
            credit_note=email.credit_note, now=now, claimant=claimant
        )
    else:
        document = rendering.invoice_pdf(invoice=email.invoice, now=now, claimant=claimant)
    return Attachment(document.content, document.filename)


def _message(email: DocumentEmail, attachment: Attachment, now: datetime) -> EmailMessage:
    seller = _seller(email.document)
    reply_to = seller.get("email")
    if email.dunning_run_id is not None:
        overdue = email.dunning_run.days_after_due > 0
        body = reminder_body(email.invoice, overdue=overdue, now=now)
    else:
        body = document_email_body(email.document, now=now)
    message = EmailMessage(
        subject=email.subject,
        body=body,
        from_email=seller_from_email(
            sender_email=seller.get("sender_email") or "",
            contact_email=reply_to or "",
            configured=settings.BILLING_INVOICE_FROM_EMAIL,
        ),
        to=email.recipients,
        reply_to=[reply_to] if reply_to else None,
    )
    message.attach(attachment.filename, attachment.content, "application/pdf")
    # An XML e-invoice (XRechnung, Peppol BIS) travels beside the PDF with the
    # document's own email, not with its reminders; a Factur-X one is the PDF.
    e_invoice = e_invoice_xml_file(email.document) if email.dunning_run_id is None else None
    if e_invoice is not None:
        message.attach(e_invoice.filename, e_invoice.content, "application/xml")
    return message


def retry_delays() -> list[timedelta]:
    return [timedelta(minutes=m) for m in settings.BILLING_INVOICE_EMAIL_RETRY_MINUTES]


def policy_attempts() -> int:
    """Attempts an email gets: the first, then one per retry delay."""
    return 1 + len(settings.BILLING_INVOICE_EMAIL_RETRY_MINUTES)


def _claim(email_id: int, now: datetime) -> DocumentEmail | None:
    with transaction.atomic():
        email = document_email_lock(email_id)
        if email.status != DocumentEmail.PENDING:
            return None
        if email.next_attempt_at is not None and email.next_attempt_at > now:
            return None
        email.attempts += 1
        email.next_attempt_at = now + SEND_LEASE
        email.save(update_fields=["attempts", "next_attempt_at"])
        return email


def _record(claimed: DocumentEmail, outcome, **fields) -> DocumentEmail:
    """Record an attempt's outcome, and count it in the metrics (`outcome`, one of
    common.metrics' EMAIL_*), unless the attempt was taken over meanwhile (its
    lease ran out and another worker claimed it: that one records and counts)."""
    recorded = DocumentEmail.objects.filter(
        pk=claimed.pk, status=DocumentEmail.PENDING, attempts=claimed.attempts
    ).update(**fields)
    if recorded and outcome is not None:
        outcome.inc()
    return DocumentEmail.objects.get(pk=claimed.pk)


def document_email_send(
    *, email: DocumentEmail, now: datetime, claimant: str = ""
) -> DocumentEmail | None:
    """Make the email's next attempt if one is due at `now`, and record how it
    went: sent; pending again, for the next attempt after the policy's wait, when
    the mail server failed; failed when the attempts are spent, or for a document
    whose PDF renders were given up (render_claims.PdfRenderFailed). While its PDF
    is being rendered, the email waits for it (pending, next_attempt_at a few
    seconds on, the attempt not counted, a task sent for then): it attaches the
    stored PDF, and renders one itself (as `claimant`, the task's id) only when no
    render is under way. A retry after a failure is only its next_attempt_at, which
    the beat's sweep (document_emails_due) sends.

    Safe to run twice and from several workers at once: the attempt is claimed
    under the row lock, so one makes it; a sent or failed email is not sent again.
    While sending is paused after a restore (billing.notifications.outbound_pause)
    nothing is due: the email is left pending as it is, its attempts untouched.
    Returns the email after the attempt, or None when nothing was due."""
    if outbound_paused():
        return None
    claimed = _claim(email.pk, now)
    if claimed is None:
        return None
    try:
        attachment = _attachment(claimed, now, claimant)
    except render_claims.PdfRendering as rendering_now:
        wait = rendering_now.retry_after
        after = now + timedelta(seconds=wait)
        waiting = _record(claimed, None, attempts=claimed.attempts - 1, next_attempt_at=after)
        # Seconds (render_claims.ASK_AGAIN at most), well within the broker's bound.
        send_after_commit(claimed.pk, countdown=wait)
        return waiting
    except render_claims.PdfRenderFailed as failed:
        return _failed_for_pdf(claimed, failed.message)
    except SoftTimeLimitExceeded:
        # This task rendered the PDF and ran out of time: the render is given up.
        return _failed_for_pdf(claimed, "the PDF's render took longer than its time limit")
    try:
        _message(claimed, attachment, now).send()
    except OSError as error:
        return _failed_attempt(claimed, error=f"{type(error).__name__}: {error}", now=now)
    except Exception as error:
        # Not the mail server: the claim stays and runs out, then the beat makes
        # the attempt again. Shown in the admin meanwhile.
        DocumentEmail.objects.filter(pk=claimed.pk).update(
            last_error=f"{type(error).__name__}: {error}"[:2000]
        )
        raise
    # Sent: said outside the database before it is recorded in it, so that a
    # database restored from before now does not send it again (after_restore).
    outbound_record.record_append(
        what=outbound_record.DOCUMENT_EMAILED,
        at=now,
        id=claimed.pk,
        number=claimed.document.number,
        customer=claimed.document.customer_id,
        dunning_run=claimed.dunning_run_id,
        **rendering.document_billed(claimed.document),
    )
    return _record(
        claimed,
        EMAIL_SENT,
        status=DocumentEmail.SENT,
        sent_at=now,
        next_attempt_at=None,
        last_error="",
    )


def _failed_for_pdf(claimed: DocumentEmail, why: str) -> DocumentEmail:
    return _record(
        claimed,
        EMAIL_FAILED,
        status=DocumentEmail.FAILED,
        next_attempt_at=None,
        last_error=why[:2000],
    )


def _failed_attempt(claimed: DocumentEmail, *, error: str, now: datetime) -> DocumentEmail:
    logger.warning(
        "email %s of %s (attempt %s of %s) failed: %s",
        claimed.pk,
        claimed.document,
        claimed.attempts,
        policy_attempts(),
        error,
    )
    if claimed.attempts < policy_attempts():
        delays = retry_delays()
        delay = delays[min(claimed.attempts, len(delays)) - 1]
        return _record(
            claimed, EMAIL_RETRYING, next_attempt_at=now + delay, last_error=error[:2000]
        )
    return _record(
        claimed,
        EMAIL_FAILED,
        status=DocumentEmail.FAILED,
        next_attempt_at=None,
        last_error=error[:2000],
    )


def document_email_send_again(*, email: DocumentEmail, now: datetime) -> bool:
    """One more attempt at a failed email, to the customer's addresses as they
    are now (corrected since, perhaps), once the caller's transaction commits.
    False for an email that has not failed, or a customer left without an
    address (nothing changes)."""
    with transaction.atomic():
        locked = document_email_lock(email.pk)
        if locked.status != DocumentEmail.FAILED:
            return False
        recipients = document_recipients(locked.document.customer)
        if not recipients:
            return False
        locked.status = DocumentEmail.PENDING
        locked.recipients = recipients
        locked.next_attempt_at = None
        locked.save(update_fields=["status", "recipients", "next_attempt_at"])
        send_after_commit(locked.pk)
    return True


def document_emails_due(*, now: datetime) -> list[int]:
    """Pending emails whose attempt is due at `now`, which the beat sends to the
    workers: a retry, and an attempt whose lease ran out (its worker died), once
    next_attempt_at has come; one a task was sent for (when it was written or sent
    again from the admin: no next_attempt_at; while it waited for its PDF, not yet
    attempted) only SWEEP_GRACE after that, when the broker lost it. Never one whose
    attempt is under way (its lease runs). Sending one twice sends it once
    (document_email_send claims it under the row lock). None while sending is
    paused after a restore."""
    if outbound_paused():
        return []
    before = now - SWEEP_GRACE
    retried = Q(attempts__gt=0, next_attempt_at__lte=now)
    sent = Q(attempts=0, next_attempt_at__lte=before)
    sent_at_once = Q(next_attempt_at__isnull=True, created_at__lte=before)
    return list(
        DocumentEmail.objects.filter(status=DocumentEmail.PENDING)
        .filter(retried | sent | sent_at_once)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
