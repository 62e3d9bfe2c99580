"""Usage from where AI teams already have it: POST /api/v1/integrations/litellm
(LiteLLM's generic_api callback), .../openrouter (OpenRouter's usage records) and
POST /v1/traces (OTLP/HTTP), each with our API key (scope events:write), each
stored through the ingestion of POST /events (billing.integrations.ingest).

GET and PUT on /api/v1/integrations/<source> read and change the source's mapping
(scopes read and admin): one view class per path, the source's ingestion its
`post` where calls arrive on the same path."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.events import PayloadTooLarge, read_body
from billing.core.errors import InvalidRequest, NotFound
from billing.integration_models import IntegrationSource
from billing.integrations import litellm, openrouter
from billing.integrations.calls import MAX_CALLS_PER_REQUEST
from billing.integrations.ingest import (
    IntegrationResult,
    Received,
    calls_ingest,
    json_records,
    mapping_of,
    source_row,
)
from billing.integrations.mapping import (
    mapping_checked,
    mapping_save,
    models_seen_of,
    source_known,
    unknown_source_words,
)
from billing.serializers import GatewayResultSerializer
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
            help_text='{model: {"mapped", "calls", "last_seen", "known"}}; known false: '
            "the rate card does not name it, it is priced at the card's default row."
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

    def records(self, body: bytes) -> list:
        return json_records(body)

    def received(self, records: list, mapping) -> Received:
        raise NotImplementedError

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
        body = read_body(request, limit=settings.BILLING_INTEGRATION_MAX_BODY)
        try:
            records = self.records(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc
        if len(records) > MAX_CALLS_PER_REQUEST:
            raise too_many_calls(len(records))
        row = source_row(self.source)
        result = calls_ingest(row, self.received(records, mapping_of(row)))
        return Response(result_body(result), status=status.HTTP_202_ACCEPTED)


class LiteLLMIngestApi(GatewayIngestApi):
    """What LiteLLM's generic_api callback sends: a JSON array, NDJSON or one
    StandardLoggingPayload (billing.integrations.litellm); GET and PUT its mapping."""

    source = IntegrationSource.LITELLM

    def received(self, records: list, mapping) -> Received:
        return litellm.received_of(records, mapping)


class OpenRouterIngestApi(GatewayIngestApi):
    """OpenRouter's generations or completions with usage accounting
    (billing.integrations.openrouter); GET and PUT its mapping."""

    source = IntegrationSource.OPENROUTER

    def records(self, body: bytes) -> list:
        return openrouter.unwrapped(json_records(body))

    def received(self, records: list, mapping) -> Received:
        return openrouter.received_of(records, mapping)
