"""Invoices paid: by hand, with a reference, or by a payment that succeeded
(invoices.collection); always announced as `invoice.paid`."""

from datetime import datetime

from django.db import transaction

from billing.core.errors import Conflict, InvalidRequest
from billing.core.money import format_money
from billing.models import INVOICE_PAID
from billing.notifications import webhooks
from invoices.journal_entries import journal_invoice_paid
from invoices.locks import invoice_lock
from invoices.models import Invoice
from invoices.standing import standing_refresh_on_commit

# An uncollectible invoice can still be paid: by a retry of its Stripe payment,
# or by money that arrives after collecting was given up.
PAYABLE = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE)


def payment_date_check(*, invoice: Invoice, paid_at: datetime, now: datetime) -> None:
    """Refuse (InvalidRequest on `paid_at`) a payment dated in the future or before
    its invoice was issued: its receivable would be credited before it was
    debited, or in a month to come. No tolerance beyond `now`: a date given is
    when money arrived, which has happened; "now" is given by giving none, and a
    few minutes' grace at a month's end would date a payment in the next month."""
    if paid_at > now:
        raise InvalidRequest(
            f"paid_at ({paid_at.isoformat()}) is in the future (now: {now.isoformat()})",
            fields={"paid_at": ["in the future"]},
        )
    issued = invoice.finalized_at
    if issued is not None and paid_at < issued:
        raise InvalidRequest(
            f"paid_at ({paid_at.isoformat()}) is before invoice {invoice} was issued "
            f"({issued.isoformat()})",
            fields={"paid_at": ["before the invoice was issued"]},
        )


def invoice_mark_paid(
    *, invoice: Invoice, reference: str, now: datetime, paid_at: datetime | None = None
) -> Invoice:
    """Record the invoice paid, with what identifies the payment (`reference`).
    Every way an invoice is paid comes here: by hand in the admin, a Stripe
    payment that succeeded (invoices.collection), a purchase paid before it was
    invoiced (invoice_create_purchase), a bank transfer recorded through the API
    (`paid_at`: when the money arrived; default `now`). A `paid_at` given is
    checked (payment_date_check): not in the future, not before the issue. A
    payment without one is dated `now` (Stripe's included: dated when we learn
    of it, never at the time its event carries).

    Under the invoice's row lock, a finalized or uncollectible invoice only;
    any other is refused with Conflict and nothing changes, so paying twice
    records and announces the first payment only. In the same transaction the
    event `invoice.paid` is queued for the webhook endpoints that take it, sent
    after commit; its id names the invoice, so it is queued once per endpoint."""
    with transaction.atomic():
        invoice = invoice_lock(invoice.pk)
        if invoice.status not in PAYABLE:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be paid"
            )
        if paid_at is not None:
            payment_date_check(invoice=invoice, paid_at=paid_at, now=now)
        due = invoice.amount_due
        invoice.status = Invoice.PAID
        invoice.paid_at = paid_at or now
        invoice.payment_reference = reference
        invoice.save(update_fields=["status", "paid_at", "payment_reference"])
        journal_invoice_paid(
            invoice=invoice, amount=due, reference=reference, paid_at=invoice.paid_at, now=now
        )
        webhooks.webhook_event_publish(
            event_type=INVOICE_PAID,
            data={
                "invoice": invoice.pk,
                "number": invoice.number,
                "total": format_money(invoice.total, invoice.currency),
                "currency": invoice.currency,
                "payment_reference": reference,
            },
            customer=invoice.customer,
            now=now,
            event_id=f"evt_invoice_{invoice.pk}_paid",
        )
        # Back to good standing at once when nothing else is past due.
        standing_refresh_on_commit(customer_id=invoice.customer_id, now=now)
    return invoice
