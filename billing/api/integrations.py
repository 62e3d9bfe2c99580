"""Usage from where AI teams already have it: POST /api/v1/integrations/litellm
(LiteLLM's generic_api callback), .../openrouter (OpenRouter's usage records) and
POST /v1/traces (OTLP/HTTP), each with our API key (scope events:write), each
stored through the ingestion of POST /events (billing.integrations.ingest).

GET and PUT on /api/v1/integrations/<source> read and change the source's mapping
(scopes read and admin): one view class per path, the source's ingestion its
`post` where calls arrive on the same path. GET .../<source>/refused lists the
records refused (kept BILLING_REFUSED_RECORD_DAYS), POST .../refused/<id>/replay
takes one again (billing.integrations.refused_records, .replay)."""

import zlib

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.events import PayloadTooLarge, read_body, rejected_body
from billing.api.report_queries import refuse_unknown
from billing.api.usage import parse_time_param
from billing.integration_models import IntegrationSource, RefusedRecord
from billing.integrations import litellm, openrouter, otlp
from billing.integrations.calls import MAX_CALLS_PER_REQUEST, REFUSAL_CODES
from billing.integrations.ingest import (
    IntegrationResult,
    Received,
    TooManyRecords,
    calls_ingest,
    json_records,
    mapping_of,
    records_received,
    source_row,
)
from billing.integrations.mapping import (
    mapping_checked,
    mapping_save,
    models_seen_of,
    source_known,
    unknown_source_words,
)
from billing.integrations.refused_records import record_value, refused_records_of
from billing.integrations.replay import refused_record_replay
from billing.serializers import GatewayResultSerializer
from common.errors import InvalidRequest, NotFound
from common.rest_api import CursorPagination
from customers.models import ApiKey
from plans.api import paginated

JSON_TYPES = {"application/json", "application/x-ndjson", "application/jsonl", "text/plain"}


def content_type_of(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def result_body(result: IntegrationResult) -> dict:
    """The answer of a gateway's POST, as POST /events answers (accepted and
    duplicates count events; rejected names records by index and call id), with
    the calls billed, the records rightly not billed and the models priced at a
    card's default row."""
    body = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "calls": result.calls,
        "skipped": result.skipped,
        "rejected": rejected_body(result.rejected),
        "unpriced_models": result.unpriced_models,
    }
    if result.unmetered:
        body["unmetered"] = result.unmetered
    return body


def too_many_calls(count: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{count} records; at most {MAX_CALLS_PER_REQUEST} a request; none stored"
    )


def mapping_body(row: IntegrationSource) -> dict:
    """A source's mapping as GET and PUT answer it, with its preview: the last
    calls as stored, and each model name received with what it maps to now and
    whether the rate card knows it (billing.integrations.mapping.models_seen_of)."""
    return {
        "source": row.source,
        "event_name": row.event_name,
        "customer_from": row.customer_from,
        "models": row.models or {},
        "token_types": row.token_types or {},
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
        "updated_by": row.updated_by,
        "recent": row.recent or [],
        "models_seen": models_seen_of(row),
    }


_MAPPING = inline_serializer(
    "IntegrationMapping",
    {
        "source": serializers.ChoiceField(choices=IntegrationSource.SOURCES),
        "event_name": serializers.CharField(),
        "customer_from": serializers.CharField(),
        "models": serializers.DictField(child=serializers.CharField()),
        "token_types": serializers.DictField(child=serializers.CharField(allow_null=True)),
        "updated_at": serializers.DateTimeField(allow_null=True),
        "updated_by": serializers.CharField(),
        "recent": serializers.JSONField(
            help_text='The last calls: [{"at", "id", "customer", "model", "mapped", "tokens", '
            '"provider_cost", "error"}], newest first.'
        ),
        "models_seen": serializers.JSONField(
            help_text='{model as sent: {"mapped", "requested", "calls", "last_seen", '
            '"known"}}; mapped: what it is priced as now (the mapping, the name asked for '
            "(requested, when the source gives another), the name without provider prefix "
            "and dated suffix); known false: no rate card names that, it is priced at the "
            "card's default row."
        ),
    },
)


class IntegrationSourceApi(APIView):
    """A source's mapping: the event name its calls become, where a call names
    the customer, the source's model names -> the rate card's values, and the
    token kinds -> token_type (null: not billed). Scope `read` to read, `admin` to
    change. A source receiving calls on the same path subclasses this with its
    `post` (GatewayIngestApi)."""

    required_scopes = {"GET": ApiKey.SCOPE_READ, "PUT": ApiKey.SCOPE_ADMIN}
    # The source this path is for; None: named by the URL (`source`).
    source: str | None = None

    def source_of(self, source: str | None) -> str:
        source = self.source or source or ""
        if not source_known(source):
            raise NotFound(unknown_source_words(source))
        return source

    @extend_schema(responses=_MAPPING)
    def get(self, request, source: str | None = None):
        return Response(mapping_body(source_row(self.source_of(source))))

    @extend_schema(
        request=inline_serializer(
            "IntegrationMappingSet",
            {
                "event_name": serializers.CharField(required=False),
                "customer_from": serializers.CharField(required=False),
                "models": serializers.DictField(child=serializers.CharField(), required=False),
                "token_types": serializers.DictField(
                    child=serializers.CharField(allow_null=True), required=False
                ),
            },
        ),
        responses=_MAPPING,
    )
    def put(self, request, source: str | None = None):
        """Changes the fields given (any of them); 400 naming each field that is
        wrong or unknown, and nothing is changed then."""
        source = self.source_of(source)
        changes = mapping_checked(source, request.data)
        row = source_row(source)
        mapping_save(row, changes, by=f"API key {request.user.key.name}")
        row.refresh_from_db()
        return Response(mapping_body(row))


class GatewayIngestApi(IntegrationSourceApi):
    """A gateway whose calls arrive on its own path (GET and PUT its mapping): POST
    its records (scope events:write), read once, each record a call or a refusal,
    the calls stored through ingest.calls_ingest. A subclass names the source and
    how its records are read."""

    required_scopes = {**IntegrationSourceApi.required_scopes, "POST": ApiKey.SCOPE_EVENTS_WRITE}
    schema_may_conflict = False

    def get_parsers(self):
        # A call's body is read and parsed by post, once; PUT's mapping is JSON.
        method = getattr(self.request, "method", None)
        return [] if method == "POST" else super().get_parsers()

    def received(self, records: list, mapping) -> Received:
        raise NotImplementedError

    def received_of_body(self, body: bytes, mapping) -> Received:
        """The calls of a body of JSON records (ingest.json_records)."""
        return self.received(self.records_of(body), mapping)

    @staticmethod
    def records_of(body: bytes) -> list:
        try:
            return json_records(body, limit=MAX_CALLS_PER_REQUEST)
        except TooManyRecords as exc:
            raise too_many_calls(exc.count) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc

    @extend_schema(
        request={
            "application/json": OpenApiTypes.ANY,
            "application/x-ndjson": OpenApiTypes.STR,
        },
        responses={202: GatewayResultSerializer},
    )
    def post(self, request):
        if content_type_of(request) not in JSON_TYPES:
            raise exceptions.UnsupportedMediaType(content_type_of(request) or "none")
        body = unpacked_body(request)
        row = source_row(self.source)
        result = calls_ingest(row, self.received_of_body(body, mapping_of(row)))
        return Response(result_body(result), status=status.HTTP_202_ACCEPTED)


class LiteLLMIngestApi(GatewayIngestApi):
    """What LiteLLM's generic_api callback sends: a JSON array, NDJSON or one
    StandardLoggingPayload (billing.integrations.litellm); GET and PUT its mapping."""

    source = IntegrationSource.LITELLM

    def received(self, records: list, mapping) -> Received:
        return records_received(records, mapping, litellm.call_of)


class OpenRouterIngestApi(GatewayIngestApi):
    """OpenRouter's generations or completions with usage accounting
    (billing.integrations.openrouter); GET and PUT its mapping."""

    source = IntegrationSource.OPENROUTER

    def received_of_body(self, body: bytes, mapping) -> Received:
        """Its records, or the OTLP JSON export its Broadcast's webhook destination
        sends (read as POST /v1/traces reads one, with this source's mapping)."""
        records = self.records_of(body)
        if len(records) == 1 and isinstance(records[0], dict) and "resourceSpans" in records[0]:
            return export_received(records[0], openrouter.broadcast_mapping(mapping))
        return records_received(openrouter.unwrapped(records), mapping, openrouter.call_of)


# Content-Encoding -> zlib's wbits for it.
PACKED = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# A packed body is handed to the unpacker a piece at a time: UNPACK_FEED_FIRST bytes
# at a member's start, twice as many each time the member goes on, at most
# UNPACK_FEED_MOST. What a member leaves of its last piece (zlib copies it out as
# unused_data) is then at most UNPACK_FEED_FIRST plus twice what the member read, so
# a body of any number of members costs work linear in its size. Handing the rest of
# the body each time copied it once a member: 4 MiB of empty members (210,000 of
# them) kept a worker busy for 16 s, three such requests at once for over 90 s.
UNPACK_FEED_FIRST = 64
UNPACK_FEED_MOST = 256 * 1024


def unpacked_body(request) -> bytes | bytearray:
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
    return body_unpacked(body, encoding, limit=limit)


def body_unpacked(body: bytes, encoding: str, *, limit: int) -> bytearray:
    """A body packed in `encoding` (PACKED), unpacked: InvalidRequest (400) for one
    that is malformed, ends inside a member or has bytes after its end (a deflate
    stream is one member), PayloadTooLarge (413) as soon as more than `limit` bytes
    come out. Work and copies linear in the body, whatever its members
    (UNPACK_FEED_FIRST). The answer is a bytearray, so that the body is not copied
    once more at the end (every reader of a body takes one)."""
    view = memoryview(body)
    unpacked = bytearray()
    start = 0
    while True:
        unpacker = zlib.decompressobj(PACKED[encoding])
        position, feed = start, UNPACK_FEED_FIRST
        while not unpacker.eof:
            if position == len(view):
                raise InvalidRequest(f"malformed {encoding} body: it ends before its data does")
            piece = view[position : position + feed]
            position += len(piece)
            feed = min(2 * feed, UNPACK_FEED_MOST)
            try:
                # At most one byte past the limit comes out: enough to tell.
                unpacked += unpacker.decompress(piece, limit + 1 - len(unpacked))
            except zlib.error as exc:
                raise InvalidRequest(f"malformed {encoding} body: {exc}") from None
            if len(unpacked) > limit:
                raise PayloadTooLarge(
                    f"request body over {limit} bytes unpacked; nothing was stored"
                )
        # The member ends where what it left of its last piece begins.
        start = position - len(unpacker.unused_data)
        if start == len(view):
            return unpacked
        if encoding != "gzip":
            raise InvalidRequest(f"malformed {encoding} body: bytes after its end")


def export_received(export, mapping) -> Received:
    """The calls of a decoded OTLP export (billing.integrations.otlp), its
    refusals as the API's: a structure that is not OTLP's a 400, too many spans a
    413."""
    try:
        return otlp.received_of_export(export, mapping)
    except otlp.MalformedExport as exc:
        raise InvalidRequest(str(exc)) from None
    except otlp.TooManySpans as exc:
        raise PayloadTooLarge(str(exc)) from None


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
        except otlp.MalformedExport as exc:
            raise InvalidRequest(str(exc)) from None
        row = source_row(IntegrationSource.OTLP)
        result = calls_ingest(row, export_received(export, mapping_of(row)))
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


# Refused records


def _source_named(source: str) -> str:
    if not source_known(source):
        raise NotFound(unknown_source_words(source))
    return source


@extend_schema_field(OpenApiTypes.ANY)
class RecordField(serializers.Field):
    """The record as received (its JSON), or, kept cut (replayable false), the start
    of its JSON text as a string."""

    def to_representation(self, row):
        return record_value(row)


class RefusedRecordSerializer(serializers.ModelSerializer):
    record = RecordField(
        source="*",
        help_text="The record as received (its texts over 1,000 characters shortened); "
        "when replayable is false, the start of its JSON text, kept cut.",
    )
    reason = serializers.ChoiceField(choices=REFUSAL_CODES)

    class Meta:
        model = RefusedRecord
        fields = [
            "id",
            "received_at",
            "reason",
            "message",
            "call_id",
            "record",
            "replayable",
            "replayed_at",
            "replay_outcome",
        ]


class RefusedRecordReplaySerializer(GatewayResultSerializer):
    refused_record = RefusedRecordSerializer(help_text="The row replayed, as it is now.")


class RefusedPagination(CursorPagination):
    ordering = "-id"


REFUSED_PARAMS = frozenset({"from", "reason", "cursor", "limit"})


class RefusedRecordsApi(APIView):
    """A source's refused records, newest first: the records a request carried that
    could not be billed (no customer, a customer we do not know, tokens that do not
    add up...), each as received, kept 30 days. Scope `read`."""

    required_scopes = {"GET": ApiKey.SCOPE_READ}
    pagination_class = RefusedPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from", str, description="received at or after (ISO 8601 with an offset)"
            ),
            OpenApiParameter("reason", str, enum=list(REFUSAL_CODES), description="one reason"),
            OpenApiParameter("limit", int, description="rows a page (at most 500)"),
        ],
        responses=RefusedRecordSerializer(many=True),
    )
    def get(self, request, source: str):
        source = _source_named(source)
        refuse_unknown(request, REFUSED_PARAMS, f"/integrations/{source}/refused")
        since = parse_time_param(request, "from")
        reason = request.query_params.get("reason")
        if reason is not None and reason not in REFUSAL_CODES:
            raise InvalidRequest(
                f"reason must be one of {', '.join(REFUSAL_CODES)}",
                fields={"reason": [f"one of {', '.join(REFUSAL_CODES)}"]},
            )
        rows = refused_records_of(source=source, since=since, reason=reason)
        return paginated(self, request, rows, RefusedRecordSerializer)


class RefusedRecordReplayApi(APIView):
    """Take a refused record again, through its source's reader and the same
    ingestion, with the source's mapping as it is now (once the mapping or the
    customer is fixed). Answered as the gateway's POST is, with the record's row:
    replayed_at and replay_outcome (accepted, duplicate, skipped, refused: then
    reason and message say why now). A call already stored is a duplicate: replaying
    twice bills once. 409 for a record kept cut (replayable false). Scope
    `events:write` or `admin`."""

    required_scopes = {"POST": (ApiKey.SCOPE_EVENTS_WRITE, ApiKey.SCOPE_ADMIN)}
    parser_classes = []  # no body

    @extend_schema(
        request=None,
        responses=RefusedRecordReplaySerializer,
    )
    def post(self, request, source: str, record_id: str):
        source = _source_named(source)
        row = None
        if record_id.isascii() and record_id.isdigit() and len(record_id) <= 18:
            row = RefusedRecord.objects.filter(source=source, pk=int(record_id)).first()
        if row is None:
            raise NotFound(f"no refused record {record_id!r} of {source}")
        replayed = refused_record_replay(row=row, now=timezone.now())
        return Response(
            {**result_body(replayed.result), "refused_record": RefusedRecordSerializer(row).data}
        )
