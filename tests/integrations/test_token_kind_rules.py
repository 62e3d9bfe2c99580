"""The token-kind rules of gateway billing (billing.integrations.calls), each through a
source's endpoint and priced by S35's card: a source's token-kind mapping decides the
events a call becomes, and an OpenTelemetry span's cache reads and writes are taken out
of its input tokens, each billed once under its own kind.

(Anthropic's cache reads through LiteLLM, normalized by the real litellm into
prompt_tokens_details.cached_tokens beside its cache_read_input_tokens, are billed as
cached_input: tests/integrations/test_litellm_real.py, from litellm's own translation
of an Anthropic answer.)"""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind

from billing.invoicing.close import periods_close
from billing.models import UsageEvent
from invoices.models import Invoice
from tests.factories import ApiKeyFactory, api_client
from tests.integrations.conftest import usage_rates

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def litellm_call(call_id: str) -> dict:
    """A gpt-4o call as LiteLLM logs it: 1,200,000 prompt tokens of which 200,000
    cached, 300,000 completion tokens of which 100,000 reasoning."""
    usage = {
        "prompt_tokens": 1_200_000,
        "completion_tokens": 300_000,
        "total_tokens": 1_500_000,
        "prompt_tokens_details": {"cached_tokens": 200_000},
        "completion_tokens_details": {"reasoning_tokens": 100_000},
    }
    return {
        "id": call_id,
        "status": "success",
        "model": "gpt-4o",
        "end_user": "acme",
        "startTime": NOW.timestamp(),
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "metadata": {"usage_object": usage},
    }


def send_litellm(call: dict) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api_client("events:write").post(
            "/api/v1/integrations/litellm", data=json.dumps([call]), content_type="application/json"
        )
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.django_db
def test_a_sources_token_kind_mapping_decides_the_events_stored(s35):
    # given a call stored with every kind as it is
    before = send_litellm(litellm_call("call-before"))
    # when finance bills reasoning as output and cached input not at all
    response = api_client("admin").put(
        "/api/v1/integrations/litellm",
        {"token_types": {"reasoning": "output", "cached_input": None}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    after = send_litellm(litellm_call("call-after"))

    # then the next call's events follow the mapping; the stored ones stay
    assert (before["accepted"], after["accepted"]) == (4, 3)
    events = {
        e.event_id: (e.properties["token_type"], e.properties["tokens"])
        for e in UsageEvent.objects.filter(customer__external_id="acme")
    }
    assert events == {
        "call-before:input": ("input", 1_000_000),
        "call-before:cached_input": ("cached_input", 200_000),
        "call-before:output": ("output", 200_000),
        "call-before:reasoning": ("reasoning", 100_000),
        "call-after:input": ("input", 1_000_000),
        "call-after:output": ("output", 200_000),
        "call-after:reasoning": ("output", 100_000),
    }
    # gpt-4o input 2.50, cached_input 1.25, output 10.00 per 1M; reasoning has no
    # gpt-4o row (the default, 1.00): before 2.50 + 0.25 + 2.00 + 0.10, after 2.50 + 3.00.
    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    assert amount == "10.35"
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "5.00"),
        ({"model": "gpt-4o", "token_type": "cached_input"}, "0.25"),
        ({"model": "gpt-4o", "token_type": "output"}, "5.00"),
        ({}, "0.10"),
    ]

    with time_machine.travel(DEC_1, tick=False):
        periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=s35, reason="period")
    lines = {
        (line.group.get("model"), line.group.get("token_type")): (line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    }
    assert lines == {
        ("gpt-4o", "input"): (D(2_000_000), D("5.00")),
        ("gpt-4o", "cached_input"): (D(200_000), D("0.25")),
        ("gpt-4o", "output"): (D(500_000), D("5.00")),
        (None, None): (D(100_000), D("0.10")),
    }
    assert invoice.subtotal == D("10.35")


def cached_call_span(cache_read: str, cache_write: str):
    """One gpt-4o call as the SDK records it: 1,000,000 input tokens, which hold
    200,000 read from the provider's cache and 300,000 written to it (the GenAI
    conventions count both inside gen_ai.usage.input_tokens), and 100,000 output."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"enduser.id": "acme"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    start = int(NOW.timestamp()) * 10**9
    span = provider.get_tracer("genai").start_span(
        "chat gpt-4o",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={
            gen_ai.GEN_AI_RESPONSE_MODEL: "gpt-4o",
            gen_ai.GEN_AI_USAGE_INPUT_TOKENS: 1_000_000,
            cache_read: 200_000,
            cache_write: 300_000,
            gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: 100_000,
        },
    )
    span.end(end_time=start + 10**9)
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    return finished


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("cache_read", "cache_write"),
    [
        # The GenAI semantic conventions' names, as the installed package spells them.
        (
            gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        ),
        # The names older instrumentations send.
        ("gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_creation_input_tokens"),
    ],
)
def test_a_spans_cache_writes_are_taken_out_of_its_input_once(
    live_server, s35, cache_read, cache_write
):
    key = ApiKeyFactory(name="otel", scopes=["events:write"])
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key.secret}"},
        timeout=30,
    )
    with time_machine.travel(NOW, tick=True):
        span = cached_call_span(cache_read, cache_write)
        assert exporter.export([span]) == SpanExportResult.SUCCESS
        amount, rates = usage_rates()

    call = f"{span.context.trace_id:032x}:{span.context.span_id:016x}"
    events = {
        e.event_id: (e.properties["token_type"], e.properties["tokens"])
        for e in UsageEvent.objects.all()
    }
    assert events == {
        f"{call}:input": ("input", 500_000),
        f"{call}:cached_input": ("cached_input", 200_000),
        f"{call}:cache_write": ("cache_write", 300_000),
        f"{call}:output": ("output", 100_000),
    }
    # 500,000 at 2.50, 200,000 at 1.25, 100,000 at 10.00; cache writes have no gpt-4o
    # row (the default, 1.00): 300,000 at 1.00.
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "1.25"),
        ({"model": "gpt-4o", "token_type": "cached_input"}, "0.25"),
        ({"model": "gpt-4o", "token_type": "output"}, "1.00"),
        ({}, "0.30"),
    ]
    assert amount == "2.80"
