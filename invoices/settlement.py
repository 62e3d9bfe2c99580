"""Invoices paid: money received for them, by hand (with a reference and the day
it arrived, whole or in parts) or by a payment that succeeded
(invoices.collection); an invoice whose last part is received is announced as
`invoice.paid`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.models import INVOICE_PAID
from billing.notifications import webhooks
from common.errors import Conflict, InvalidRequest
from common.money import format_money, has_minor_unit_precision
from invoices.journal_entries import journal_invoice_paid
from invoices.locks import invoice_lock
from invoices.models import Invoice, ReceivedPayment
from invoices.standing import standing_refresh_on_commit

# An uncollectible invoice can still be paid: by a retry of its Stripe payment,
# or by money that arrives after collecting was given up.
PAYABLE = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE)


def payment_date_check(
    *, invoice: Invoice, paid_at: datetime, now: datetime, field: str = "paid_at"
) -> None:
    """Refuse (InvalidRequest on `field`) a payment dated in the future or before
    its invoice was issued: its receivable would be credited before it was
    debited, or in a month to come. No tolerance beyond `now`: a date given is
    when money arrived, which has happened; "now" is given by giving none, and a
    few minutes' grace at a month's end would date a payment in the next month."""
    if paid_at > now:
        raise InvalidRequest(
            f"{field} ({paid_at.isoformat()}) is in the future (now: {now.isoformat()})",
            fields={field: ["in the future"]},
        )
    issued = invoice.finalized_at
    if issued is not None and paid_at < issued:
        raise InvalidRequest(
            f"{field} ({paid_at.isoformat()}) is before invoice {invoice} was issued "
            f"({issued.isoformat()})",
            fields={field: ["before the invoice was issued"]},
        )


def payment_amount_check(*, invoice: Invoice, amount: Decimal, currency: str | None) -> None:
    """Refuse (InvalidRequest) an amount no payment can be of, whatever is due: in
    another currency than the invoice's, not a finite number above zero, or finer
    than the currency's minor unit (0.001 USD)."""
    if currency is not None and currency != invoice.currency:
        raise InvalidRequest(
            f"the payment is in {currency}; invoice {invoice} is in {invoice.currency}",
            fields={"currency": [f"not the invoice's currency ({invoice.currency})"]},
        )
    if not amount.is_finite() or amount <= 0:
        raise InvalidRequest(
            f"amount ({amount}) must be a number above zero",
            fields={"amount": ["must be above zero"]},
        )
    if not has_minor_unit_precision(amount, invoice.currency):
        raise InvalidRequest(
            f"amount ({amount}) has more decimals than {invoice.currency} has",
            fields={"amount": [f"more decimals than {invoice.currency} has"]},
        )


@dataclass(frozen=True)
class Receipt:
    """What payment_receive did: the invoice as it is now, and the payment it
    recorded (None: nothing was left to pay, as on an invoice its customer's
    credit balance paid whole)."""

    invoice: Invoice
    payment: ReceivedPayment | None


def payment_receive(
    *,
    invoice: Invoice,
    amount: Decimal | None,
    method: str,
    reference: str,
    now: datetime,
    received_at: datetime | None = None,
    currency: str | None = None,
) -> Receipt:
    """Record money received for the invoice: `amount` (None: the whole amount
    due), received at `received_at` (None: `now`; one given is checked by
    payment_date_check). Every way an invoice is paid comes here: by hand (the
    API's /payments and /pay, the admin's page and Mark paid), a Stripe payment
    that succeeded (invoices.collection), a purchase paid before it was invoiced.

    Under the invoice's row lock: a finalized or uncollectible invoice only (any
    other is refused with Conflict, so paying twice records the first payment
    only), an amount as payment_amount_check takes and at most the amount due
    (more: Conflict, the amount due named), so two payments at once never take
    more than is due; a refusal records nothing. The payment is a ReceivedPayment
    row, added to the invoice's amount_paid, and journaled at its received_at
    (journal_invoice_paid). The payment that leaves nothing due makes the
    invoice paid, at its received_at with its reference, and queues the event
    `invoice.paid` for the webhook endpoints that take it (sent after commit; its
    id names the invoice, so it is queued once per endpoint). The customer's
    standing is looked at again after commit."""
    with transaction.atomic():
        invoice = invoice_lock(invoice.pk)
        if invoice.status not in PAYABLE:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be paid",
                fields={"invoice": [f"is {invoice.status}"]},
            )
        if amount is not None:
            payment_amount_check(invoice=invoice, amount=amount, currency=currency)
        if received_at is not None:
            field = "paid_at" if amount is None else "received_at"
            payment_date_check(invoice=invoice, paid_at=received_at, now=now, field=field)
        due = invoice.amount_due
        if amount is not None and amount > due:
            raise Conflict(
                f"amount ({format_money(amount, invoice.currency)} {invoice.currency}) is more "
                f"than is due on invoice {invoice} "
                f"({format_money(due, invoice.currency)} {invoice.currency})",
                fields={
                    "amount": [f"more than the amount due ({format_money(due, invoice.currency)})"]
                },
            )
        amount = due if amount is None else amount
        received_at = received_at or now
        completes = amount == due
        payment = None
        if amount > 0:
            payment = ReceivedPayment.objects.create(
                invoice=invoice,
                amount=amount,
                currency=invoice.currency,
                method=method,
                reference=reference,
                received_at=received_at,
                recorded_at=now,
                completed_invoice=completes,
            )
            invoice.amount_paid += amount
            invoice.save(update_fields=["amount_paid"])
            journal_invoice_paid(
                invoice=invoice,
                amount=amount,
                reference=reference,
                paid_at=received_at,
                now=now,
                part=None if completes else payment.pk,
            )
        if completes:
            _invoice_paid(invoice, reference=reference, paid_at=received_at, now=now)
        # Back to good standing at once when nothing else is past due.
        standing_refresh_on_commit(customer_id=invoice.customer_id, now=now)
    return Receipt(invoice, payment)


def _invoice_paid(invoice: Invoice, *, reference: str, paid_at: datetime, now: datetime) -> None:
    """Nothing is left to pay: the invoice is paid, and `invoice.paid` queued."""
    invoice.status = Invoice.PAID
    invoice.paid_at = paid_at
    invoice.payment_reference = reference
    invoice.save(update_fields=["status", "paid_at", "payment_reference"])
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


def invoice_mark_paid(
    *,
    invoice: Invoice,
    reference: str,
    now: datetime,
    paid_at: datetime | None = None,
    method: str = ReceivedPayment.OTHER,
) -> Invoice:
    """Record the invoice paid: what is left due received whole, at `paid_at`
    (default `now`; Stripe's payments are dated when we learn of them, never at
    the time their event carries), with what identifies the payment
    (`reference`). payment_receive with no amount; returns the invoice paid."""
    return payment_receive(
        invoice=invoice,
        amount=None,
        method=method,
        reference=reference,
        now=now,
        received_at=paid_at,
    ).invoice
