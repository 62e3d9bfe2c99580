"""Payments through Stripe (services). Used only when STRIPE_API_KEY is set;
without it payments are recorded by hand (invoices.services.invoice_mark_paid).

- A finalized invoice is collected by a PaymentIntent against the customer's
  default payment method, off-session and confirmed at once. Its Payment row is
  written in the finalizing transaction and a worker makes the attempt after
  commit (tasks.collect_payment).
- A purchase of credits or money (invoices.models.Purchase) grants nothing until
  it is paid: through a Stripe Checkout link, or by charging the saved payment
  method off-session (a purchase "charged at once", an auto top-up).
- A failed off-session charge raises a `payment_failed` alert and is tried again
  after each of STRIPE_PAYMENT_RETRY_MINUTES (an API purchase charged at once:
  not tried again). When they are spent the invoice is uncollectible, the
  purchase failed.
- Stripe's webhooks (stripe_event_receive) are stored by event id before they
  are processed, so each is processed once; their effects only move a payment
  forward (a failure reported after a success changes nothing).

No network call is ever made inside a database transaction: an attempt is
claimed under the payment's row lock and committed, the call made, and the
outcome recorded under the lock again (unless a webhook recorded it first).
Every call that writes carries an idempotency key made of our row ids.
"""

import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from billing.core.errors import Conflict, InvalidRequest, WebhookSignatureError
from billing.core.money import format_decimal, format_money, to_minor_units
from billing.core.storable import unstorable_json_reason
from billing.notifications import alerts, webhooks
from customers.models import Customer

# invoices.services imports this module too (an invoice finalized is collected
# here, an invoice paid here is recorded there); each uses the other's functions
# only when called, so either may be imported first.
from invoices import services, stripe_client
from invoices.models import Invoice, Payment, Purchase, StripeEvent

logger = logging.getLogger(__name__)

# How long an attempt may take before the safety net makes it again (with the
# same idempotency key, so Stripe answers what it answered the first time).
ATTEMPT_LEASE = timedelta(minutes=10)
# The beat leaves a due payment this long to the task enqueued for it.
SWEEP_GRACE = timedelta(minutes=2)
STRIPE_ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")


class PaymentFailed(Conflict):
    """Stripe refused or could not be reached; the purchase is recorded as failed."""


def enabled() -> bool:
    return stripe_client.enabled()


def retry_delays() -> list[timedelta]:
    return [timedelta(minutes=m) for m in settings.STRIPE_PAYMENT_RETRY_MINUTES]


def policy_attempts() -> int:
    """Attempts an off-session charge gets: the first, then one per retry delay."""
    return 1 + len(settings.STRIPE_PAYMENT_RETRY_MINUTES)


# Customers


def _latest_version(customer: Customer) -> int:
    """The id of the customer's latest audit record: it changes exactly when the
    customer's details do, so it makes the key of an update."""
    latest = customer.history.order_by("-history_id").values_list("history_id", flat=True)
    return latest.first() or 0


def _customer_params(customer: Customer, *, creating: bool) -> dict:
    params: dict = {
        "name": customer.name,
        "metadata": {"billing_customer_id": str(customer.pk), "external_id": customer.external_id},
    }
    address = {
        name: str(value)
        for name, value in (customer.address or {}).items()
        if name in STRIPE_ADDRESS_FIELDS and value not in (None, "")
    }
    # On an update an empty string clears a field at Stripe; a creation leaves it out.
    if customer.email or not creating:
        params["email"] = customer.email or ""
    if address or not creating:
        params["address"] = address or ""
    return params


def _stored_stripe_id(customer: Customer) -> str:
    return Customer.objects.filter(pk=customer.pk).values_list("stripe_customer_id", flat=True)[0]


def stripe_customer_ensure(*, customer: Customer) -> str:
    """The customer's Stripe id. The Stripe customer is created on first use, once:
    the idempotency key is customer-<id>-create, so two workers creating it at
    once get the same Stripe customer, and its id is stored on the customer.
    Makes a network call: never call it inside a transaction."""
    stored = _stored_stripe_id(customer)
    if stored:
        return stored
    created = stripe_client.customer_create(
        params=_customer_params(customer, creating=True),
        idempotency_key=f"customer-{customer.pk}-create",
    )
    # Not a change of the customer's details: no audit record, and no update sent back.
    Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
        stripe_customer_id=created["id"]
    )
    return _stored_stripe_id(customer)


def stripe_customer_sync(*, customer: Customer) -> str:
    """Send the customer's current details to its Stripe customer (created when it
    has none, with them). The update's idempotency key names the customer's audit
    version (customer-<id>-update-<history id>), so sending one version twice is
    one update. Makes a network call."""
    stored = _stored_stripe_id(customer)
    if not stored:
        return stripe_customer_ensure(customer=customer)
    customer = Customer.objects.get(pk=customer.pk)
    stripe_client.customer_update(
        customer_id=stored,
        params=_customer_params(customer, creating=False),
        idempotency_key=f"customer-{customer.pk}-update-{_latest_version(customer)}",
    )
    return stored


def customer_sync_schedule(*, customer: Customer) -> None:
    """After the caller's transaction commits, update the customer's Stripe
    customer (a task). Nothing without Stripe, or for a customer Stripe does not
    know yet: it is created with its details on first use."""
    if not enabled() or not customer.stripe_customer_id:
        return
    from invoices import tasks

    customer_id = customer.pk
    transaction.on_commit(lambda: tasks.sync_stripe_customer.delay(customer_id), robust=True)


# Invoices


def invoice_collection_schedule(*, invoice: Invoice, now: datetime) -> Payment | None:
    """Collect a just finalized invoice through Stripe: its Payment row, in the
    finalizing transaction, and an attempt by a worker once that commits. Nothing
    without Stripe, or for an invoice of zero or less (nothing to collect)."""
    if not enabled() or invoice.total <= 0:
        return None
    payment, created = Payment.objects.get_or_create(
        invoice=invoice,
        defaults={
            "customer_id": invoice.customer_id,
            "amount": invoice.total,
            "currency": invoice.currency,
            "max_attempts": policy_attempts(),
            "created_at": now,
            "updated_at": now,
        },
    )
    if created:
        _attempt_after_commit(payment.pk)
    return payment


# Purchases


def purchase_create(
    *,
    customer: Customer,
    kind: str,
    channel: str,
    amount: Decimal,
    pack=None,
    credits: Decimal | None = None,
    now: datetime,
) -> Purchase:
    """Record a pending purchase and its payment, in the caller's transaction.
    An off-session one (charged at once, or an auto top-up) is attempted by a
    worker once the transaction commits; a Checkout one waits for
    purchase_checkout_open. Only an auto top-up is tried again after a failure."""
    purchase = Purchase.objects.create(
        customer=customer,
        kind=kind,
        channel=channel,
        pack=pack,
        credits=credits,
        amount=amount,
        currency=customer.currency,
        created_at=now,
    )
    payment = Payment.objects.create(
        customer=customer,
        purchase=purchase,
        amount=amount,
        currency=customer.currency,
        # A Checkout payment is the buyer's to make: nothing is attempted here.
        status=Payment.PROCESSING if channel == Purchase.CHECKOUT else Payment.PENDING,
        max_attempts=policy_attempts() if channel == Purchase.AUTO_TOP_UP else 1,
        created_at=now,
        updated_at=now,
    )
    if channel != Purchase.CHECKOUT:
        _attempt_after_commit(payment.pk)
    return purchase


def _purchase_description(purchase: Purchase) -> str:
    if purchase.kind == Purchase.TOP_UP:
        return f"Prepaid balance top-up ({purchase.currency})"
    pack = purchase.pack
    return f"{pack.name or pack.code}: {format_decimal(purchase.credits)} credits"


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
    description = _purchase_description(purchase)
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
                        "unit_amount": to_minor_units(purchase.amount, purchase.currency),
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
            locked = _lock_payment(payment.pk)
            locked.attempts = 1
            locked.stripe_customer_id = stripe_customer_id
            if locked.status == Payment.PROCESSING:
                _close(locked, Payment.FAILED, error=text, now=now)
            else:
                _save(locked, now)
        raise PaymentFailed(f"Stripe Checkout could not be opened: {text}") from error
    with transaction.atomic():
        locked = _lock_payment(payment.pk)
        # Recorded whatever happened meanwhile: the webhook may have come first.
        locked.attempts = max(locked.attempts, 1)
        locked.stripe_customer_id = stripe_customer_id
        locked.stripe_checkout_session_id = session["id"]
        locked.checkout_url = session.get("url") or ""
        _save(locked, now)
    return Purchase.objects.get(pk=purchase.pk)


# Attempts


def _attempt_after_commit(payment_id: int, countdown: float = 0) -> None:
    from invoices import tasks

    # robust: a broker that is down must not undo the commit; the beat
    # (collect_due_payments) finds the payment due.
    transaction.on_commit(
        lambda: tasks.collect_payment.apply_async((payment_id,), countdown=countdown),
        robust=True,
    )


def _lock_payment(payment_id: int) -> Payment:
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("invoice", "purchase__pack", "customer")
        .get(pk=payment_id)
    )


def _save(payment: Payment, now: datetime) -> None:
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
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("invoice", "purchase__pack", "customer")
            .filter(pk=payment_id, status__in=(Payment.PENDING, Payment.ATTEMPTING))
            .first()
        )
        if payment is None or (payment.next_attempt_at and payment.next_attempt_at > now):
            return None
        if payment.purchase_id and payment.purchase.channel == Purchase.CHECKOUT:
            return None
        reason = _not_collectable(payment)
        if reason:
            _close(payment, Payment.CANCELED, error=reason, now=now)
            return payment
        if payment.status == Payment.PENDING:
            payment.attempts += 1
        # Else the lease of an attempt that never reported ran out: the same
        # attempt again, with the same idempotency key.
        payment.status = Payment.ATTEMPTING
        payment.next_attempt_at = now + ATTEMPT_LEASE
        _save(payment, now)
        return payment


@dataclass
class _Outcome:
    intent: dict | None = None
    intent_id: str = ""
    error: str = ""
    stripe_customer_id: str = ""


def _default_payment_method(stripe_customer_id: str) -> str:
    found = stripe_client.customer_retrieve(customer_id=stripe_customer_id)
    method = (found.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    source = found.get("default_source")
    if isinstance(source, dict):
        source = source.get("id")
    return method or source or ""


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
        description = _purchase_description(purchase)
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
        method = _default_payment_method(outcome.stripe_customer_id)
        if not method:
            outcome.error = "the customer has no default payment method in Stripe"
            return outcome
        params, key = _intent_params(payment, outcome.stripe_customer_id, method)
        outcome.intent = stripe_client.payment_intent_create(params=params, idempotency_key=key)
        outcome.intent_id = outcome.intent["id"]
    except stripe.StripeError as error:
        # A decline is a 402 whose body holds the PaymentIntent Stripe created.
        outcome.error = stripe_client.error_text(error)
        outcome.intent_id = stripe_client.error_payment_intent_id(error)
    return outcome


def payment_attempt(*, payment: Payment, now: datetime) -> Payment | None:
    """Make the payment's next attempt if one is due at `now`, and record what
    came of it: succeeded (the invoice paid, or the purchase granted), processing
    (a webhook will tell), or failed (tried again per the policy, alerted).

    Safe to call twice and from several workers at once: the attempt is claimed
    under the row lock, so only one makes it; an outcome a webhook recorded
    meanwhile is kept. An invoice paid or voided in the meantime, or a purchase no
    longer pending, is not charged (the payment is canceled). Returns the payment
    after the attempt, or None when nothing was due."""
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
        locked = _lock_payment(claimed.pk)
        if locked.status != Payment.ATTEMPTING or locked.attempts != claimed.attempts:
            return locked
        locked.stripe_customer_id = outcome.stripe_customer_id or locked.stripe_customer_id
        locked.stripe_payment_intent_id = outcome.intent_id or locked.stripe_payment_intent_id
        intent = outcome.intent
        status = intent.get("status") if intent else None
        if status == "succeeded":
            _succeed(
                locked,
                intent_id=intent["id"],
                amount=intent.get("amount_received") or intent.get("amount"),
                currency=intent.get("currency"),
                now=now,
            )
        elif status in ("processing", "requires_capture"):
            locked.status = Payment.PROCESSING
            locked.next_attempt_at = None
            _save(locked, now)
        else:
            _fail(locked, error=outcome.error or f"the payment intent is {status}", now=now)
        return locked


def _close(payment: Payment, status: str, *, error: str, now: datetime) -> None:
    """End an open payment without success, and its purchase with it."""
    payment.status = status
    payment.next_attempt_at = None
    if error:
        payment.last_error = error
    _save(payment, now)
    if payment.purchase_id is not None and payment.purchase.status == Purchase.PENDING:
        purchase = payment.purchase
        purchase.status = Purchase.FAILED if status == Payment.FAILED else Purchase.CANCELED
        purchase.closed_at = now
        purchase.save(update_fields=["status", "closed_at"])


def _fail(payment: Payment, *, error: str, now: datetime) -> None:
    """Record a failed attempt of a locked payment: alert, then try again after the
    next delay of the policy, or give up (the invoice uncollectible, the purchase
    failed)."""
    payment.last_error = error
    checkout = payment.purchase_id is not None and payment.purchase.channel == Purchase.CHECKOUT
    retry = payment.attempts < payment.max_attempts and not checkout
    if retry:
        delays = retry_delays() or [timedelta(0)]
        delay = delays[min(payment.attempts, len(delays)) - 1]
        payment.status = Payment.PENDING
        payment.next_attempt_at = now + delay
        _save(payment, now)
        _attempt_after_commit(payment.pk, countdown=delay.total_seconds())
    else:
        _close(payment, Payment.FAILED, error=error, now=now)
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
            "next_attempt_at": webhooks.iso(payment.next_attempt_at) if retry else None,
            "error": error,
        },
        now=now,
    )


def _succeed(
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
        _save(payment, now)
        return False
    payment.status = Payment.SUCCEEDED
    payment.succeeded_at = now
    payment.next_attempt_at = None
    payment.stripe_payment_intent_id = intent_id or payment.stripe_payment_intent_id
    reference = intent_id or payment.stripe_checkout_session_id
    if payment.invoice_id is not None:
        _invoice_paid(payment, reference=reference, now=now)
    else:
        from wallets.services import purchase_fulfil

        purchase_fulfil(purchase=payment.purchase, reference=reference, now=now)
        payment.purchase.refresh_from_db()
        purchase = payment.purchase
        webhooks.webhook_event_publish(
            event_type="purchase.paid",
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
    _save(payment, now)
    return True


def _invoice_paid(payment: Payment, *, reference: str, now: datetime) -> None:
    """The invoice of a payment that succeeded is paid (invoice_mark_paid). One
    that cannot be any more, paid meanwhile or voided, is left as it is: the
    money is to be refunded, which the payment's last error says."""
    try:
        payment.invoice = services.invoice_mark_paid(
            invoice=payment.invoice, reference=reference, now=now
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


# Operations (admin)


def payment_retry_now(*, payment: Payment, now: datetime) -> bool:
    """Attempt a pending or failed off-session payment now; a failed one gets one
    more attempt (its invoice, uncollectible by then, is still collected). False
    for a payment that is not waiting or failed, or a Checkout one."""
    with transaction.atomic():
        locked = _lock_payment(payment.pk)
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
        _save(locked, now)
        _attempt_after_commit(locked.pk)
    return True


def collection_stop(*, invoice: Invoice, reason: str, now: datetime) -> None:
    """Cancel the invoice's payment when it waits for its next attempt (one under
    way reports as it comes). In the caller's transaction."""
    waiting = Payment.objects.select_for_update().filter(invoice=invoice, status=Payment.PENDING)
    for payment in waiting:
        _close(payment, Payment.CANCELED, error=reason, now=now)


def payment_cancel(*, payment: Payment, now: datetime) -> bool:
    """Stop collecting: a pending payment is attempted no more (its purchase is
    canceled). False when an attempt is under way or the payment is over."""
    with transaction.atomic():
        locked = _lock_payment(payment.pk)
        if locked.status != Payment.PENDING:
            return False
        _close(locked, Payment.CANCELED, error="canceled in the admin", now=now)
    return True


def payments_due(*, before: datetime) -> list[int]:
    """Payments whose attempt is overdue (an enqueue a broker lost, a worker that
    died during an attempt): the beat sends them to the workers again."""
    return list(
        Payment.objects.filter(status__in=(Payment.PENDING, Payment.ATTEMPTING))
        .filter(
            Q(next_attempt_at__lte=before) | Q(next_attempt_at__isnull=True, updated_at__lte=before)
        )
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )


# Stripe reports a payment's outcome by webhook within seconds; one waiting longer
# than this is asked about (a webhook endpoint down, an event never delivered).
RECONCILE_AFTER = timedelta(hours=1)


def payments_unsettled(*, before: datetime) -> list[int]:
    """Payments waiting on Stripe (a Checkout page, a processing PaymentIntent)
    with no news since `before`."""
    return list(
        Payment.objects.filter(status=Payment.PROCESSING, updated_at__lte=before)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )


def payment_reconcile(*, payment_id: int, now: datetime) -> str:
    """Ask Stripe where a payment it is processing stands, for when its webhook
    never came, and apply the answer through the webhook's own handlers: under
    the payment's row lock, moving it only forward, so an event delivered too
    changes nothing twice. An answer that settles nothing yet is noted (the
    payment is asked about again after RECONCILE_AFTER)."""
    found = (
        Payment.objects.filter(pk=payment_id, status=Payment.PROCESSING)
        .values_list("stripe_checkout_session_id", "stripe_payment_intent_id")
        .first()
    )
    if found is None:
        return "nothing to do"
    session_id, intent_id = found
    handler, obj, state = None, None, "nothing to ask Stripe about"
    if session_id:
        obj = stripe_client.checkout_session_retrieve(session_id=session_id)
        state = f"Checkout session {obj.get('status')}, {obj.get('payment_status')}"
        if obj.get("status") == "complete":
            handler = _on_checkout_paid
        elif obj.get("status") == "expired":
            handler = _on_checkout_expired
    elif intent_id:
        obj = stripe_client.payment_intent_retrieve(intent_id=intent_id)
        state = f"PaymentIntent {obj.get('status')}"
        if obj.get("status") == "succeeded":
            handler = _on_intent_succeeded
        elif obj.get("status") in ("requires_payment_method", "canceled"):
            handler = _on_intent_failed
    with transaction.atomic():
        if handler is not None:
            return f"{state}: {handler(obj, now)}"
        Payment.objects.filter(pk=payment_id, status=Payment.PROCESSING).update(updated_at=now)
    return f"{state}: still waiting"


def payment_method_remember(*, payment: Payment) -> str:
    """After a Checkout payment, make the card it saved the Stripe customer's
    default payment method (for auto top-up and invoices), unless the customer
    has one already. Returns the default method. Makes network calls."""
    if not payment.stripe_payment_intent_id or not payment.stripe_customer_id:
        return ""
    current = _default_payment_method(payment.stripe_customer_id)
    if current:
        return current
    intent = stripe_client.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
    method = intent.get("payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    if not method:
        return ""
    stripe_client.customer_update(
        customer_id=payment.stripe_customer_id,
        params={"invoice_settings": {"default_payment_method": method}},
        idempotency_key=f"payment-{payment.pk}-default-method",
    )
    return method


# Webhooks


class StripeEventRefused(InvalidRequest):
    """An authentic Stripe event that cannot be stored as sent (an id longer than
    its column, text or a time no database holds). Nothing is stored; processing
    it again could only fail again."""


def _max_length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


def _event_refusal(event: dict) -> str | None:
    """Why a verified event cannot be stored or acted on as sent, or None: each
    value that goes into a bounded column (the event's id; the object's id,
    PaymentIntent and customer ids on the payment) is checked against it."""
    reason = unstorable_json_reason(event, check_text=True, max_depth=sys.maxsize)
    if reason is not None:
        return reason
    if not isinstance(event.get("type", ""), str):
        return "type is not text"
    created = event.get("created") or 0
    if not isinstance(created, int | float) or isinstance(created, bool):
        return "created is not a Unix time"
    try:
        datetime.fromtimestamp(int(created), UTC)
    except (OverflowError, OSError, ValueError):
        return "created is out of range"
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    bounded = {
        "id": (event["id"], _max_length(StripeEvent, "id")),
        "data.object.id": (
            obj.get("id"),
            min(
                _max_length(Payment, "stripe_payment_intent_id"),
                _max_length(Payment, "stripe_checkout_session_id"),
            ),
        ),
        "data.object.payment_intent": (intent, _max_length(Payment, "stripe_payment_intent_id")),
        "data.object.customer": (obj.get("customer"), _max_length(Payment, "stripe_customer_id")),
    }
    for name, (value, limit) in bounded.items():
        if isinstance(value, str) and len(value) > limit:
            return f"{name} is longer than {limit} characters"
    return None


def stripe_event_receive(
    *, payload: bytes, signature: str | None, now: datetime
) -> tuple[StripeEvent, bool]:
    """Verify a Stripe webhook (STRIPE_WEBHOOK_SECRET, 300 s tolerance) and process
    its event once. The event is stored by its id first; processing then takes
    its row lock and marks it processed in the same transaction as its effects,
    so a repeated delivery, even a concurrent one, finds it processed and does
    nothing. An error in processing rolls the effects back, is recorded on the
    event (the admin lists it) and raised: Stripe delivers the event again.
    Returns the event and whether it had been processed already.

    Raises WebhookSignatureError when the request is not authentic, and
    StripeEventRefused (logged) for an authentic event that cannot be stored."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookSignatureError("STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks are refused")
    try:
        event = stripe_client.webhook_event(payload=payload, signature=signature, secret=secret)
    except stripe.SignatureVerificationError as error:
        raise WebhookSignatureError(f"Stripe signature refused: {error.user_message}") from error
    except ValueError as error:
        raise WebhookSignatureError(f"not a Stripe event: {error}") from error
    except RecursionError as error:
        raise WebhookSignatureError("not a Stripe event: nested too deeply") from error
    refusal = _event_refusal(event)
    if refusal is not None:
        logger.warning(
            "Stripe webhook: signed event %.80r refused, not stored: %s", event["id"], refusal
        )
        raise StripeEventRefused(f"the event cannot be stored: {refusal}")
    stored, created = StripeEvent.objects.get_or_create(
        id=event["id"],
        defaults={
            "type": str(event.get("type", ""))[:100],
            "created": datetime.fromtimestamp(int(event.get("created") or 0), UTC),
            "livemode": bool(event.get("livemode")),
            "payload": event,
            "received_at": now,
        },
    )
    if not created:
        StripeEvent.objects.filter(pk=stored.pk).update(deliveries=F("deliveries") + 1)
    try:
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=stored.pk)
            if locked.processed_at is not None:
                return locked, True
            locked.outcome = _handle(event, now)[:500]
            locked.processed_at = now
            locked.last_error = ""
            locked.save(update_fields=["outcome", "processed_at", "last_error"])
    except Exception as error:
        StripeEvent.objects.filter(pk=stored.pk).update(
            last_error=f"{type(error).__name__}: {error}"[:2000]
        )
        raise
    return locked, False


def _payment_of(obj: dict) -> Payment | None:
    """Our payment a Stripe object is about (locked): by the payment id in its
    metadata, else by its PaymentIntent or Checkout Session id."""
    metadata = obj.get("metadata")
    payment_id = str(metadata.get("payment_id", "")) if isinstance(metadata, dict) else ""
    query = Payment.objects.none()
    # Our ids only: ASCII digits that fit a bigint (isdigit() also takes "²").
    if payment_id.isascii() and payment_id.isdigit() and len(payment_id) <= 18:
        query = Payment.objects.filter(pk=int(payment_id))
    elif obj.get("object") == "payment_intent" and obj.get("id"):
        query = Payment.objects.filter(stripe_payment_intent_id=obj["id"])
    elif obj.get("object") == "checkout.session" and obj.get("id"):
        query = Payment.objects.filter(stripe_checkout_session_id=obj["id"])
    found = query.values_list("id", flat=True).first()
    return None if found is None else _lock_payment(found)


def _intent_error(intent: dict) -> str:
    error = intent.get("last_payment_error") or {}
    codes = " ".join(str(error[k]) for k in ("code", "decline_code") if error.get(k))
    message = error.get("message") or "the payment failed"
    return f"{codes}: {message}" if codes else message


def _on_intent_succeeded(intent: dict, now: datetime) -> str:
    payment = _payment_of(intent)
    if payment is None:
        return "ignored: no payment of ours"
    if not _succeed(
        payment,
        intent_id=intent["id"],
        amount=intent.get("amount_received") or intent.get("amount"),
        currency=intent.get("currency"),
        now=now,
    ):
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    return f"payment {payment.pk} succeeded"


def _on_intent_failed(intent: dict, now: datetime) -> str:
    payment = _payment_of(intent)
    if payment is None:
        return "ignored: no payment of ours"
    error = _intent_error(intent)
    if payment.purchase_id and payment.purchase.channel == Purchase.CHECKOUT:
        # The buyer may try another card on the same Checkout page: the session's
        # own events decide; the decline is only noted.
        if payment.status == Payment.PROCESSING:
            payment.last_error = error
            _save(payment, now)
        return f"payment {payment.pk}: Checkout decline noted"
    if payment.status != Payment.PROCESSING or payment.stripe_payment_intent_id != intent["id"]:
        # Recorded by the attempt that made it, or stale (a success came first).
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    _fail(payment, error=error, now=now)
    return f"payment {payment.pk} failed (attempt {payment.attempts} of {payment.max_attempts})"


def _on_checkout_paid(session: dict, now: datetime) -> str:
    payment = _payment_of(session)
    if payment is None:
        return "ignored: no payment of ours"
    payment.stripe_checkout_session_id = session.get("id") or payment.stripe_checkout_session_id
    intent_id = session.get("payment_intent") or ""
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id") or ""
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        # A delayed method (a bank debit): async_payment_succeeded or _failed follows.
        payment.stripe_payment_intent_id = intent_id or payment.stripe_payment_intent_id
        _save(payment, now)
        return f"payment {payment.pk}: awaiting the payment"
    customer_id = session.get("customer")
    if isinstance(customer_id, str) and customer_id:
        payment.stripe_customer_id = customer_id
    if not _succeed(
        payment,
        intent_id=intent_id,
        amount=session.get("amount_total"),
        currency=session.get("currency"),
        now=now,
    ):
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    from invoices import tasks

    payment_id = payment.pk
    transaction.on_commit(lambda: tasks.remember_payment_method.delay(payment_id), robust=True)
    return f"payment {payment.pk} succeeded"


def _on_checkout_failed(session: dict, now: datetime) -> str:
    payment = _payment_of(session)
    if payment is None:
        return "ignored: no payment of ours"
    if payment.status != Payment.PROCESSING:
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    _fail(payment, error="the delayed payment of the Checkout session failed", now=now)
    return f"payment {payment.pk} failed"


def _on_checkout_expired(session: dict, now: datetime) -> str:
    payment = _payment_of(session)
    if payment is None:
        return "ignored: no payment of ours"
    if payment.status != Payment.PROCESSING:
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    _close(payment, Payment.CANCELED, error="the Checkout session expired unpaid", now=now)
    return f"payment {payment.pk} canceled: Checkout expired"


HANDLERS = {
    "payment_intent.succeeded": _on_intent_succeeded,
    "payment_intent.payment_failed": _on_intent_failed,
    "checkout.session.completed": _on_checkout_paid,
    "checkout.session.async_payment_succeeded": _on_checkout_paid,
    "checkout.session.async_payment_failed": _on_checkout_failed,
    "checkout.session.expired": _on_checkout_expired,
}


def _handle(event: dict, now: datetime) -> str:
    handler = HANDLERS.get(event.get("type", ""))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if handler is None or not isinstance(obj, dict):
        return "ignored: not an event we act on"
    return handler(obj, now)
