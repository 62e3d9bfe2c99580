"""Usage from where AI teams already have it: POST /api/v1/integrations/litellm
(LiteLLM's generic_api callback), .../openrouter (OpenRouter's usage records) and
POST /v1/traces (OTLP/HTTP), each with our API key (scope events:write), each
stored through the ingestion of POST /events (billing.integrations.ingest)."""

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.events import PayloadTooLarge, read_body
from billing.core.errors import InvalidRequest
from billing.integration_models import IntegrationSource
from billing.integrations import litellm
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
            records = litellm.records_of(body, limit=MAX_CALLS_PER_REQUEST)
        except litellm.TooManyRecords as exc:
            raise too_many_calls(exc.count) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc
        row = source_row(IntegrationSource.LITELLM)
        received = litellm.received_of(records, mapping_of(row))
        result = calls_ingest(row, received)
        return Response(result_body(result), status=status.HTTP_202_ACCEPTED)
