"""Refused gateway records (billing.integrations.refused_records, .replay): kept as
received with their reason, listed by GET /api/v1/integrations/{source}/refused,
replayed once the customer or the mapping is fixed (billed once however often),
counted in billing_gateway_records on /metrics, purged after 30 days."""

import json
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
import time_machine
from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families

from billing.integration_models import RefusedRecord
from billing.integrations import replay as replays
from billing.integrations.calls import REFUSAL_CODES
from billing.integrations.refused_records import LONG_TEXT, record_text, refused_records_purge
from billing.models import UsageEvent
from billing.tasks import purge_refused_records
from config.metrics_export import FoldersCollector
from customers.services import customer_create
from tests.factories import api_client, subscribe
from tests.integrations import test_otlp_ingest as otlp_test
from tests.integrations.test_litellm_ingest import NOW, payload, post

pytestmark = pytest.mark.django_db

REFUSED = "/api/v1/integrations/{}/refused"
REPLAY = "/api/v1/integrations/{}/refused/{}/replay"


def refused(source: str = "litellm", query: str = "", scope: str = "read"):
    with time_machine.travel(NOW, tick=False):
        return api_client(scope).get(REFUSED.format(source) + query)


def replay(record_id, source: str = "litellm", scope: str = "events:write"):
    with time_machine.travel(NOW, tick=False):
        return api_client(scope).post(REPLAY.format(source, record_id))


def usage_amount(customer: str) -> str:
    """The customer's llm_tokens amount this period (November 2026)."""
    with time_machine.travel(NOW, tick=False):
        body = api_client("read").get(f"/api/v1/customers/{customer}/usage").json()
    (line,) = [line for line in body["lines"] if line["meter"] == "llm_tokens"]
    return line["amount"]


def scrape() -> dict:
    """GET /metrics as Prometheus reads it from manage.py serve_metrics (its registry:
    every process's counts, by name and labels; without the application's closing of
    the database connection, which the test's transaction holds), of this process's
    counts only: another test process may send gateway records at the same time."""
    environ = {"PATH_INFO": "/metrics"}
    setup_testing_defaults(environ)
    answer = {}
    own = Path(tempfile.mkdtemp())
    for counts in settings.METRICS_DIR.glob(f"*_{os.getpid()}.db"):
        shutil.copy(counts, own)
    registry = CollectorRegistry()
    FoldersCollector(registry, path=str(own))
    body = b"".join(make_wsgi_app(registry)(environ, lambda *_: None))
    shutil.rmtree(own)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            answer[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return answer


def records(scraped: dict, outcome: str, reason: str = "", source: str = "litellm") -> float:
    labels = frozenset({"source": source, "outcome": outcome, "reason": reason}.items())
    return scraped.get(("billing_gateway_records_total", labels), 0.0)


def test_an_unknown_customers_call_is_kept_then_replayed_and_billed_once(s35):
    # given: a call for globex, whom billing does not know yet
    call = payload("call-g1", customer="globex")
    answer = post([call]).json()
    assert answer["calls"] == 0
    assert answer["rejected"][0]["error"]["message"] == "unknown customer 'globex'"

    # when: listed
    listed = refused()
    assert listed.status_code == 200, listed.json()
    (row,) = listed.json()["results"]

    # then: kept as received, with its reason
    assert row["reason"] == "unknown_customer"
    assert row["message"] == "unknown customer 'globex'"
    assert row["call_id"] == "call-g1"
    assert row["record"] == call
    assert (row["replayable"], row["replayed_at"], row["replay_outcome"]) == (True, None, "")
    assert row["received_at"] == "2026-11-10T12:00:00Z"

    # when: globex is created and subscribed, and the record replayed
    subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")
    first = replay(row["id"])

    # then: billed as the call would have been (S35: 2.50 + 0.25 + 1.00)
    assert first.status_code == 200, first.json()
    body = first.json()
    assert {k: body[k] for k in ("accepted", "duplicates", "calls", "rejected")} == {
        "accepted": 3,
        "duplicates": 0,
        "calls": 1,
        "rejected": [],
    }
    assert body["refused_record"]["replay_outcome"] == "accepted"
    assert body["refused_record"]["replayed_at"] == "2026-11-10T12:00:00Z"
    assert usage_amount("globex") == "3.75"

    # when: replayed again, and the gateway sends the call again too
    second = replay(row["id"]).json()
    resent = post([call]).json()

    # then: duplicates, billed once; the row stays marked accepted
    assert (second["accepted"], second["duplicates"], second["calls"]) == (0, 3, 1)
    assert (resent["accepted"], resent["duplicates"]) == (0, 3)
    assert usage_amount("globex") == "3.75"
    assert UsageEvent.objects.filter(customer__external_id="globex").count() == 3
    kept = RefusedRecord.objects.get()
    assert (kept.replay_outcome, kept.replayed_at) == ("accepted", NOW)


def test_each_refusal_is_kept_with_its_reason_and_listed_by_reason(s35):
    # given: a call naming no customer, one whose tokens do not add up, a line that is
    # not JSON, and one billed
    lines = [
        json.dumps(payload("no-one", customer="") | {"metadata": {}}),
        json.dumps(payload("bad", cached=2_000_000)),
        "{not json",
        json.dumps(payload("good")),
    ]
    answer = post("\n".join(lines), "application/x-ndjson").json()
    assert answer["calls"] == 1 and len(answer["rejected"]) == 3

    # when: listed, all and by reason
    everything = refused().json()["results"]
    by_reason = {
        reason: [r["call_id"] for r in refused(query=f"?reason={reason}").json()["results"]]
        for reason in ("no_customer", "bad_tokens", "not_json", "unknown_customer")
    }

    # then: newest first (the last record of the request first), each with its reason
    assert [(r["reason"], r["call_id"]) for r in everything] == [
        ("not_json", ""),
        ("bad_tokens", "bad"),
        ("no_customer", "no-one"),
    ]
    assert by_reason == {
        "no_customer": ["no-one"],
        "bad_tokens": ["bad"],
        "not_json": [""],
        "unknown_customer": [],
    }
    # a line that is not JSON is kept as nothing to replay
    assert everything[0]["record"] is None
    # a page at a time, and from a moment on
    page = refused(query="?limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    later = NOW + timedelta(seconds=1)
    assert refused(query=f"?from={later.isoformat().replace('+00:00', 'Z')}").json() == {
        "results": [],
        "next": None,
    }
    assert len(refused(query="?from=2026-11-10T12:00:00Z").json()["results"]) == 3
    # other sources have none
    assert refused("openrouter").json()["results"] == []


def test_a_record_refused_again_on_replay_says_why_now(s35):
    # given: a call naming no customer, kept
    post([payload("anon", customer="") | {"metadata": {}}])
    row = RefusedRecord.objects.get()

    # when: replayed with the mapping unchanged
    body = replay(row.pk).json()

    # then: refused again, the same row marked (no second row)
    assert body["rejected"][0]["error"]["message"].startswith("the call names no customer")
    assert body["refused_record"]["replay_outcome"] == "refused"
    assert body["refused_record"]["reason"] == "no_customer"
    assert RefusedRecord.objects.count() == 1


def test_the_metric_counts_every_record_by_outcome_and_reason(s35):
    before = scrape()

    # when: a call billed, the same call again, a failed call, an unknown customer
    post([payload("m1"), payload("m2", status="failure"), payload("m3", customer="nobody")])
    post([payload("m1")])

    # then: on /metrics
    after = scrape()
    added = {
        (outcome, reason): records(after, outcome, reason) - records(before, outcome, reason)
        for outcome, reason in (
            ("accepted", ""),
            ("duplicate", ""),
            ("skipped", ""),
            ("refused", "unknown_customer"),
            ("refused", "no_customer"),
        )
    }
    assert added == {
        ("accepted", ""): 1.0,
        ("duplicate", ""): 1.0,
        ("skipped", ""): 1.0,
        ("refused", "unknown_customer"): 1.0,
        ("refused", "no_customer"): 0.0,
    }
    # every series is there before its first count
    assert (
        "billing_gateway_records_total",
        frozenset({"source": "otlp", "outcome": "refused", "reason": "bad_tokens"}.items()),
    ) in after


def test_the_purge_deletes_only_rows_older_than_30_days(s35):
    # given: records refused 31 days, 29 days and 1 hour ago
    for age in (timedelta(days=31), timedelta(days=29), timedelta(hours=1)):
        with time_machine.travel(NOW - age, tick=False):
            api_client("events:write").post(
                "/api/v1/integrations/litellm",
                data=json.dumps([payload(f"old-{age.days}", customer="nobody")]),
                content_type="application/json",
            )
    assert RefusedRecord.objects.count() == 3

    # when: the beat's task runs now, then again
    with time_machine.travel(NOW, tick=False):
        assert purge_refused_records.delay().get() == 1
        assert refused_records_purge(now=NOW) == 0

    # then
    assert sorted(r.call_id for r in RefusedRecord.objects.all()) == ["old-0", "old-29"]


def test_long_texts_are_shortened_and_a_record_too_large_is_kept_cut(settings):
    settings.BILLING_REFUSED_RECORD_MAX_BYTES = 4096
    prompt = "x" * (LONG_TEXT + 5)

    text, replayable = record_text({"id": "a", "cost": json.loads("0.0000123"), "p": prompt})
    assert replayable
    assert json.loads(text)["p"] == "x" * LONG_TEXT + "… [5 more characters not kept]"
    assert '"cost":1.23E-5' in text or '"cost":0.0000123' in text

    text, replayable = record_text({"messages": ["y" * 900] * 10})
    assert not replayable and len(text.encode()) <= 4096


def test_a_record_kept_cut_is_not_replayed(s35, settings):
    settings.BILLING_REFUSED_RECORD_MAX_BYTES = 1024
    post([payload("big", customer="nobody") | {"messages": ["z" * 900] * 3}])
    row = RefusedRecord.objects.get()
    assert not row.replayable

    answer = replay(row.pk)

    assert answer.status_code == 409, answer.json()
    assert refused().json()["results"][0]["record"].startswith('{"id":"big"')
    row.refresh_from_db()
    assert (row.replayed_at, row.replay_outcome) == (None, "")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (REFUSED.format("nowhere"), 404),
        (REFUSED.format("litellm") + "?from=yesterday", 400),
        (REFUSED.format("litellm") + "?reason=lost", 400),
        (REFUSED.format("litellm") + "?colour=red", 400),
        (REFUSED.format("litellm") + "?cursor=bm9wZQ", 404),
    ],
)
def test_bad_list_requests_are_refused(s35, path, status):
    answer = api_client("read").get(path)
    assert answer.status_code == status, answer.json()
    assert "error" in answer.json()


def test_bad_replays_are_refused_and_change_nothing(s35):
    post([payload("q", customer="nobody")])
    row = RefusedRecord.objects.get()

    assert replay(row.pk, source="nowhere").status_code == 404
    assert replay(row.pk, source="openrouter").status_code == 404
    assert replay(row.pk + 1).status_code == 404
    assert replay("99999999999999999999999").status_code == 404
    assert replay("1e3").status_code == 404
    assert replay(row.pk, scope="read").status_code == 403
    assert api_client("read").get(REPLAY.format("litellm", row.pk)).status_code == 405

    row.refresh_from_db()
    assert (row.replayed_at, row.replay_outcome) == (None, "")
    assert UsageEvent.objects.count() == 0
    assert replay(row.pk, scope="admin").status_code == 200


def test_a_refused_span_is_kept_as_an_export_of_it_alone_and_replayed(s35):
    # given: a protobuf export of two spans: one for initech (unknown), one in JSON's
    # terms naming no customer at all
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            KeyValue(key="service.name", value=AnyValue(string_value="chat-api")),
            KeyValue(key="enduser.id", value=AnyValue(string_value="initech")),
        ]
    )
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(otlp_test.TRACE), bytes.fromhex("00000000000000a1")
    span.parent_span_id = bytes.fromhex("00000000000000a0")
    span.start_time_unix_nano = otlp_test.START_NS
    for key, tokens in (
        ("gen_ai.usage.input_tokens", 400_000),
        ("gen_ai.usage.output_tokens", 50_000),
    ):
        span.attributes.append(KeyValue(key=key, value=AnyValue(int_value=tokens)))
    span.attributes.append(
        KeyValue(key="gen_ai.response.model", value=AnyValue(string_value="gpt-4o"))
    )
    answer = otlp_test.post(request.SerializeToString(), "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(answer.content).partial_success.rejected_spans == 1
    nameless = otlp_test.export(otlp_test.model_span(7), customer=None)
    assert otlp_test.post(nameless).json()["partialSuccess"]["rejectedSpans"] == "1"

    # when: listed
    rows = refused("otlp").json()["results"]

    # then: each an export of the span alone, with its resource; ids in hex
    assert [r["reason"] for r in rows] == ["no_customer", "unknown_customer"]
    assert rows[0]["record"] == json.loads(json.dumps(nameless))
    kept = rows[1]["record"]["resourceSpans"][0]
    assert {"key": "enduser.id", "value": {"stringValue": "initech"}} in kept["resource"][
        "attributes"
    ]
    (kept_span,) = kept["scopeSpans"][0]["spans"]
    assert (kept_span["traceId"], kept_span["spanId"], kept_span["parentSpanId"]) == (
        otlp_test.TRACE,
        "00000000000000a1",
        "00000000000000a0",
    )
    assert rows[1]["call_id"] == f"{otlp_test.TRACE}:00000000000000a1"

    # when: initech is created, the span replayed twice
    subscribe(customer_create(external_id="initech", name="Initech", currency="USD"), "tokens")
    first = replay(rows[1]["id"], source="otlp").json()
    second = replay(rows[1]["id"], source="otlp").json()

    # then: billed once: gpt-4o, 400,000 in at 2.50 and 50,000 out at 10.00 a million
    assert (first["accepted"], first["calls"], second["duplicates"]) == (2, 1, 2)
    assert usage_amount("initech") == "1.50"


def test_a_span_openrouters_broadcast_sent_is_replayed_as_a_span(s35):
    # given: OpenRouter's Broadcast posts an OTLP export to OpenRouter's path; its span
    # names `user.id` hooli (its customer, per kind), whom billing does not know yet
    span = otlp_test.model_span(9, user__id="hooli", gen_ai__response__model="gpt-4o")
    with time_machine.travel(NOW, tick=False):
        answer = api_client("events:write").post(
            "/api/v1/integrations/openrouter",
            data=json.dumps(otlp_test.export(span, customer=None)),
            content_type="application/json",
        )
    assert answer.json()["rejected"][0]["error"]["message"] == "unknown customer 'hooli'"
    (row,) = refused("openrouter").json()["results"]
    assert row["record"]["resourceSpans"][0]["scopeSpans"][0]["spans"] == [span]

    # when: hooli is created and the span replayed
    subscribe(customer_create(external_id="hooli", name="Hooli", currency="USD"), "tokens")
    body = replay(row["id"], source="openrouter").json()

    # then: read as a span again, billed (400,000 in, 50,000 out of gpt-4o)
    assert (body["accepted"], body["calls"]) == (2, 1)
    assert usage_amount("hooli") == "1.50"


def test_every_reason_and_replay_outcome_has_its_words():
    assert [code for code, _ in RefusedRecord.REASONS] == list(REFUSAL_CODES)
    assert [code for code, _ in RefusedRecord.OUTCOMES] == [
        replays.ACCEPTED,
        replays.DUPLICATE,
        replays.SKIPPED,
        replays.REFUSED,
    ]
