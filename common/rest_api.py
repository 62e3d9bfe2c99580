"""REST plumbing shared by every endpoint: strict JSON parsing, the error
envelope, pagination, and decimal fields that read and write exact strings."""

import json
import math
import sys
from decimal import Decimal
from functools import partial

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, negotiation, pagination, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from common import nesting, outage
from common.errors import BillingError
from common.money import (
    MAX_DECIMAL_TEXT,
    PLAIN_DECIMAL,
    DecimalRefused,
    decimal_input,
    format_decimal,
    format_money,
)
from common.nesting import MAX_BODY_DEPTH, may_nest_deeper_than
from common.periods import parse_instant
from common.storable import (
    may_hold_unstorable_text,
    reject_json_constant,
    storable_json_number,
    unstorable_json_reason,
)

ERROR_TYPES = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    405: "invalid_request",
    406: "invalid_request",
    409: "conflict",
    413: "payload_too_large",
    415: "invalid_request",
    429: "rate_limited",
}


def error_body(error_type: str, message: str, fields: dict | None = None) -> dict:
    body = {"type": error_type, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _storable_number(text: str) -> Decimal:
    number = storable_json_number(text)
    if number is None:
        raise ValueError(f"the number {text[:40]} is outside the range that can be stored")
    return number


def json_body(body: bytes):
    """A request body read as StrictJSONParser reads it, or its ParseError. A body
    nesting deeper than MAX_BODY_DEPTH is read without recursion (common.nesting),
    then refused for its depth (or as malformed JSON, if it is that too)."""
    deep = may_nest_deeper_than(body, MAX_BODY_DEPTH)
    loads = partial(nesting.loads, max_depth=MAX_BODY_DEPTH) if deep else json.loads
    try:
        data = loads(
            body.decode("utf-8"),
            parse_float=_storable_number,
            parse_constant=reject_json_constant,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError(f"malformed JSON: {exc}") from exc
    if deep and unstorable_json_reason(data, check_text=False, max_depth=MAX_BODY_DEPTH):
        raise exceptions.ParseError(f"the request body nests deeper than {MAX_BODY_DEPTH} levels")
    if may_hold_unstorable_text(body):
        reason = unstorable_json_reason(data, check_text=True, max_depth=sys.maxsize)
        if reason is not None:
            raise exceptions.ParseError(f"the request body's {reason}")
    return data


class StrictJSONParser(parsers.JSONParser):
    """JSON with exact decimals: 0.1 arrives as Decimal('0.1'), never a float,
    and NaN or Infinity are refused rather than read; so are numbers and text no
    column could store (common.storable), whichever field holds them."""

    def parse(self, stream, media_type=None, parser_context=None):
        return json_body(stream.read())


def plainly_accepted(accept: str, media_type: str) -> bool:
    """Whether an Accept header (`*/*` when absent) asks for nothing but
    `media_type`, with no need to parse it."""
    return accept in ("*/*", media_type)


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, with the Accept headers clients send nearly always (none,
    `*/*`, `application/json`) answered without parsing them, as DRF answers them:
    the first renderer (`application/json`). Anything else, and a format asked in
    the URL, is negotiated by DRF (406 for what no renderer gives)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        first = renderers[0] if renderers else None
        if (
            first is not None
            and not format_suffix
            and plainly_accepted(accept, first.media_type)
            and api_settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)


_SHARED_SERIALIZERS: dict[type, serializers.Serializer] = {}


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """What `serializer_class(data=data).is_valid(raise_exception=True)` gives:
    the validated data, or that ValidationError. For a flat serializer that needs
    no context, on the hot paths: a valid body is validated by one instance kept
    for the process, since building a serializer's fields (DRF deep-copies them
    per instance) costs most of validating a small body; an invalid one is
    validated again by a new instance, so its errors are exactly DRF's."""
    shared = _SHARED_SERIALIZERS.get(serializer_class)
    if shared is None:
        shared = serializer_class()
        shared.fields  # noqa: B018 (bound now, before requests share it)
        _SHARED_SERIALIZERS[serializer_class] = shared
    try:
        return shared.run_validation(data)
    except serializers.ValidationError:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def request_data(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request's body as `serializer_class` validates it; a 400 with its errors
    when it is not valid."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {dotted.path: [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else str(key)
            out.update(flatten_errors(value, f"{prefix}{name}." if name else prefix))
    elif (
        isinstance(detail, list) and detail and all(not isinstance(d, dict | list) for d in detail)
    ):
        out[prefix.rstrip(".") or "non_field_errors"] = [str(d) for d in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if value:
                out.update(flatten_errors(value, f"{prefix}{index}."))
    else:
        out[prefix.rstrip(".") or "non_field_errors"] = [str(detail)]
    return out


def exception_handler(exc, context):
    """Every refusal as {"error": {"type", "message", "fields"}} with a 4xx status;
    a database out of reach as a 503 with Retry-After (common.outage)."""
    if outage.database_unavailable(exc):
        outage.log_unavailable(context["request"], exc)
        return _unavailable(Response)
    if isinstance(exc, BillingError):
        body = error_body(exc.error_type, exc.message, exc.fields)
        # What a refusal carries besides (an e-invoice's failed rules).
        body["error"].update(exc.details)
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "request body is too large"),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(math.ceil(exc.wait))
    error_type = ERROR_TYPES.get(exc.status_code, "invalid_request")
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        path, messages = next(iter(fields.items()), ("request", ["is invalid"]))
        message = f"{path}: {messages[0]}" if path != "non_field_errors" else messages[0]
        return Response(error_body(error_type, message, fields), status=exc.status_code)
    return Response(
        error_body(error_type, str(exc.detail)), status=exc.status_code, headers=headers
    )


def _unavailable(response_class):
    """The API's answer while the database is out of reach (common.outage): a DRF
    Response from the exception handler, a JsonResponse from handler500."""
    return response_class(
        error_body("service_unavailable", outage.MESSAGE),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)},
    )


def handler404(request, exception=None):
    """JSON for /api/ paths, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", f"no such path {request.path!r}"), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    # Raised outside any view (a middleware's session or messages): a database
    # out of reach is still a 503 (common.outage); Django logged the traceback.
    if outage.database_unavailable(sys.exc_info()[1]):
        if request.path.startswith("/api/"):
            return _unavailable(JsonResponse)
        return outage.unavailable_page()
    if request.path.startswith("/api/"):
        body = error_body("server_error", "internal error; the request changed nothing")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)


class CursorPagination(pagination.CursorPagination):
    """{"results": [...], "next": url|null}, stable under inserts."""

    ordering = "id"
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        """DRF's cursor, refused (404, as DRF refuses a malformed one) when its
        position is not a row id: ordered by id, any other text would reach the
        database as a number and fail there."""
        cursor = super().decode_cursor(request)
        position = None if cursor is None else cursor.position
        ordering = (self.ordering,) if isinstance(self.ordering, str) else self.ordering
        if (
            position is not None
            and ordering[0].lstrip("-") in ("id", "pk")
            and not (position.isascii() and position.isdigit() and len(position) <= 18)
        ):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page, or null on the last one.",
                },
            },
            "required": ["results", "next"],
        }


# What the schema promises is what to_internal_value accepts from a string (a JSON
# number is accepted too): common.money.decimal_input's plain decimal.
DECIMAL_PATTERN = f"^{PLAIN_DECIMAL}$"


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": DECIMAL_PATTERN,
        "minLength": 1,
        "maxLength": MAX_DECIMAL_TEXT,
        "example": "0.05",
        "description": (
            "exact decimal: a JSON number, or a string of ASCII digits with an optional "
            'fraction ("12.50", "-3" where negatives are allowed); no spaces, "+", "_" or '
            "exponent in a string"
        ),
    }
)
class DecimalString(serializers.Field):
    """A quantity or price: accepts a JSON number or a plain decimal string, answers a
    plain string. What it accepts and refuses is common.money.decimal_input's:
    booleans, other strings, non-finite values and numbers the ledger cannot store
    exactly (more than 10 decimal places or 18 integer digits) are refused."""

    def to_internal_value(self, data):
        try:
            return decimal_input(data)
        except DecimalRefused as refused:
            raise serializers.ValidationError(str(refused), code=refused.code) from None

    def to_representation(self, value):
        return None if value is None else format_decimal(Decimal(value))


class MoneyString(DecimalString):
    """An amount written with its currency's minor digits: '20.00', '500' (JPY)."""

    def __init__(self, *, currency_attr: str = "currency", **kwargs):
        self.currency_attr = currency_attr
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        return value, str(getattr(instance, self.currency_attr))

    def to_representation(self, value):
        amount, currency = value
        return None if amount is None else format_money(Decimal(amount), currency)


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a time without one is refused rather than guessed."""

    def to_internal_value(self, value):
        expected = "ISO 8601 with an offset, e.g. 2026-11-01T00:00:00Z"
        if not isinstance(value, str):
            self.fail("invalid", format=expected)
        try:
            return parse_instant(value)
        except ValueError:
            self.fail("invalid", format=expected)


class NoUnknownKeys:
    """A serializer mixin: a key the serializer does not know is a 400 naming it,
    not silently ignored (a typo in a deal would otherwise bill the plan's price)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A text that must arrive as a JSON string: 5 or true is a 400, not "5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="invalid_request | authentication_failed | permission_denied | not_found | "
        "conflict | payload_too_large | rate_limited | service_unavailable | server_error"
    )
    message = serializers.CharField(help_text="What went wrong, for a person to read.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="The input fields (dotted paths) at fault, each with its messages.",
    )


class ErrorSerializer(serializers.Serializer):
    """The envelope of every refusal: `{"error": {"type", "message", "fields"?}}`."""

    error = ErrorDetailSerializer()
