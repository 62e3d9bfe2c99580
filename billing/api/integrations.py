"""Usage from where AI teams already have it: POST /api/v1/integrations/litellm
(LiteLLM's generic_api callback), .../openrouter (OpenRouter's usage records) and
POST /v1/traces (OTLP/HTTP), each with our API key (scope events:write), each
stored through the ingestion of POST /events (billing.integrations.ingest)."""

import zlib

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.events import PayloadTooLarge, read_body
from billing.core.errors import InvalidRequest
from billing.integration_models import IntegrationSource
from billing.integrations import litellm, otlp
from billing.integrations.calls import MAX_CALLS_PER_REQUEST
from billing.integrations.ingest import IntegrationResult, calls_ingest, mapping_of, source_row
from config.api import error_body
from customers.models import ApiKey

JSON_TYPES = {"application/json", "application/x-ndjson", "application/jsonl", "text/plain"}


def content_type_of(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def result_body(result: IntegrationResult) -> dict:
    """The answer of a gateway's POST, as POST /events answers (accepted and
    duplicates count events; rejected names records by index and call id), with
    the calls billed and the records rightly not billed."""
    body = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "calls": result.calls,
        "skipped": result.skipped,
        "rejected": [
            {
                "index": r.index,
                "id": r.id,
                "error": error_body("invalid_request", r.message)["error"],
            }
            for r in result.rejected
        ],
    }
    if result.unmetered:
        body["unmetered"] = result.unmetered
    return body


def too_many_calls(count: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{count} records; at most {MAX_CALLS_PER_REQUEST} a request; none stored"
    )


class LiteLLMIngestApi(APIView):
    """POST what LiteLLM's generic_api callback sends (scope events:write)."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}
    parser_classes = []  # the body is read and parsed here, once
    schema_may_conflict = False

    def post(self, request):
        if content_type_of(request) not in JSON_TYPES:
            raise exceptions.UnsupportedMediaType(content_type_of(request) or "none")
        body = read_body(request, limit=settings.BILLING_INTEGRATION_MAX_BODY)
        try:
            records = litellm.records_of(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc
        if len(records) > MAX_CALLS_PER_REQUEST:
            raise too_many_calls(len(records))
        row = source_row(IntegrationSource.LITELLM)
        received = litellm.received_of(records, mapping_of(row))
        result = calls_ingest(row, received)
        return Response(result_body(result), status=status.HTTP_202_ACCEPTED)


# Content-Encoding -> zlib's wbits for it.
PACKED = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def unpacked_body(request) -> bytes:
    """The body, unpacked when sent gzip (or deflate) compressed, as OTLP exporters
    may send it: never more than BILLING_INTEGRATION_MAX_BODY bytes read, nor
    unpacked, so that a few kilobytes unpacking to gigabytes are a 413, not memory
    spent. Several gzip members follow one another as gzip allows."""
    limit = settings.BILLING_INTEGRATION_MAX_BODY
    body = read_body(request, limit=limit)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in PACKED:
        raise exceptions.UnsupportedMediaType(
            content_type_of(request), f"unsupported Content-Encoding {encoding!r}; gzip or none"
        )
    unpacked = bytearray()
    rest = body
    while True:
        unpacker = zlib.decompressobj(PACKED[encoding])
        try:
            unpacked += unpacker.decompress(rest, limit + 1 - len(unpacked))
        except zlib.error as exc:
            raise InvalidRequest(f"malformed {encoding} body: {exc}") from None
        if len(unpacked) > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes unpacked; nothing was stored")
        if not unpacker.eof:
            raise InvalidRequest(f"malformed {encoding} body: it ends before its data does")
        rest = unpacker.unused_data
        if not rest:
            return bytes(unpacked)
        if encoding != "gzip":
            raise InvalidRequest(f"malformed {encoding} body: bytes after its end")


# An HTTP refusal -> the google.rpc code its OTLP answer carries.
RPC_CODES = {
    401: otlp.UNAUTHENTICATED,
    403: otlp.PERMISSION_DENIED,
    404: otlp.NOT_FOUND,
    413: otlp.RESOURCE_EXHAUSTED,
    429: otlp.RESOURCE_EXHAUSTED,
    503: otlp.UNAVAILABLE,
}
# What a refusal's answer keeps of its headers.
KEPT_HEADERS = ("Retry-After", "WWW-Authenticate")


class OtlpTracesApi(APIView):
    """POST an OTLP/HTTP trace export, as an OpenTelemetry SDK's or collector's
    exporter sends it (scope events:write): protobuf or JSON, gzip or not. Spans
    carrying gen_ai.usage tokens are billed (billing.integrations.otlp). Answered
    as OTLP/HTTP asks, in the request's encoding: 200 with an
    ExportTraceServiceResponse (a partial success naming the spans refused), or a
    google.rpc.Status for a refused request (in JSON, beside the API's error)."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}
    parser_classes = []  # the body is read and decoded here, once
    schema_may_conflict = False

    # Not in the API's schema: its bodies and answers are OTLP's (the
    # opentelemetry-proto messages), not this API's JSON and error envelope;
    # docs/api-tour.md says how to point an exporter at it.
    @extend_schema(exclude=True)
    def post(self, request):
        content_type = content_type_of(request)
        if content_type not in (otlp.PROTOBUF, otlp.JSON):
            raise exceptions.UnsupportedMediaType(
                content_type or "none",
                f"unsupported Content-Type {content_type or 'none'!r}; "
                f"{otlp.PROTOBUF} or {otlp.JSON}",
            )
        body = unpacked_body(request)
        try:
            if content_type == otlp.PROTOBUF:
                export = otlp.decode_protobuf(body)
            else:
                export = otlp.decode_json(body)
            row = source_row(IntegrationSource.OTLP)
            received = otlp.received_of_export(export, mapping_of(row))
        except otlp.MalformedExport as exc:
            raise InvalidRequest(str(exc)) from None
        except otlp.TooManySpans as exc:
            raise PayloadTooLarge(str(exc)) from None
        result = calls_ingest(row, received)
        if content_type == otlp.PROTOBUF:
            return HttpResponse(
                otlp.export_response(result.rejected).SerializeToString(),
                content_type=otlp.PROTOBUF,
            )
        return Response(otlp.export_response_json(result.rejected))

    def perform_content_negotiation(self, request, force=False):
        """Whatever the Accept header asks (`application/x-protobuf`, say): the answer's
        encoding is the request's, never a 406."""
        return super().perform_content_negotiation(request, force=True)

    def handle_exception(self, exc):
        """The API's refusal, as OTLP/HTTP gives one: a google.rpc.Status, in
        protobuf for a protobuf request; in JSON its code and message beside the
        API's error envelope."""
        response = super().handle_exception(exc)
        error = (response.data or {}).get("error", {}) if isinstance(response, Response) else {}
        message = error.get("message") or response.reason_phrase
        code = RPC_CODES.get(response.status_code, otlp.INVALID_ARGUMENT)
        if content_type_of(self.request) == otlp.PROTOBUF:
            answer = HttpResponse(
                otlp.status_protobuf(code, message),
                status=response.status_code,
                content_type=otlp.PROTOBUF,
            )
        else:
            answer = Response(
                {"code": code, "message": message, **(response.data or {})},
                status=response.status_code,
            )
        for header in KEPT_HEADERS:
            if header in response:
                answer[header] = response[header]
        return answer
