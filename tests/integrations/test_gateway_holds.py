"""A gateway's usage settles the hold named in its metadata, and its failure
releases it (API.md "Holds"), through the real clients: the installed litellm
package logging through its generic_api callback (the SDK's spend_logs_metadata,
and the proxy's request metadata, which reaches the payload as requester_metadata),
and the OpenTelemetry SDK's exporter (a span's `billing.hold` attribute), to the
live server over HTTP, on S35's card. A record sent again changes nothing."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from billing.hold_models import Hold
from billing.integration_models import IntegrationSource
from billing.models import UsageEvent
from tests.factories import ApiKeyFactory, api_client
from tests.integrations.test_litellm_real import Gateway, mocked, sdk  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

GPT4O_OUTPUT = {"model": "gpt-4o", "token_type": "output"}


def hold(key: str, tokens: int, customer: str = "acme") -> str:
    response = api_client("events:write").post(
        f"/api/v1/customers/{customer}/holds",
        {"meter": "llm_tokens", "quantity": str(tokens), "properties": GPT4O_OUTPUT, "key": key},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def outcome(public_id: str) -> tuple:
    found = Hold.objects.get(public_id=public_id)
    return found.status, found.reason, found.settled_quantity


def test_litellm_calls_settle_the_holds_their_metadata_names(sdk, live_server, s35):  # noqa: F811
    from customers.services import customer_create
    from tests.factories import subscribe

    sdk_hold = hold("run-sdk", 2_000_000)
    proxy_hold = hold("run-proxy", 2_000_000)
    failed_hold = hold("run-failed", 2_000_000)
    retried = hold("run-retried", 2_000_000)
    untouched = hold("run-other", 1_000)
    subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")
    globex_hold = hold("globex-run", 1_000, customer="globex")
    secret = ApiKeyFactory(name="litellm", scopes=["events:write"]).secret
    url = f"{live_server.url}/api/v1/integrations/litellm"
    messages = [{"role": "user", "content": "hi"}]

    async def call(hold_metadata: dict, response, user: str = "acme"):
        return await sdk.acompletion(
            model="gpt-4o",
            messages=messages,
            user=user,
            metadata=hold_metadata,
            mock_response=response,
        )

    def named(public_id: str) -> dict:
        # The SDK: the hold in spend_logs_metadata, which litellm logs as given.
        return {"spend_logs_metadata": {"billing_hold": public_id}}

    async def failing(public_id: str) -> None:
        with pytest.raises(Exception, match="provider down"):
            await call(named(public_id), Exception("provider down"))

    async def session():
        gateway = Gateway(sdk, url, secret, "json_array")
        await call(
            named(sdk_hold),
            mocked(
                sdk, "chatcmpl-a", "gpt-4o", prompt=1_200_000, cached=200_000, completion=100_000
            ),
        )
        # The proxy: the request's own metadata, which it hands litellm as
        # metadata["metadata"] and litellm logs as requester_metadata.
        await call(
            {"metadata": {"billing_hold": proxy_hold}},
            mocked(sdk, "chatcmpl-b", "gpt-4o", prompt=300_000, completion=20_000),
        )
        await failing(failed_hold)
        await failing(retried)
        # Acme's failed call naming Globex's hold.
        await failing(globex_hold)
        first_payloads = await gateway.logged(5)
        first = await gateway.flush()
        # The retry of the failed call succeeds; a second call of the first run;
        # a call naming something that is no hold's id.
        await call(named(retried), mocked(sdk, "chatcmpl-c", "gpt-4o", prompt=5_000, completion=0))
        await call(named(sdk_hold), mocked(sdk, "chatcmpl-d", "gpt-4o", prompt=1_000, completion=0))
        await call(
            named("hold_\u0000x"), mocked(sdk, "chatcmpl-e", "gpt-4o", prompt=7, completion=0)
        )
        second_payloads = await gateway.logged(3)
        second = await gateway.flush()
        again = await gateway.flush(first_payloads + second_payloads)
        return first_payloads, first, second, again

    payloads, first, second, again = asyncio.run(session())

    # What litellm sent names each hold where this reads it.
    metadata = {p["id"]: p["metadata"] for p in payloads if p["status"] == "success"}
    assert metadata["chatcmpl-a"]["spend_logs_metadata"] == {"billing_hold": sdk_hold}
    assert metadata["chatcmpl-b"]["requester_metadata"] == {"billing_hold": proxy_hold}
    assert (first[0], first[1]["calls"], first[1]["skipped"]) == (202, 2, 3)
    assert (second[0], second[1]["calls"], second[1]["rejected"]) == (202, 3, [])
    assert (again[0], again[1]["accepted"]) == (202, 0)

    # Settled with what the calls naming each put on the hold's meter (every token
    # kind of llm_tokens): 1,000,000 + 200,000 cached + 100,000 out, then 1,000 more;
    # 300,000 + 20,000; the retry's 5,000 after its failed attempt released it.
    assert outcome(sdk_hold) == (Hold.SETTLED, "", D("1301000"))
    assert outcome(proxy_hold) == (Hold.SETTLED, "", D("320000"))
    assert outcome(retried) == (Hold.SETTLED, "", D("5000"))
    assert outcome(failed_hold) == (Hold.RELEASED, Hold.FAILED, None)
    assert outcome(untouched) == (Hold.OPEN, "", None)
    assert outcome(globex_hold) == (Hold.OPEN, "", None)
    # Billed once, by the calls' own events: no `hold:` event written.
    events = UsageEvent.objects.filter(customer__external_id="acme")
    assert sorted(events.values_list("event_id", flat=True)) == [
        "chatcmpl-a:cached_input",
        "chatcmpl-a:input",
        "chatcmpl-a:output",
        "chatcmpl-b:input",
        "chatcmpl-b:output",
        "chatcmpl-c:input",
        "chatcmpl-d:input",
        "chatcmpl-e:input",
    ]
    usage = api_client("read").get("/api/v1/customers/acme/usage").json()
    assert usage["holds"]["not_charged"] == {"failed": 1}
    assert [h["id"] for h in usage["holds"]["open"]] == [untouched]


NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
START_NS = int(NOW.timestamp()) * 10**9


def traced_run(settled: str, failed: str, stranger: str) -> list:
    """An agent's spans: a model call naming one hold, a failed call naming
    another, and a call naming a hold of another customer."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agent")
    for n, (named, customer, status) in enumerate(
        [(settled, "acme", None), (failed, "acme", StatusCode.ERROR), (stranger, "acme", None)]
    ):
        span = tracer.start_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            start_time=START_NS + n * 10**9,
            attributes={
                "enduser.id": customer,
                "billing.hold": named,
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 400_000 + n,
                "gen_ai.usage.output_tokens": 50_000,
            },
        )
        if status is not None:
            span.set_status(Status(status, "rate limited"))
        span.end(end_time=START_NS + n * 10**9 + 500_000_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_spans_settle_the_hold_they_name_and_a_failed_one_releases_it(live_server, s35):
    from customers.services import customer_create
    from tests.factories import subscribe

    key = ApiKeyFactory(name="otel", scopes=["events:write"])
    with time_machine.travel(NOW, tick=True):
        settled = hold("span-ok", 1_000_000)
        failed = hold("span-failed", 1_000_000)
        subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")
        response = api_client("events:write").post(
            "/api/v1/customers/globex/holds",
            {"meter": "llm_tokens", "quantity": "5", "properties": GPT4O_OUTPUT, "key": "g"},
            format="json",
        )
        stranger = response.json()["id"]
        spans = traced_run(settled, failed, stranger)
        exporter = OTLPSpanExporter(
            endpoint=f"{live_server.url}/v1/traces",
            headers={"Authorization": f"Bearer {key.secret}"},
            timeout=30,
        )
        assert [exporter.export(spans), exporter.export(spans)] == [SpanExportResult.SUCCESS] * 2
    assert IntegrationSource.objects.get(source=IntegrationSource.OTLP).customer_from == (
        "enduser.id"
    )
    assert outcome(settled) == (Hold.SETTLED, "", D("450000"))
    assert outcome(failed) == (Hold.RELEASED, Hold.FAILED, None)
    # Acme's span names Globex's hold: billed to Acme, Globex's hold left open.
    assert outcome(stranger) == (Hold.OPEN, "", None)
    assert UsageEvent.objects.filter(customer__external_id="acme").count() == 4
