"""What an OpenTelemetry exporter sends to POST /v1/traces: an OTLP/HTTP trace export
(ExportTraceServiceRequest), in protobuf or in OTLP's JSON encoding. Each span that
reports a model call's tokens (the GenAI semantic conventions' gen_ai.usage.*
attributes) becomes a Call; any other span is rightly not billed (skipped), and so
is a model call that failed (status ERROR).

A call's id is its span's, `<traceId>:<spanId>` in hex, so that an exporter's retry
of the same span is a duplicate. Its customer is the attribute the source's mapping
names (customer_from, `enduser.id` unless finance changed it), on the span or else
on its resource; its model is the model that answered (gen_ai.response.model, often a
dated snapshot: gpt-4o-2024-08-06), else the one asked for (gen_ai.request.model),
which is kept too (Call.requested_model) for billing.integrations.model_names to
price the call by; its moment is the span's start.

The conventions count cached and cache-written tokens inside input_tokens and
reasoning tokens inside output_tokens: each is billed once, under its own kind
(billing.integrations.calls). OpenRouter's Broadcast sends such spans too, with its
own cost of the call in gen_ai.usage.cost: received_of_export reads either
encoding once decoded (decode_protobuf, decode_json).

A span's `billing.hold` attribute names the hold its run took (API.md "Holds"): the
call's usage settles it, a failed span releases it (billing.usage.holds)."""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from billing.integrations.calls import (
    CACHE_WRITE,
    CACHED_INPUT,
    HOLD_ATTRIBUTE,
    INPUT,
    NO_CUSTOMER,
    OUTPUT,
    REASONING,
    Call,
    RecordRejected,
    RecordSkipped,
    SourceMapping,
    epoch_moment,
    hold_named,
    provider_cost,
    split_completion,
    split_prompt,
    text_field,
    token_count,
)
from billing.integrations.ingest import Received, RecordRejection
from billing.usage.ingestion import batch_parse

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Each count under its current name first, then the names older instrumentations
# and gateways used for it.
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.output_tokens.reasoning",
    "gen_ai.usage.reasoning_tokens",
)
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_MODEL = "gen_ai.request.model"
COST = "gen_ai.usage.cost"
# A span is a model call when it carries one of these.
USAGE = frozenset(INPUT_TOKENS + OUTPUT_TOKENS)
# The attributes a span is read for (besides the mapping's customer_from): the
# others, a prompt's text among them, are never decoded.
READ = USAGE | frozenset(
    CACHE_READ_TOKENS
    + CACHE_WRITE_TOKENS
    + REASONING_TOKENS
    + (RESPONSE_MODEL, REQUEST_MODEL, COST, HOLD_ATTRIBUTE)
)

# How many refused spans an answer's errorMessage names (the count covers them all).
NAMED_REJECTIONS = 5

# Spans of any kind a request may carry: far more than 8 MB of real spans hold
# (a few hundred bytes each), far fewer than 8 MB of empty ones (two bytes each in
# protobuf), whose reading would take seconds.
MAX_SPANS_PER_REQUEST = 100_000
# Model spans a request may carry: an OpenTelemetry Collector's batch processor sends
# 8,192 spans a request by default (send_batch_size), all model calls in a gateway's
# traces, and an exporter whose request is refused drops it: more than that is taken.
MAX_MODEL_SPANS_PER_REQUEST = 10_000

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8


class MalformedExport(ValueError):
    """A body that is not an OTLP trace export: the whole request is refused."""


class TooManySpans(Exception):
    """More spans, or model spans, in one request than a request may carry: none
    are stored."""


class _Other:
    """An attribute value of a kind billing never reads as a count or a name (an
    array, a key-value list, bytes, or JSON no value type describes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "a non-scalar value"


OTHER = _Other()


@dataclass(slots=True)
class SpanRead:
    """A span as either encoding carries it, reduced to what billing reads: its
    ids as sent (bytes in protobuf, hex text in JSON), the attributes in READ and
    the customer's, its resource's customer attribute, its start and whether it
    failed."""

    trace_id: object
    span_id: object
    attributes: dict
    resource: dict
    start: object
    failed: bool
    # The span, and the resource and scope it came in, as received (protobuf messages,
    # or JSON objects): a span refused is kept as span_record makes it
    # (billing.integrations.refused_records).
    raw: object = None
    raw_from: tuple = (None, None)


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """An export in protobuf. Raises MalformedExport for bytes that are not one."""
    export = ExportTraceServiceRequest()
    try:
        export.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MalformedExport(f"malformed protobuf ExportTraceServiceRequest: {exc}") from None
    return export


def decode_json(body: bytes) -> dict:
    """An export in OTLP's JSON encoding, read as POST /events reads JSON (exact
    numbers, any depth). Raises MalformedExport for a body that is not one."""
    try:
        export = batch_parse(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedExport(f"malformed JSON: {exc}") from None
    if not isinstance(export, dict):
        raise MalformedExport('the body must be a JSON object {"resourceSpans": [...]}')
    return export


def received_of_export(
    export: ExportTraceServiceRequest | Mapping,
    mapping: SourceMapping,
    *,
    max_calls: int = MAX_MODEL_SPANS_PER_REQUEST,
) -> Received:
    """The calls of an export (decoded), the spans refused and how many were not
    model calls or failed. Raises MalformedExport for JSON whose structure above
    the spans is not OTLP's, TooManySpans past `max_calls` model spans."""
    count = span_count(export)
    if count > MAX_SPANS_PER_REQUEST:
        raise TooManySpans(
            f"{count} spans; at most {MAX_SPANS_PER_REQUEST:,} a request; none stored"
        )
    wanted = READ | {mapping.customer_from}
    if isinstance(export, ExportTraceServiceRequest):
        spans = _protobuf_spans(export, wanted, mapping.customer_from)
    else:
        spans = _json_spans(export, wanted, mapping.customer_from)
    # The spans of the calls, should ingestion refuse one (Received.record_of).
    calls: dict[int, SpanRead] = {}
    received = Received(record_of=lambda index: span_record(calls[index]))
    model_spans = 0
    for index, span in enumerate(spans):
        if isinstance(span, RecordRejection):
            received.rejected.append(span)
            model_spans += 1
        else:
            try:
                received.calls.append(call_of(span, mapping, index))
                calls[index] = span
                model_spans += 1
            except RecordSkipped as skipped:
                received.skip(skipped)
                continue
            except RecordRejected as exc:
                received.rejected.append(
                    RecordRejection(index, _id_of(span), str(exc), exc.code, span_record(span))
                )
                model_spans += 1
        if model_spans > max_calls:
            raise TooManySpans(
                f"more than {max_calls} model spans; at most {max_calls} a request; none stored"
            )
    return received


def span_count(export: ExportTraceServiceRequest | Mapping) -> int:
    """How many spans an export holds, counted without reading them (in JSON, those
    in lists where OTLP puts them)."""
    if isinstance(export, ExportTraceServiceRequest):
        return sum(
            len(scope_spans.spans)
            for resource_spans in export.resource_spans
            for scope_spans in resource_spans.scope_spans
        )
    count = 0
    for resource_spans in _lenient_list(export, "resourceSpans", "resource_spans"):
        for scope_spans in _lenient_list(resource_spans, "scopeSpans", "scope_spans"):
            count += len(_lenient_list(scope_spans, "spans", "spans"))
    return count


def _lenient_list(message: object, name: str, proto_name: str) -> list:
    if not isinstance(message, dict):
        return []
    value = _field(message, name, proto_name)
    return value if isinstance(value, list) else []


def _customer_of(span: SpanRead, mapping: SourceMapping) -> str:
    """The customer the span names: the mapping's attribute on the span, else on its
    resource."""
    customer = span.attributes.get(mapping.customer_from)
    if customer is None:
        customer = span.resource.get(mapping.customer_from)
    if customer is None or customer == "":
        raise RecordRejected(
            f"the span names no customer: no attribute {mapping.customer_from!r} on the span "
            "or its resource",
            code=NO_CUSTOMER,
        )
    if isinstance(customer, int) and not isinstance(customer, bool):
        customer = str(customer)
    return text_field(customer, f"customer ({mapping.customer_from})")


def call_of(span: SpanRead, mapping: SourceMapping, index: int) -> Call:
    attributes = span.attributes
    if span.failed:
        # Not billed; the hold it names (a model call's, or its run's) released.
        hold = hold_named(attributes.get(HOLD_ATTRIBUTE))
        try:
            customer = None if hold is None else _customer_of(span, mapping)
        except RecordRejected:
            customer = None
        raise RecordSkipped(hold, customer)
    if not USAGE.intersection(attributes):
        raise RecordSkipped
    call_id = f"{_hex_id(span.trace_id, 'traceId', TRACE_ID_BYTES)}:" + _hex_id(
        span.span_id, "spanId", SPAN_ID_BYTES
    )
    customer = _customer_of(span, mapping)
    requested = attributes.get(REQUEST_MODEL)
    requested = None if requested in (None, "") else text_field(requested, REQUEST_MODEL)
    answered = attributes.get(RESPONSE_MODEL)
    model = requested if answered in (None, "") else text_field(answered, RESPONSE_MODEL)
    if model is None:
        raise RecordRejected(f"the span names no model ({RESPONSE_MODEL} or {REQUEST_MODEL})")
    if span.start in (None, 0, "0", ""):
        raise RecordRejected("the span has no startTimeUnixNano")
    moment = epoch_moment(span.start, "startTimeUnixNano", scale=10**9)
    prompt = _count(attributes, INPUT_TOKENS)
    completion = _count(attributes, OUTPUT_TOKENS)
    cached = _count(attributes, CACHE_READ_TOKENS)
    cache_write = _count(attributes, CACHE_WRITE_TOKENS)
    reasoning = _count(attributes, REASONING_TOKENS)
    tokens = {
        INPUT: split_prompt(prompt, cached=cached, cache_write=cache_write),
        CACHED_INPUT: cached,
        CACHE_WRITE: cache_write,
        OUTPUT: split_completion(completion, reasoning=reasoning),
        REASONING: reasoning,
    }
    cost = attributes.get(COST)
    return Call(
        call_id,
        customer,
        model,
        moment,
        tokens,
        provider_cost=None if cost is None else provider_cost(cost, COST),
        requested_model=requested,
        index=index,
        hold=hold_named(attributes.get(HOLD_ATTRIBUTE)),
    )


def _count(attributes: Mapping, names: tuple[str, ...]) -> int:
    """The count under the first of `names` the span carries, 0 without any."""
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return token_count(value, name)
    return 0


_HEX = re.compile(r"[0-9a-fA-F]+")


def _hex_id(value: object, name: str, size: int) -> str:
    """A trace or span id as lowercase hex: `size` bytes, not all zero (OTLP's
    invalid id)."""
    if isinstance(value, bytes):
        text = value.hex() if len(value) == size else None
    elif isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value):
        text = value.lower()
    else:
        text = None
    if text is None:
        raise RecordRejected(f"{name} must be {size} bytes ({2 * size} hex digits)")
    if not text.strip("0"):
        raise RecordRejected(f"{name} must not be all zeros")
    return text


def span_record(span: SpanRead) -> dict:
    """A span as a refused record is kept: an export of it alone, in OTLP's JSON
    encoding, with its resource and scope (from protobuf: ids in hex, as that
    encoding writes them), which received_of_export reads again when it is replayed."""
    raw, (resource, scope) = span.raw, span.raw_from
    if isinstance(raw, Message):
        raw = _json_of_protobuf(raw)
        resource, scope = json_format.MessageToDict(resource), json_format.MessageToDict(scope)
    scope_spans = {"scope": scope, "spans": [raw]} if scope else {"spans": [raw]}
    return {"resourceSpans": [{"resource": resource or {}, "scopeSpans": [scope_spans]}]}


def _json_of_protobuf(span) -> dict:
    """A protobuf span in OTLP's JSON encoding: protobuf's own JSON but for the ids,
    hex there (protobuf writes bytes in base64)."""
    as_json = json_format.MessageToDict(span)
    for name, value in (
        ("traceId", span.trace_id),
        ("spanId", span.span_id),
        ("parentSpanId", span.parent_span_id),
    ):
        if value:
            as_json[name] = value.hex()
    for link, linked in zip(as_json.get("links", []), span.links, strict=True):
        link["traceId"], link["spanId"] = linked.trace_id.hex(), linked.span_id.hex()
    return as_json


def _id_of(span: SpanRead) -> str | None:
    try:
        trace_id = _hex_id(span.trace_id, "traceId", TRACE_ID_BYTES)
        return f"{trace_id}:{_hex_id(span.span_id, 'spanId', SPAN_ID_BYTES)}"
    except RecordRejected:
        return None


# Protobuf


def _protobuf_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    return None if kind is None else OTHER


def _protobuf_attributes(key_values, wanted) -> dict:
    return {kv.key: _protobuf_value(kv.value) for kv in key_values if kv.key in wanted}


def _protobuf_spans(
    export: ExportTraceServiceRequest, wanted, customer_from: str
) -> Iterator[SpanRead]:
    for resource_spans in export.resource_spans:
        resource = _protobuf_attributes(resource_spans.resource.attributes, {customer_from})
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanRead(
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    attributes=_protobuf_attributes(span.attributes, wanted),
                    resource=resource,
                    start=span.start_time_unix_nano,
                    failed=span.status.code == Status.STATUS_CODE_ERROR,
                    raw=span,
                    raw_from=(resource_spans.resource, scope_spans.scope),
                )


# JSON: OTLP's JSON encoding of the same messages (lowerCamelCase names, ids in hex,
# 64-bit integers as strings, enums as integers); unknown fields are ignored, as
# OTLP asks of a receiver.

_ERROR_CODES = {Status.STATUS_CODE_ERROR, str(Status.STATUS_CODE_ERROR), "STATUS_CODE_ERROR"}


def _field(message: Mapping, name: str, proto_name: str):
    """A field by its JSON name, or by its protobuf name, which proto3's JSON
    readers accept too."""
    value = message.get(name)
    return message.get(proto_name) if value is None else value


def _json_list(message: Mapping, name: str, proto_name: str, where: str) -> list:
    value = _field(message, name, proto_name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedExport(f"{where}.{name} must be a list")
    return value


def _json_value(value: object) -> object:
    """An AnyValue: {"stringValue": ...}, {"intValue": "42"} (a 64-bit integer, as
    text), {"doubleValue": 0.5}, {"boolValue": true}; text that is not an integer
    is kept, for token_count to refuse by name."""
    if not isinstance(value, dict):
        return OTHER
    for name, proto_name in (
        ("stringValue", "string_value"),
        ("intValue", "int_value"),
        ("doubleValue", "double_value"),
        ("boolValue", "bool_value"),
    ):
        scalar = _field(value, name, proto_name)
        if scalar is None:
            continue
        if (
            name == "intValue"
            and isinstance(scalar, str)
            and re.fullmatch(r"-?[0-9]{1,19}", scalar)
        ):
            return int(scalar)
        if isinstance(scalar, (dict, list)):
            return OTHER
        return scalar
    return None if not value else OTHER


def _json_attributes(items: object, wanted, where: str) -> dict:
    """The wanted attributes of a KeyValue list. Raises RecordRejected (with
    `where`) for a list that is not one."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise RecordRejected(f"{where} must be a list of {{key, value}}")
    attributes = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise RecordRejected(f"{where}[{position}] must be an object {{key, value}}")
        if item["key"] in wanted:
            attributes[item["key"]] = _json_value(item.get("value"))
    return attributes


def _json_spans(
    export: Mapping, wanted, customer_from: str
) -> Iterator[SpanRead | RecordRejection]:
    index = 0
    for r, resource_spans in enumerate(
        _json_list(export, "resourceSpans", "resource_spans", "the export")
    ):
        where = f"resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            raise MalformedExport(f"{where} must be an object")
        resource = resource_spans.get("resource") or {}
        if not isinstance(resource, dict):
            raise MalformedExport(f"{where}.resource must be an object")
        try:
            resource_attributes = _json_attributes(
                resource.get("attributes"), {customer_from}, f"{where}.resource.attributes"
            )
        except RecordRejected as exc:
            raise MalformedExport(str(exc)) from None
        for s, scope_spans in enumerate(
            _json_list(resource_spans, "scopeSpans", "scope_spans", where)
        ):
            scope_where = f"{where}.scopeSpans[{s}]"
            if not isinstance(scope_spans, dict):
                raise MalformedExport(f"{scope_where} must be an object")
            raw_from = (resource, scope_spans.get("scope"))
            for span in _json_list(scope_spans, "spans", "spans", scope_where):
                yield _json_span(span, wanted, resource_attributes, index, raw_from)
                index += 1


def _json_span(
    span: object, wanted, resource: dict, index: int, raw_from: tuple
) -> SpanRead | RecordRejection:
    """The span read, or its refusal when it is not an OTLP span."""
    if not isinstance(span, dict):
        kept = SpanRead(None, None, {}, resource, None, False, raw=span, raw_from=raw_from)
        return RecordRejection(
            index, None, "each span must be a JSON object", record=span_record(kept)
        )
    read = SpanRead(
        trace_id=_field(span, "traceId", "trace_id"),
        span_id=_field(span, "spanId", "span_id"),
        attributes={},
        resource=resource,
        start=_field(span, "startTimeUnixNano", "start_time_unix_nano"),
        failed=False,
        raw=span,
        raw_from=raw_from,
    )
    try:
        read.attributes = _json_attributes(span.get("attributes"), wanted, "attributes")
        status = span.get("status") or {}
        if not isinstance(status, dict):
            raise RecordRejected("status must be an object {code, message}")
        read.failed = status.get("code") in _ERROR_CODES
    except RecordRejected as exc:
        return RecordRejection(index, _id_of(read), str(exc), exc.code, span_record(read))
    return read


# Answers


def export_response(rejected: list[RecordRejection]) -> ExportTraceServiceResponse:
    """OTLP's answer to an export: a partial success naming how many spans were
    refused and why (the first NAMED_REJECTIONS), nothing when none were."""
    response = ExportTraceServiceResponse()
    if rejected:
        named = "; ".join(
            f"span {r.index}" + (f" ({r.id})" if r.id else "") + f": {r.message}"
            for r in rejected[:NAMED_REJECTIONS]
        )
        more = len(rejected) - NAMED_REJECTIONS
        response.partial_success.rejected_spans = len(rejected)
        response.partial_success.error_message = f"{len(rejected)} spans rejected: {named}" + (
            f"; and {more} more" if more > 0 else ""
        )
    return response


def export_response_json(rejected: list[RecordRejection]) -> dict:
    """export_response in OTLP's JSON encoding (rejectedSpans, a 64-bit integer,
    as text)."""
    return json_format.MessageToDict(export_response(rejected))


# google.rpc.Status, the body OTLP/HTTP gives a refused request: its code (field 1,
# a varint) and message (field 2, text). Written by hand, as its message class comes
# with googleapis-common-protos, which the server does not otherwise need.
INVALID_ARGUMENT = 3
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_protobuf(code: int, message: str) -> bytes:
    text = message.encode("utf-8", "replace")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
