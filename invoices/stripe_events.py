"""Stripe's webhooks, and the reconciliation of payments Stripe has not reported
on. An event is stored by its id before it is processed, so each is processed
once; its effects only move a payment forward (a failure reported after a
success changes nothing)."""

import logging
import sys
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F

from common.errors import InvalidRequest, WebhookSignatureError
from common.storable import unstorable_json_reason
from common.task_sending import enqueue_on_commit

# invoices.services imports this module too (an invoice finalized is collected
# here, an invoice paid here is recorded there); each uses the other's functions
# only when called, so either may be imported first.
from invoices import stripe_client
from invoices.collection import (
    payment_close,
    payment_fail,
    payment_save,
    payment_succeed,
)
from invoices.locks import payment_lock, stripe_event_lock
from invoices.models import Payment, Purchase, StripeEvent

logger = logging.getLogger(__name__)


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
            locked = stripe_event_lock(stored.pk)
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
    return None if found is None else payment_lock(found)


def _intent_error(intent: dict) -> str:
    error = intent.get("last_payment_error") or {}
    codes = " ".join(str(error[k]) for k in ("code", "decline_code") if error.get(k))
    message = error.get("message") or "the payment failed"
    return f"{codes}: {message}" if codes else message


def _on_intent_succeeded(intent: dict, now: datetime) -> str:
    payment = _payment_of(intent)
    if payment is None:
        return "ignored: no payment of ours"
    if not payment_succeed(
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
            payment_save(payment, now)
        return f"payment {payment.pk}: Checkout decline noted"
    if payment.status != Payment.PROCESSING or payment.stripe_payment_intent_id != intent["id"]:
        # Recorded by the attempt that made it, or stale (a success came first).
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    last_error = intent.get("last_payment_error")
    decline_code = (
        str(last_error.get("decline_code") or "")[:64] if isinstance(last_error, dict) else ""
    )
    payment_fail(payment, error=error, decline_code=decline_code, now=now)
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
        payment_save(payment, now)
        return f"payment {payment.pk}: awaiting the payment"
    customer_id = session.get("customer")
    if isinstance(customer_id, str) and customer_id:
        payment.stripe_customer_id = customer_id
    if not payment_succeed(
        payment,
        intent_id=intent_id,
        amount=session.get("amount_total"),
        currency=session.get("currency"),
        now=now,
    ):
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    enqueue_on_commit("invoices.tasks.remember_payment_method", payment.pk)
    return f"payment {payment.pk} succeeded"


def _on_checkout_failed(session: dict, now: datetime) -> str:
    payment = _payment_of(session)
    if payment is None:
        return "ignored: no payment of ours"
    if payment.status != Payment.PROCESSING:
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    payment_fail(payment, error="the delayed payment of the Checkout session failed", now=now)
    return f"payment {payment.pk} failed"


def _on_checkout_expired(session: dict, now: datetime) -> str:
    payment = _payment_of(session)
    if payment is None:
        return "ignored: no payment of ours"
    if payment.status != Payment.PROCESSING:
        return f"payment {payment.pk}: nothing to do ({payment.status})"
    payment_close(payment, Payment.CANCELED, error="the Checkout session expired unpaid", now=now)
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
