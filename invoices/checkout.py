"""Purchases paid through Stripe: a purchase of credits or money grants nothing
until it is paid, through a Stripe Checkout link, or by charging the saved
payment method off-session (a purchase "charged at once", an auto top-up)."""

from datetime import datetime
from decimal import Decimal

import stripe
from django.db import transaction

from common.errors import Conflict
from common.money import to_minor_units
from customers.models import Customer

# invoices.services imports this module too (an invoice finalized is collected
# here, an invoice paid here is recorded there); each uses the other's functions
# only when called, so either may be imported first.
from invoices import stripe_client
from invoices.collection import (
    PaymentFailed,
    attempt_after_commit,
    payment_close,
    payment_save,
    policy_attempts,
    purchase_description,
)
from invoices.locks import invoice_lock, payment_lock
from invoices.models import Payment, Purchase
from invoices.standing import OWED
from invoices.stripe_customers import stripe_customer_ensure
from plans.taxes import customer_tax_rates, tax_lines


def purchase_create(
    *,
    customer: Customer,
    kind: str,
    channel: str,
    amount: Decimal,
    pack=None,
    credits: Decimal | None = None,
    applies_to: list[str] | None = None,
    now: datetime,
) -> Purchase:
    """Record a pending purchase and its payment, in the caller's transaction.
    An off-session one (charged at once, or an auto top-up) is attempted by a
    worker once the transaction commits; a Checkout one waits for
    purchase_checkout_open. Only an auto top-up is tried again after a failure."""
    # Tax at the customer's rates now, collected with the price.
    rates = customer_tax_rates(customer)
    tax = sum(
        (
            line.amount
            for line in tax_lines(rates=rates, taxable=amount, currency=customer.currency)
        ),
        Decimal(0),
    )
    purchase = Purchase.objects.create(
        customer=customer,
        kind=kind,
        channel=channel,
        pack=pack,
        credits=credits,
        applies_to=applies_to or [],
        amount=amount,
        tax=tax,
        tax_rate_codes=[rate.code for rate in rates],
        currency=customer.currency,
        created_at=now,
    )
    payment = Payment.objects.create(
        customer=customer,
        purchase=purchase,
        amount=amount + tax,
        currency=customer.currency,
        # A Checkout payment is the buyer's to make: nothing is attempted here.
        status=Payment.PROCESSING if channel == Purchase.CHECKOUT else Payment.PENDING,
        max_attempts=policy_attempts() if channel == Purchase.AUTO_TOP_UP else 1,
        created_at=now,
        updated_at=now,
    )
    if channel != Purchase.CHECKOUT:
        # Credits the customer waits for (an auto top-up's cover usage that runs
        # uncovered meanwhile): on the urgent queue.
        attempt_after_commit(payment.pk, urgent=True)
    return purchase


def purchase_checkout_open(
    *, purchase: Purchase, success_url: str, cancel_url: str, now: datetime
) -> Purchase:
    """Open a Stripe Checkout Session for a pending Checkout purchase and record
    its id and URL (idempotency key purchase-<id>-checkout). The card is saved on
    the Stripe customer for later off-session charges. When Stripe refuses or
    cannot be reached, the purchase is failed and PaymentFailed raised. Makes
    network calls: never call it inside a transaction."""
    payment = Payment.objects.select_related("purchase__pack", "customer").get(purchase=purchase)
    purchase = payment.purchase
    metadata = {"purchase_id": str(purchase.pk), "payment_id": str(payment.pk)}
    description = purchase_description(purchase)
    stripe_customer_id = ""
    try:
        stripe_customer_id = stripe_customer_ensure(customer=payment.customer)
        params = {
            "mode": "payment",
            "customer": stripe_customer_id,
            "client_reference_id": str(purchase.pk),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": purchase.currency.lower(),
                        "unit_amount": to_minor_units(
                            purchase.amount + purchase.tax, purchase.currency
                        ),
                        "product_data": {"name": description},
                    },
                }
            ],
            "payment_intent_data": {
                "setup_future_usage": "off_session",
                "description": description,
                "metadata": metadata,
            },
            "metadata": metadata,
            "success_url": success_url,
        }
        if cancel_url:
            params["cancel_url"] = cancel_url
        session = stripe_client.checkout_session_create(
            params=params, idempotency_key=f"purchase-{purchase.pk}-checkout"
        )
    except stripe.StripeError as error:
        text = stripe_client.error_text(error)
        with transaction.atomic():
            locked = payment_lock(payment.pk)
            locked.attempts = 1
            locked.stripe_customer_id = stripe_customer_id
            if locked.status == Payment.PROCESSING:
                payment_close(locked, Payment.FAILED, error=text, now=now)
            else:
                payment_save(locked, now)
        raise PaymentFailed(f"Stripe Checkout could not be opened: {text}") from error
    with transaction.atomic():
        locked = payment_lock(payment.pk)
        # Recorded whatever happened meanwhile: the webhook may have come first.
        locked.attempts = max(locked.attempts, 1)
        locked.stripe_customer_id = stripe_customer_id
        locked.stripe_checkout_session_id = session["id"]
        locked.checkout_url = session.get("url") or ""
        payment_save(locked, now)
    return Purchase.objects.get(pk=purchase.pk)


def invoice_checkout_open(*, invoice, return_url: str, now: datetime) -> str:
    """A Stripe Checkout page for what is due on a finalized (or uncollectible)
    invoice, opened from its payment page: its URL. The invoice's payment row
    records the session (idempotency key invoice-<id>-checkout-<n>, one per
    opening); the webhook checkout.session.completed pays the invoice
    (invoices.stripe_events). Conflict when nothing is due or an off-session
    attempt is under way. Makes network calls: never inside a transaction."""
    with transaction.atomic():
        locked = invoice_lock(invoice.pk)
        due = locked.amount_due
        if locked.status not in OWED or due <= 0:
            raise Conflict(f"nothing is left to pay on invoice {locked.number}")
        payment, _created = Payment.objects.get_or_create(
            invoice=locked,
            defaults={
                "customer_id": locked.customer_id,
                "amount": due,
                "currency": locked.currency,
                "max_attempts": policy_attempts(),
                "created_at": now,
                "updated_at": now,
            },
        )
        payment = payment_lock(payment.pk)
        if payment.status == Payment.ATTEMPTING:
            raise Conflict("a payment of this invoice is under way: try again in a minute")
        payment.amount = due
        payment.status = Payment.PROCESSING
        payment.next_attempt_at = None
        payment.attempts += 1
        payment_save(payment, now)
    metadata = {"invoice_id": str(locked.pk), "payment_id": str(payment.pk)}
    description = f"Invoice {locked.number}"
    try:
        stripe_customer_id = stripe_customer_ensure(customer=locked.customer)
        session = stripe_client.checkout_session_create(
            params={
                "mode": "payment",
                "customer": stripe_customer_id,
                "client_reference_id": str(locked.pk),
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": locked.currency.lower(),
                            "unit_amount": to_minor_units(due, locked.currency),
                            "product_data": {"name": description},
                        },
                    }
                ],
                "payment_intent_data": {"description": description, "metadata": metadata},
                "metadata": metadata,
                "success_url": return_url,
                "cancel_url": return_url,
            },
            idempotency_key=f"invoice-{locked.pk}-checkout-{payment.attempts}",
        )
    except stripe.StripeError as error:
        with transaction.atomic():
            failed = payment_lock(payment.pk)
            payment_close(failed, Payment.FAILED, error=stripe_client.error_text(error), now=now)
        raise PaymentFailed(
            f"Stripe Checkout could not be opened: {stripe_client.error_text(error)}"
        ) from error
    with transaction.atomic():
        opened = payment_lock(payment.pk)
        opened.stripe_customer_id = stripe_customer_id
        opened.stripe_checkout_session_id = session["id"]
        opened.checkout_url = session.get("url") or ""
        payment_save(opened, now)
    return opened.checkout_url
