"""POST /api/v1/integrations/openrouter: OpenRouter's generations and its
completions with usage accounting become token events (generation id as the
call's id), its own cost kept beside them, priced by S35's card.

OpenRouter's records as its documentation gives them, copied as documented (the
JSON below), from its OpenAPI description (github.com/OpenRouterTeam/docs,
openapi/openapi.yaml at c26125a5fa92cb52ac67f0c75b717229567db716) and its pages:
- GENERATION: GET /api/v1/generation's 200 example,
  https://openrouter.ai/docs/api/api-reference/generations/get-request-&-usage-metadata-for-a-generation
  (`usage` a number: the amount charged; the customer in `external_user`);
- CHAT_RESULT: POST /api/v1/chat/completions' 200 example,
  https://openrouter.ai/docs/api/api-reference/chat/create-a-chat-completion
  (no `user`: OpenRouter does not send the request's back);
- CHAT_USAGE: the ChatUsage schema's example (the same page's `usage`);
- ACCOUNTED_USAGE: the `usage` of https://openrouter.ai/docs/use-cases/usage-accounting
  ("Every response includes a usage object"), with `cache_write_tokens`;
- the Broadcast webhook's OTLP JSON, https://openrouter.ai/docs/guides/features/broadcast/webhook
  ("The `user` field maps to `user.id` in span attributes")."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from importlib import import_module

import pytest
import time_machine
from django.apps import apps as current_apps

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import PER_KIND, source_row
from billing.models import UsageEvent
from customers.services import customer_create
from tests.factories import api_client
from tests.integrations.conftest import usage_rates

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)

GENERATION = """{
    "data": {
        "api_type": "completions",
        "app_id": 12345,
        "cache_discount": null,
        "cancelled": false,
        "created_at": "2024-07-15T23:33:19.433273+00:00",
        "data_region": "global",
        "external_user": "user-123",
        "finish_reason": "stop",
        "generation_time": 1200,
        "http_referer": "https://openrouter.ai/",
        "id": "gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG",
        "is_byok": false,
        "latency": 1250,
        "model": "sao10k/l3-stheno-8b",
        "moderation_latency": 50,
        "native_finish_reason": "stop",
        "native_tokens_cached": 3,
        "native_tokens_completion": 25,
        "native_tokens_completion_images": 0,
        "native_tokens_prompt": 10,
        "native_tokens_reasoning": 5,
        "num_fetches": 0,
        "num_input_audio_prompt": 0,
        "num_media_completion": 0,
        "num_media_prompt": 1,
        "num_search_results": 5,
        "origin": "https://openrouter.ai/",
        "preset_id": "a9e8d400-592a-494f-908c-375efa66cafd",
        "provider_name": "Infermatic",
        "provider_responses": null,
        "request_id": "req-1727282430-aBcDeFgHiJkLmNoPqRsT",
        "router": "openrouter/auto",
        "service_tier": "priority",
        "session_id": null,
        "streamed": true,
        "tokens_completion": 25,
        "tokens_prompt": 10,
        "total_cost": 0.0015,
        "upstream_id": "chatcmpl-791bcf62-080e-4568-87d0-94c72e3b4946",
        "upstream_inference_cost": 0.0012,
        "usage": 0.0015,
        "user_agent": "Mozilla/5.0",
        "web_search_engine": "exa"
    }
}"""
GENERATED_AT = datetime(2024, 7, 16, 8, tzinfo=UTC)

CHAT_RESULT = """{
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {
                "content": "The capital of France is Paris.",
                "role": "assistant"
            }
        }
    ],
    "created": 1677652288,
    "id": "chatcmpl-123",
    "model": "openai/gpt-4",
    "object": "chat.completion",
    "system_fingerprint": "fp_44709d6fcb",
    "usage": {
        "completion_tokens": 10,
        "prompt_tokens": 25,
        "total_tokens": 35
    }
}"""
CHAT_USAGE = """{
    "completion_tokens": 15,
    "completion_tokens_details": {
        "reasoning_tokens": 5
    },
    "cost": 0.0012,
    "cost_details": {
        "upstream_inference_completions_cost": 0.0004,
        "upstream_inference_cost": null,
        "upstream_inference_prompt_cost": 0.0008
    },
    "is_byok": false,
    "prompt_tokens": 10,
    "prompt_tokens_details": {
        "cached_tokens": 2
    },
    "server_tool_use_details": {
        "tool_calls_executed": 2,
        "tool_calls_requested": 2
    },
    "total_tokens": 25
}"""
ACCOUNTED_USAGE = """{
    "completion_tokens": 2,
    "completion_tokens_details": {
        "reasoning_tokens": 0
    },
    "cost": 0.95,
    "cost_details": {
        "upstream_inference_cost": 19
    },
    "prompt_tokens": 194,
    "prompt_tokens_details": {
        "cached_tokens": 0,
        "cache_write_tokens": 100,
        "audio_tokens": 0
    },
    "total_tokens": 196
}"""
# CHAT_RESULT's `created` (2023-03-01T06:31:28Z), the same day.
COMPLETED_AT = datetime(2023, 3, 1, 12, tzinfo=UTC)


def completion(gen_id="gen-1", **usage) -> dict:
    """A completion answered with usage accounting (OpenRouter's `usage` with cost),
    the request's `user` added by the caller."""
    return {
        "id": gen_id,
        "model": "openai/o3",
        "created": int(NOW.timestamp()),
        "user": "acme",
        "usage": {
            "prompt_tokens": 500_000,
            "completion_tokens": 300_000,
            "total_tokens": 800_000,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 200_000},
            "cost": 2.9,
        }
        | usage,
    }


def generation(gen_id="gen-2", **changes) -> dict:
    """A generation as the generation endpoint reports it (the fields billed)."""
    return {
        "data": {
            "id": gen_id,
            "model": "openai/o3",
            "created_at": "2026-11-10T12:00:00Z",
            "external_user": "acme",
            "tokens_prompt": 480_000,
            "tokens_completion": 290_000,
            "native_tokens_prompt": 500_000,
            "native_tokens_completion": 300_000,
            "native_tokens_reasoning": 200_000,
            "native_tokens_cached": 0,
            "total_cost": 2.9,
            "usage": 2.9,
            "cancelled": False,
        }
        | changes
    }


def post(body, at=NOW):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with time_machine.travel(at, tick=False):
        return api_client("events:write").post(
            "/api/v1/integrations/openrouter", data=data, content_type="application/json"
        )


def refusals(answer: dict) -> list[tuple]:
    return [(r["index"], r["id"], r["error"]["message"]) for r in answer["rejected"]]


def tokens_of(call_id: str) -> dict:
    """The call's events: token_type -> tokens, and its provider cost as `cost`."""
    found = {}
    for event in UsageEvent.objects.filter(event_id__startswith=f"{call_id}:"):
        if "cost" in event.properties:
            found["cost"] = D(event.properties["cost"])
        else:
            found[event.properties["token_type"]] = event.properties["tokens"]
    return found


def set_mapping(**fields):
    response = api_client("admin").put(
        "/api/v1/integrations/openrouter", json.dumps(fields), content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def o3_mapped(s35):
    row = source_row(IntegrationSource.OPENROUTER)
    row.models = {"openai/o3": "o3"}
    row.save()
    return s35


@pytest.fixture
def user_123(s35):
    """The documented examples' customer (`external_user` "user-123")."""
    return customer_create(external_id="user-123", name="User 123", currency="USD")


def test_s35_openrouter_o3_with_reasoning_bills_3_40_and_keeps_its_cost(o3_mapped):
    answer = post(completion())
    assert answer.status_code == 202, answer.json()
    assert answer.json() == {
        "accepted": 4,
        "duplicates": 0,
        "calls": 1,
        "skipped": 0,
        "rejected": [],
        "unpriced_models": [],
    }
    assert post(completion()).json()["duplicates"] == 4
    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    assert amount == "3.40"
    assert [(r["group"], r["quantity"], r["amount"]) for r in rates] == [
        ({"model": "o3", "token_type": "input"}, "500000", "1.00"),
        ({"model": "o3", "token_type": "output"}, "100000", "0.80"),
        ({"model": "o3", "token_type": "reasoning"}, "200000", "1.60"),
    ]
    cost = UsageEvent.objects.get(event_id="gen-1:provider_cost")
    assert (cost.event_name, cost.properties) == (
        "llm.provider_cost",
        {
            "model": "o3",
            "source_model": "openai/o3",
            "cost": "2.9",
            "currency": "USD",
            "source": "openrouter",
        },
    )


def test_a_generation_record_bills_its_native_counts(o3_mapped):
    answer = post(generation()).json()
    assert (answer["calls"], answer["accepted"], answer["rejected"]) == (1, 4, [])
    with time_machine.travel(NOW, tick=False):
        amount, _ = usage_rates()
    assert amount == "3.40"
    assert D(UsageEvent.objects.get(event_id="gen-2:provider_cost").properties["cost"]) == D("2.9")


def test_the_documented_generation_is_billed_to_its_external_user(user_123):
    set_mapping(models={"sao10k/l3-stheno-8b": "stheno"})

    answer = post(GENERATION, at=GENERATED_AT)

    assert answer.status_code == 202, answer.json()
    assert (answer.json()["calls"], answer.json()["rejected"]) == (1, [])
    # 10 prompt tokens of which 3 cached; 25 completion tokens of which 5 reasoning.
    assert tokens_of("gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG") == {
        "input": 7,
        "cached_input": 3,
        "output": 20,
        "reasoning": 5,
        "cost": D("0.0015"),
    }
    events = UsageEvent.objects.filter(event_id__startswith="gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG:")
    assert {(e.customer.external_id, e.properties["model"], e.timestamp) for e in events} == {
        ("user-123", "stheno", datetime(2024, 7, 15, 23, 33, 19, 433273, tzinfo=UTC))
    }
    # Its data alone (not wrapped), sent again: the same call.
    again = post(json.loads(GENERATION)["data"], at=GENERATED_AT).json()
    assert (again["accepted"], again["duplicates"]) == (0, 5)


def test_the_documented_completion_names_no_customer_and_is_refused_saying_so(user_123):
    answer = post(CHAT_RESULT, at=COMPLETED_AT).json()

    assert refusals(answer) == [
        (
            0,
            "chatcmpl-123",
            "the completion names no customer (no 'user'; customer_from 'per_kind')",
        )
    ]
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    "usage, expected",
    [
        (None, {"input": 25, "output": 10}),
        (CHAT_USAGE, {"input": 8, "cached_input": 2, "output": 10, "reasoning": 5, "cost": 0.0012}),
        (ACCOUNTED_USAGE, {"input": 94, "cache_write": 100, "output": 2, "cost": 0.95}),
    ],
    ids=["no-accounting", "chat-usage", "usage-accounting"],
)
def test_a_documented_completion_with_its_user_is_billed_each_kind_once(user_123, usage, expected):
    body = json.loads(CHAT_RESULT)
    if usage is not None:
        body["usage"] = json.loads(usage)
    body["user"] = "user-123"  # the request's user, added by the caller

    answer = post(body, at=COMPLETED_AT).json()

    assert (answer["calls"], answer["rejected"]) == (1, [])
    expected = {k: D(str(v)) if k == "cost" else v for k, v in expected.items()}
    assert tokens_of("chatcmpl-123") == expected


def test_a_customer_field_set_by_finance_wins_for_every_kind(user_123):
    set_mapping(customer_from="user")
    by_user = post(GENERATION, at=GENERATED_AT).json()
    assert refusals(by_user) == [
        (
            0,
            "gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG",
            "the record names no customer (customer_from 'user')",
        )
    ]

    set_mapping(customer_from="external_user")
    completed = json.loads(CHAT_RESULT) | {"user": "user-123"}
    assert post(completed, at=COMPLETED_AT).json()["rejected"][0]["error"]["message"] == (
        "the record names no customer (customer_from 'external_user')"
    )
    assert not UsageEvent.objects.exists()
    assert post(GENERATION, at=GENERATED_AT).json()["calls"] == 1

    # Back to the default, by its name.
    assert set_mapping(customer_from=PER_KIND)["customer_from"] == "per_kind"
    assert post(completed, at=COMPLETED_AT).json()["calls"] == 1


def test_the_default_customer_field_is_per_kind_until_finance_names_one(db):
    body = api_client("read").get("/api/v1/integrations/openrouter").json()
    assert body["customer_from"] == "per_kind"


def test_broadcast_spans_name_the_customer_in_user_id_by_default(user_123):
    """The webhook destination's OTLP JSON, its traceId and spanId in hex (the
    example's are elided), the request's user as `user.id`."""
    start = int(COMPLETED_AT.timestamp()) * 10**9

    def export(*attributes):
        span = {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "chat",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 10**9),
            "attributes": [
                {"key": "gen_ai.request.model", "value": {"stringValue": "openai/gpt-4"}},
                {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "100"}},
                {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": "50"}},
                *attributes,
            ],
        }
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "openrouter"}}]}
        return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}

    anonymous = post(export(), at=COMPLETED_AT).json()
    assert [message for _, _, message in refusals(anonymous)] == [
        "the span names no customer: no attribute 'user.id' on the span or its resource"
    ]

    user = {"key": "user.id", "value": {"stringValue": "user-123"}}
    answer = post(export(user), at=COMPLETED_AT).json()

    assert (answer["calls"], answer["rejected"]) == (1, []), answer
    assert tokens_of("5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174") == {
        "input": 100,
        "output": 50,
    }


def test_a_cancelled_generation_is_billed_for_what_it_reports(o3_mapped):
    """OpenRouter bills a cancelled stream for the tokens produced before it stopped;
    a failed record (`error`) is not billed."""
    cancelled = generation("gen-c", cancelled=True, native_tokens_completion=250_000)
    failed = completion("gen-f") | {"error": {"code": 502, "message": "Provider returned error"}}

    answer = post([cancelled["data"], failed]).json()

    assert (answer["calls"], answer["skipped"], answer["rejected"]) == (1, 1, [])
    assert tokens_of("gen-c") == {
        "input": 500_000,
        "output": 50_000,
        "reasoning": 200_000,
        "cost": D("2.9"),
    }
    assert tokens_of("gen-f") == {}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"native_tokens_prompt": -1}, "native_tokens_prompt must not be negative"),
        ({"native_tokens_completion": "many"}, "native_tokens_completion must be a whole number"),
        ({"native_tokens_cached": 2.5}, "native_tokens_cached must be a whole number of tokens"),
        ({"native_tokens_cached": 500_001}, "the prompt's 500000 tokens are fewer than its cached"),
        ({"native_tokens_reasoning": 300_001}, "the completion's 300000 tokens are fewer"),
        ({"total_cost": "lots"}, "total_cost must be a number"),
        ({"total_cost": None, "usage": -0.5}, "usage must not be negative"),
        ({"external_user": None}, "the generation names no customer (no 'external_user'"),
        ({"external_user": 42}, "customer (external_user) must be a non-empty string"),
        ({"created_at": "yesterday"}, "created_at must be an ISO 8601 time with an offset"),
    ],
)
def test_a_generation_with_bad_counts_is_refused_alone(o3_mapped, changes, message):
    bad = generation("gen-bad", **changes)["data"]

    answer = post([generation("gen-ok")["data"], bad]).json()

    (refused,) = refusals(answer)
    assert refused[:2] == (1, "gen-bad")
    assert refused[2].startswith(message), refused[2]
    assert answer["calls"] == 1
    assert tokens_of("gen-bad") == {}


def test_a_usage_number_without_a_generations_counts_is_refused(o3_mapped):
    record = completion("gen-n") | {"usage": 0.5}
    answer = post(record).json()
    assert refusals(answer) == [
        (
            0,
            "gen-n",
            "usage must be an object (a completion's usage accounting), or the record a "
            "generation with native_tokens_prompt and native_tokens_completion",
        )
    ]


def test_an_older_generation_without_native_counts_bills_its_normalized_ones(o3_mapped):
    older = generation("gen-old", native_tokens_prompt=None, native_tokens_completion=None)
    answer = post(older).json()
    assert (answer["calls"], answer["rejected"]) == (1, [])
    assert tokens_of("gen-old") == {
        "input": 480_000,
        "output": 90_000,
        "reasoning": 200_000,
        "cost": D("2.9"),
    }


def test_bad_records_are_named_and_the_good_one_stored(o3_mapped):
    bad_cost = completion("gen-b", cost="lots")
    reasoning_over = completion("gen-c", completion_tokens=100)
    answer = post([completion("gen-a"), bad_cost, reasoning_over, {"id": "gen-d"}]).json()
    assert answer["calls"] == 1
    assert refusals(answer) == [
        (1, "gen-b", "usage.cost must be a number"),
        (
            2,
            "gen-c",
            "the completion's 100 tokens are fewer than its reasoning and audio tokens (200000)",
        ),
        (3, "gen-d", "the record carries no token usage"),
    ]
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == [
        "gen-a:input",
        "gen-a:output",
        "gen-a:provider_cost",
        "gen-a:reasoning",
    ]


migration = import_module("billing.migrations.0042_openrouter_customer_per_kind")


@pytest.mark.parametrize(
    "stored, updated_by, after",
    [
        ("user", "", "per_kind"),  # the old default, never saved by anyone
        ("user", "finance", "user"),  # saved by someone: kept
        ("external_user", "", "external_user"),
    ],
)
def test_the_old_default_becomes_per_kind_unless_someone_saved_it(db, stored, updated_by, after):
    IntegrationSource.objects.create(
        source="openrouter", customer_from=stored, updated_by=updated_by
    )
    IntegrationSource.objects.create(source="litellm", customer_from="user", updated_by="")

    migration.customer_per_kind(current_apps, None)

    assert IntegrationSource.objects.get(source="openrouter").customer_from == after
    assert IntegrationSource.objects.get(source="litellm").customer_from == "user"
    migration.customer_user(current_apps, None)
    assert IntegrationSource.objects.get(source="openrouter").customer_from == stored
