"""S35 end to end (../shared/SCENARIOS.md): one customer fed by LiteLLM, OpenRouter
and OpenTelemetry, through the three endpoints with their mappings set by finance's
API, priced by one rate card: usage 3.75 + 3.40 + 1.50 = 8.65, on /usage while the
month runs and on the period's invoice after the close, each row exact; every
payload sent twice billed once."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from invoices.models import Invoice
from tests.factories import api_client
from tests.integrations.conftest import usage_rates

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)

LITELLM_CALL = {
    "id": "chatcmpl-litellm-1",
    "call_type": "acompletion",
    "status": "success",
    "model": "gpt-4o",
    "end_user": "acme",
    "startTime": NOW.timestamp(),
    "endTime": NOW.timestamp() + 3,
    "prompt_tokens": 1_200_000,
    "completion_tokens": 100_000,
    "total_tokens": 1_300_000,
    "metadata": {
        "usage_object": {
            "prompt_tokens": 1_200_000,
            "completion_tokens": 100_000,
            "total_tokens": 1_300_000,
            "prompt_tokens_details": {"cached_tokens": 200_000},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    },
}
OPENROUTER_GENERATION = {
    "id": "gen-s35",
    "model": "openai/o3",
    "created": int(NOW.timestamp()),
    "user": "acme",
    "usage": {
        "prompt_tokens": 500_000,
        "completion_tokens": 300_000,
        "completion_tokens_details": {"reasoning_tokens": 200_000},
        "cost": 3.1,
    },
}


def int_value(n: int) -> dict:
    return {"intValue": str(n)}


OTLP_EXPORT = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "assistant"}},
                    {"key": "enduser.id", "value": {"stringValue": "acme"}},
                ]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "genai-instrumentation"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "chat gpt-4o-2024-08-06",
                            "kind": 3,
                            "startTimeUnixNano": str(int(NOW.timestamp()) * 10**9),
                            "endTimeUnixNano": str((int(NOW.timestamp()) + 2) * 10**9),
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {
                                    "key": "gen_ai.response.model",
                                    "value": {"stringValue": "gpt-4o-2024-08-06"},
                                },
                                {"key": "gen_ai.usage.input_tokens", "value": int_value(400_000)},
                                {"key": "gen_ai.usage.output_tokens", "value": int_value(50_000)},
                            ],
                        },
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "0a1b2c3d4e5f6071",
                            "name": "retrieve documents",
                            "startTimeUnixNano": str(int(NOW.timestamp()) * 10**9),
                            "endTimeUnixNano": str((int(NOW.timestamp()) + 1) * 10**9),
                        },
                    ],
                }
            ],
        }
    ]
}


def post(path: str, body: dict | list) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api_client("events:write").post(
            path, data=json.dumps(body), content_type="application/json"
        )
    assert response.status_code in (200, 202), response.content
    return response.json()


def test_s35_one_customer_fed_by_litellm_openrouter_and_opentelemetry(s35):
    admin = api_client("admin")
    for source, models in (
        ("openrouter", {"openai/o3": "o3"}),
        ("otlp", {"gpt-4o-2024-08-06": "gpt-4o"}),
    ):
        response = admin.put(f"/api/v1/integrations/{source}", {"models": models}, format="json")
        assert response.status_code == 200, response.json()

    for _ in range(2):  # every payload twice: billed once
        litellm = post("/api/v1/integrations/litellm", [LITELLM_CALL])
        openrouter = post("/api/v1/integrations/openrouter", OPENROUTER_GENERATION)
        otlp = post("/v1/traces", OTLP_EXPORT)
        assert litellm["rejected"] == openrouter["rejected"] == []
        assert "partialSuccess" not in otlp or not otlp["partialSuccess"].get("rejectedSpans")

    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    assert amount == "8.65"
    assert sorted((r["group"]["model"], r["group"]["token_type"], r["amount"]) for r in rates) == [
        ("gpt-4o", "cached_input", "0.25"),
        ("gpt-4o", "input", "3.50"),  # 1,000,000 (LiteLLM) + 400,000 (span) at 2.50
        ("gpt-4o", "output", "1.50"),  # 100,000 + 50,000 at 10.00
        ("o3", "input", "1.00"),
        ("o3", "output", "0.80"),
        ("o3", "reasoning", "1.60"),
    ]

    with time_machine.travel(DEC_1, tick=False):
        periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=s35, reason="period")
    lines = {
        (line.group["model"], line.group["token_type"]): (line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    }
    assert lines == {
        ("gpt-4o", "input"): (D(1_400_000), D("3.50")),
        ("gpt-4o", "cached_input"): (D(200_000), D("0.25")),
        ("gpt-4o", "output"): (D(150_000), D("1.50")),
        ("o3", "input"): (D(500_000), D("1.00")),
        ("o3", "output"): (D(100_000), D("0.80")),
        ("o3", "reasoning"): (D(200_000), D("1.60")),
    }
    assert invoice.subtotal == D("8.65")
