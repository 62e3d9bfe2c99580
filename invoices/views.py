"""Stripe's webhooks: POST /webhooks/stripe/. A plain Django view outside the API
(Stripe signs its requests; it holds no API key and sends no CSRF token)."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from common.errors import WebhookSignatureError
from common.rest_api import error_body
from invoices import stripe_events

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """200 once the event is processed (or was already: a repeat is harmless);
    400 when the signature does not verify, or a signed event cannot be stored
    (nothing is stored); 413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused
    unread (config.middleware answers first; this holds without it); 500 when the
    processing failed, so that Stripe delivers the event again (the error is on
    the event in the admin)."""
    try:
        payload = request.body
    except RequestDataTooBig:
        return JsonResponse(
            error_body("payload_too_large", "request body is too large"), status=413
        )
    try:
        event, duplicate = stripe_events.stripe_event_receive(
            payload=payload,
            signature=request.headers.get("Stripe-Signature"),
            now=timezone.now(),
        )
    except (WebhookSignatureError, stripe_events.StripeEventRefused) as error:
        return JsonResponse(error_body("invalid_request", error.message), status=400)
    except Exception:
        logger.exception("Stripe webhook: the event could not be processed")
        return JsonResponse(
            {"error": {"type": "server_error", "message": "the event could not be processed"}},
            status=500,
        )
    return JsonResponse({"received": event.id, "duplicate": duplicate})
