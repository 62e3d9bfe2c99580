"""Usage endpoints: event ingestion and usage reads."""

import json
import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.errors import BillingError, InvalidRequest
from billing.ingestion import MAX_EVENTS_PER_BATCH, events_ingest
from billing.money import format_decimal
from billing.periods import month_start
from config.api import error_body
from customers.models import ApiKey, Customer


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


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class EventsApi(APIView):
    """POST a batch of usage events (scope events:write)."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}
    parser_classes = []  # the body is read and parsed here, once

    @extend_schema(
        request=inline_serializer(
            "EventBatch", {"events": serializers.ListField(child=serializers.DictField())}
        ),
        responses={
            202: inline_serializer(
                "EventBatchResult",
                {
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def post(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(content_type or "none")
        body = read_body(request, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        try:
            payload = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
        result = events_ingest(events=events)
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [
                    {
                        "index": r.index,
                        "id": r.id,
                        "error": error_body("invalid_request", r.message)["error"],
                    }
                    for r in result.rejected
                ],
            },
            status=status.HTTP_202_ACCEPTED,
        )


def parse_time_param(request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(
            f"{name} must be ISO 8601 with an offset", fields={name: ["e.g. 2026-11-01T00:00:00Z"]}
        )
    return moment.astimezone(UTC)


class UsageApi(APIView):
    """The customer's usage per meter for a period (default: the current period)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", str, description="ISO 8601; default: current period"),
            OpenApiParameter("period_end", str, description="ISO 8601; default: a period later"),
        ],
        responses=inline_serializer("Usage", {"lines": serializers.ListField()}),
    )
    def get(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        now = datetime.now(UTC)
        start = parse_time_param(request, "period_start")
        end = parse_time_param(request, "period_end")
        zone = zoneinfo.ZoneInfo(customer.timezone)
        if start is None:
            start = month_start(now.astimezone(zone))
        if end is None:
            end = month_start(start.astimezone(zone), months=1)
        if end <= start:
            raise InvalidRequest(
                "period_end must be after period_start",
                fields={"period_end": ["must be after period_start"]},
            )
        meters = selectors.meters_used(customer_id=customer.id, start=start, end=end)
        quantities = selectors.usage_quantities(
            customer_id=customer.id, meters=meters, start=start, end=end
        )
        return Response(
            {
                "subscription": None,
                "customer": customer.external_id,
                "period_start": start.isoformat().replace("+00:00", "Z"),
                "period_end": end.isoformat().replace("+00:00", "Z"),
                "currency": customer.currency,
                "lines": [
                    {
                        "meter": m.code,
                        "aggregation": m.aggregation,
                        "model": None,
                        "quantity": format_decimal(quantities[m.id]),
                        "included": None,
                        "billable": None,
                    }
                    for m in meters
                ],
            }
        )
