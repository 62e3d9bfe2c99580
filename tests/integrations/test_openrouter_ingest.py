"""POST /api/v1/integrations/openrouter: OpenRouter's generations and its
completions with usage accounting become token events (generation id as the
call's id), its own cost kept beside them, priced by S35's card."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import source_row
from billing.models import UsageEvent
from tests.factories import api_client
from tests.integrations.conftest import usage_rates

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def completion(gen_id="gen-1", **usage) -> dict:
    """A completion answered with usage accounting (OpenRouter's `usage` with cost)."""
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


def generation(gen_id="gen-2") -> dict:
    """A generation as OpenRouter's generation endpoint reports it."""
    return {
        "data": {
            "id": gen_id,
            "model": "openai/o3",
            "created_at": "2026-11-10T12:00:00Z",
            "user": "acme",
            "tokens_prompt": 480_000,
            "tokens_completion": 290_000,
            "native_tokens_prompt": 500_000,
            "native_tokens_completion": 300_000,
            "native_tokens_reasoning": 200_000,
            "native_tokens_cached": 0,
            "total_cost": 2.9,
            "cancelled": False,
        }
    }


def post(body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with time_machine.travel(NOW, tick=False):
        return api_client("events:write").post(
            "/api/v1/integrations/openrouter", data=data, content_type="application/json"
        )


@pytest.fixture
def o3_mapped(s35):
    row = source_row(IntegrationSource.OPENROUTER)
    row.models = {"openai/o3": "o3"}
    row.save()
    return s35


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


def test_bad_records_are_named_and_the_good_one_stored(o3_mapped):
    bad_cost = completion("gen-b", cost="lots")
    reasoning_over = completion("gen-c", completion_tokens=100)
    answer = post([completion("gen-a"), bad_cost, reasoning_over, {"id": "gen-d"}]).json()
    assert answer["calls"] == 1
    assert [(r["index"], r["id"], r["error"]["message"]) for r in answer["rejected"]] == [
        (1, "gen-b", "usage.cost must be a number"),
        (
            2,
            "gen-c",
            "the completion's 100 tokens are fewer than its reasoning and audio tokens (200000)",
        ),
        (3, "gen-d", "the record names no customer (customer_from 'user')"),
    ]
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == [
        "gen-a:input",
        "gen-a:output",
        "gen-a:provider_cost",
        "gen-a:reasoning",
    ]
