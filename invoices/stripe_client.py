"""The one way out to Stripe: a thin wrapper over the `stripe` library's
StripeClient, configured from the settings (STRIPE_API_KEY, STRIPE_API_BASE,
STRIPE_TIMEOUT_SECONDS), answering plain dicts.

Retries are ours, not the library's: its max_network_retries also retries 409
conflicts and whatever a Stripe-Should-Retry header asks for. Here a network
error (stripe.APIConnectionError: refused, reset, timed out) or an answer of 500
or more is tried again, after 0.5 s, 1 s, 2 s ..., up to
STRIPE_MAX_NETWORK_RETRIES times; any 4xx is raised at once. Every call that
writes carries the caller's idempotency key, the same on each retry, so that
Stripe does the work once however often the request is sent.
"""

import functools
import json
import logging
import time
from collections.abc import Callable

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.nesting import MAX_BODY_DEPTH, may_nest_deeper_than

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
RETRY_DELAY_SECONDS = 0.5
MAX_RETRY_DELAY_SECONDS = 5
SIGNATURE_TOLERANCE_SECONDS = 300
ERROR_TEXT_LIMIT = 1000


def enabled() -> bool:
    """True when payments go through Stripe (STRIPE_API_KEY is set)."""
    return bool(settings.STRIPE_API_KEY)


@functools.lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: int) -> stripe.StripeClient:
    http_client = stripe.RequestsClient(timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout))
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=http_client,
        max_network_retries=0,
    )


def client() -> stripe.StripeClient:
    if not enabled():
        raise ImproperlyConfigured("STRIPE_API_KEY is not set: payments are recorded by hand")
    return _client(
        settings.STRIPE_API_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS
    )


def is_retryable(error: stripe.StripeError) -> bool:
    """A network error the library deems worth another try, or a 5xx answer
    (unless Stripe says a retry would do nothing)."""
    if isinstance(error, stripe.APIConnectionError):
        return bool(getattr(error, "should_retry", True))
    status = error.http_status
    if status is None or status < 500:
        return False
    headers = {name.lower(): value for name, value in (error.headers or {}).items()}
    return headers.get("stripe-should-retry") != "false"


def _call(what: str, operation: Callable[[stripe.StripeClient], stripe.StripeObject]) -> dict:
    retries = max(0, settings.STRIPE_MAX_NETWORK_RETRIES)
    delay = RETRY_DELAY_SECONDS
    attempt = 0
    while True:
        try:
            return operation(client()).to_dict()
        except stripe.StripeError as error:
            if attempt >= retries or not is_retryable(error):
                raise
            attempt += 1
            logger.warning(
                "Stripe %s failed (%s); retry %d of %d in %.1f s",
                what,
                error_text(error),
                attempt,
                retries,
                delay,
            )
        time.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)


def customer_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "customer create",
        lambda c: c.v1.customers.create(params, {"idempotency_key": idempotency_key}),
    )


def customer_update(*, customer_id: str, params: dict, idempotency_key: str) -> dict:
    return _call(
        "customer update",
        lambda c: c.v1.customers.update(customer_id, params, {"idempotency_key": idempotency_key}),
    )


def customer_retrieve(*, customer_id: str) -> dict:
    # A read: Stripe takes no idempotency key on GET.
    return _call("customer retrieve", lambda c: c.v1.customers.retrieve(customer_id))


def payment_intent_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "payment intent create",
        lambda c: c.v1.payment_intents.create(params, {"idempotency_key": idempotency_key}),
    )


def payment_intent_retrieve(*, intent_id: str) -> dict:
    return _call("payment intent retrieve", lambda c: c.v1.payment_intents.retrieve(intent_id))


def refund_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "refund create",
        lambda c: c.v1.refunds.create(params, {"idempotency_key": idempotency_key}),
    )


def checkout_session_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "checkout session create",
        lambda c: c.v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key}),
    )


def checkout_session_retrieve(*, session_id: str) -> dict:
    return _call("checkout session retrieve", lambda c: c.v1.checkout.sessions.retrieve(session_id))


def webhook_event(*, payload: bytes, signature: str | None, secret: str) -> dict:
    """The event of a webhook request, once its Stripe-Signature header is checked
    by the library (stripe.Webhook.construct_event: an HMAC-SHA256 of
    "<t>.<payload>" with the endpoint's secret, made within the last 300 s).
    Raises stripe.SignatureVerificationError, or ValueError for a body that is
    not a Stripe event (one nested deeper than any is, too: the library's json.loads
    would recurse once a level)."""
    if may_nest_deeper_than(payload, MAX_BODY_DEPTH):
        raise ValueError(f"nests deeper than {MAX_BODY_DEPTH} levels")
    try:
        stripe.Webhook.construct_event(
            payload,
            signature,
            secret,
            tolerance=SIGNATURE_TOLERANCE_SECONDS,
            api_key=settings.STRIPE_API_KEY or None,
        )
    except (AttributeError, TypeError) as error:
        # Signed, but not a JSON object: the library reads it as one.
        raise ValueError("not a Stripe event") from error
    event = json.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise ValueError("not a Stripe event")
    return event


def error_text(error: stripe.StripeError) -> str:
    """What went wrong, for the admin: the HTTP status, Stripe's codes and message."""
    parts = [type(error).__name__]
    if error.http_status:
        parts.append(f"HTTP {error.http_status}")
    body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
    for key in ("code", "decline_code"):
        if body.get(key):
            parts.append(str(body[key]))
    message = error.user_message or str(error)
    return f"{' '.join(parts)}: {message}"[:ERROR_TEXT_LIMIT]


def error_decline_code(error: stripe.StripeError) -> str:
    """The card issuer's reason of a decline (Stripe's decline_code), or ''."""
    body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
    return str(body.get("decline_code") or "")[:64]


# Declines that another attempt with the same card cannot turn into a payment
# (Stripe's documentation of decline codes: the card is lost, stolen, closed,
# expired, not allowed to pay, or the issuer says not to try again). A payment
# declined so is not tried again, by the retry policy or by dunning.
HARD_DECLINES = frozenset(
    {
        "do_not_try_again",
        "expired_card",
        "fraudulent",
        "incorrect_number",
        "invalid_account",
        "invalid_number",
        "lost_card",
        "merchant_blacklist",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
        "card_not_supported",
        "currency_not_supported",
    }
)


def error_payment_intent_id(error: stripe.StripeError) -> str:
    """The PaymentIntent a card error is about (Stripe creates it, declined)."""
    body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
    intent = body.get("payment_intent")
    if isinstance(intent, dict):
        return str(intent.get("id") or "")
    return ""


def client_cache_clear() -> None:
    _client.cache_clear()
