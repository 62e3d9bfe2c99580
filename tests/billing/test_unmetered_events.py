"""POST /api/v1/events names the stored events that no meter reads (issue 76): a
misspelt event_name is stored and billed as nothing, so the 202 says so. Events a
meter reads, rejected ones and duplicates are not named; the answer has no
"unmetered" when every stored event is metered."""

import json
from datetime import UTC, datetime, timedelta

import time_machine

from billing.models import UsageEvent
from plans.services import meter_create

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
URL = "/api/v1/events"


def event(event_id: str, event_name: str, customer: str = "acme") -> dict:
    return {
        "id": event_id,
        "customer": customer,
        "event_name": event_name,
        "timestamp": (NOW - timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        "properties": {"model": "gpt-4o"},
    }


def post(api, events: list):
    with time_machine.travel(NOW, tick=False):
        response = api.post(URL, json.dumps({"events": events}), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def prompts_meter():
    # Only o3 prompts: a gpt-4o prompt, which its filter passes over, is read all the same.
    return meter_create(
        code="prompts",
        name="Prompts",
        event_name="prompt",
        aggregation="count",
        filters={"model": ["o3"]},
    )


def test_a_batch_names_the_stored_events_no_meter_reads(api, acme):
    # given
    prompts_meter()

    # when
    answer = post(
        api,
        [
            event("evt_1", "prompt"),
            event("evt_2", "promtp"),
            event("evt_3", "prompt.v2"),
            event("evt_4", "promtp", customer="nobody"),
            event("evt_2", "promtp"),
        ],
    )

    # then: stored all the same, and named by their place in the batch
    assert answer["accepted"] == 3
    assert answer["duplicates"] == 1
    assert [r["index"] for r in answer["rejected"]] == [3]
    assert answer["unmetered"] == [
        {"index": 1, "id": "evt_2", "event_name": "promtp"},
        {"index": 2, "id": "evt_3", "event_name": "prompt.v2"},
    ]
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {
        "evt_1",
        "evt_2",
        "evt_3",
    }


def test_a_single_event_no_meter_reads_is_named(api, acme):
    prompts_meter()

    answer = post(api, [event("evt_9", "prompts")])

    assert answer == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
        "unmetered": [{"index": 0, "id": "evt_9", "event_name": "prompts"}],
    }


def test_no_unmetered_when_a_meter_reads_every_event(api, acme):
    prompts_meter()

    answer = post(api, [event("evt_1", "prompt"), event("evt_2", "prompt")])

    assert answer == {"accepted": 2, "duplicates": 0, "rejected": []}


def test_a_repeated_unmetered_event_is_a_duplicate_not_named_again(api, acme):
    prompts_meter()
    post(api, [event("evt_1", "promtp")])

    answer = post(api, [event("evt_1", "promtp")])

    assert answer == {"accepted": 0, "duplicates": 1, "rejected": []}
