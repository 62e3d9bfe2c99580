"""POST /api/v1/events: duplicates (S14), partial acceptance, the size limits, and
every bad input answered with a 4xx or a per-event rejection with nothing stored
for it. Time is set with time_machine; the API reads the clock."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from billing.models import EventKey, UsageEvent, UsageRollup, UsageUniqueValue
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.partitions import event_partitions_ensure
from billing.usage.reads import usage_quantities
from common import nesting
from common.money import DECIMAL_MESSAGE
from customers.api_keys import api_key_create
from plans.services import meter_create

D = Decimal
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
URL = "/api/v1/events"
MIB = 1024 * 1024


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


ON_POSTGRES = connection.vendor == "postgresql"
TODAY = (NOW - timedelta(days=1), NOW + timedelta(minutes=10))


@pytest.fixture
def meters(db):
    return {
        "prompts": meter_create(
            code="prompts", name="Prompts", event_name="prompt", aggregation="count"
        ),
        "tokens": meter_create(
            code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
        ),
        "peak": meter_create(
            code="peak", name="Peak", event_name="llm", aggregation="max", value_property="n"
        ),
        "users": meter_create(
            code="users",
            name="Users",
            event_name="prompt",
            aggregation="unique_count",
            unique_property="user",
        ),
    }


def prompt(event_id: str, customer: str = "acme", minutes_ago: int = 60, **properties) -> dict:
    return {
        "id": event_id,
        "customer": customer,
        "event_name": "prompt",
        "timestamp": iso(NOW - timedelta(minutes=minutes_ago)),
        "properties": {"user": "u1", **properties},
    }


def llm(event_id: str, n, customer: str = "acme") -> dict:
    return {
        "id": event_id,
        "customer": customer,
        "event_name": "llm",
        "timestamp": iso(NOW - timedelta(minutes=90)),
        "properties": {"n": n},
    }


def post(client, events: list, *, now: datetime = NOW):
    return post_raw(client, json.dumps({"events": events}), now=now)


def post_raw(client, body, *, content_type: str = "application/json", now: datetime = NOW):
    with time_machine.travel(now, tick=False):
        return client.generic("POST", URL, body, content_type=content_type)


def accepted(response) -> dict:
    assert response.status_code == 202, response.content
    return response.json()


def stored() -> set[tuple[str, str]]:
    """(customer external_id, event id) of every stored event, checked against its key."""
    events = set(UsageEvent.objects.values_list("customer__external_id", "event_id"))
    keys = set(EventKey.objects.values_list("customer__external_id", "event_id"))
    assert events == keys
    return events


def assert_nothing_stored() -> None:
    assert UsageEvent.objects.count() == 0
    assert EventKey.objects.count() == 0
    assert UsageRollup.objects.count() == 0
    assert UsageUniqueValue.objects.count() == 0


def usage(customer, code: str, start: datetime = TODAY[0], end: datetime = TODAY[1]) -> Decimal:
    meter = next(m for m in meter_cache.by_id().values() if m.code == code)
    return usage_quantities(customer_id=customer.id, meters=[meter], start=start, end=end)[meter.id]


# Accepted batches


def test_a_valid_batch_is_accepted_and_metered(api, acme, meters):
    api.raise_request_exception = False

    response = post(
        api,
        [
            prompt("evt_0001", user="u1"),
            prompt("evt_0002", user="u2"),
            llm("evt_0003", 1500),
            llm("evt_0004", "300"),
        ],
    )

    assert accepted(response) == {"accepted": 4, "duplicates": 0, "rejected": []}
    assert stored() == {("acme", f"evt_000{i}") for i in (1, 2, 3, 4)}
    assert [usage(acme, c) for c in ("prompts", "users", "tokens", "peak")] == [2, 2, 1800, 1500]


def test_valid_batches_are_accepted_and_metered(api, acme, meters):
    """As above, with the count-like and the value meters' events in separate batches."""
    first = post(api, [prompt("evt_0001", user="u1"), prompt("evt_0002", user="u2")])
    second = post(api, [llm("evt_0003", 1500), llm("evt_0004", "300")])

    assert accepted(first) == accepted(second) == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert stored() == {("acme", f"evt_000{i}") for i in (1, 2, 3, 4)}
    assert [usage(acme, c) for c in ("prompts", "users", "tokens", "peak")] == [2, 2, 1800, 1500]


def test_event_is_stored_as_sent_with_its_time_in_utc(api, acme, meters):
    body = (
        '{"events": [{"id": "e1", "customer": "acme", "event_name": "llm",'
        ' "timestamp": "2026-11-21T13:04:05.250+01:00",'
        ' "properties": {"n": 0.1, "model": "gpt-4o", "meta": {"k": [1, "x"]}}}]}'
    )

    assert accepted(post_raw(api, body))["accepted"] == 1

    stored_event = UsageEvent.objects.get()
    assert stored_event.timestamp == datetime(2026, 11, 21, 12, 4, 5, 250000, tzinfo=UTC)
    assert stored_event.received_at == NOW
    assert stored_event.properties == {"n": 0.1, "model": "gpt-4o", "meta": {"k": [1, "x"]}}
    assert usage(acme, "tokens") == D("0.1")


def test_an_event_without_properties_is_stored(api, acme, meters):
    event = {**prompt("e1"), "event_name": "signup"}
    del event["properties"]

    assert accepted(post(api, [event]))["accepted"] == 1
    assert UsageEvent.objects.get().properties == {}


def test_an_event_no_meter_reads_is_stored(api, acme, meters):
    event = {**prompt("e1"), "event_name": "unmetered.thing"}

    assert accepted(post(api, [event]))["accepted"] == 1
    assert stored() == {("acme", "e1")}
    assert UsageRollup.objects.count() == 0


def test_an_empty_list_is_accepted_and_stores_nothing(api, acme):
    assert accepted(post(api, [])) == {"accepted": 0, "duplicates": 0, "rejected": []}
    assert_nothing_stored()


def test_numbers_in_the_body_are_read_as_exact_decimals(api, acme, meters):
    events = ",".join(
        f'{{"id": "e{i}", "customer": "acme", "event_name": "llm",'
        f' "timestamp": "2026-11-21T10:{i:02d}:00Z", "properties": {{"n": 0.1}}}}'
        for i in range(10)
    )

    assert accepted(post_raw(api, f'{{"events": [{events}]}}'))["accepted"] == 10
    assert usage(acme, "tokens") == D(1)
    assert str(usage(acme, "tokens")) == "1"


# Duplicates (SCENARIOS S14)


def test_s14_the_same_id_posted_three_times_is_accepted_once(api, acme, meters):
    responses = [accepted(post(api, [prompt("evt_0001")])) for _ in range(3)]

    assert [(r["accepted"], r["duplicates"]) for r in responses] == [(1, 0), (0, 1), (0, 1)]
    assert sum(r["accepted"] for r in responses) == 1
    assert sum(r["duplicates"] for r in responses) == 2
    assert usage(acme, "prompts") == 1
    assert stored() == {("acme", "evt_0001")}


def test_s14_the_same_id_three_times_in_one_batch_is_accepted_once(api, acme, meters):
    response = post(api, [prompt("evt_0001")] * 3)

    assert accepted(response) == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert usage(acme, "prompts") == 1
    assert UsageRollup.objects.get(meter=meters["prompts"]).event_count == 1


def test_s14_the_same_id_for_two_customers_is_two_events(api, acme, beta, meters):
    first = accepted(post(api, [prompt("evt_0001", "acme")]))
    second = accepted(post(api, [prompt("evt_0001", "beta")]))

    assert (first["accepted"], second["accepted"]) == (1, 1)
    assert (first["duplicates"], second["duplicates"]) == (0, 0)
    assert stored() == {("acme", "evt_0001"), ("beta", "evt_0001")}
    assert (usage(acme, "prompts"), usage(beta, "prompts")) == (1, 1)


def test_the_same_id_for_two_customers_in_one_batch_is_two_events(api, acme, beta, meters):
    response = post(api, [prompt("evt_0001", "acme"), prompt("evt_0001", "beta")])

    assert accepted(response) == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert (usage(acme, "prompts"), usage(beta, "prompts")) == (1, 1)


def test_duplicates_across_batches_change_nothing_even_with_other_content(api, acme, meters):
    # given
    accepted(post(api, [llm("a", 10), llm("b", 20)]))
    before = list(UsageRollup.objects.order_by("meter_id").values())

    # when the same ids come back with other values, next to one new event
    response = post(
        api, [llm("b", 999), {**prompt("a"), "properties": {"n": 5, "user": "u9"}}, llm("c", 30)]
    )

    # then only the new event counts
    assert accepted(response) == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert stored() == {("acme", "a"), ("acme", "b"), ("acme", "c")}
    assert UsageEvent.objects.get(event_id="b").properties == {"n": 20}
    assert usage(acme, "tokens") == 60
    assert usage(acme, "peak") == 30
    assert usage(acme, "prompts") == 0
    assert before[0]["event_count"] == 2


def test_a_repeat_within_a_batch_keeps_the_first_copy(api, acme, meters):
    response = post(api, [llm("a", 10), llm("a", 999)])

    assert accepted(response) == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert usage(acme, "tokens") == 10


def test_an_id_is_a_duplicate_whatever_its_timestamp(api, acme, meters):
    """The key is (customer, id) alone, also when the copies fall in different months
    (on PostgreSQL, different partitions)."""
    accepted(post(api, [prompt("a", minutes_ago=60)]))

    response = post(api, [prompt("a", minutes_ago=60 * 24 * 30)])

    assert accepted(response) == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert UsageEvent.objects.get().timestamp == NOW - timedelta(minutes=60)


def test_a_rejected_copy_does_not_block_a_valid_one(api, acme, meters):
    bad = {**prompt("a"), "timestamp": "not a time"}

    response = post(api, [bad, prompt("a")])

    body = accepted(response)
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(0, "a")]
    assert stored() == {("acme", "a")}


# Partial acceptance


def test_valid_events_are_stored_while_others_are_rejected(api, acme, meters):
    response = post(
        api,
        [
            prompt("evt_0001"),
            prompt("evt_0002", user={"name": "x"}),
            prompt("evt_0003"),
            prompt("evt_0004", customer="acm"),
            {**prompt("evt_0005"), "timestamp": "2026-11-21T11:00:00"},
            prompt("evt_0006", user="u2"),
            42,
        ],
    )

    body = accepted(response)
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [
        (1, "evt_0002"),
        (3, "evt_0004"),
        (4, "evt_0005"),
        (6, None),
    ]
    assert {r["error"]["type"] for r in body["rejected"]} == {"invalid_request"}
    assert body["rejected"][1]["error"]["message"] == "unknown customer 'acm'"
    assert "needs an offset" in body["rejected"][2]["error"]["message"]
    assert all(r["error"]["message"] for r in body["rejected"])
    assert stored() == {("acme", "evt_0001"), ("acme", "evt_0003"), ("acme", "evt_0006")}
    assert (usage(acme, "prompts"), usage(acme, "users")) == (3, 2)
    assert UsageUniqueValue.objects.count() == 2


# Per-event rejections: answered 202, the event named with its index, nothing stored for it

LONG_ID = "x" * 256
MISSING = object()  # the key is left out of the event
NESTED = {"deep": 1}

REJECTED_EVENTS = {
    # id
    "id missing": ({"id": MISSING}, None, "id must be a non-empty string"),
    "id a number": ({"id": 42}, None, "id must be a non-empty string"),
    "id null": ({"id": None}, None, "id must be a non-empty string"),
    "id an object": ({"id": {"v": "a"}}, None, "id must be a non-empty string"),
    "id empty": ({"id": ""}, "", "id must be a non-empty string"),
    "id over 255 characters": ({"id": LONG_ID}, LONG_ID[:255], "at most 255 characters"),
    # customer
    "unknown customer": ({"customer": "acm"}, "bad", "unknown customer 'acm'"),
    "customer missing": ({"customer": MISSING}, "bad", "customer must be"),
    "customer null": ({"customer": None}, "bad", "customer must be"),
    "customer a number": ({"customer": 7}, "bad", "customer must be"),
    # event_name
    "event_name missing": ({"event_name": MISSING}, "bad", "event_name must be"),
    "event_name empty": ({"event_name": ""}, "bad", "event_name must be"),
    "event_name over 255": ({"event_name": "e" * 256}, "bad", "event_name must be"),
    # timestamp
    "timestamp missing": ({"timestamp": MISSING}, "bad", "timestamp must be an ISO 8601"),
    "timestamp null": ({"timestamp": None}, "bad", "timestamp must be an ISO 8601"),
    "timestamp a number": ({"timestamp": 1795000000}, "bad", "timestamp must be an ISO 8601"),
    "timestamp words": ({"timestamp": "yesterday"}, "bad", "is not ISO 8601"),
    "timestamp empty": ({"timestamp": ""}, "bad", "is not ISO 8601"),
    "timestamp month 13": ({"timestamp": "2026-13-01T00:00:00Z"}, "bad", "is not ISO 8601"),
    "timestamp offset 25h": ({"timestamp": "2026-11-21T11:00:00+25:00"}, "bad", "not ISO 8601"),
    "timestamp over 64": ({"timestamp": "2026-11-21T11:00:00Z" + " " * 60}, "bad", "ISO 8601"),
    "timestamp no offset": ({"timestamp": "2026-11-21T11:00:00"}, "bad", "needs an offset"),
    "timestamp a date": ({"timestamp": "2026-11-21"}, "bad", "needs an offset"),
    # Between date and time a T (or t, or a space: RFC 3339), no other character
    "timestamp NUL between": ({"timestamp": "2026-11-21\x0011:00:00Z"}, "bad", "not ISO 8601"),
    "timestamp X between": ({"timestamp": "2026-11-21X11:00:00Z"}, "bad", "not ISO 8601"),
    "timestamp digit between": ({"timestamp": "2026-11-21511:00:00Z"}, "bad", "not ISO 8601"),
    "timestamp emoji between": ({"timestamp": "2026-11-21\U0001f60011:00Z"}, "bad", "not ISO 8601"),
    "timestamp years ago": ({"timestamp": "2001-01-01T00:00:00Z"}, "bad", "older than 35 days"),
    "timestamp next year": ({"timestamp": "2027-11-21T11:00:00Z"}, "bad", "300 seconds ahead"),
    # properties
    "properties a string": ({"properties": "x"}, "bad", "properties must be a JSON object"),
    "properties a list": ({"properties": [1]}, "bad", "properties must be a JSON object"),
    "properties a number": ({"properties": 5}, "bad", "properties must be a JSON object"),
    "properties null": ({"properties": None}, "bad", "properties must be a JSON object"),
    # values a sum (and max) meter reads
    "value missing": ({"properties": {}}, "bad", "does not have"),
    "value abc": ({"properties": {"n": "abc"}}, "bad", DECIMAL_MESSAGE),
    "value NaN string": ({"properties": {"n": "NaN"}}, "bad", "must be a finite number"),
    "value Infinity string": ({"properties": {"n": "Infinity"}}, "bad", "finite"),
    "value -Infinity string": ({"properties": {"n": "-Infinity"}}, "bad", "finite"),
    "value true": ({"properties": {"n": True}}, "bad", DECIMAL_MESSAGE),
    "value false": ({"properties": {"n": False}}, "bad", DECIMAL_MESSAGE),
    "value -1": ({"properties": {"n": -1}}, "bad", "must not be negative"),
    "value -0.5 string": ({"properties": {"n": "-0.5"}}, "bad", "must not be negative"),
    "value nested object": ({"properties": {"n": NESTED}}, "bad", DECIMAL_MESSAGE),
    "value a list": ({"properties": {"n": [1]}}, "bad", DECIMAL_MESSAGE),
    "value null": ({"properties": {"n": None}}, "bad", DECIMAL_MESSAGE),
    "value empty string": ({"properties": {"n": ""}}, "bad", DECIMAL_MESSAGE),
    "value too large": ({"properties": {"n": 10**18}}, "bad", "is too large"),
    "value 11 places": ({"properties": {"n": "0.00000000001"}}, "bad", "10 decimal places"),
    # NUL characters (PostgreSQL's jsonb cannot store them)
    "NUL in a value": ({"properties": {"n": 1, "note": "a\x00b"}}, "bad", "NUL"),
    "NUL in a key": ({"properties": {"n": 1, "k\x00": "v"}}, "bad", "NUL"),
    "NUL in a nested value": ({"properties": {"n": 1, "m": [{"x": "\x00"}]}}, "bad", "NUL"),
    "NUL in the id": ({"id": "b\x00d"}, "b\x00d", "NUL"),
    "NUL in event_name": ({"event_name": "ll\x00m"}, "bad", "NUL"),
}


@pytest.mark.parametrize(
    ("changes", "reported_id", "message"),
    list(REJECTED_EVENTS.values()),
    ids=list(REJECTED_EVENTS),
)
def test_a_bad_event_is_rejected_with_its_index_and_id_and_nothing_stored_for_it(
    api, acme, meters, changes, reported_id, message
):
    # given a bad event between two good ones
    bad = {k: v for k, v in {**llm("bad", 5), **changes}.items() if v is not MISSING}

    # when
    response = post(api, [llm("ok_1", 1), bad, llm("ok_2", 2)])

    # then
    body = accepted(response)
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert len(body["rejected"]) == 1
    rejection = body["rejected"][0]
    assert (rejection["index"], rejection["id"]) == (1, reported_id)
    assert rejection["error"]["type"] == "invalid_request"
    assert message in rejection["error"]["message"]
    assert stored() == {("acme", "ok_1"), ("acme", "ok_2")}
    assert (usage(acme, "tokens"), usage(acme, "peak")) == (3, 2)
    assert UsageRollup.objects.filter(meter=meters["tokens"]).get().event_count == 2


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-21T10:30:00Z",
        "2026-11-21t10:30:00Z",  # RFC 3339 allows a lower-case t
        "2026-11-21 10:30:00Z",  # and a space
        "2026-11-21T10:30:00.000+00:00",
        "2026-11-21T11:30:00+01:00",
        "20261121T103000Z",  # ISO 8601's basic format
        "2026-W47-6T10:30:00Z",  # a week date: Saturday of week 47
    ],
)
def test_a_timestamp_in_each_form_iso_8601_allows_is_read(api, acme, meters, timestamp):
    event = {**llm("a", 4), "timestamp": timestamp}

    assert accepted(post(api, [event])) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert UsageEvent.objects.get().timestamp == datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def test_a_bad_value_is_accepted_when_the_meter_that_would_read_it_is_filtered_out(api, acme):
    meter_create(
        code="gpt",
        name="GPT",
        event_name="llm",
        aggregation="sum",
        value_property="n",
        filters={"model": ["gpt-4o"]},
    )
    events = [{**llm("a", "abc"), "properties": {"n": "abc", "model": "claude"}}]

    assert accepted(post(api, events)) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert UsageRollup.objects.count() == 0


def test_an_id_of_255_characters_is_accepted(api, acme, meters):
    event_id = "é" * 255

    assert accepted(post(api, [prompt(event_id)]))["accepted"] == 1
    assert stored() == {("acme", event_id)}


@pytest.mark.parametrize("not_an_event", ["evt", 5, None, [], [{"id": "a"}], True])
def test_a_list_item_that_is_not_an_object_is_rejected(api, acme, meters, not_an_event):
    response = post(api, [not_an_event, prompt("ok")])

    body = accepted(response)
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "index": 0,
            "id": None,
            "error": {"type": "invalid_request", "message": "each event must be a JSON object"},
        }
    ]
    assert stored() == {("acme", "ok")}


# The accepted time window, both bounds exactly

WINDOW_CASES = {
    "35 days old": (-timedelta(days=35), True),
    "35 days and 1 microsecond old": (-timedelta(days=35, microseconds=1), False),
    "35 days and 1 second old": (-timedelta(days=35, seconds=1), False),
    "300 seconds ahead": (timedelta(seconds=300), True),
    "300 seconds and 1 microsecond ahead": (timedelta(seconds=300, microseconds=1), False),
    "301 seconds ahead": (timedelta(seconds=301), False),
    "now": (timedelta(0), True),
}


@pytest.mark.parametrize(
    ("offset", "is_accepted"), list(WINDOW_CASES.values()), ids=list(WINDOW_CASES)
)
def test_the_accepted_window_defaults_to_35_days_back_and_300_seconds_ahead(
    api, acme, meters, offset, is_accepted
):
    event = {**prompt("e1"), "timestamp": iso(NOW + offset)}

    body = accepted(post(api, [event]))

    assert body["accepted"] == (1 if is_accepted else 0)
    assert len(body["rejected"]) == (0 if is_accepted else 1)
    assert stored() == ({("acme", "e1")} if is_accepted else set())
    assert UsageRollup.objects.count() == (2 if is_accepted else 0)


@pytest.mark.parametrize(
    ("timestamp", "is_accepted"),
    [
        # the same instants as the bounds, written with other offsets
        ("2026-10-17T13:00:00+01:00", True),
        ("2026-10-17T06:59:59.999999-05:00", False),
        ("2026-11-21T17:35:00+05:30", True),
        ("2026-11-21T17:35:00.000001+05:30", False),
    ],
)
def test_the_window_bounds_hold_whatever_the_offset(api, acme, meters, timestamp, is_accepted):
    body = accepted(post(api, [{**prompt("e1"), "timestamp": timestamp}]))

    assert body["accepted"] == (1 if is_accepted else 0)
    assert stored() == ({("acme", "e1")} if is_accepted else set())


@pytest.mark.parametrize(
    ("offset", "is_accepted"),
    [
        (-timedelta(days=2), True),
        (-timedelta(days=2, microseconds=1), False),
        (timedelta(seconds=0), True),
        (timedelta(microseconds=1), False),
    ],
)
def test_the_window_follows_the_settings(api, acme, meters, settings, offset, is_accepted):
    settings.BILLING_LATE_EVENT_DAYS = 2
    settings.BILLING_FUTURE_EVENT_SECONDS = 0

    body = accepted(post(api, [{**prompt("e1"), "timestamp": iso(NOW + offset)}]))

    assert body["accepted"] == (1 if is_accepted else 0)
    if not is_accepted:
        message = body["rejected"][0]["error"]["message"]
        assert "older than 2 days" in message or "more than 0 seconds ahead" in message
    assert stored() == ({("acme", "e1")} if is_accepted else set())


def test_the_service_takes_the_time_it_is_given(acme, meters):
    """events_ingest reads no clock when given `now`: the window moves with it."""
    old = {**prompt("e1"), "timestamp": "2026-01-10T00:00:00Z"}

    refused = events_ingest(events=[old], now=NOW)
    taken = events_ingest(events=[old], now=datetime(2026, 1, 20, tzinfo=UTC))

    assert (refused.accepted, len(refused.rejected)) == (0, 1)
    assert (taken.accepted, taken.rejected) == (1, [])
    assert UsageEvent.objects.get().received_at == datetime(2026, 1, 20, tzinfo=UTC)


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_out_of_datetime_range_is_a_per_event_rejection(
    api_key_secret, acme, meters, timestamp
):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")

    response = post(client, [{**prompt("bad"), "timestamp": timestamp}, prompt("ok")])

    assert response.status_code == 202, response.content
    assert [r["index"] for r in response.json()["rejected"]] == [0]
    assert stored() == {("acme", "ok")}


@pytest.mark.parametrize("depth", [450, 1_000, 10_000])
def test_an_event_nested_too_deep_is_rejected_alone(api, acme, meters, depth):
    """Valid JSON nested at any depth: the event past the properties' 32 levels is
    rejected with its reason, the others in the batch stored (the body is read
    without recursion: common.nesting)."""
    deep = json.dumps(prompt("deep"))[:-2] + ', "a": ' + "[" * depth + "1" + "]" * depth + "}}"
    body = '{"events": [' + json.dumps(prompt("e1")) + ", " + deep + ", "
    body += json.dumps(prompt("e2")) + "]}"
    assert nesting.loads(body, max_depth=depth + 10)  # valid JSON, of 21 KB at most

    answer = accepted(post_raw(api, body))

    assert answer["accepted"] == 2
    assert answer["rejected"] == [
        {
            "index": 1,
            "id": "deep",
            "error": {
                "type": "invalid_request",
                "message": "properties: nests deeper than 32 levels",
            },
        }
    ]
    assert stored() == {("acme", "e1"), ("acme", "e2")}


def test_a_batch_with_a_deep_value_beside_its_events_is_read(api, acme, meters):
    body = '{"events": [' + json.dumps(prompt("e1")) + '], "x": ' + "[" * 10_000 + "]" * 10_000
    answer = accepted(post_raw(api, body + "}"))

    assert (answer["accepted"], answer["rejected"]) == (1, [])


# Requests refused whole: a 4xx and nothing stored


def test_over_1000_events_is_413_and_nothing_stored(api, acme, meters):
    events = [prompt(f"e{i}") for i in range(1001)]

    response = post(api, events)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "payload_too_large"
    assert "1001 events" in error["message"]
    assert_nothing_stored()


def test_exactly_1000_events_are_accepted(api, acme, meters):
    events = [prompt(f"e{i}", minutes_ago=i % 600, user=f"u{i % 7}") for i in range(1000)]

    body = accepted(post(api, events))

    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1000, 0, [])
    assert UsageEvent.objects.count() == 1000
    assert usage(acme, "prompts") == 1000
    assert usage(acme, "users") == 7


def test_the_service_refuses_over_1000_events(acme, meters):
    with pytest.raises(ValueError, match="at most 1000"):
        events_ingest(events=[prompt(f"e{i}") for i in range(1001)], now=NOW)

    assert_nothing_stored()


def body_of_size(size: int) -> str:
    """A valid one-event batch of exactly `size` bytes."""
    template = json.dumps({"events": [{**prompt("big"), "properties": {"user": "u", "pad": ""}}]})
    padding = size - len(template.encode())
    assert padding > 0
    return template.replace('"pad": ""', '"pad": "' + "p" * padding + '"')


def test_a_body_over_1_mib_is_413_and_nothing_stored(api, acme, meters):
    body = body_of_size(MIB + 1)
    assert len(body.encode()) == MIB + 1

    response = post_raw(api, body)

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert_nothing_stored()


def test_a_body_of_many_events_over_1_mib_is_413_and_nothing_stored(api, acme, meters):
    events = [prompt(f"e{i}", pad="p" * 1200) for i in range(900)]
    body = json.dumps({"events": events})
    assert len(body.encode()) > MIB

    response = post_raw(api, body)

    assert response.status_code == 413
    assert_nothing_stored()


def test_a_body_of_exactly_1_mib_is_accepted(api, acme, meters):
    body = body_of_size(MIB)
    assert len(body.encode()) == MIB

    assert accepted(post_raw(api, body))["accepted"] == 1
    assert stored() == {("acme", "big")}


VALID_BATCH = json.dumps({"events": [prompt("e1")]})

REFUSED_BODIES = {
    "empty body": (b"", 400),
    "whitespace only": (b"  \n", 400),
    "a JSON array": (b"[" + VALID_BATCH.encode() + b"]", 400),
    "an empty object": (b"{}", 400),
    "events a string": (b'{"events": "x"}', 400),
    "events null": (b'{"events": null}', 400),
    "events an object": (b'{"events": {"0": {}}}', 400),
    "a JSON string": (b'"events"', 400),
    "JSON null": (b"null", 400),
    "truncated JSON": (VALID_BATCH[:-3].encode(), 400),
    "trailing garbage": (VALID_BATCH.encode() + b"x", 400),
    "single quotes": (VALID_BATCH.replace('"', "'").encode(), 400),
    "NaN literal": (VALID_BATCH.replace('"u1"', "NaN").encode(), 400),
    "Infinity literal": (VALID_BATCH.replace('"u1"', "Infinity").encode(), 400),
    "-Infinity literal": (VALID_BATCH.replace('"u1"', "-Infinity").encode(), 400),
    "not UTF-8": (VALID_BATCH.replace('"u1"', '"u\xff"').encode("latin-1"), 400),
    "nested deep, broken deep": (b'{"events": ' + b"[" * 100_000 + b"]" * 99_999 + b"}", 400),
}


@pytest.mark.parametrize(
    ("body", "status"), list(REFUSED_BODIES.values()), ids=list(REFUSED_BODIES)
)
def test_a_malformed_body_is_400_with_the_envelope_and_nothing_stored(
    api, acme, meters, body, status
):
    response = post_raw(api, body)

    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["message"]
    assert_nothing_stored()


def test_a_body_that_is_not_an_events_object_names_the_field(api, acme, meters):
    response = post_raw(api, b'{"events": "x"}')

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"events": ["must be a list of events"]}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_wrong_content_type_is_415_and_nothing_stored(api, acme, meters, content_type):
    response = post_raw(api, VALID_BATCH, content_type=content_type)

    assert response.status_code == 415, response.content
    assert response.json()["error"]["type"] == "invalid_request"
    assert_nothing_stored()


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_with_parameters_or_capitals_are_read(api, acme, meters, content_type):
    assert accepted(post_raw(api, VALID_BATCH, content_type=content_type))["accepted"] == 1


def test_without_an_api_key_is_401_and_nothing_stored(acme, meters):
    response = post(APIClient(), [prompt("e1")])

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_failed"
    assert_nothing_stored()


def test_a_key_without_the_events_scope_is_403_and_nothing_stored(acme, meters):
    _, secret = api_key_create(name="reader", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = post(client, [prompt("e1")])

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_denied"
    assert_nothing_stored()


def test_a_key_with_only_the_events_scope_may_post(acme, meters):
    _, secret = api_key_create(name="ingest", scopes=["events:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert accepted(post(client, [prompt("e1")]))["accepted"] == 1


# Storage on PostgreSQL: monthly partitions


@pytest.mark.postgres
def test_events_table_is_partitioned(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'billing_usageevent'")
        assert cursor.fetchall() == [("p",)]


@pytest.mark.postgres
def test_events_land_in_their_monthly_partition(api, acme, meters):
    event_partitions_ensure(around=NOW)  # as the hourly task made them, whenever this runs
    events = [
        prompt("nov_1", minutes_ago=60),
        prompt("nov_2", minutes_ago=60 * 24 * 20),
        prompt("oct_1", minutes_ago=60 * 24 * 30),
        {**prompt("oct_2"), "timestamp": "2026-10-31T23:59:59.999999Z"},
        {**prompt("nov_3"), "timestamp": "2026-11-01T00:00:00Z"},
    ]

    assert accepted(post(api, events))["accepted"] == 5

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM billing_usageevent GROUP BY 1"
        )
        assert dict(cursor.fetchall()) == {
            "billing_usageevent_y2026m10": 2,
            "billing_usageevent_y2026m11": 3,
        }
