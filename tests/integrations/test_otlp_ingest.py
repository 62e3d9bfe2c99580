"""POST /v1/traces: OTLP/HTTP trace exports (OTLP's JSON encoding here, protobuf
too) whose GenAI spans become token events priced by S35's card; answered as
OTLP/HTTP asks (ExportTraceServiceResponse, google.rpc.Status), never a 5xx, and
nothing half stored."""

import gzip
import io
import json
import zlib
from datetime import UTC, datetime

import pytest
import time_machine
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from rest_framework.test import APIClient

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import source_row
from billing.integrations.otlp import MAX_MODEL_SPANS_PER_REQUEST, MAX_SPANS_PER_REQUEST
from billing.models import UsageEvent
from config.middleware import SizedBodies
from tests.factories import api_client
from tests.integrations.conftest import usage_rates

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
START_NS = int(NOW.timestamp()) * 10**9 + 250_000_000
TRACE = "5b8efff798038103d269b633813fc60c"
MIB = 1024 * 1024


def span_id(n: int) -> str:
    return f"{n:016x}"


def value(v) -> dict:
    if isinstance(v, dict):
        return v
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def attributes(**named) -> list:
    return [{"key": key.replace("__", "."), "value": value(v)} for key, v in named.items()]


def model_span(n: int, *, trace=TRACE, status=None, **named) -> dict:
    """A GenAI chat span: gpt-4o-2024-08-06, 400,000 tokens in and 50,000 out unless
    told (keys with `__` for dots)."""
    fields = {
        "gen_ai__operation__name": "chat",
        "gen_ai__request__model": "gpt-4o",
        "gen_ai__response__model": "gpt-4o-2024-08-06",
        "gen_ai__usage__input_tokens": 400_000,
        "gen_ai__usage__output_tokens": 50_000,
    }
    fields.update(named)
    fields = {k: v for k, v in fields.items() if v is not None}
    span = {
        "traceId": trace,
        "spanId": span_id(n),
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 2 * 10**9),
        "attributes": attributes(**fields),
    }
    if status is not None:
        span["status"] = {"code": status}
    return span


def export(*spans, customer="acme") -> dict:
    resource = attributes(service__name="chat-api", enduser__id=customer) if customer else []
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": spans}
                ],
            }
        ]
    }


def post(body, content_type="application/json", **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with time_machine.travel(NOW, tick=False):
        return api_client("events:write").post(
            "/v1/traces", data=data, content_type=content_type, **headers
        )


def stored() -> dict:
    return {e.event_id: e for e in UsageEvent.objects.all()}


@pytest.fixture
def mapped(s35):
    row = source_row(IntegrationSource.OTLP)
    row.models = {"gpt-4o-2024-08-06": "gpt-4o"}
    row.save()
    return s35


def test_json_export_bills_the_model_span_once_and_skips_the_rest(mapped):
    body = export(
        model_span(1),
        {"traceId": TRACE, "spanId": span_id(2), "name": "GET /chat", "attributes": []},
        model_span(3, status=2),
    )
    first = post(body)
    assert first.status_code == 200, first.content
    assert first["Content-Type"] == "application/json"
    assert first.json() == {}
    again = post(body)
    assert again.status_code == 200 and again.json() == {}
    events = stored()
    assert sorted(events) == [f"{TRACE}:{span_id(1)}:input", f"{TRACE}:{span_id(1)}:output"]
    event = events[f"{TRACE}:{span_id(1)}:input"]
    # Priced as the mapping says; the names the span gave kept for re-rating.
    assert event.properties == {
        "model": "gpt-4o",
        "source_model": "gpt-4o-2024-08-06",
        "requested_model": "gpt-4o",
        "token_type": "input",
        "tokens": 400_000,
        "source": "otlp",
    }
    assert event.timestamp == datetime(2026, 11, 10, 12, 0, 0, 250_000, tzinfo=UTC)
    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    assert amount == "1.50"
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "gpt-4o", "token_type": "input"}, "1.00"),
        ({"model": "gpt-4o", "token_type": "output"}, "0.50"),
    ]
    row = source_row(IntegrationSource.OTLP)
    assert row.models_seen["gpt-4o-2024-08-06"]["mapped"] == "gpt-4o"


def test_cached_reasoning_deprecated_names_span_customer_and_cost(mapped):
    body = export(
        # o3: 1,200,000 in of which 200,000 read from the cache, 150,000 out of
        # which 100,000 reasoning; the customer named on the span, over its resource's.
        model_span(
            1,
            gen_ai__response__model="o3",
            gen_ai__usage__input_tokens=1_200_000,
            gen_ai__usage__cache_read__input_tokens=200_000,
            gen_ai__usage__output_tokens=150_000,
            gen_ai__usage__reasoning__output_tokens=100_000,
            enduser__id="acme",
            gen_ai__usage__cost=0.0123,
        ),
        # The older names, as older instrumentations send them.
        model_span(
            2,
            gen_ai__usage__input_tokens=None,
            gen_ai__usage__output_tokens=None,
            gen_ai__usage__prompt_tokens=400_000,
            gen_ai__usage__completion_tokens=50_000,
        ),
        customer="someone-else",
    )
    # The second span's customer is its resource's: someone-else, not a customer.
    answer = post(body).json()
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert answer["partialSuccess"]["errorMessage"] == (
        f"1 spans rejected: span 1 ({TRACE}:{span_id(2)}): unknown customer 'someone-else'"
    )
    events = stored()
    call = f"{TRACE}:{span_id(1)}"
    assert {k: e.properties.get("tokens") for k, e in events.items()} == {
        f"{call}:input": 1_000_000,
        f"{call}:cached_input": 200_000,
        f"{call}:output": 50_000,
        f"{call}:reasoning": 100_000,
        f"{call}:provider_cost": None,
    }
    assert events[f"{call}:provider_cost"].properties == {
        "model": "o3",
        "source_model": "o3",
        "requested_model": "gpt-4o",
        "cost": "0.0123",
        "currency": "USD",
        "source": "otlp",
    }
    with time_machine.travel(NOW, tick=False):
        amount, rates = usage_rates()
    # o3: input 2.00 and output 8.00 per 1M; reasoning 8.00; cached input at the
    # card's default 1.00.
    assert amount == "3.40"
    assert [(r["group"], r["amount"]) for r in rates] == [
        ({"model": "o3", "token_type": "input"}, "2.00"),
        ({"model": "o3", "token_type": "output"}, "0.40"),
        ({"model": "o3", "token_type": "reasoning"}, "0.80"),
        ({}, "0.20"),
    ]


def test_gzip_and_deflate_bodies(mapped):
    packed = gzip.compress(json.dumps(export(model_span(1))).encode())
    answer = post(packed, HTTP_CONTENT_ENCODING="gzip")
    assert answer.status_code == 200 and answer.json() == {}
    # Two gzip members, one after the other, are one body.
    half = json.dumps(export(model_span(2))).encode()
    members = gzip.compress(half[:100]) + gzip.compress(half[100:])
    assert post(members, HTTP_CONTENT_ENCODING="gzip").status_code == 200
    deflated = zlib.compress(json.dumps(export(model_span(3))).encode())
    assert post(deflated, HTTP_CONTENT_ENCODING="deflate").status_code == 200
    assert len(stored()) == 6


def test_one_bad_span_among_good_ones_names_each_refusal(mapped):
    body = export(
        model_span(1),
        model_span(2, gen_ai__usage__input_tokens=-5),
        model_span(3, gen_ai__usage__output_tokens=12.5),
        model_span(4, gen_ai__usage__input_tokens={"intValue": "lots"}),
        model_span(5, gen_ai__usage__output_tokens={"stringValue": "\u0000"}),
        model_span(6, gen_ai__usage__input_tokens=True),
        model_span(7, trace="0" * 32),
        model_span(8, gen_ai__response__model=None, gen_ai__request__model=None),
        model_span(9, gen_ai__usage__cost=-1.0),
        model_span(10, gen_ai__usage__input_tokens=10, gen_ai__usage__input_tokens__cached=20),
        model_span(11),
        {"traceId": TRACE, "spanId": span_id(12), "name": "no usage"},
    )
    answer = post(body)
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "9"
    call = TRACE + ":"
    assert partial["errorMessage"] == (
        "9 spans rejected: "
        f"span 1 ({call}{span_id(2)}): gen_ai.usage.input_tokens must not be negative; "
        f"span 2 ({call}{span_id(3)}): gen_ai.usage.output_tokens must be a whole number "
        "of tokens; "
        f"span 3 ({call}{span_id(4)}): gen_ai.usage.input_tokens must be a whole number "
        "of tokens; "
        f"span 4 ({call}{span_id(5)}): gen_ai.usage.output_tokens must be a whole number "
        "of tokens; "
        f"span 5 ({call}{span_id(6)}): gen_ai.usage.input_tokens must be a whole number "
        "of tokens; and 4 more"
    )
    # Exactly the two good spans' events are stored.
    assert sorted(stored()) == [
        f"{call}{span_id(n)}:{kind}" for n in (1, 11) for kind in ("input", "output")
    ]
    preview = source_row(IntegrationSource.OTLP).recent
    errors = [entry["error"] for entry in preview if entry.get("error")]
    assert "traceId must not be all zeros" in errors
    assert "the span names no model (gen_ai.response.model or gen_ai.request.model)" in errors
    assert "gen_ai.usage.cost must not be negative" in errors
    assert any("fewer than its cached" in error for error in errors)


def test_a_span_without_a_customer_is_refused_naming_the_attribute(mapped):
    answer = post(export(model_span(1), customer=None)).json()
    assert answer["partialSuccess"]["errorMessage"] == (
        f"1 spans rejected: span 0 ({TRACE}:{span_id(1)}): the span names no customer: "
        "no attribute 'enduser.id' on the span or its resource"
    )
    # A mapping naming another attribute reads that one.
    row = source_row(IntegrationSource.OTLP)
    row.customer_from = "tenant.id"
    row.save()
    body = export(model_span(2, tenant__id="acme"), customer=None)
    assert post(body).json() == {}
    assert len(stored()) == 2


def test_protobuf_export_answers_in_protobuf(mapped):
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="enduser.id", value=AnyValue(string_value="acme"))
    )
    spans = resource_spans.scope_spans.add().spans
    for n, tokens in ((1, 400_000), (2, -1)):
        span = Span(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(span_id(n)),
            name="chat",
            start_time_unix_nano=START_NS,
        )
        span.attributes.append(
            KeyValue(key="gen_ai.response.model", value=AnyValue(string_value="gpt-4o"))
        )
        span.attributes.append(
            KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=tokens))
        )
        spans.append(span)
    failed = Span(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(span_id(3)))
    failed.attributes.append(KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=9)))
    failed.status.code = Status.STATUS_CODE_ERROR
    spans.append(failed)
    answer = post(
        request.SerializeToString(),
        "application/x-protobuf",
        HTTP_ACCEPT="application/x-protobuf",
    )
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == (
        f"1 spans rejected: span 1 ({TRACE}:{span_id(2)}): "
        "gen_ai.usage.input_tokens must not be negative"
    )
    assert sorted(stored()) == [f"{TRACE}:{span_id(1)}:input"]


def rpc_status(answer) -> status_pb2.Status:
    assert answer["Content-Type"] == "application/x-protobuf"
    return status_pb2.Status.FromString(answer.content)


def valid_protobuf() -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(TRACE)
    span.span_id = bytes.fromhex(span_id(1))
    span.name = "chat " * 50
    span.attributes.append(KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=5)))
    return request.SerializeToString()


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff garbage",
        valid_protobuf()[:-20],
        # resource_spans (field 1) declaring 1,000 bytes and giving 3.
        b"\x0a\xe8\x07abc",
    ],
    ids=["garbage", "truncated", "short-length"],
)
def test_malformed_protobuf_is_a_400_status(mapped, body):
    answer = post(body, "application/x-protobuf")
    assert answer.status_code == 400
    status = rpc_status(answer)
    assert status.code == 3 and "malformed protobuf" in status.message
    assert not stored()


def test_malformed_json_and_deep_nesting_are_a_400(mapped):
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (deep, b'{"resourceSpans": [', b'{"resourceSpans": {}}', b"[]"):
        answer = post(body)
        assert answer.status_code == 400, body[:40]
        assert answer.json()["code"] == 3
        assert answer.json()["error"]["type"] == "invalid_request"
    # Deep nesting inside a span's attribute refuses that span only.
    nested = {"arrayValue": {"values": [{"arrayValue": {"values": []}}]}}
    for _ in range(200):
        nested = {"arrayValue": {"values": [nested]}}
    body = export(model_span(1), model_span(2, gen_ai__usage__input_tokens=nested))
    answer = post(json.dumps(body).encode())
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert len(stored()) == 2


def test_bodies_too_large_are_413_unread_or_unpacked_no_further(mapped):
    big = post(b"\x0a" * (33 * MIB), "application/x-protobuf")
    assert big.status_code == 413
    assert rpc_status(big).code == 8
    # 40 MB of zeros in about 40 KB of gzip: refused once 32 MB are unpacked.
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb") as packer:
        for _ in range(40):
            packer.write(b"\x00" * MIB)
    assert len(bomb.getvalue()) < 200_000
    answer = post(bomb.getvalue(), "application/x-protobuf", HTTP_CONTENT_ENCODING="gzip")
    assert answer.status_code == 413
    assert "unpacked" in rpc_status(answer).message
    json_bomb = post(bomb.getvalue(), HTTP_CONTENT_ENCODING="gzip")
    assert json_bomb.status_code == 413 and json_bomb.json()["code"] == 8


def test_a_collectors_default_batch_of_8192_model_spans_is_billed_whole(mapped):
    # given: what an OpenTelemetry Collector's batch processor sends by default
    spans = [model_span(n) for n in range(1, 8193)]

    # when
    answer = post(export(*spans))

    # then: every span billed, its input and its output
    assert answer.status_code == 200, answer.content[:300]
    assert answer.json() == {}
    assert len(stored()) == 2 * 8192


def test_too_many_model_spans_store_none(mapped):
    spans = [model_span(n) for n in range(1, MAX_MODEL_SPANS_PER_REQUEST + 2)]
    answer = post(export(*spans))
    assert answer.status_code == 413
    assert answer.json()["message"] == (
        f"more than {MAX_MODEL_SPANS_PER_REQUEST} model spans; at most "
        f"{MAX_MODEL_SPANS_PER_REQUEST} a request; none stored"
    )
    assert not stored()
    # As many spans that are not model calls are only skipped.
    plain = [{"traceId": TRACE, "spanId": span_id(n)} for n in range(1, 3000)]
    assert post(export(model_span(1), *plain)).json() == {}
    assert len(stored()) == 2
    # Past MAX_SPANS_PER_REQUEST spans of any kind (here empty ones, two bytes each),
    # refused before any is read.
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.extend(Span() for _ in range(MAX_SPANS_PER_REQUEST + 1))
    crowded = post(request.SerializeToString(), "application/x-protobuf")
    assert crowded.status_code == 413
    assert rpc_status(crowded).message == (
        f"{MAX_SPANS_PER_REQUEST + 1} spans; at most 100,000 a request; none stored"
    )


def test_refusals_before_the_body(mapped):
    unsupported = post(b"{}", "text/plain")
    assert unsupported.status_code == 415 and unsupported.json()["code"] == 3
    brotli = post(b"{}", HTTP_CONTENT_ENCODING="br")
    assert brotli.status_code == 415
    assert "Content-Encoding 'br'" in brotli.json()["message"]
    assert post(b"\x1f\x8b not gzip", HTTP_CONTENT_ENCODING="gzip").status_code == 400
    truncated = gzip.compress(json.dumps(export(model_span(1))).encode())[:-10]
    assert post(truncated, HTTP_CONTENT_ENCODING="gzip").status_code == 400
    # No key, or a key without events:write: the status in protobuf.
    with time_machine.travel(NOW, tick=False):
        anonymous = APIClient().post(
            "/v1/traces", data=valid_protobuf(), content_type="application/x-protobuf"
        )
        reader = api_client("read").post(
            "/v1/traces", data=valid_protobuf(), content_type="application/x-protobuf"
        )
    assert anonymous.status_code == 401 and rpc_status(anonymous).code == 16
    assert reader.status_code == 403 and rpc_status(reader).code == 7
    assert not stored()


def test_a_chunked_export_is_read_up_to_the_integration_limit():
    """A body sent chunked reaches /v1/traces whole up to 32 MiB, where other API
    paths stop at DATA_UPLOAD_MAX_MEMORY_SIZE (config.middleware.SizedBodies)."""
    seen = {}

    def app(environ, start_response):
        seen[environ["PATH_INFO"]] = int(environ["CONTENT_LENGTH"])
        return []

    for path in ("/v1/traces", "/api/v1/events"):
        environ = {
            "PATH_INFO": path,
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input_terminated": True,
            "wsgi.input": io.BytesIO(b"x" * (3 * MIB)),
        }
        SizedBodies(app)(environ, None)
    assert seen == {"/v1/traces": 3 * MIB, "/api/v1/events": MIB + 1}


def test_numbers_past_decimals_range_refuse_their_span_only(mapped):
    """Text with an exponent past decimal's context overflowed (a 500) where a count
    or a time is read (billing.integrations.calls)."""
    late = model_span(2)
    late["startTimeUnixNano"] = "1e999999999"
    body = export(
        model_span(1, gen_ai__usage__input_tokens={"intValue": "1e999999999"}),
        late,
        model_span(3, gen_ai__usage__cost={"doubleValue": "1e-999999999"}),
        model_span(4, gen_ai__usage__cost=0.0),
        model_span(5),
    )
    answer = post(body)
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"] == {
        "rejectedSpans": "3",
        "errorMessage": (
            f"3 spans rejected: span 0 ({TRACE}:{span_id(1)}): gen_ai.usage.input_tokens "
            f"must be at most 1,000,000,000,000 tokens; span 1 ({TRACE}:{span_id(2)}): "
            f"startTimeUnixNano must be a time since the epoch; span 2 ({TRACE}:{span_id(3)}): "
            "gen_ai.usage.cost must be a number"
        ),
    }
    events = stored()
    assert events[f"{TRACE}:{span_id(4)}:provider_cost"].properties["cost"] == "0"
    assert len(events) == 5
