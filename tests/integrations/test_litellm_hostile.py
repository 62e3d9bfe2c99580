"""POST /api/v1/integrations/litellm against what no gateway should send: the body
refused whole (4xx, nothing stored) or each bad record refused alone, named by its
index and id with the field at fault, never a 5xx, nothing of a refused call stored
and every good call's events stored."""

import json

import pytest
import time_machine
from django.conf import settings
from rest_framework.test import APIClient

from billing.integrations.calls import MAX_CALL_ID, MAX_CALLS_PER_REQUEST
from billing.integrations.ingest import source_row
from billing.models import UsageEvent
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH
from tests.factories import api_client
from tests.integrations.test_litellm_ingest import NOW, payload
from tests.test_chunked_bodies import MIB, CountingStream, wsgi_request

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/litellm"


def post(body, content_type="application/json", client=None):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with time_machine.travel(NOW, tick=False):
        return (client or api_client("events:write")).post(
            URL, data=data, content_type=content_type
        )


def usage(record: dict) -> dict:
    return record["metadata"]["usage_object"]


def events_of(call_id: str) -> int:
    return UsageEvent.objects.filter(event_id__startswith=f"{call_id}:").count()


def refusals(answer: dict) -> list[tuple[int, str | None, str]]:
    return [(r["index"], r["id"], r["error"]["message"]) for r in answer["rejected"]]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[{]",
        b'[{"id": "a"},]',
        b"NaN",
        b"[1, 2",
        b"\xff\xfe\x00garbage",
        # A JSON array printed over several lines, broken: no line of it is JSON, so
        # it is a broken document, not NDJSON.
        b'[\n  {"id": "a",\n   "model": }\n]\n',
        # Unbalanced, 100,000 levels deep.
        b"[" * 100_000,
    ],
)
def test_a_body_that_is_not_json_is_400(s35, body):
    response = post(body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["message"].startswith("malformed JSON")
    assert UsageEvent.objects.count() == 0


def test_wrong_content_type_is_415_a_read_only_key_403_no_key_401(s35):
    good = [payload("ct")]
    for content_type in ("text/html", "application/xml", "multipart/form-data; boundary=x"):
        assert post(good, content_type).status_code == 415
    assert post(good, client=api_client("read")).status_code == 403
    assert post(good, client=APIClient()).status_code == 401
    wrong_key = APIClient()
    wrong_key.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert post(good, client=wrong_key).status_code == 401
    assert UsageEvent.objects.count() == 0
    assert post(good, "application/x-ndjson; charset=utf-8").status_code == 202
    assert events_of("ct") == 3


def test_a_body_over_the_limit_is_413_nothing_stored(s35):
    record = payload("big")
    record["messages"] = [{"role": "user", "content": "x" * settings.BILLING_INTEGRATION_MAX_BODY}]
    body = json.dumps([record])
    assert len(body) > settings.BILLING_INTEGRATION_MAX_BODY
    response = post(body)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert UsageEvent.objects.count() == 0
    assert source_row("litellm").recent == []


@pytest.mark.parametrize("form", ["json_array", "ndjson"])
def test_more_records_than_a_request_may_carry_is_413_none_stored(s35, form):
    records = [payload(f"c{i}") for i in range(MAX_CALLS_PER_REQUEST + 1)]
    if form == "json_array":
        response = post(records)
    else:
        response = post("\n".join(json.dumps(r) for r in records), "application/x-ndjson")
    assert response.status_code == 413
    assert str(MAX_CALLS_PER_REQUEST + 1) in response.json()["error"]["message"]
    assert UsageEvent.objects.count() == 0


def test_millions_of_lines_that_are_not_json_are_413_unread(s35):
    """Each line not JSON is read twice (the fast reader, then json.loads for its
    error): 4,000,000 of them in 8 MB took a minute before their count was looked at."""
    response = post(b"x\n" * 4_000_000, "application/x-ndjson")
    assert response.status_code == 413
    assert "4000000 records" in response.json()["error"]["message"]


def with_tokens(call_id, **fields) -> dict:
    record = payload(call_id)
    for name, value in fields.items():
        if name in ("cached_tokens",):
            usage(record)["prompt_tokens_details"][name] = value
        elif name in ("reasoning_tokens",):
            usage(record)["completion_tokens_details"][name] = value
        else:
            usage(record)[name] = value
    return record


BAD_TOKENS = [
    ({"prompt_tokens": -1}, "prompt_tokens must not be negative"),
    ({"prompt_tokens": 1.5}, "prompt_tokens must be a whole number of tokens"),
    ({"prompt_tokens": True}, "prompt_tokens must be a whole number of tokens"),
    ({"prompt_tokens": "12abc"}, "prompt_tokens must be a whole number of tokens"),
    ({"prompt_tokens": "NaN"}, "prompt_tokens must be a whole number of tokens"),
    ({"prompt_tokens": [1]}, "prompt_tokens must be a whole number of tokens"),
    ({"prompt_tokens": 10**13}, "prompt_tokens must be at most 1,000,000,000,000 tokens"),
    ({"prompt_tokens": "1e13"}, "prompt_tokens must be at most 1,000,000,000,000 tokens"),
    ({"completion_tokens": -5}, "completion_tokens must not be negative"),
    ({"completion_tokens": {"n": 1}}, "completion_tokens must be a whole number of tokens"),
    (
        {"cached_tokens": "lots"},
        "prompt_tokens_details.cached_tokens must be a whole number of tokens",
    ),
    (
        {"reasoning_tokens": -1},
        "completion_tokens_details.reasoning_tokens must not be negative",
    ),
    ({"prompt_tokens_details": []}, "prompt_tokens_details must be an object"),
    # More cached than the prompt holds, more reasoning than the completion.
    ({"cached_tokens": 1_200_001}, "the prompt's 1200000 tokens are fewer than its cached"),
    ({"reasoning_tokens": 100_001}, "the completion's 100000 tokens are fewer than its reasoning"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_TOKENS)
def test_a_bad_token_count_refuses_its_record_naming_the_field(s35, fields, message):
    response = post([payload("good-1"), with_tokens("bad", **fields), payload("good-2")])
    assert response.status_code == 202
    answer = response.json()
    (refused,) = refusals(answer)
    assert refused[:2] == (1, "bad")
    assert refused[2].startswith(message), refused[2]
    assert (answer["calls"], answer["accepted"]) == (2, 6)
    assert (events_of("bad"), events_of("good-1"), events_of("good-2")) == (0, 3, 3)


def test_a_batch_past_post_events_limit_is_taken(s35):
    """LiteLLM sends up to 512 calls a batch, each with its messages and answer: 5 KB
    for a one-word prompt. The API's 1 MiB limit (POST /events') refused such a
    batch 413, and LiteLLM drops a batch so answered."""
    records = [payload(f"big-{i}") for i in range(300)]
    for record in records:
        record["messages"] = [{"role": "user", "content": "x" * 10_000}]
    body = json.dumps(records)
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(body) < settings.BILLING_INTEGRATION_MAX_BODY
    answer = post(body).json()
    assert (answer["calls"], answer["accepted"], answer["rejected"]) == (300, 900, [])


def test_a_chunked_batch_is_read_to_the_integrations_limit(db):
    """config.middleware.SizedBodies reads a chunked body to the limit of its path."""
    stream = CountingStream(2 * MIB)
    status, _ = wsgi_request(URL, stream, terminated=True)
    # Read whole, and on to the key's check (none here).
    assert status.startswith("401")
    assert stream.read_bytes == 2 * MIB

    stream = CountingStream(50 * MIB)
    status, body = wsgi_request(URL, stream, terminated=True)
    assert status.startswith("413")
    assert json.loads(body)["error"]["type"] == "payload_too_large"
    assert stream.read_bytes == settings.BILLING_INTEGRATION_MAX_BODY + 1


def test_a_number_no_column_holds_refuses_its_record(s35):
    huge = payload("huge")
    usage(huge)["prompt_tokens"] = "HUGE"
    body = json.dumps([huge, payload("fine")]).replace('"HUGE"', "1e400")
    answer = post(body).json()
    assert refusals(answer) == [
        (0, "huge", "prompt_tokens must be at most 1,000,000,000,000 tokens")
    ]
    assert (events_of("huge"), events_of("fine")) == (0, 3)


def test_records_without_usage_or_customer_or_with_garbage_are_refused_alone(s35):
    no_usage = payload("no-usage")
    del no_usage["metadata"]["usage_object"]
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        del no_usage[name]
    empty_usage = payload("empty-usage")
    empty_usage["metadata"]["usage_object"] = {}
    for name in ("prompt_tokens", "completion_tokens"):
        empty_usage[name] = None
    other_usage = payload("other-usage")
    other_usage["metadata"]["usage_object"] = {"input_tokens": 10}
    no_customer = payload("no-customer")
    no_customer["end_user"] = None
    blank_customer = payload("blank-customer", customer="")
    unknown = payload("unknown", customer="nobody")
    weird_status = payload("weird", status={"a": ["x" * 10_000]})
    records = [
        no_usage,
        empty_usage,
        other_usage,
        no_customer,
        blank_customer,
        unknown,
        weird_status,
        payload("good"),
        "a string",
        None,
        [payload("inner")],
        {**payload("no-model"), "model": None},
        {**payload("bad-time"), "startTime": "yesterday"},
        {**payload("far-time"), "startTime": 1e30},
        {**payload("old"), "startTime": NOW.timestamp() - 400 * 86400},
        {**payload("list-metadata"), "metadata": ["a"]},
    ]
    response = post(records)
    assert response.status_code == 202
    answer = response.json()
    assert refusals(answer) == [
        (0, "no-usage", "the call carries no token usage"),
        (1, "empty-usage", "the call carries no token usage"),
        (2, "other-usage", "the call carries no token usage"),
        (3, "no-customer", "the call names no customer (customer_from 'end_user')"),
        (4, "blank-customer", "the call names no customer (customer_from 'end_user')"),
        (5, "unknown", "unknown customer 'nobody'"),
        (6, "weird", "status must be 'success' or 'failure'"),
        (8, None, "each record must be a JSON object (LiteLLM's logging payload)"),
        (9, None, "each record must be a JSON object (LiteLLM's logging payload)"),
        (10, None, "each record must be a JSON object (LiteLLM's logging payload)"),
        (11, "no-model", "model must be a non-empty string"),
        (12, "bad-time", "startTime must be a time since the epoch"),
        (13, "far-time", "startTime must be a time since the epoch"),
        (14, "old", answer["rejected"][-2]["error"]["message"]),
        (15, "list-metadata", "metadata must be an object"),
    ]
    assert "older than" in answer["rejected"][-2]["error"]["message"]
    assert (answer["calls"], answer["accepted"]) == (1, 3)
    assert UsageEvent.objects.count() == 3 and events_of("good") == 3


def test_ndjson_lines_that_are_not_json_are_refused_alone(s35):
    lines = [json.dumps(payload("a")), "{not json", json.dumps(payload("b")), '"\\ud800"']
    answer = post("\n".join(lines), "application/x-ndjson").json()
    assert refusals(answer) == [
        (1, None, "this line is not JSON"),
        (3, None, "each record must be a JSON object (LiteLLM's logging payload)"),
    ]
    assert (events_of("a"), events_of("b")) == (3, 3)


def test_unstorable_text_in_an_id_or_a_customer_is_refused_without_echoing_it(s35):
    nul_id = payload("nul\u0000id")
    surrogate_id = payload("lone\ud800")
    nul_customer = payload("nul-customer", customer="ac\u0000me")
    surrogate_customer = payload("surrogate-customer", customer="acme\udfff")
    surrogate_model = payload("surrogate-model", model="gpt-4o\ud83d")
    body = json.dumps(
        [nul_id, surrogate_id, nul_customer, surrogate_customer, surrogate_model, payload("ok")]
    )
    response = post(body)
    assert response.status_code == 202
    answer = response.json()
    assert refusals(answer) == [
        (0, None, "id: text must not contain the NUL character (U+0000)"),
        (1, None, "id: text must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"),
        (
            2,
            "nul-customer",
            "customer (end_user): text must not contain the NUL character (U+0000)",
        ),
        (
            3,
            "surrogate-customer",
            "customer (end_user): text must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)",
        ),
        (
            4,
            "surrogate-model",
            "model: text must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)",
        ),
    ]
    assert UsageEvent.objects.count() == 3 and events_of("ok") == 3


def test_an_id_too_long_for_its_event_ids_is_refused_whole(s35):
    """A call's longest event id is its id and ':provider_cost': a 248-character id
    made a 261-character ':cached_input' id, refused, while its ':input' and
    ':output' ids (254 and 255 characters) were stored: half a call billed."""
    longest = "x" * MAX_CALL_ID
    too_long = "y" * (MAX_CALL_ID + 1)
    near = "z" * 248
    over = "w" * 256
    answer = post([payload(longest), payload(too_long), payload(near), payload(over)]).json()
    assert refusals(answer) == [
        (1, too_long, f"id must be at most {MAX_CALL_ID} characters"),
        (2, near, f"id must be at most {MAX_CALL_ID} characters"),
        (3, None, "id must be at most 255 characters"),
    ]
    assert events_of(longest) == 3
    assert events_of(too_long) == events_of(near) == events_of(over[:255]) == 0
    assert UsageEvent.objects.count() == 3


def test_deep_nesting_in_a_record_or_the_body_is_no_error(s35):
    deep_messages = payload("deep-messages")
    body = json.dumps([payload("plain"), deep_messages]).replace(
        '"messages": [{"role": "user", "content": "hi"}]',
        '"messages": ' + "[" * 100_000 + "]" * 100_000,
    )
    assert body.count("[") > 100_000
    answer = post(body).json()
    # The messages are not read: the call is billed.
    assert (answer["calls"], answer["rejected"]) == (2, [])
    assert events_of("deep-messages") == 3

    deep_details = payload("deep-details")
    usage(deep_details)["prompt_tokens_details"] = "DEEP"
    body = json.dumps([deep_details]).replace('"DEEP"', "[" * 100_000 + "]" * 100_000)
    assert refusals(post(body).json()) == [
        (0, "deep-details", "prompt_tokens_details must be an object")
    ]

    for body in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000):
        response = post(body)
        assert response.status_code == 202
        (refused,) = refusals(response.json())
        assert refused[0] == 0
    assert events_of("deep-details") == 0


def test_400_calls_over_several_event_batches_store_exactly_the_good_calls(s35):
    """1,200 events, so two batches of ingestion: every bad call named by index and
    id, none of its events stored, whichever batch it fell in."""
    records, bad = [], {}
    for index in range(400):
        call_id = f"call-{index:03d}"
        record = payload(call_id)
        if index % 37 == 5:
            usage(record)["prompt_tokens"] = -index
            bad[index] = (call_id, "prompt_tokens must not be negative")
        elif index % 41 == 7:
            record["end_user"] = "nobody"
            bad[index] = (call_id, "unknown customer 'nobody'")
        elif index % 43 == 11:
            usage(record)["prompt_tokens_details"]["cached_tokens"] = 2_000_000
            bad[index] = (call_id, "the prompt's 1200000 tokens are fewer than")
        elif index % 47 == 13:
            call_id = f"{index:03d}-" + "L" * 245
            record["id"] = call_id
            bad[index] = (call_id, f"id must be at most {MAX_CALL_ID} characters")
        records.append(record)
    assert 3 * (len(records) - len(bad)) > MAX_EVENTS_PER_BATCH
    response = post(records)
    assert response.status_code == 202
    answer = response.json()
    got = refusals(answer)
    assert [(index, id_) for index, id_, _ in got] == [(i, bad[i][0]) for i in sorted(bad)]
    for index, _, message in got:
        assert message.startswith(bad[index][1]), (index, message)
    good = [r["id"] for i, r in enumerate(records) if i not in bad]
    assert (answer["calls"], answer["accepted"], answer["duplicates"]) == (
        len(good),
        3 * len(good),
        0,
    )
    assert all(events_of(call_id) == 3 for call_id in good)
    assert all(events_of(call_id) == 0 for call_id, _ in bad.values())
    assert UsageEvent.objects.count() == 3 * len(good)
    assert {e.timestamp for e in UsageEvent.objects.all()} == {NOW}
