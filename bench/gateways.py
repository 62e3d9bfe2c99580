"""Gateway ingestion benchmark (issue 79): the same token usage posted three ways
through the web server (granian) on PostgreSQL, in the same run: as POST
/api/v1/events batches, as LiteLLM's generic_api batches (POST
/api/v1/integrations/litellm) and as OTLP/HTTP protobuf exports (POST /v1/traces).

    .venv/bin/python bench/gateways.py [--calls 60000] [--per-request 300]
        [--clients 4] [--rounds 3] [--workers CORES+1]
        [--database billing_bench_gateways] [--port 8767]

Every call carries input, cached input and output tokens, so each becomes three
events whichever way it arrives; a request carries --per-request calls (900 events,
under POST /events' 1,000). LiteLLM's payloads are shaped as its
StandardLoggingPayload is, with a short prompt and answer in them (about 1.5 KB a
call; a real proxy's are larger unless message logging is off). The OTLP spans carry
the GenAI attributes and a resource naming the customer. Each round runs the three
ways one after the other, in a rotating order, each on fresh call ids and after the
last one's rows are folded (untimed, so no way pays for another's folds), with
--clients processes posting their share of requests, each on a connection of its
own. Reported: each way's events a second (the median of the rounds), its ratio to
POST /events' in the same round (the target: at least 0.8), and the server's CPU
milliseconds a thousand events.

Then the bodies a gateway endpoint must survive (issue 92), each posted alone to an
idle server: 4 MiB of empty gzip members (about 210,000 of them, 20 bytes each) to
LiteLLM's path and to /v1/traces, timed (the target: answered within a second, a
4xx: they unpack to nothing, which is no batch); and LiteLLM's default batch of 512
calls with long prompts, 31.5 MiB, timed, with what it added to the server's peak
memory (the target: accepted, every call billed). --bodies-only runs these alone.
Prints figures only."""

import argparse
import gzip
import http.client
import json
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Server,
    add_server_arguments,
    cpu_seconds,
    django_setup,
    fresh_database,
    record,
)

DB_NAME = "billing_bench_gateways"
PORT = 8767
CUSTOMERS = 50
MODELS = ("gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet", "llama-3")
WAYS = ("events", "litellm", "otlp")
PATHS = {
    "events": "/api/v1/events",
    "litellm": "/api/v1/integrations/litellm",
    "otlp": "/v1/traces",
}
PROMPT = "Summarize the quarterly usage report for the finance team in three bullet points. "
ANSWER = "Usage rose 12 % on the quarter; cached prompts halved input cost; o3 drove spend. "


def call_tokens(n: int) -> tuple[int, int, int]:
    """(prompt, cached, completion) of call n: varied, cached within the prompt."""
    prompt = 1_000 + (n * 37) % 9_000
    return prompt, prompt // (2 + n % 5), 50 + (n * 13) % 950


def events_body(calls: range, stamp: datetime) -> bytes:
    events = []
    for n in calls:
        prompt, cached, completion = call_tokens(n)
        customer, model = f"cust-{n % CUSTOMERS}", MODELS[n % len(MODELS)]
        for kind, tokens in (
            ("input", prompt - cached),
            ("cached_input", cached),
            ("output", completion),
        ):
            events.append(
                {
                    "id": f"ev-{n}:{kind}",
                    "customer": customer,
                    "event_name": "llm.tokens",
                    "timestamp": stamp.isoformat(),
                    "properties": {"model": model, "token_type": kind, "tokens": tokens},
                }
            )
    return json.dumps({"events": events}).encode()


def litellm_body(calls: range, stamp: datetime) -> bytes:
    payloads = []
    for n in calls:
        prompt, cached, completion = call_tokens(n)
        payloads.append(
            {
                "id": f"ll-{n}",
                "trace_id": f"trace-{n}",
                "call_type": "acompletion",
                "status": "success",
                "model": MODELS[n % len(MODELS)],
                "custom_llm_provider": "openai",
                "end_user": f"cust-{n % CUSTOMERS}",
                "startTime": stamp.timestamp(),
                "endTime": stamp.timestamp() + 1.2,
                "completionStartTime": stamp.timestamp() + 0.4,
                "response_cost": 0.0042,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "metadata": {
                    "user_api_key_hash": "88dc28d0f030c55e" * 4,
                    "user_api_key_alias": "prod-key",
                    "user_api_key_team_id": "team-7",
                    "usage_object": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                    },
                },
                "messages": [{"role": "user", "content": PROMPT * 6}],
                "response": {
                    "choices": [{"message": {"role": "assistant", "content": ANSWER * 4}}]
                },
                "model_parameters": {"temperature": 0.2, "max_tokens": 1024},
            }
        )
    return json.dumps(payloads).encode()


def otlp_body(calls: range, stamp: datetime) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def attribute(key: str, value) -> KeyValue:
        if isinstance(value, str):
            return KeyValue(key=key, value=AnyValue(string_value=value))
        return KeyValue(key=key, value=AnyValue(int_value=value))

    start = int(stamp.timestamp() * 1e9)
    by_customer: dict[str, list] = {}
    for n in calls:
        prompt, cached, completion = call_tokens(n)
        span = Span(
            trace_id=n.to_bytes(16, "big"),
            span_id=(n + 1).to_bytes(8, "big"),
            name=f"chat {MODELS[n % len(MODELS)]}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 1_200_000_000,
            attributes=[
                attribute("gen_ai.operation.name", "chat"),
                attribute("gen_ai.system", "openai"),
                attribute("gen_ai.request.model", MODELS[n % len(MODELS)]),
                attribute("gen_ai.usage.input_tokens", prompt),
                attribute("gen_ai.usage.cache_read.input_tokens", cached),
                attribute("gen_ai.usage.output_tokens", completion),
            ],
        )
        by_customer.setdefault(f"cust-{n % CUSTOMERS}", []).append(span)
    request = ExportTraceServiceRequest()
    for customer, spans in by_customer.items():
        resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
        resource_spans.resource.attributes.append(attribute("enduser.id", customer))
        resource_spans.resource.attributes.append(attribute("service.name", "assistant"))
        request.resource_spans.append(resource_spans)
    return request.SerializeToString()


BODIES = {"events": events_body, "litellm": litellm_body, "otlp": otlp_body}
CONTENT_TYPES = {
    "events": "application/json",
    "litellm": "application/json",
    "otlp": "application/x-protobuf",
}


def client(index, way, bodies, key, port, barrier, results):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": CONTENT_TYPES[way]}
    barrier.wait()
    started = time.perf_counter()
    for body in bodies:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", PATHS[way], body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        if response.status not in (200, 202):
            raise RuntimeError(f"{way} client {index}: {response.status} {payload[:300]!r}")
        if way != "otlp":
            answer = json.loads(payload)
            if answer["rejected"]:
                raise RuntimeError(f"{way}: rejected {answer['rejected'][:2]}")
    results.put((index, started, time.perf_counter()))


def settle(database_url: str) -> None:
    """Between two ways, untimed: fold what the last one left unfolded (else the next
    way's batches fold it: the order of the ways would be in the figures) and start
    from a fresh checkpoint (bench/ingest.py's reason)."""
    import subprocess

    from bench.common import ROOT, server_env

    subprocess.run(
        [sys.executable, "manage.py", "fold_usage"],
        cwd=ROOT,
        env=server_env(database_url),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        pass  # a role that may not: the phases start where the last left off
    connection.close()


def run(way: str, bodies_per_client: list[list[bytes]], key: str, port: int) -> float:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(bodies_per_client))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=client, args=(i, way, bodies, key, port, barrier, results))
        for i, bodies in enumerate(bodies_per_client)
    ]
    for p in procs:
        p.start()
    outcomes = []
    while len(outcomes) < len(procs):
        try:
            outcomes.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a {way} client failed") from None
    for p in procs:
        p.join()
    return max(o[2] for o in outcomes) - min(o[1] for o in outcomes)


# About 210,000 gzip members of nothing, 20 bytes each: 4 MiB a gateway's endpoint
# once took 16 s to refuse (each member copied the rest of the body).
EMPTY_MEMBERS_SIZE = 4 * 1024 * 1024
# LiteLLM's default batch, each call with a prompt of about 62 KB: 31.5 MiB.
BIG_BATCH_CALLS = 512
BIG_BATCH_SIZE = 31 * 1024 * 1024 + 512 * 1024


def empty_gzip_members() -> bytes:
    member = gzip.compress(b"", mtime=0)
    return member * (EMPTY_MEMBERS_SIZE // len(member))


def big_litellm_batch(first: int, stamp: datetime) -> bytes:
    """LiteLLM's default batch (BIG_BATCH_CALLS calls) padded with long prompts to
    BIG_BATCH_SIZE bytes, as a proxy logging its messages sends it."""
    calls = range(first, first + BIG_BATCH_CALLS)
    base = litellm_body(calls, stamp)
    prompt = "x" * ((BIG_BATCH_SIZE - len(base)) // BIG_BATCH_CALLS)
    payloads = json.loads(base)
    for payload in payloads:
        payload["messages"].append({"role": "user", "content": prompt})
    return json.dumps(payloads).encode()


def timed_post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes, float]:
    """(status, answer, seconds); status 0 when the server closed the connection
    before taking the whole body (a body refused unread)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        status, payload = response.status, response.read()
    except OSError as exc:
        status, payload = 0, str(exc).encode()
    elapsed = time.perf_counter() - started
    conn.close()
    return status, payload, elapsed


def body_checks(server: "Server", key: str, port: int, first: int) -> None:
    """The bodies a gateway's endpoint must take or refuse in linear time (the
    module's note), each alone on an idle server."""
    auth = {"Authorization": f"Bearer {key}"}
    members = empty_gzip_members()
    for way in ("litellm", "otlp"):
        headers = auth | {"Content-Type": CONTENT_TYPES[way], "Content-Encoding": "gzip"}
        status, payload, elapsed = timed_post(port, PATHS[way], members, headers)
        print(
            f"{way:8} {len(members) / 2**20:.1f} MiB of empty gzip members: {status} in "
            f"{elapsed:.2f} s; "
            + record(f"4 MB of empty gzip members ({way})", elapsed, "s", target=1, higher=False),
            flush=True,
        )
        if status >= 500:
            print(f"  answer: {payload[:200]!r}")
    batch = big_litellm_batch(first, datetime.now(UTC))
    _, peak_before = server.memory_mib()
    headers = auth | {"Content-Type": CONTENT_TYPES["litellm"]}
    status, payload, elapsed = timed_post(port, PATHS["litellm"], batch, headers)
    _, peak_after = server.memory_mib()
    answer = json.loads(payload) if status == 202 else {}
    grown = peak_after - peak_before
    print(
        f"litellm  {BIG_BATCH_CALLS} calls, {len(batch) / 2**20:.1f} MiB: {status} in "
        f"{elapsed:.2f} s, {answer.get('calls', 0)} calls billed, server peak memory "
        f"+{grown:.0f} MiB",
        flush=True,
    )
    if status != 202:
        print(f"  answer: {payload[:200]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=60_000, help="calls a way a round")
    parser.add_argument("--per-request", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    add_server_arguments(parser, workers=len(os.sched_getaffinity(0)) + 1)
    parser.add_argument("--database", default=DB_NAME)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument(
        "--bodies-only", action="store_true", help="only the bodies' figures (the module's note)"
    )
    args = parser.parse_args()

    database_url = fresh_database(args.database)
    django_setup(database_url)
    from django.core.management import call_command
    from django.db import connection

    from customers.api_keys import api_key_create
    from customers.models import ApiKey, Customer
    from plans.models import Meter
    from plans.services import meter_create

    call_command("migrate", verbosity=0)
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
        group_by=["model", "token_type"],
    )
    Customer.objects.bulk_create(
        Customer(external_id=f"cust-{i}", name=f"Customer {i}", currency="USD")
        for i in range(CUSTOMERS)
    )
    _, key = api_key_create(name="bench", scopes=[ApiKey.SCOPE_EVENTS_WRITE])
    connection.close()

    server = Server(
        database_url, port=args.port, workers=args.workers, threads=args.threads, kind=args.server
    )
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    ratios: dict[str, list[float]] = {way: [] for way in WAYS}
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    if args.bodies_only:
        args.rounds = 0
    try:
        # A request each way from every client first: the workers' caches and
        # connections warm, on ids of their own.
        first = 0
        for way in WAYS:
            warm = []
            for _ in range(args.clients):
                calls = range(first, first + args.per_request)
                warm.append([BODIES[way](calls, datetime.now(UTC))])
                first += args.per_request
            run(way, warm, key, args.port)
        for round_ in range(args.rounds):
            order = WAYS[round_ % 3 :] + WAYS[: round_ % 3]
            round_rates = {}
            for way in order:
                stamp = datetime.now(UTC)
                requests = [
                    range(start, min(start + args.per_request, first + args.calls))
                    for start in range(first, first + args.calls, args.per_request)
                ]
                first += args.calls
                bodies = [BODIES[way](calls, stamp) for calls in requests]
                shares = [bodies[i :: args.clients] for i in range(args.clients)]
                settle(database_url)
                cpu_before = cpu_seconds(server.pids())
                elapsed = run(way, shares, key, args.port)
                events = 3 * args.calls
                round_rates[way] = events / elapsed
                cpu[way].append((cpu_seconds(server.pids()) - cpu_before) * 1e6 / events)
                size = statistics.mean(len(b) for b in bodies) / 1024
                print(
                    f"round {round_ + 1} {way:8} {events:>8,} events in {elapsed:6.2f} s: "
                    f"{round_rates[way]:>9,.0f} events/s (request body {size:,.0f} KiB)",
                    flush=True,
                )
            for way in WAYS:
                rates[way].append(round_rates[way])
                ratios[way].append(round_rates[way] / round_rates["events"])
        settle(database_url)
        body_checks(server, key, args.port, first)
    finally:
        server.stop()
    if args.bodies_only:
        return

    print(f"\n{server.describe()}, {args.clients} clients, {args.per_request} calls a request")
    for way in WAYS:
        line = (
            f"{way:8} median {statistics.median(rates[way]):>9,.0f} events/s, "
            f"server CPU {statistics.median(cpu[way]):.1f} ms / 1,000 events"
        )
        if way != "events":
            ratio = statistics.median(ratios[way])
            line += f", ratio to POST /events {ratio:.2f} (rounds: "
            line += ", ".join(f"{r:.2f}" for r in ratios[way]) + ")"
            line += "; " + record(
                f"{way} events/s vs POST /events", ratio, "ratio", target=0.8, higher=True
            )
        print(line)


if __name__ == "__main__":
    main()
