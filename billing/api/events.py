"""POST /api/v1/events: a batch of usage events."""

from django.conf import settings
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.serializers import (
    EventBatchResultSerializer,
    EventBatchSerializer,
)
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH, batch_parse, events_ingest
from common.errors import BillingError, InvalidRequest
from common.rest_api import error_body
from common.storable import may_hold_unstorable_text
from customers.models import ApiKey


class PayloadTooLarge(BillingError):
    status_code = 413
    error_type = "payload_too_large"


def read_body(request, *, limit: int) -> bytes:
    """The raw body, refused past `limit` bytes, with or without a Content-Length."""
    django_request = request._request
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes; nothing was stored")
    body = django_request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes; nothing was stored")
    return body


def rejected_body(rejected) -> list[dict]:
    """What was refused, as an ingestion answer names it: each by its index in the
    request and its id, with the reason in the error envelope."""
    return [
        {"index": r.index, "id": r.id, "error": error_body("invalid_request", r.message)["error"]}
        for r in rejected
    ]


class EventsApi(APIView):
    """POST a batch of usage events (scope events:write)."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}
    parser_classes = []  # the body is read and parsed here, once
    schema_may_conflict = False  # a repeated event is a duplicate, not a conflict

    # Named by media type: with no parser, the schema would find no request body.
    @extend_schema(
        request={"application/json": EventBatchSerializer},
        responses={202: EventBatchResultSerializer},
    )
    def post(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(content_type or "none")
        body = read_body(request, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        try:
            payload = batch_parse(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise InvalidRequest(
                'the body must be an object {"events": [...]}',
                fields={"events": ["must be a list of events"]},
            )
        events = payload["events"]
        if len(events) > MAX_EVENTS_PER_BATCH:
            raise PayloadTooLarge(
                f"{len(events)} events; at most {MAX_EVENTS_PER_BATCH} a request; none stored"
            )
        result = events_ingest(events=events, may_hold_unstorable=may_hold_unstorable_text(body))
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": rejected_body(result.rejected),
        }
        if result.other:
            # Added in v1.4, when some are: stored events whose values of grouped
            # properties count under "other" (billing.usage.group_limits).
            body["other"] = [
                {"index": o.index, "id": o.id, "meter": o.meter, "properties": o.properties}
                for o in result.other
            ]
        if result.unmetered:
            # Present when some are: stored events no meter reads, so billed as
            # nothing (a misspelt event_name, or a meter not made yet).
            body["unmetered"] = [
                {"index": u.index, "id": u.id, "event_name": u.event_name} for u in result.unmetered
            ]
        return Response(body, status=status.HTTP_202_ACCEPTED)
