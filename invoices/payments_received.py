"""Money received for an invoice, recorded by hand: a bank transfer, a cheque,
cash, a card charged outside Stripe, whole or in parts, on the day it arrived
(the API's POST /invoices/{id}/payments, the invoice's admin page). The rule
itself is invoices.settlement.payment_receive; this adds what a part changes of
a collection through Stripe (invoices.collection imports the settlement, so the
settlement cannot import it)."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from common.errors import Conflict, InvalidRequest
from invoices import collection
from invoices.models import Invoice, ReceivedPayment
from invoices.settlement import Receipt, payment_receive


def invoice_payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    received_at: datetime,
    method: str,
    reference: str,
    now: datetime,
    currency: str | None = None,
) -> Receipt:
    """Record `amount` received for the invoice at `received_at` by `method` (one
    a person records: ReceivedPayment.RECORDED_BY_HAND), as payment_receive
    does (its checks, its lock, its journal entry dated `received_at`). When
    something is still due after it, a Stripe payment waiting for its next
    attempt asks for what is left (collection_amount_changed); while one is
    under way at Stripe the payment is refused (Conflict) and nothing is
    recorded. One transaction."""
    if method not in ReceivedPayment.RECORDED_BY_HAND:
        raise InvalidRequest(
            f"method {method!r} is not one recorded by hand",
            fields={"method": [f"one of {', '.join(ReceivedPayment.RECORDED_BY_HAND)}"]},
        )
    with transaction.atomic():
        receipt = payment_receive(
            invoice=invoice,
            amount=amount,
            method=method,
            reference=reference,
            now=now,
            received_at=received_at,
            currency=currency,
        )
        if receipt.invoice.status != Invoice.PAID:
            try:
                collection.collection_amount_changed(invoice=receipt.invoice, now=now)
            except Conflict:
                raise Conflict(
                    f"a payment of invoice {invoice} is under way at Stripe; record this "
                    "payment once it settles",
                    fields={"stripe_payment": ["under way"]},
                ) from None
    return receipt
