"""POST /api/v1/integrations/litellm: LiteLLM's logging payloads (what its
generic_api callback sends) become token events, priced by S35's card."""

import json
from datetime import UTC, datetime

import pytest
import time_machine

from billing.models import UsageEvent
from tests.factories import api_client
from tests.integrations.conftest import usage_rates

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def payload(
    call_id="call-1",
    *,
    customer="acme",
    prompt=1_200_000,
    cached=200_000,
    completion=100_000,
    reasoning=0,
    status="success",
    model="gpt-4o",
) -> dict:
    return {
        "id": call_id,
        "call_type": "acompletion",
        "status": status,
        "model": model,
        "end_user": customer,
        "startTime": NOW.timestamp(),
        "endTime": NOW.timestamp() + 2.5,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "metadata": {
            "user_api_key_team_id": "team-7",
            "usage_object": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": None},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        },
        "messages": [{"role": "user", "content": "hi"}],
        "response": {"choices": [{"message": {"content": "hello"}}]},
    }


def post(body, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with time_machine.travel(NOW, tick=False):
        return api_client("events:write").post(
            "/api/v1/integrations/litellm", data=data, content_type=content_type
        )


def test_s35_litellm_call_bills_input_cached_and_output_once(s35):
    first = post([payload()])
    assert first.status_code == 202, first.json()
    assert first.json() == {
        "accepted": 3,
        "duplicates": 0,
        "calls": 1,
        "skipped": 0,
        "rejected": [],
        "unpriced_models": [],
    }
    again = post([payload()])
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 3
    events = {
        e.event_id: e.properties for e in UsageEvent.objects.filter(customer__external_id="acme")
    }
    assert events["call-1:input"]["tokens"] == 1_000_000
    assert events["call-1:cached_input"]["tokens"] == 200_000
    assert events["call-1:output"] == {
        "model": "gpt-4o",
        "source_model": "gpt-4o",
        "token_type": "output",
        "tokens": 100_000,
        "source": "litellm",
    }
    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    assert amount == "3.75"
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "2.50"),
        ({"model": "gpt-4o", "token_type": "cached_input"}, "0.25"),
        ({"model": "gpt-4o", "token_type": "output"}, "1.00"),
    ]


def test_ndjson_and_a_single_object_and_failures_not_billed(s35):
    ndjson = "\n".join(json.dumps(p) for p in (payload("a"), payload("b", status="failure")))
    answer = post(ndjson, "application/x-ndjson").json()
    assert (answer["calls"], answer["skipped"], answer["accepted"]) == (1, 1, 3)
    single = post(payload("c")).json()
    assert (single["calls"], single["accepted"]) == (1, 3)


def test_a_batch_larger_than_the_apis_one_megabyte_is_read_up_to_eight(s35):
    """LiteLLM's payloads carry each call's messages: a batch of 300 calls of 6 KB
    of prompt each (about 2 MB) is billed, not refused as POST /events would."""
    calls = [payload(f"big-{n}") | {"messages": [{"content": "x" * 6000}]} for n in range(300)]
    body = json.dumps(calls)
    assert 1024 * 1024 < len(body) < 8 * 1024 * 1024
    answer = post(body)
    assert answer.status_code == 202, answer.content[:300]
    assert (answer.json()["calls"], answer.json()["accepted"]) == (300, 900)
