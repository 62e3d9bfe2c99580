"""The model a call is priced as, from the names the real clients send (issue 92):
LiteLLM's Router, which its proxy runs, logs the deployment's model (`openai/o3`)
and the model group the caller asked for (`o3`); the OpenTelemetry SDK's spans
carry the dated snapshot that answered (`gpt-4o-2024-08-06`) and the model asked
for. Without a mapping each is priced at S35's row for its model; a model no card
names is priced at the default row, listed in the answer as unpriced, counted, and
announced to finance once however often it comes again."""

import asyncio
from datetime import UTC, datetime

import pytest
import time_machine
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from billing.integration_models import UnpricedModel
from billing.models import Alert, AlertTeamRecipient, UsageEvent
from common import metrics
from tests.factories import ApiKeyFactory, api_client
from tests.integrations.conftest import usage_rates
from tests.integrations.test_litellm_real import Gateway, mocked, sdk  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

FINE_TUNED = "acme-ft-gpt-4o-2025"
# What OpenAI names a fine-tuned model: neither the card nor its bare name knows it.
FINE_TUNED_SNAPSHOT = "ft:gpt-4o-2024-08-06:acme::B1xq2"


def unpriced_calls(source: str) -> float:
    return metrics.UNPRICED_MODEL_CALLS.labels(source)._value.get()


@pytest.fixture
def finance_copy(db):
    return AlertTeamRecipient.objects.create(
        email="finance@seller.test", kinds=[Alert.UNPRICED_MODEL]
    )


def test_litellm_proxy_calls_priced_by_their_model_group(
    sdk,  # noqa: F811
    live_server,
    s35,
    finance_copy,
    mailoutbox,
):
    """The Router's deployments, as a proxy's config.yaml names them: o3 served by
    `openai/o3`, gpt-4o by a deployment whose own name no card knows, and a
    fine-tuned model the card does not price."""
    secret = ApiKeyFactory(name="litellm-proxy", scopes=["events:write"]).secret
    url = f"{live_server.url}/api/v1/integrations/litellm"
    router = sdk.Router(
        model_list=[
            {"model_name": name, "litellm_params": {"model": deployment, "api_key": "not-a-key"}}
            for name, deployment in [
                ("o3", "openai/o3"),
                ("gpt-4o", "openai/prod-gpt4o-eastus"),
                (FINE_TUNED, f"openai/{FINE_TUNED_SNAPSHOT}"),
            ]
        ]
    )
    calls = [
        # S35's o3 call: 500,000 in (2.00), 300,000 out of which 200,000 reasoning
        # (8.00 each): 1.00 + 0.80 + 1.60.
        (
            "o3",
            mocked(sdk, "chatcmpl-o3", "o3", prompt=500_000, completion=300_000, reasoning=200_000),
        ),
        # 1,000,000 in (2.50) and 100,000 out (10.00): 2.50 + 1.00.
        ("gpt-4o", mocked(sdk, "chatcmpl-4o", "gpt-4o", prompt=1_000_000, completion=100_000)),
        # 2,000,000 in at the default row (1.00): 2.00.
        (
            FINE_TUNED,
            mocked(sdk, "chatcmpl-ft", FINE_TUNED_SNAPSHOT, prompt=2_000_000, completion=0),
        ),
    ]
    counted = unpriced_calls("litellm")

    async def session():
        gateway = Gateway(sdk, url, secret, "json_array")
        for group, answer in calls:
            await router.acompletion(
                model=group,
                messages=[{"role": "user", "content": "hi"}],
                user="acme",
                mock_response=answer,
            )
        payloads = await gateway.logged(len(calls))
        return payloads, await gateway.flush(), await gateway.flush(payloads)

    payloads, first, again = asyncio.run(session())

    # What the Router logged: the deployment as `model`, the name asked for as its group.
    assert sorted((p["model"], p["model_group"]) for p in payloads) == [
        (f"openai/{FINE_TUNED_SNAPSHOT}", FINE_TUNED),
        ("openai/o3", "o3"),
        ("openai/prod-gpt4o-eastus", "gpt-4o"),
    ]
    assert first == (
        202,
        {
            "accepted": 6,
            "duplicates": 0,
            "calls": 3,
            "skipped": 0,
            "rejected": [],
            "unpriced_models": [FINE_TUNED],
        },
    )
    assert again[1]["duplicates"] == 6 and again[1]["unpriced_models"] == [FINE_TUNED]
    events = {
        e.event_id: e.properties
        for e in UsageEvent.objects.filter(event_id__endswith=":input").order_by("event_id")
    }
    names = ("model", "source_model", "requested_model", "tokens")
    assert {key: tuple(p.get(n) for n in names) for key, p in events.items()} == {
        "chatcmpl-4o:input": ("gpt-4o", "openai/prod-gpt4o-eastus", "gpt-4o", 1_000_000),
        "chatcmpl-ft:input": (FINE_TUNED, f"openai/{FINE_TUNED_SNAPSHOT}", FINE_TUNED, 2_000_000),
        "chatcmpl-o3:input": ("o3", "openai/o3", "o3", 500_000),
    }

    moment = UsageEvent.objects.get(event_id="chatcmpl-o3:input").timestamp
    period_start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    amount, rates = usage_rates(period_start.isoformat().replace("+00:00", "Z"))
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "2.50"),
        ({"model": "gpt-4o", "token_type": "output"}, "1.00"),
        ({"model": "o3", "token_type": "input"}, "1.00"),
        ({"model": "o3", "token_type": "output"}, "0.80"),
        ({"model": "o3", "token_type": "reasoning"}, "1.60"),
        ({}, "2.00"),
    ]
    assert amount == "8.90"

    # Counted each time received (the resend too); finance told once, by email.
    assert unpriced_calls("litellm") - counted == 2
    (alert,) = Alert.objects.filter(kind=Alert.UNPRICED_MODEL)
    assert (alert.customer.external_id, alert.key) == ("acme", f"litellm:{FINE_TUNED}")
    assert alert.payload | {"first_seen": None} == {
        "source": "litellm",
        "model": FINE_TUNED,
        "source_model": f"openai/{FINE_TUNED_SNAPSHOT}",
        "requested_model": FINE_TUNED,
        "customer": "acme",
        "first_seen": None,
    }
    assert [(m.to, m.subject) for m in mailoutbox] == [
        (["finance@seller.test"], "[Acme] A model no rate card prices")
    ]
    assert f"LiteLLM sent a call of model {FINE_TUNED} (openai/{FINE_TUNED_SNAPSHOT}, " in (
        mailoutbox[0].body
    )
    assert list(UnpricedModel.objects.values_list("source", "model")) == [("litellm", FINE_TUNED)]


NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
START_NS = int(NOW.timestamp()) * 10**9


def chat_spans(calls: list[tuple[str, str, int, int]]) -> list:
    """The spans an OpenAI instrumentation ends with, a call each: (model asked for,
    model that answered, input tokens, output tokens)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai")
    for n, (requested, answered, prompt, completion) in enumerate(calls):
        span = tracer.start_span(
            f"chat {requested}",
            kind=SpanKind.CLIENT,
            start_time=START_NS + n * 10**9,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": requested,
                "gen_ai.response.model": answered,
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": completion,
                "enduser.id": "acme",
            },
        )
        span.end(end_time=START_NS + n * 10**9 + 500_000_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_otel_spans_priced_by_the_model_asked_for_without_a_mapping(
    live_server, s35, finance_copy, mailoutbox
):
    key = ApiKeyFactory(name="otel", scopes=["events:write"])
    counted = unpriced_calls("otlp")
    with time_machine.travel(NOW, tick=True):
        spans = chat_spans(
            [
                # S35's span: 400,000 in at 2.50, 50,000 out at 10.00: 1.50.
                ("gpt-4o", "gpt-4o-2024-08-06", 400_000, 50_000),
                # 1,000,000 in at the default row: 1.00.
                (FINE_TUNED, FINE_TUNED_SNAPSHOT, 1_000_000, 0),
            ]
        )
        exporter = OTLPSpanExporter(
            endpoint=f"{live_server.url}/v1/traces",
            headers={"Authorization": f"Bearer {key.secret}"},
            timeout=30,
        )
        # Sent, and sent again (an exporter's retry).
        assert [exporter.export(spans), exporter.export(spans)] == [SpanExportResult.SUCCESS] * 2
        amount, rates = usage_rates()

    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "1.00"),
        ({"model": "gpt-4o", "token_type": "output"}, "0.50"),
        ({}, "1.00"),
    ]
    assert amount == "2.50"
    snapshot = spans[0]
    event = UsageEvent.objects.get(
        event_id=f"{snapshot.context.trace_id:032x}:{snapshot.context.span_id:016x}:input"
    )
    assert event.properties == {
        "model": "gpt-4o",
        "source_model": "gpt-4o-2024-08-06",
        "requested_model": "gpt-4o",
        "token_type": "input",
        "tokens": 400_000,
        "source": "otlp",
    }
    # The source's page: each name as sent, the name asked for, what it is priced as.
    seen = api_client("read").get("/api/v1/integrations/otlp").json()["models_seen"]
    assert {model: (e["requested"], e["mapped"], e["known"]) for model, e in seen.items()} == {
        "gpt-4o-2024-08-06": ("gpt-4o", "gpt-4o", True),
        FINE_TUNED_SNAPSHOT: (FINE_TUNED, FINE_TUNED, False),
    }
    assert unpriced_calls("otlp") - counted == 2
    (alert,) = Alert.objects.filter(kind=Alert.UNPRICED_MODEL)
    assert alert.key == f"otlp:{FINE_TUNED}"
    assert [m.subject for m in mailoutbox] == ["[Acme] A model no rate card prices"]
