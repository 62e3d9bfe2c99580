"""The OpenTelemetry SDK's own OTLP/HTTP exporter (protobuf, as an instrumented
application sends its spans) posting GenAI spans to a live server's /v1/traces
with our API key: the model calls are billed on S35's card, once however many
times the exporter sends them; the other spans are not."""

from datetime import UTC, datetime

import pytest
import time_machine
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import source_row
from billing.models import UsageEvent
from tests.factories import ApiKeyFactory
from tests.integrations.conftest import usage_rates

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
START_NS = int(NOW.timestamp()) * 10**9


def genai_spans() -> list:
    """The spans an instrumented chat service ends with: two model calls, a request
    span around them, and a model call that failed."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "chat-api", "enduser.id": "acme"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai")
    request = tracer.start_span("POST /chat", kind=SpanKind.SERVER, start_time=START_NS)
    calls = [
        # S35: 400,000 tokens in at 2.50 and 50,000 out at 10.00 per 1M: 1.50.
        {
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 400_000,
            "gen_ai.usage.output_tokens": 50_000,
        },
        # o3: 1,000,000 plain in (2.00) and 200,000 read from the cache (the card's
        # default 1.00), 50,000 plain out (8.00) and 100,000 reasoning (8.00): 3.40.
        {
            "gen_ai.response.model": "o3",
            "gen_ai.usage.input_tokens": 1_200_000,
            "gen_ai.usage.cache_read.input_tokens": 200_000,
            "gen_ai.usage.output_tokens": 150_000,
            "gen_ai.usage.reasoning.output_tokens": 100_000,
        },
    ]
    for n, usage in enumerate(calls):
        span = tracer.start_span(
            f"chat {usage['gen_ai.response.model']}",
            kind=SpanKind.CLIENT,
            start_time=START_NS + n * 10**9,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                **usage,
            },
        )
        span.end(end_time=START_NS + n * 10**9 + 500_000_000)
    failed = tracer.start_span(
        "chat gpt-4o",
        kind=SpanKind.CLIENT,
        start_time=START_NS + 5 * 10**9,
        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 900_000},
    )
    failed.set_status(Status(StatusCode.ERROR, "rate limited"))
    failed.end(end_time=START_NS + 6 * 10**9)
    request.end(end_time=START_NS + 7 * 10**9)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.django_db(transaction=True)
def test_sdk_exporter_spans_billed_once_on_s35(live_server, s35):
    row = source_row(IntegrationSource.OTLP)
    row.models = {"gpt-4o-2024-08-06": "gpt-4o"}
    row.save()
    key = ApiKeyFactory(name="otel", scopes=["events:write"])
    with time_machine.travel(NOW, tick=True):
        spans = genai_spans()
        assert len(spans) == 4
        exporters = [
            OTLPSpanExporter(
                endpoint=f"{live_server.url}/v1/traces",
                headers={"Authorization": f"Bearer {key.secret}"},
                compression=compression,
                timeout=30,
            )
            for compression in (Compression.NoCompression, Compression.Gzip)
        ]
        # Sent, sent again (an exporter's retry), and sent gzip compressed.
        results = [exporters[0].export(spans), exporters[0].export(spans)]
        results.append(exporters[1].export(spans))
        assert results == [SpanExportResult.SUCCESS] * 3
        amount, rates = usage_rates()
    assert amount == "4.90"
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "1.00"),
        ({"model": "gpt-4o", "token_type": "output"}, "0.50"),
        ({"model": "o3", "token_type": "input"}, "2.00"),
        ({"model": "o3", "token_type": "output"}, "0.40"),
        ({"model": "o3", "token_type": "reasoning"}, "0.80"),
        ({}, "0.20"),
    ]
    events = UsageEvent.objects.filter(customer__external_id="acme")
    assert events.count() == 6
    model_calls = [s for s in spans if "gen_ai.response.model" in s.attributes]
    ids = {
        f"{s.context.trace_id:032x}:{s.context.span_id:016x}:{kind}"
        for s in model_calls
        for kind in ("input", "output")
    }
    assert ids <= set(events.values_list("event_id", flat=True))
    # The request span and the failed call were received and not billed.
    row.refresh_from_db()
    assert {entry["model"] for entry in row.recent} == {"gpt-4o-2024-08-06", "o3"}
