"""Collecting invoices and purchases through Stripe (services). Used only when
STRIPE_API_KEY is set; without it payments are recorded by hand
(invoices.settlement.invoice_mark_paid).

- A finalized invoice is collected by a PaymentIntent against the customer's
  default payment method, off-session and confirmed at once. Its Payment row is
  written in the finalizing transaction and a worker makes the attempt after
  commit (tasks.collect_payment).
- A failed off-session charge raises a `payment_failed` alert and is tried again
  after each of STRIPE_PAYMENT_RETRY_MINUTES (an API purchase charged at once:
  not tried again). When they are spent the invoice is uncollectible, the
  purchase failed. A retry is the row's next_attempt_at, which the beat's sweep
  (tasks.collect_due_payments, every minute) sends when due: never a task
  waiting in the broker for an hour or a day (common.task_sending.COUNTDOWN_LIMIT_SECONDS).
- A payment that succeeds pays its invoice (invoices.settlement) or grants its
  purchase (invoices.reactions.purchase_paid).

No network call is ever made inside a database transaction: an attempt is
claimed under the payment's row lock and committed, the call made, and the
outcome recorded under the lock again (unless a webhook recorded it first).
Every call that writes carries an idempotency key made of our row ids."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from billing.models import PURCHASE_PAID
from billing.notifications import alerts, webhooks
from billing.notifications.outbound_pause import outbound_paused
from common.errors import Conflict
from common.money import format_decimal, format_money, to_minor_units
from common.periods import iso
from common.task_sending import enqueue_on_commit

# invoices.services imports this module too (an invoice finalized is collected
# here, an invoice paid here is recorded there); each uses the other's functions
# only when called, so either may be imported first.
from invoices import reactions, settlement, stripe_client
from invoices.locks import (
    open_payments_lock,
    payment_lock,
    payment_to_attempt_lock,
    waiting_payments_lock,
)
from invoices.models import Invoice, Payment, Purchase, ReceivedPayment
from invoices.stripe_customers import default_payment_method, stripe_customer_ensure

logger = logging.getLogger(__name__)


# How long an attempt may take before the safety net makes it again (with the
# same idempotency key, so Stripe answers what it answered the first time).
ATTEMPT_LEASE = timedelta(minutes=10)


# The beat leaves a payment this long to the task enqueued for it (its first attempt,
# or one asked for in the admin); a retry has no task and is swept once due.
SWEEP_GRACE = timedelta(minutes=2)


class PaymentFailed(Conflict):
    """Stripe refused or could not be reached; the purchase is recorded as failed."""


def enabled() -> bool:
    return stripe_client.enabled()


def retry_delays() -> list[timedelta]:
    return [timedelta(minutes=m) for m in settings.STRIPE_PAYMENT_RETRY_MINUTES]


def policy_attempts() -> int:
    """Attempts an off-session charge gets: the first, then one per retry delay."""
    return 1 + len(settings.STRIPE_PAYMENT_RETRY_MINUTES)


def invoice_collection_schedule(*, invoice: Invoice, now: datetime) -> Payment | None:
    """Collect a just finalized invoice through Stripe: its Payment row, in the
    finalizing transaction, and an attempt by a worker once that commits. Nothing
    without Stripe, or for an invoice of zero or less (nothing to collect)."""
    if not enabled() or invoice.amount_due <= 0:
        return None
    payment, created = Payment.objects.get_or_create(
        invoice=invoice,
        defaults={
            "customer_id": invoice.customer_id,
            "amount": invoice.amount_due,
            "currency": invoice.currency,
            "max_attempts": policy_attempts(),
            "created_at": now,
            "updated_at": now,
        },
    )
    if created:
        attempt_after_commit(payment.pk)
    return payment


def attempt_after_commit(payment_id: int, *, urgent: bool = False) -> None:
    """A worker attempts the payment once the transaction commits; `urgent` (a
    purchase's first attempt) on the urgent queue (collect_purchase_payment)."""
    task = "invoices.tasks.collect_purchase_payment" if urgent else "invoices.tasks.collect_payment"
    # A broker that is down must not undo the commit (robust); the beat
    # (collect_due_payments) finds the payment due.
    enqueue_on_commit(task, payment_id)


def payment_save(payment: Payment, now: datetime) -> None:
    payment.updated_at = now
    payment.save()


def _not_collectable(payment: Payment) -> str:
    """Why the payment is not to be attempted any more, or ''."""
    if payment.invoice_id is not None:
        # Uncollectible is still collected: cancel the payment to stop.
        if payment.invoice.status not in (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE):
            return f"not collected: the invoice is {payment.invoice.status}"
    elif payment.purchase.status != Purchase.PENDING:
        return f"not charged: the purchase is {payment.purchase.status}"
    return ""


def _claim(payment_id: int, now: datetime) -> Payment | None:
    with transaction.atomic():
        payment = payment_to_attempt_lock(payment_id)
        if payment is None or (payment.next_attempt_at and payment.next_attempt_at > now):
            return None
        if payment.invoice_id is not None and outbound_paused():
            # Held after a restore: a period billed again under a new number must
            # not be charged before someone has read which number replaces which.
            return None
        if payment.purchase_id and payment.purchase.channel == Purchase.CHECKOUT:
            return None
        reason = _not_collectable(payment)
        if reason:
            payment_close(payment, Payment.CANCELED, error=reason, now=now)
            return payment
        if payment.status == Payment.PENDING:
            payment.attempts += 1
        # Else the lease of an attempt that never reported ran out: the same
        # attempt again, with the same idempotency key.
        payment.status = Payment.ATTEMPTING
        payment.next_attempt_at = now + ATTEMPT_LEASE
        payment_save(payment, now)
        return payment


@dataclass
class _Outcome:
    intent: dict | None = None
    intent_id: str = ""
    error: str = ""
    decline_code: str = ""
    stripe_customer_id: str = ""


def _intent_params(payment: Payment, stripe_customer_id: str, method: str) -> tuple[dict, str]:
    """The PaymentIntent of this attempt and its idempotency key."""
    metadata = {"payment_id": str(payment.pk)}
    if payment.invoice_id is not None:
        invoice = payment.invoice
        metadata |= {"invoice_id": str(invoice.pk), "invoice_number": invoice.number or ""}
        description = f"Invoice {invoice.number}"
        key = f"invoice-{invoice.pk}-collect-{payment.attempts}"
    else:
        purchase = payment.purchase
        metadata |= {"purchase_id": str(purchase.pk)}
        description = purchase_description(purchase)
        key = f"purchase-{purchase.pk}-charge-{payment.attempts}"
    params = {
        "amount": to_minor_units(payment.amount, payment.currency),
        "currency": payment.currency.lower(),
        "customer": stripe_customer_id,
        "payment_method": method,
        "off_session": True,
        "confirm": True,
        # Off-session: nobody is there to follow a redirect.
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        "description": description,
        "metadata": metadata,
    }
    return params, key


def _charge(payment: Payment) -> _Outcome:
    """The network part of an attempt: the Stripe customer, its default payment
    method, and a PaymentIntent confirmed off-session."""
    outcome = _Outcome()
    try:
        outcome.stripe_customer_id = stripe_customer_ensure(customer=payment.customer)
        method = default_payment_method(outcome.stripe_customer_id)
        if not method:
            outcome.error = "the customer has no default payment method in Stripe"
            return outcome
        params, key = _intent_params(payment, outcome.stripe_customer_id, method)
        outcome.intent = stripe_client.payment_intent_create(params=params, idempotency_key=key)
        outcome.intent_id = outcome.intent["id"]
    except stripe.StripeError as error:
        # A decline is a 402 whose body holds the PaymentIntent Stripe created.
        outcome.error = stripe_client.error_text(error)
        outcome.decline_code = stripe_client.error_decline_code(error)
        outcome.intent_id = stripe_client.error_payment_intent_id(error)
    return outcome


def payment_attempt(*, payment: Payment, now: datetime) -> Payment | None:
    """Make the payment's next attempt if one is due at `now`, and record what
    came of it: succeeded (the invoice paid, or the purchase granted), processing
    (a webhook will tell), or failed (tried again per the policy, alerted).

    Safe to call twice and from several workers at once: the attempt is claimed
    under the row lock, so only one makes it; an outcome a webhook recorded
    meanwhile is kept. An invoice paid or voided in the meantime, or a purchase no
    longer pending, is not charged (the payment is canceled). An invoice's payment
    is not attempted while sending is paused after a restore
    (billing.notifications.outbound_pause): it is left as it is, its attempts
    untouched; a purchase's is (the buyer waits for its credits). Returns the
    payment after the attempt, or None when nothing was due."""
    claimed = _claim(payment.pk, now)
    if claimed is None or claimed.status != Payment.ATTEMPTING:
        return claimed
    try:
        outcome = _charge(claimed)
    except Exception as error:
        # Not a refusal from Stripe: the attempt stays claimed and is made again,
        # with the same key, when its lease runs out. Shown in the admin meanwhile.
        Payment.objects.filter(pk=claimed.pk).update(
            last_error=f"{type(error).__name__}: {error}"[:2000], updated_at=now
        )
        raise
    with transaction.atomic():
        locked = payment_lock(claimed.pk)
        if locked.status != Payment.ATTEMPTING or locked.attempts != claimed.attempts:
            return locked
        locked.stripe_customer_id = outcome.stripe_customer_id or locked.stripe_customer_id
        locked.stripe_payment_intent_id = outcome.intent_id or locked.stripe_payment_intent_id
        intent = outcome.intent
        status = intent.get("status") if intent else None
        if status == "succeeded":
            payment_succeed(
                locked,
                intent_id=intent["id"],
                amount=intent.get("amount_received") or intent.get("amount"),
                currency=intent.get("currency"),
                now=now,
            )
        elif status in ("processing", "requires_capture"):
            locked.status = Payment.PROCESSING
            locked.next_attempt_at = None
            payment_save(locked, now)
        else:
            payment_fail(
                locked,
                error=outcome.error or f"the payment intent is {status}",
                decline_code=outcome.decline_code,
                now=now,
            )
        return locked


def payment_close(payment: Payment, status: str, *, error: str, now: datetime) -> None:
    """End an open payment without success, and its purchase with it."""
    payment.status = status
    payment.next_attempt_at = None
    if error:
        payment.last_error = error
    payment_save(payment, now)
    if payment.purchase_id is not None and payment.purchase.status == Purchase.PENDING:
        purchase = payment.purchase
        purchase.status = Purchase.FAILED if status == Payment.FAILED else Purchase.CANCELED
        purchase.closed_at = now
        purchase.save(update_fields=["status", "closed_at"])


def hard_declined(payment: Payment) -> bool:
    """Whether the card was declined in a way no other attempt can change."""
    return payment.decline_code in stripe_client.HARD_DECLINES


def payment_fail(payment: Payment, *, error: str, now: datetime, decline_code: str = "") -> None:
    """Record a failed attempt of a locked payment: alert, then try again after the
    next delay of the policy (its next_attempt_at: the beat's sweep sends it then),
    or give up (the invoice uncollectible, the purchase failed); at once after a
    hard decline."""
    payment.last_error = error
    payment.decline_code = decline_code
    checkout = payment.purchase_id is not None and payment.purchase.channel == Purchase.CHECKOUT
    retry = payment.attempts < payment.max_attempts and not checkout and not hard_declined(payment)
    if retry:
        delays = retry_delays() or [timedelta(0)]
        delay = delays[min(payment.attempts, len(delays)) - 1]
        payment.status = Payment.PENDING
        payment.next_attempt_at = now + delay
        payment_save(payment, now)
    else:
        payment_close(payment, Payment.FAILED, error=error, now=now)
        if payment.invoice_id is not None and payment.invoice.status == Invoice.FINALIZED:
            invoice = payment.invoice
            invoice.status = Invoice.UNCOLLECTIBLE
            invoice.save(update_fields=["status"])
    logger.warning(
        "payment %s (attempt %s of %s) failed: %s",
        payment.pk,
        payment.attempts,
        payment.max_attempts,
        error,
    )
    alerts.alert_raise(
        customer=payment.customer,
        kind=alerts.PAYMENT_FAILED,
        period_start=payment.created_at,
        key=f"payment:{payment.pk}:attempt:{payment.attempts}",
        payload={
            "payment": payment.pk,
            "invoice": payment.invoice.number if payment.invoice_id else None,
            "purchase": payment.purchase_id,
            "amount": format_money(payment.amount, payment.currency),
            "currency": payment.currency,
            "attempt": payment.attempts,
            "attempts": payment.max_attempts,
            "next_attempt_at": iso(payment.next_attempt_at) if retry else None,
            "error": error,
        },
        now=now,
    )


def payment_succeed(
    payment: Payment,
    *,
    intent_id: str,
    amount: int | None,
    currency: str | None,
    now: datetime,
) -> bool:
    """Record the success Stripe reported for a locked payment: the invoice paid
    (reference: the PaymentIntent), or the purchase granted. Idempotent. A report
    for another amount or currency than ours is recorded and not applied."""
    if payment.status == Payment.SUCCEEDED:
        return False
    expected = to_minor_units(payment.amount, payment.currency)
    if amount != expected or (currency or "").lower() != payment.currency.lower():
        payment.last_error = (
            f"Stripe reports {amount} {currency} paid for {intent_id}, "
            f"not {expected} {payment.currency.lower()}: not applied, check it in Stripe"
        )
        if payment.status == Payment.ATTEMPTING:
            # Not attempted again: a person looks at it first.
            payment.status = Payment.PROCESSING
            payment.next_attempt_at = None
        payment_save(payment, now)
        return False
    payment.status = Payment.SUCCEEDED
    payment.succeeded_at = now
    payment.next_attempt_at = None
    payment.stripe_payment_intent_id = intent_id or payment.stripe_payment_intent_id
    reference = intent_id or payment.stripe_checkout_session_id
    if payment.invoice_id is not None:
        _invoice_paid(payment, reference=reference, now=now)
    else:
        reactions.purchase_paid(purchase=payment.purchase, reference=reference, now=now)
        payment.purchase.refresh_from_db()
        purchase = payment.purchase
        webhooks.webhook_event_publish(
            event_type=PURCHASE_PAID,
            data={
                "purchase": purchase.pk,
                "kind": purchase.kind,
                "channel": purchase.channel,
                "amount": format_money(purchase.amount, purchase.currency),
                "currency": purchase.currency,
                "invoice": purchase.invoice.number,
            },
            customer=payment.customer,
            now=now,
            event_id=f"evt_purchase_{purchase.pk}_paid",
        )
    payment_save(payment, now)
    return True


def _invoice_paid(payment: Payment, *, reference: str, now: datetime) -> None:
    """The invoice of a payment that succeeded is paid (invoice_mark_paid). One
    that cannot be any more, paid meanwhile or voided, is left as it is: the
    money is to be refunded, which the payment's last error says."""
    try:
        payment.invoice = settlement.invoice_mark_paid(
            invoice=payment.invoice,
            reference=reference,
            now=now,
            method=ReceivedPayment.STRIPE,
        )
    except Conflict:
        invoice = Invoice.objects.get(pk=payment.invoice_id)
        payment.invoice = invoice
        if invoice.status == Invoice.PAID:
            payment.last_error = (
                f"paid twice: the invoice was already paid ({invoice.payment_reference}); "
                f"refund {reference} in Stripe"
            )
        else:
            payment.last_error = f"the invoice is {invoice.status}: refund {reference} in Stripe"


def payment_retry_now(*, payment: Payment, now: datetime) -> bool:
    """Attempt a pending or failed off-session payment now; a failed one gets one
    more attempt (its invoice, uncollectible by then, is still collected). False
    for a payment that is not waiting or failed, or a Checkout one."""
    with transaction.atomic():
        locked = payment_lock(payment.pk)
        checkout = locked.purchase_id and locked.purchase.channel == Purchase.CHECKOUT
        if checkout or locked.status not in (Payment.PENDING, Payment.FAILED):
            return False
        if locked.status == Payment.FAILED:
            if locked.purchase_id is not None:
                if locked.purchase.status != Purchase.FAILED:
                    return False
                locked.purchase.status = Purchase.PENDING
                locked.purchase.closed_at = None
                locked.purchase.save(update_fields=["status", "closed_at"])
            locked.max_attempts = locked.attempts + 1
        locked.status = Payment.PENDING
        locked.next_attempt_at = None
        payment_save(locked, now)
        attempt_after_commit(locked.pk)
    return True


def collection_amount_changed(*, invoice: Invoice, now: datetime) -> None:
    """A credit note lowered the invoice's amount due: a payment waiting for its
    next attempt asks for the new amount, or is canceled when nothing is left.
    While an attempt is under way or Stripe is settling one, the amount is not
    known to be collectable: refused (Conflict), nothing changes. In the
    caller's transaction."""
    # Locked first, then looked at: an attempt cannot start in between.
    open_payments = open_payments_lock(invoice)
    if any(payment.status != Payment.PENDING for payment in open_payments):
        raise Conflict(
            f"a payment of invoice {invoice} is under way at Stripe; credit it once it settles"
        )
    for payment in open_payments:
        if invoice.amount_due <= 0:
            payment_close(payment, Payment.CANCELED, error="nothing left to pay", now=now)
        else:
            payment.amount = invoice.amount_due
            payment_save(payment, now)


def collection_stop(*, invoice: Invoice, reason: str, now: datetime) -> None:
    """Cancel the invoice's payment when it waits for its next attempt (one under
    way reports as it comes). In the caller's transaction."""
    waiting = waiting_payments_lock(invoice)
    for payment in waiting:
        payment_close(payment, Payment.CANCELED, error=reason, now=now)


def payment_cancel(*, payment: Payment, now: datetime) -> bool:
    """Stop collecting: a pending payment is attempted no more (its purchase is
    canceled). False when an attempt is under way or the payment is over."""
    with transaction.atomic():
        locked = payment_lock(payment.pk)
        if locked.status != Payment.PENDING:
            return False
        payment_close(locked, Payment.CANCELED, error="canceled in the admin", now=now)
    return True


def payments_due(*, now: datetime) -> list[int]:
    """Payments whose attempt is due at `now`, which the beat sends to the workers: a
    retry, and an attempt whose lease ran out (its worker died), once next_attempt_at
    has come; one sent to a worker when written or retried from the admin (no
    next_attempt_at) only SWEEP_GRACE after that, when the broker lost it. Never one
    whose attempt is under way (its lease runs). Sending one twice attempts it once
    (payment_attempt claims it under the row lock). Invoices' payments are left out
    while sending is paused after a restore."""
    due = Payment.objects.filter(status__in=(Payment.PENDING, Payment.ATTEMPTING)).filter(
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, updated_at__lte=now - SWEEP_GRACE)
    )
    if outbound_paused():
        due = due.filter(invoice__isnull=True)
    return list(due.order_by("id").values_list("id", flat=True)[:1000])


def purchase_description(purchase: Purchase) -> str:
    if purchase.kind == Purchase.TOP_UP:
        return f"Prepaid balance top-up ({purchase.currency})"
    pack = purchase.pack
    return f"{pack.name or pack.code}: {format_decimal(purchase.credits)} credits"
