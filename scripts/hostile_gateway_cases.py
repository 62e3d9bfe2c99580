"""Hostile input to the gateway and OpenTelemetry endpoints (issue 79): what a
broken gateway, a careless exporter or an attacker sends to POST
/api/v1/integrations/litellm, .../openrouter and /v1/traces. Each source's mapping
is pointed at this run's own event name (PUT /api/v1/integrations/{source}), read by
a sum meter of `tokens` of the run's own, and every case has a customer of its own
subscribed to a plan on it: after each case the customer's usage must be exactly the
good calls' tokens it sent (nothing of a refused call, nothing of a refused
request). Never a 5xx."""

import gzip
import json
import os
from datetime import UTC, datetime, timedelta

from hostile_world import Case, World

LITELLM = "/api/v1/integrations/litellm"
OPENROUTER = "/api/v1/integrations/openrouter"
TRACES = "/v1/traces"
# Past the gateway endpoints' 32 MiB (BILLING_INTEGRATION_MAX_BODY).
OVER_LIMIT = 33 * 1024 * 1024
# 4 MiB of empty gzip members: a worker busy for 16 s and more when each member
# copied the rest of the body.
EMPTY_MEMBERS = gzip.compress(b"", mtime=0) * (4 * 1024 * 1024 // 20)


class Setup:
    def __init__(self, world: World):
        self.world = world
        self.run = world.run
        self.event_name = f"{self.run}.tokens"
        self.meter = f"{self.run}_tokens"
        self.plan = f"{self.run}_tok"
        self.now = datetime.now(UTC) - timedelta(seconds=30)
        self.count = 0

    def make(self) -> "Setup":
        world = self.world
        world.made_with(
            "all",
            "POST",
            "/api/v1/meters",
            {
                "code": self.meter,
                "name": "gateway tokens",
                "event_name": self.event_name,
                "aggregation": "sum",
                "value_property": "tokens",
                "group_by": ["model", "token_type"],
            },
        )
        pricing = {"scheme": "per_unit", "unit_price": "1", "per": "1000000"}
        charge = {
            "meter": self.meter,
            "model": "overage",
            "included_units": "0",
            "pricing": pricing,
        }
        world.made_with(
            "all",
            "POST",
            "/api/v1/plans",
            {
                "code": self.plan,
                "name": self.plan,
                "currency": "USD",
                "interval": "month",
                "base_fee": "0",
                "publish": True,
                "charges": [charge],
            },
        )
        for source, customer_from in (
            ("litellm", "end_user"),
            ("openrouter", "per_kind"),
            ("otlp", "enduser.id"),
        ):
            world.made_with(
                "all",
                "PUT",
                f"/api/v1/integrations/{source}",
                {"event_name": self.event_name, "customer_from": customer_from},
            )
        return self

    def customer(self) -> str:
        self.count += 1
        customer = f"{self.run}-gw{self.count:02d}"
        self.world.made_with(
            "all",
            "POST",
            "/api/v1/customers",
            {"external_id": customer, "name": customer, "currency": "USD", "timezone": "UTC"},
        )
        start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.world.made_with(
            "all",
            "POST",
            "/api/v1/subscriptions",
            {"customer": customer, "plan": self.plan, "start": start},
        )
        return customer

    def usage(self, customer: str) -> str | None:
        status, answer = self.world.json("read", "GET", f"/api/v1/customers/{customer}/usage")
        if status != 200 or not isinstance(answer, dict):
            return f"usage answered {status}"
        for line in answer.get("lines", []):
            if line.get("meter") == self.meter:
                return str(line.get("quantity"))
        return "0"

    def send(self, path: str, body: bytes, content_type: str, **headers) -> tuple[int, bytes]:
        client = self.world.clients["events:write"]
        try:
            status, data = client.request(
                "POST", path, body, {"Content-Type": content_type, **headers}
            )
        except OSError:
            # The server answered and closed before the client sent it all (a body
            # refused unread): status 0, as scripts/hostile_body_cases.py counts it.
            return 0, b""
        if status >= 500:
            self.world.server_errors += 1
        return status, data


def litellm_call(run: str, customer: str, n: int, now: datetime, **changes) -> dict:
    call = {
        "id": f"{run}-ll-{customer}-{n}",
        "status": "success",
        "model": "gpt-4o",
        "end_user": customer,
        "startTime": now.timestamp(),
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "metadata": {
            "usage_object": {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 200},
            }
        },
    }
    usage = changes.pop("usage", None)
    if usage is not None:
        call["metadata"]["usage_object"].update(usage)
    call.update(changes)
    return call


GOOD_CALL_TOKENS = 1100  # 800 input + 200 cached + 100 output


def _case(setup: Setup, name: str, send, *, statuses: set[int], tokens: int, rejected=None):
    """A case: `send(customer)` posts; the answer's status must be one of `statuses`,
    the refused records' indexes `rejected` (when given), and the customer's usage
    exactly `tokens` afterwards."""

    def check() -> list[str]:
        customer = setup.customer()
        status, data = send(customer)
        problems = []
        if status not in statuses:
            problems.append(f"answered {status}, expected {sorted(statuses)}: {data[:200]!r}")
        if rejected is not None and status in (200, 202):
            try:
                answer = json.loads(data)
            except ValueError:
                answer = {}
            said = sorted(r.get("index") for r in answer.get("rejected", []))
            if said != sorted(rejected):
                problems.append(f"rejected {said}, expected {sorted(rejected)}")
        used = setup.usage(customer)
        if used != str(tokens):
            problems.append(f"usage {used}, expected {tokens}")
        return problems

    return Case(f"gateway: {name}", check)


def _litellm_cases(setup: Setup) -> list[Case]:
    run, now = setup.run, setup.now

    def batch(hostile):
        def send(customer):
            goods = [litellm_call(run, customer, n, now) for n in (1, 2)]
            bad = hostile(customer)
            body = json.dumps([goods[0], *bad, goods[1]], ensure_ascii=True)
            return setup.send(LITELLM, body.encode("utf-8", "surrogatepass"), "application/json")

        return send

    def call(customer, n, **changes):
        return litellm_call(run, customer, n, now, **changes)

    two = 2 * GOOD_CALL_TOKENS
    hostile = {
        "missing usage": lambda c: [
            {k: v for k, v in call(c, 9).items() if k not in ("metadata", "prompt_tokens")}
            | {"completion_tokens": None}
        ],
        "negative tokens": lambda c: [call(c, 9, usage={"prompt_tokens": -5})],
        "fractional tokens": lambda c: [call(c, 9, usage={"completion_tokens": 10.5})],
        "boolean tokens": lambda c: [call(c, 9, usage={"prompt_tokens": True})],
        "string tokens": lambda c: [call(c, 9, usage={"prompt_tokens": "lots"})],
        "10**13 tokens": lambda c: [call(c, 9, usage={"prompt_tokens": 10**13})],
        "1e400 tokens": lambda c: [call(c, 9, usage={"prompt_tokens": "1e400"})],
        "more cached than prompt": lambda c: [
            call(c, 9, usage={"prompt_tokens_details": {"cached_tokens": 5000}})
        ],
        "unknown customer": lambda c: [call(c, 9, end_user=f"{run}-nobody")],
        "no customer": lambda c: [call(c, 9, end_user=None)],
        "id of 300 characters": lambda c: [call(c, 9, id="x" * 300)],
        "NUL in the id": lambda c: [call(c, 9, id="a\x00b")],
        "lone surrogate in the customer": lambda c: [call(c, 9, end_user="\ud800")],
        "not an object": lambda c: [[1, 2, 3]],
        "usage not an object": lambda c: [call(c, 9, metadata={"usage_object": [1]})],
        "startTime not a number": lambda c: [call(c, 9, startTime="yesterday")],
        "startTime in year 3000": lambda c: [call(c, 9, startTime=32503680000)],
    }
    cases = [
        _case(
            setup,
            f"litellm {name}",
            batch(make),
            statuses={202},
            tokens=two,
            rejected=[1],
        )
        for name, make in hostile.items()
    ]

    def deep_messages(customer):
        # A call whose messages nest 100,000 deep: its tokens are still billed.
        goods = [json.dumps(call(customer, n)) for n in (1, 2, 3)]
        deep = json.dumps(call(customer, 3))[:-1] + ', "messages": '
        deep += "[" * 100_000 + "]" * 100_000 + "}"
        body = f"[{goods[0]}, {deep}, {goods[1]}]"
        return setup.send(LITELLM, body.encode(), "application/json")

    cases.append(
        _case(
            setup,
            "litellm messages nested 100,000 deep",
            deep_messages,
            statuses={202},
            tokens=3 * GOOD_CALL_TOKENS,
            rejected=[],
        )
    )

    def deep_body(customer):
        return setup.send(LITELLM, b"[" * 100_000 + b"]" * 100_000, "application/json")

    def over_limit(customer):
        good = json.dumps(call(customer, 1))
        padding = "x" * OVER_LIMIT
        body = f'[{good}, {{"id": "pad", "messages": "{padding}"}}]'.encode()
        return setup.send(LITELLM, body, "application/json")

    def malformed(customer):
        return setup.send(LITELLM, b'[{"id": "a",', "application/json")

    gzipped = {"Content-Encoding": "gzip"}

    def members(customer):
        return setup.send(LITELLM, EMPTY_MEMBERS, "application/json", **gzipped)

    def members_batch(customer):
        batch = gzip.compress(json.dumps([call(customer, 1), call(customer, 2)]).encode())
        body = EMPTY_MEMBERS + batch
        return setup.send(LITELLM, body, "application/json", **gzipped)

    def ndjson_garbage(customer):
        lines = [json.dumps(call(customer, 1)), "{not json", json.dumps(call(customer, 2))]
        return setup.send(LITELLM, "\n".join(lines).encode(), "application/x-ndjson")

    def wrong_type(customer):
        return setup.send(LITELLM, json.dumps([call(customer, 1)]).encode(), "text/csv")

    def resent(customer):
        body = json.dumps([call(customer, 1), call(customer, 2)]).encode()
        setup.send(LITELLM, body, "application/json")
        return setup.send(LITELLM, body, "application/json")

    cases += [
        _case(setup, "litellm body 100,000 levels deep", deep_body, statuses={202, 400}, tokens=0),
        _case(setup, "litellm body over 32 MiB", over_limit, statuses={0, 413}, tokens=0),
        _case(setup, "litellm 4 MiB of empty gzip members", members, statuses={400}, tokens=0),
        _case(
            setup,
            "litellm a batch after 4 MiB of empty gzip members",
            members_batch,
            statuses={202},
            tokens=two,
            rejected=[],
        ),
        _case(setup, "litellm malformed JSON", malformed, statuses={400}, tokens=0),
        _case(
            setup,
            "litellm NDJSON with a line that is not JSON",
            ndjson_garbage,
            statuses={202},
            tokens=two,
            rejected=[1],
        ),
        _case(setup, "litellm wrong content type", wrong_type, statuses={415}, tokens=0),
        _case(setup, "litellm the same batch twice", resent, statuses={202}, tokens=two),
    ]
    return cases


def _openrouter_cases(setup: Setup) -> list[Case]:
    """Completions (usage accounting, the customer in `user`) and generations as
    GET /generation answers them (`usage` a number, the customer in
    `external_user`), the source's customer_from per kind of record."""
    run, now = setup.run, setup.now

    def record(customer, n, **usage):
        return {
            "id": f"{run}-gen-{customer}-{n}",
            "model": "openai/o3",
            "created": int(now.timestamp()),
            "user": customer,
            "usage": {"prompt_tokens": 500, "completion_tokens": 300, "cost": 0.01} | usage,
        }

    def generation(customer, n, **changes):
        return {
            "id": f"{run}-gen-{customer}-{n}",
            "model": "openai/o3",
            "created_at": now.isoformat(),
            "external_user": customer,
            "native_tokens_prompt": 500,
            "native_tokens_completion": 300,
            "native_tokens_cached": 100,
            "native_tokens_reasoning": 50,
            "total_cost": 0.01,
            "usage": 0.01,
        } | changes

    def batch(*bad, make=record):
        def send(customer):
            body = [record(customer, 1), *[make(customer, 9, **b) for b in bad]]
            body.append(record(customer, 2))
            return setup.send(OPENROUTER, json.dumps(body).encode(), "application/json")

        return send

    cases = [
        _case(
            setup,
            f"openrouter {name}",
            batch(bad),
            statuses={202},
            tokens=1600,
            rejected=[1],
        )
        for name, bad in (
            ("cost not a number", {"cost": "free"}),
            ("negative cost", {"cost": -1}),
            ("infinite cost", {"cost": "Infinity"}),
            ("reasoning over completion", {"completion_tokens_details": {"reasoning_tokens": 900}}),
            ("negative prompt", {"prompt_tokens": -1}),
        )
    ]
    cases += [
        _case(
            setup,
            f"openrouter generation {name}",
            batch(bad, make=generation),
            statuses={202},
            tokens=1600,
            rejected=[1],
        )
        for name, bad in (
            ("negative native prompt", {"native_tokens_prompt": -1}),
            ("native counts that are not numbers", {"native_tokens_completion": "many"}),
            ("more cached than prompt", {"native_tokens_cached": 501}),
            ("usage a number, total_cost text", {"total_cost": "free"}),
            ("naming no external_user", {"external_user": None}),
        )
    ]
    cases.append(
        _case(
            setup,
            "openrouter generation as GET /generation answers it",
            batch({}, make=generation),
            statuses={202},
            tokens=2400,
            rejected=[],
        )
    )
    return cases


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _traces_cases(setup: Setup) -> list[Case]:
    run, now = setup.run, setup.now
    start = str(int(now.timestamp()) * 10**9)

    def span(n: int, **tokens) -> dict:
        attributes = [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]
        for key, value in ({"input_tokens": 1000, "output_tokens": 100} | tokens).items():
            attributes.append({"key": f"gen_ai.usage.{key}", "value": {"intValue": value}})
        trace = (run.encode().hex() + "0" * 32)[:30] + f"{n:02x}"
        return {
            "traceId": trace,
            "spanId": f"{n:016x}",
            "name": "chat",
            "startTimeUnixNano": start,
            "endTimeUnixNano": start,
            "attributes": attributes,
        }

    def export(customer: str, spans: list) -> bytes:
        resource = {"attributes": [{"key": "enduser.id", "value": {"stringValue": customer}}]}
        return json.dumps(
            {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
        ).encode()

    def spans_case(name, bad: dict, *, tokens: int):
        def send(customer):
            # Each customer's spans on trace ids of its own.
            offset = setup.count * 4
            spans = [span(offset + 1), span(offset + 2, **bad), span(offset + 3)]
            return setup.send(TRACES, export(customer, spans), "application/json")

        return _case(setup, f"traces {name}", send, statuses={200}, tokens=tokens)

    def garbage(customer):
        return setup.send(TRACES, os.urandom(4096), "application/x-protobuf")

    def truncated(customer):
        # A field 1 (resource_spans) that says 1,000 bytes follow, and 3 do.
        return setup.send(TRACES, b"\x0a" + _varint(1000) + b"abc", "application/x-protobuf")

    def deep_protobuf(customer):
        # A resource attribute whose value is a kvlist holding a kvlist ..., 3,000 deep:
        # KeyValue.value (2) -> AnyValue.kvlist_value (6) -> KeyValueList.values (1).
        def field(number: int, payload: bytes) -> bytes:
            return bytes([number << 3 | 2]) + _varint(len(payload)) + payload

        key_value = field(1, b"k")
        for _ in range(3_000):
            key_value = field(1, b"k") + field(2, field(6, field(1, key_value)))
        body = field(1, field(1, field(1, key_value)))
        return setup.send(TRACES, body, "application/x-protobuf")

    def bomb(customer):
        packed = gzip.compress(b"\x00" * (64 * 1024 * 1024))
        return setup.send(TRACES, packed, "application/x-protobuf", **{"Content-Encoding": "gzip"})

    def json_garbage(customer):
        return setup.send(TRACES, b'{"resourceSpans": [{"scopeSpans": 5}', "application/json")

    return [
        spans_case("negative input tokens", {"input_tokens": "-5"}, tokens=2200),
        spans_case("fractional output tokens", {"output_tokens": "2.5"}, tokens=2200),
        spans_case("tokens that are not a number", {"output_tokens": "many"}, tokens=2200),
        _case(setup, "traces protobuf garbage", garbage, statuses={400}, tokens=0),
        _case(setup, "traces truncated protobuf", truncated, statuses={400}, tokens=0),
        _case(setup, "traces protobuf nested 3,000 deep", deep_protobuf, statuses={400}, tokens=0),
        _case(setup, "traces gzip bomb (64 MB unpacked)", bomb, statuses={413}, tokens=0),
        _case(setup, "traces malformed JSON", json_garbage, statuses={400}, tokens=0),
    ]


def cases(world: World) -> list[Case]:
    setup = Setup(world).make()
    return _litellm_cases(setup) + _openrouter_cases(setup) + _traces_cases(setup)
