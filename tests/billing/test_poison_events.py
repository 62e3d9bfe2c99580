"""One poison event never costs the batch: 999 valid events and one that the
database could not store (a lone UTF-16 surrogate, a NUL, a number outside
PostgreSQL's numeric range) answer 202 with the 999 stored and the one rejected,
whatever field carries it. Run on SQLite and, in CI, on PostgreSQL, where each of
these failed the whole batch with a 500 before."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from billing.models import EventKey, UsageEvent, UsageRollup
from billing.usage.ingestion import batch_parse
from common.storable import NUMBER_MESSAGE, SURROGATE_MESSAGE
from plans.services import meter_create

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
URL = "/api/v1/events"
VALID = 999
POISON_INDEX = 500


@pytest.fixture
def tokens(db):
    return meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )


def event(number: int) -> dict:
    return {
        "id": f"evt_{number:04d}",
        "customer": "acme",
        "event_name": "llm",
        "timestamp": (NOW - timedelta(minutes=30)).isoformat(),
        "properties": {"n": 2, "model": "gpt-4o"},
    }


# Each poison event: what to change in a valid event, and a fragment of its rejection.
# "@NUMBER@" stands for a number written into the body as raw JSON text.
SURROGATE = "\ud800"
POISONS = {
    "surrogate in the id": ({"id": f"bad{SURROGATE}"}, SURROGATE_MESSAGE),
    "surrogate in event_name": ({"event_name": f"llm{SURROGATE}"}, SURROGATE_MESSAGE),
    "low surrogate in the customer": ({"customer": "acme\udc00"}, SURROGATE_MESSAGE),
    "surrogate in a property key": (
        {"properties": {"n": 1, f"k{SURROGATE}": "v"}},
        SURROGATE_MESSAGE,
    ),
    "surrogate in a property value": (
        {"properties": {"n": 1, "model": f"gpt{SURROGATE}"}},
        SURROGATE_MESSAGE,
    ),
    "surrogate in a nested value": (
        {"properties": {"n": 1, "meta": {"tags": ["a", SURROGATE]}}},
        SURROGATE_MESSAGE,
    ),
    "NUL in the customer": ({"customer": "ac\x00me"}, "NUL"),
    "tiny number in a property no meter reads": (
        {"properties": {"n": 1, "score": "@1e-20000@"}},
        NUMBER_MESSAGE,
    ),
    "huge number in a property no meter reads": (
        {"properties": {"n": 1, "score": "@1e131073@"}},
        NUMBER_MESSAGE,
    ),
    "huge number in the metered property": ({"properties": {"n": "@1e131073@"}}, NUMBER_MESSAGE),
    "huge number nested": (
        {"properties": {"n": 1, "meta": {"scores": ["@-1e131072@"]}}},
        NUMBER_MESSAGE,
    ),
    "number past Python's decimal range": (
        {"properties": {"n": 1, "score": "@1e9999999999999999999@"}},
        NUMBER_MESSAGE,
    ),
    "a 20,000 digit fraction": (
        {"properties": {"n": 1, "score": "@0." + "0" * 19_999 + "1@"}},
        NUMBER_MESSAGE,
    ),
}


def poisoned_body(changes: dict) -> bytes:
    events = [event(i) for i in range(VALID + 1)]
    events[POISON_INDEX] = {**events[POISON_INDEX], "id": "poison", **changes}
    # ensure_ascii writes a lone surrogate as its \\ud800 escape, as a client would
    text = json.dumps({"events": events}, ensure_ascii=True)
    return text.replace('"@', "").replace('@"', "").encode()


def post(api, body: bytes):
    with time_machine.travel(NOW, tick=False):
        return api.generic("POST", URL, body, content_type="application/json")


@pytest.mark.parametrize(("changes", "reason"), list(POISONS.values()), ids=list(POISONS))
def test_one_poison_event_is_rejected_and_the_other_999_are_stored(
    api, acme, tokens, changes, reason
):
    # when
    response = post(api, poisoned_body(changes))

    # then
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (VALID, 0)
    assert len(body["rejected"]) == 1
    rejection = body["rejected"][0]
    assert rejection["index"] == POISON_INDEX
    assert reason in rejection["error"]["message"]
    assert UsageEvent.objects.count() == VALID
    assert EventKey.objects.count() == VALID
    assert not UsageEvent.objects.filter(event_id__startswith="poison").exists()
    assert UsageRollup.objects.get().value_sum == 2 * VALID


def test_a_rejected_id_holding_a_lone_surrogate_is_not_echoed_back(api, acme, tokens):
    body = post(api, poisoned_body({"id": f"bad{SURROGATE}"})).json()

    assert body["rejected"][0]["id"] is None


def test_a_surrogate_sent_as_raw_utf8_bytes_is_rejected_not_the_batch(api, acme, tokens):
    # json.loads reads bytes with "surrogatepass": ED A0 80 becomes U+D800
    body = poisoned_body({"properties": {"n": 1, "model": "gpt-X"}})
    body = body.replace(b"gpt-X", b"gpt-\xed\xa0\x80")

    response = post(api, body)

    assert response.status_code == 202, response.content[:500]
    assert response.json()["accepted"] == VALID
    assert SURROGATE_MESSAGE in response.json()["rejected"][0]["error"]["message"]


def test_a_surrogate_pair_is_one_valid_character_and_is_stored(api, acme, tokens):
    # "\\ud83d\\ude00" is 😀 written as its two escapes
    body = poisoned_body({"properties": {"n": 1, "model": "smile \U0001f600"}})

    response = post(api, body)

    assert response.status_code == 202
    assert response.json()["accepted"] == VALID + 1
    stored = UsageEvent.objects.get(event_id="poison")
    assert stored.properties["model"] == "smile \U0001f600"


def test_numbers_at_the_edges_of_postgresql_numeric_are_stored(api, acme, tokens):
    # 131,072 digits before the point and 16,383 after it are the most numeric holds
    edges = {"big": "@1e131071@", "small": "@1e-16383@", "zero": "@0e200000@"}
    body = poisoned_body({"properties": {"n": 1, **edges}})

    response = post(api, body)

    assert response.status_code == 202, response.content[:500]
    assert response.json() == {"accepted": VALID + 1, "duplicates": 0, "rejected": []}
    assert UsageEvent.objects.filter(event_id="poison").exists()


def test_an_integer_longer_than_python_reads_by_default_is_kept_exactly():
    digits = "9" * 5000

    parsed = batch_parse(f'{{"events": [{{"n": {digits}}}]}}'.encode())

    assert parsed["events"][0]["n"] == Decimal(digits)


def test_a_body_that_is_not_json_is_still_a_400_for_the_whole_request(api, acme, tokens):
    response = post(api, b'{"events": [1e9999999999999999999,')

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("malformed JSON")
    assert UsageEvent.objects.count() == 0


# Every other JSON endpoint: the same rules make a hostile body a 400, changing nothing.

HOSTILE_BODIES = {
    "lone surrogate in a JSON field": '{"external_id": "c1", "name": "C", "currency": "USD", '
    '"address": {"line1": "\\ud800"}}',
    "NUL in a JSON field's key": '{"external_id": "c1", "name": "C", "currency": "USD", '
    '"address": {"li\\u0000ne1": "x"}}',
    "number past PostgreSQL's range": '{"external_id": "c1", "name": "C", "currency": "USD", '
    '"address": {"zip": 1e131072}}',
    "number past Python's decimal range": '{"external_id": "c1", "name": "C", '
    '"currency": "USD", "address": {"zip": 1e9999999999999999999}}',
}


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_a_hostile_json_body_elsewhere_is_a_400_and_changes_nothing(api, body):
    from customers.models import Customer

    response = api.generic("POST", "/api/v1/customers", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["type"] == "invalid_request"
    assert not Customer.objects.exists()
