"""Ingestion benchmark: HTTP through gunicorn on PostgreSQL, against the raw
PostgreSQL ceiling, plus usage-read latency at 1,000,000 events.

    .venv/bin/python bench/ingest.py [--events 200000] [--workers 4] [--big 1000000]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it
creates and drops its own database `billing_bench_ingest`. Prints figures only.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Gunicorn,
    cpu_seconds,
    django_setup,
    fresh_database,
    percentile,
    postgres_pids,
)

DB_NAME = "billing_bench_ingest"
CLIENTS = 4
BATCH = 500
CUSTOMERS = 1000
PORT = 8765
MODELS = ["gpt-4o", "gpt-4o-mini", "o3"]


def make_event(rng: random.Random, n: int, customer: str, moment: datetime) -> dict:
    kind = rng.random()
    if kind < 0.6:
        input_tokens = rng.randint(50, 5000)
        output_tokens = rng.randint(10, 1500)
        return {
            "id": f"evt_{n}",
            "customer": customer,
            "event_name": "llm.completion",
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "properties": {
                "model": rng.choice(MODELS),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "latency_ms": round(rng.uniform(80, 4000), 1),
            },
        }
    name = "prompt" if kind < 0.9 else "agent.run"
    return {
        "id": f"evt_{n}",
        "customer": customer,
        "event_name": name,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "properties": {"session": f"s{rng.randint(1, 50)}"},
    }


def http_client(index, bodies, key, barrier, results):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies = []
    accepted = 0
    barrier.wait()
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 202:
            raise RuntimeError(f"client {index}: {response.status} {payload[:300]!r}")
        accepted += json.loads(payload)["accepted"]
    results.put((index, started, time.perf_counter(), latencies, accepted))


def raw_client(index, database_url, statement, documents, barrier, results):
    """Each batch: the statement over its document, one transaction a batch."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        barrier.wait()
        started = time.perf_counter()
        for document in documents:
            with conn.cursor() as cursor:
                cursor.execute(statement, [document, datetime.now(UTC)])
                cursor.fetchall()
            conn.commit()
        results.put((index, started, time.perf_counter(), [], 0))


def run_clients(target, per_client_args) -> tuple[float, list[float], int]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(per_client_args))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(i, *args, barrier, results))
        for i, args in enumerate(per_client_args)
    ]
    for p in procs:
        p.start()
    outcomes = []
    while len(outcomes) < len(procs):
        try:
            outcomes.append(results.get(timeout=5))
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a client failed (exit codes {failed})") from None
    for p in procs:
        p.join()
    elapsed = max(o[2] for o in outcomes) - min(o[1] for o in outcomes)
    latencies = [lat for o in outcomes for lat in o[3]]
    return elapsed, latencies, sum(o[4] for o in outcomes)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="events of the usage-read customer"
    )
    args = parser.parse_args()

    database_url = fresh_database(DB_NAME)
    django_setup(database_url)
    from django.core.management import call_command
    from django.db import connection, connections

    from billing.usage.ingestion import events_ingest
    from billing.usage.metering import contributions, meter_cache
    from billing.usage.rollups import PreparedEvent, _postgres
    from customers.api_keys import api_key_create
    from customers.models import Customer

    call_command("migrate", verbosity=0)
    call_command("load_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:04d}", name=f"Customer {i}", currency="USD")
        for i in range(CUSTOMERS)
    )
    _, key = api_key_create(name="bench", scopes=["events:write", "read"])
    ids = dict(Customer.objects.values_list("external_id", "id"))

    rng = random.Random(42)
    now = datetime.now(UTC)
    events = [
        make_event(
            rng,
            n,
            f"cust_{rng.randrange(CUSTOMERS):04d}",
            now - timedelta(seconds=rng.randint(1, 3000)),
        )
        for n in range(args.events)
    ]
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    per_client = [bodies[i::CLIENTS] for i in range(CLIENTS)]
    print(
        f"events: {len(events):,} in {len(batches)} batches of {BATCH}, "
        f"{CLIENTS} concurrent clients, {CUSTOMERS} customers; "
        f"average body {sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB"
    )

    connections.close_all()
    server = Gunicorn(database_url, port=PORT, workers=args.workers)
    try:
        server_cpu, pg_cpu = cpu_seconds(server.pids()), cpu_seconds(postgres_pids())
        elapsed, latencies, accepted = run_clients(
            http_client, [(chunk, key) for chunk in per_client]
        )
        server_cpu = cpu_seconds(server.pids()) - server_cpu
        pg_cpu = cpu_seconds(postgres_pids()) - pg_cpu
        rss, peak = server.memory_mib()
        http_rate = accepted / elapsed
        print(
            f"\nHTTP ingestion (gunicorn, {args.workers} sync workers, PostgreSQL, with auth, "
            "dedup, rollups, one transaction a batch)"
        )
        print(f"  accepted {accepted:,} events in {elapsed:.2f} s = {http_rate:,.0f} events/s")
        print(
            f"  batch latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
        )
        print(f"  server memory (master + workers): {rss:.0f} MiB now, {peak:.0f} MiB peak")
        batches_sent = len(batches)
        print(
            f"  CPU per batch: gunicorn {server_cpu / batches_sent * 1000:.1f} ms, "
            f"PostgreSQL {pg_cpu / batches_sent * 1000:.1f} ms"
        )
        if accepted != len(events):
            raise RuntimeError(f"accepted {accepted}, sent {len(events)}")

        # The raw ceiling: the same rows and statement, straight through psycopg. The
        # target compares with the events insert alone; with the rollups too (the
        # whole statement ingestion sends), the difference left is what Django,
        # validation and HTTP cost.
        meters = meter_cache.by_event_name()

        def truncate_usage():
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE billing_eventkey, billing_usageevent, billing_usagerollup, "
                    "billing_usageuniquevalue"
                )

        prepared_batches = [
            [
                PreparedEvent(
                    ids[e["customer"]],
                    e["id"],
                    e["event_name"],
                    datetime.fromisoformat(e["timestamp"]),
                    e["properties"],
                    contributions(meters.get(e["event_name"], []), e["properties"]),
                )
                for e in b
            ]
            for b in ([json.loads(json.dumps(b), parse_float=Decimal) for b in batches])
        ]
        documents = [_postgres.batch_json(b) for b in prepared_batches]
        rates = {}
        for label, statement in (
            ("insert only", _postgres.INSERT_EVENTS),
            ("insert + rollup upsert", _postgres.STORE),
        ):
            truncate_usage()
            connections.close_all()
            raw_elapsed, _, _ = run_clients(
                raw_client,
                [(database_url, statement, documents[i::CLIENTS]) for i in range(CLIENTS)],
            )
            rates[label] = len(events) / raw_elapsed
        print(
            f"\nRaw PostgreSQL ceiling (psycopg, {CLIENTS} processes, same rows, same statements)"
        )
        for label, rate in rates.items():
            print(f"  {label}: {rate:,.0f} events/s; HTTP / raw = {http_rate / rate:.2f}")

        # Usage reads for a customer with args.big events in the current period.
        from billing.core.periods import month_start

        Customer.objects.create(external_id="whale", name="Whale", currency="USD")
        period_start = month_start(now)
        span = (now - timedelta(minutes=10) - period_start).total_seconds()
        t0 = time.perf_counter()
        sent = 0
        while sent < args.big:
            size = min(1000, args.big - sent)
            batch = []
            for n in range(sent, sent + size):
                moment = period_start + timedelta(seconds=rng.random() * span)
                batch.append(make_event(rng, n, "whale", moment) | {"id": f"whale_{n}"})
            result = events_ingest(events=batch, now=now)
            if result.rejected:
                raise RuntimeError(result.rejected[0])
            sent += size
        load_s = time.perf_counter() - t0
        print(
            f"\nUsage reads: customer with {args.big:,} events this period "
            f"(loaded in-process in {load_s:.0f} s = {args.big / load_s:,.0f} events/s)"
        )
        connections.close_all()
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Bearer {key}"}
        for label, query in [
            ("current period", ""),
            (
                "period starting mid-hour (raw edge read)",
                "?period_start="
                + (period_start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            ),
        ]:
            timings = []
            for i in range(220):
                t0 = time.perf_counter()
                conn.request("GET", f"/api/v1/customers/whale/usage{query}", headers=headers)
                response = conn.getresponse()
                body = response.read()
                if i >= 20:  # the first requests warm each worker
                    timings.append(time.perf_counter() - t0)
                if response.status != 200:
                    raise RuntimeError(body[:300])
            lines = json.loads(body)["lines"]
            print(
                f"  {label}: p50 {percentile(timings, 50) * 1000:.2f} ms, "
                f"p95 {percentile(timings, 95) * 1000:.2f} ms over {len(timings)} requests; "
                + ", ".join(f"{line['meter']}={line['quantity']}" for line in lines[:3])
            )
    finally:
        server.stop()
        connections.close_all()
        fresh_database(DB_NAME)  # leave an empty database, not gigabytes


if __name__ == "__main__":
    main()
