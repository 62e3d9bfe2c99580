"""Ingestion benchmark: HTTP through the web server (granian) on PostgreSQL, against the raw
PostgreSQL ceiling, plus usage-read latency at 1,000,000 events.

    .venv/bin/python bench/ingest.py [--events 200000] [--workers CORES+1] [--rounds 3]
        [--big 1000000] [--grouped | --rated] [--server granian|gunicorn] [--folder 1]
        [--database billing_bench_ingest] [--port 8765]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it
creates its own database (`--database`, dropped first and left empty at the end)
and serves on `--port` with one web worker a core and one more (with PostgreSQL on
the same machine, a worker waiting on its statement leaves its core to the database,
and the one more runs while every other waits: docs/running.md), and the folder
service beside the server as production runs it (`--folder 0` for none: the batches
fold). The ingestion rate counts until every event is folded: the folds still owed
when the last batch is acknowledged are part of the run (folded then, not at the
folder's next turn). The HTTP run and the raw ceiling take turns, `--rounds` times,
each from a checkpoint on empty tables (the HTTP run after a few warm-up batches a
worker, emptied with the tables), and the round with the median ratio is reported.
Prints figures only.

With --grouped, the token meters (llm_tokens, gpt4o_input_tokens,
gpt4o_output_tokens) are created before the demo catalog with group_by ["model",
"workflow", "api_key"], and every llm.completion event (60% of them) carries the
three properties, drawn uniformly from 3 models, 5 workflows and 20 API keys (from
their own random stream, so the events are otherwise the same as without the
option). The fold then also writes their group rollups (a row an hour per
combination of the three, at most 300: metering.combinations_only; a row a day once
the day has passed: folding.group_days_roll); the raw
ceilings gain a third, the product's rows (below); and the usage reads add
`/usage?group_by=model` and `?group_by=api_key` beside the plain `/usage`, for the
period starting on the hour and the one starting mid-hour, each against the target
of /usage p95 at most 5 ms.

With --rated (issue 50), the llm.completion events (60%) become token events of a
model of 50 and a token type of 4 (bench/rate_card.py), and the run has two phases
of the same events, each round running both: the plain meter's (the events named
llm.tokens.plain, summed by plain_tokens without group_by) and the rate-card
meter's (named llm.tokens, summed by card_tokens, grouped by model and token type,
so the fold also writes its group rollups: a row an hour per combination of model
and token type, the combination only: metering.combinations_only; a row a day once the
day has passed).
Each phase has its HTTP run and its raw ceilings; the figure is the rate-card phase's
HTTP / raw (events only) against the plain phase's, to be at least 0.9: compared
within each round, the median of the rounds recorded; beside it each phase's CPU a
batch, steadier on a shared machine, and the same comparison against each phase's
ceiling of the product's rows (not the target's figure). The usage-read customer is
subscribed to a plan whose one charge prices card_tokens by a card of 151 rows (per
model: input, output, the rest; and the default, which its events without a model
reach), so each /usage carries its rows; with --card-rows 50, a card of a row per
model for 49 of them and the default.

The raw ceilings, each batch of 500 one transaction of each statement in turn, through
psycopg from 4 processes:
    insert only           the keys and the events, without their contributions
                          (rollups._postgres.INSERT_EVENTS): the target's ceiling,
                          the same work in --rated's two phases
    insert with contributions
                          ingestion's statement (rollups._postgres.STORE)
    the product's rows    (--grouped, --rated) ingestion's statement, then the rows the
                          fold adds for the batch, built and written by the product's
                          own code (rollups.rollup_deltas, daily_deltas and their
                          statements): the hourly rollups (ROLLUP_INSERT) and their
                          days (DAILY_ROLLUP_INSERT) for every phase; and where the
                          phase's meters group, the group rollups (GROUP_ROLLUP_INSERT,
                          a combination row for a meter of two or more properties)
                          and the days before the current one (GROUP_DAILY_ROLLUP_INSERT;
                          the current day's are rolled up once, after it). Their latest
                          columns as the fold writes them (a `latest` meter's only).
                          The same rows stored at the end (compared table by table
                          with a fold of the same events), but written a batch at a
                          time, where the fold adds up a second's batches: a row that
                          many batches add to (a plain meter's customer and hour) is
                          upserted once a batch here and once a fold in the product,
                          where the card's combination rows, which few events share,
                          are written about as often either way. So the plain phase's
                          ceiling does more writes than its fold, and the comparison
                          against these ceilings favours the card.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Server,
    add_server_arguments,
    cpu_seconds,
    django_setup,
    fresh_database,
    percentile,
    postgres_pids,
    record,
    server_env,
)
from bench.rate_card import (
    PLAIN_EVENT,
    PLAIN_METER,
    RATED_EVENT,
    RATED_METER,
    RATED_MODELS,
    TOKEN_TYPES,
    card_plan_create,
    plain_meter_create,
    rated_meter_create,
    token_properties,
)

DB_NAME = "billing_bench_ingest"
CLIENTS = 4
BATCH = 500
CUSTOMERS = 1000
PORT = 8765
MODELS = ["gpt-4o", "gpt-4o-mini", "o3"]
# --grouped: the token meters group by these properties, each event drawing one of
# a few values of each (3 x 5 x 20 = 300 combinations).
GROUP_BY = ["model", "workflow", "api_key"]
TOKEN_METERS = ("llm_tokens", "gpt4o_input_tokens", "gpt4o_output_tokens")
WORKFLOWS = ["chat", "summarize", "extract", "classify", "agent"]
API_KEYS = [f"key_{i:02d}" for i in range(20)]
# Issue 21's targets: the usage read's p95 in ms, and HTTP ingestion against the
# events-only raw ceiling measured in the same run.
TARGET_USAGE_P95_MS = 5.0
TARGET_RATIO = 0.5
# Issue 50's: the rate-card meter's HTTP / raw against the plain meter's, same run.
TARGET_RATED_RATIO = 0.9
# The folder service beside the web server (docs/running.md): a fold every second.
FOLDER_EVERY = 1.0
# The HTTP run and the raw ceiling, in turn, this many times: on a shared machine either
# may run a fifth faster or slower than the run before (bench/RESULTS.md).
ROUNDS = 3
# Warm-up batches a web worker before each round's HTTP phase (see warm_bodies).
WARM_UP_PER_WORKER = 2
# The label of the ceiling of the rows the product stores (--grouped, --rated).
PRODUCT_ROWS = "the product's rows"


def make_event(
    rng: random.Random,
    n: int,
    customer: str,
    moment: datetime,
    groups: random.Random | None = None,
) -> dict:
    """One event; `groups` (--grouped) draws a token event's workflow and api_key,
    on its own stream so that `rng` draws the same events either way."""
    kind = rng.random()
    if kind < 0.6:
        input_tokens = rng.randint(50, 5000)
        output_tokens = rng.randint(10, 1500)
        properties = {
            "model": rng.choice(MODELS),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "latency_ms": round(rng.uniform(80, 4000), 1),
        }
        if groups is not None:
            properties["workflow"] = groups.choice(WORKFLOWS)
            properties["api_key"] = groups.choice(API_KEYS)
        return {
            "id": f"evt_{n}",
            "customer": customer,
            "event_name": "llm.completion",
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "properties": properties,
        }
    name = "prompt" if kind < 0.9 else "agent.run"
    return {
        "id": f"evt_{n}",
        "customer": customer,
        "event_name": name,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "properties": {"session": f"s{rng.randint(1, 50)}"},
    }


def rated(event: dict, rng: random.Random, event_name: str, *, unlisted: float = 0.0) -> dict:
    """--rated: an llm.completion event as a token event named `event_name`, its
    properties drawn from `rng` (bench/rate_card.py); any other event as it is."""
    if event["event_name"] != "llm.completion":
        return event
    return event | {
        "event_name": event_name,
        "properties": token_properties(rng, unlisted=unlisted),
    }


def http_client(index, bodies, key, port, barrier, results):
    """Posts its batches one after the other, each on a connection of its own: as
    many producers do, and as every client did with gunicorn's sync workers (they
    close each connection). A kept connection stays with the worker that accepted
    it, and four of them often land two on one worker (docs/running.md)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies = []
    accepted = 0
    barrier.wait()
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/api/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        latencies.append(time.perf_counter() - t0)
        if response.status != 202:
            raise RuntimeError(f"client {index}: {response.status} {payload[:300]!r}")
        accepted += json.loads(payload)["accepted"]
    results.put((index, started, time.perf_counter(), latencies, accepted))


def raw_client(index, database_url, statements, documents, barrier, results):
    """Each batch: each statement over its document, one transaction a batch.
    `statements`: (SQL, whether it takes received_at after the document);
    `documents`: per batch, one document per statement."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        barrier.wait()
        started = time.perf_counter()
        for batch_documents in documents:
            with conn.cursor() as cursor:
                for (statement, stamped), document in zip(statements, batch_documents, strict=True):
                    params = [document, datetime.now(UTC)] if stamped else [document]
                    cursor.execute(statement, params)
                    if cursor.description is not None:
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
    add_server_arguments(parser, workers=len(os.sched_getaffinity(0)) + 1)
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="events of the usage-read customer"
    )
    parser.add_argument(
        "--grouped",
        action="store_true",
        help=f"the token meters group by {', '.join(GROUP_BY)}; adds the group_by reads",
    )
    parser.add_argument(
        "--rated",
        action="store_true",
        help="token events of 50 models and 4 token types, through a plain meter and a "
        "rate-card meter in turn; the usage reads on a card of --card-rows rows",
    )
    parser.add_argument(
        "--card-rows",
        type=int,
        choices=(50, 151),
        default=151,
        help="--rated: the usage-read customer's card (bench/rate_card.py): 151 rows (a "
        "model's input, output and other tokens) or 50 (a row per model of 49), the "
        "size issue 50 names for /usage",
    )
    parser.add_argument(
        "--folder",
        type=float,
        default=FOLDER_EVERY,
        help="seconds between the folder's folds (manage.py fold_usage --every, as "
        "production runs it); 0 runs no folder, so the batches fold (BILLING_FOLD_MS)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help="rounds of the HTTP run and the raw ceiling, one after the other; the round "
        "with the median ratio is reported",
    )
    parser.add_argument("--database", default=DB_NAME, help="dropped and created again")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.grouped and args.rated:
        parser.error("--grouped and --rated are two different runs")

    database_url = fresh_database(args.database)
    django_setup(database_url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    from billing.usage.ingestion import events_ingest
    from billing.usage.metering import contributions, meter_cache
    from billing.usage.rollups import PreparedEvent, _postgres
    from customers.api_keys import api_key_create
    from customers.models import Customer

    call_command("migrate", verbosity=0)
    if args.grouped:
        # Created before the catalog, which then keeps them (it creates a meter
        # only when its code is new) and prices them in its plans as usual.
        from plans.management.commands.load_demo import METERS
        from plans.services import meter_create

        for code, name, event_name, aggregation, prop, filters in METERS:
            if code in TOKEN_METERS:
                meter_create(
                    code=code,
                    name=name,
                    event_name=event_name,
                    aggregation=aggregation,
                    value_property=prop,
                    filters=filters,
                    group_by=GROUP_BY,
                )
    call_command("load_demo", "--catalog-only", stdout=open(os.devnull, "w"))  # noqa: SIM115
    if args.rated:
        plain_meter_create()
        rated_meter_create()
        card_plan_create("rate_card", "overage", "per_unit", args.card_rows)
    Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:04d}", name=f"Customer {i}", currency="USD")
        for i in range(CUSTOMERS)
    )
    _, key = api_key_create(name="bench", scopes=["events:write", "read"])
    ids = dict(Customer.objects.values_list("external_id", "id"))

    rng = random.Random(42)
    groups = random.Random(7) if args.grouped else None
    now = datetime.now(UTC)
    events = [
        make_event(
            rng,
            n,
            f"cust_{rng.randrange(CUSTOMERS):04d}",
            now - timedelta(seconds=rng.randint(1, 3000)),
            groups,
        )
        for n in range(args.events)
    ]
    # Warm-up batches, posted before each round's HTTP phase and emptied with the tables:
    # each worker then has its database connection, its prepared statements and its
    # caches (customers, meters), as a server that has been serving has (the raw ceiling's
    # clients connect before their clock starts, too). Without them the first round ran
    # about a tenth slower, its first second a fifth idle. One event per customer each,
    # ids after the measured ones', from a stream of their own.
    warm_rng = random.Random(99)
    warm_events = [
        [
            make_event(warm_rng, args.events + w * CUSTOMERS + i, f"cust_{i:04d}", now)
            for i in range(CUSTOMERS)
        ]
        for w in range(WARM_UP_PER_WORKER * args.workers)
    ]
    # The phases each round runs: (label, its events, its warm-up batches). --rated:
    # the same token events under the plain meter's name, then the card meter's.
    if args.rated:
        card_rng = random.Random(11)
        events = [rated(e, card_rng, RATED_EVENT) for e in events]
        warm_events = [[rated(e, card_rng, RATED_EVENT) for e in b] for b in warm_events]

        def renamed(batch: list[dict]) -> list[dict]:
            return [
                e | {"event_name": PLAIN_EVENT} if e["event_name"] == RATED_EVENT else e
                for e in batch
            ]

        phases = [
            ("plain meter", renamed(events), [renamed(b) for b in warm_events]),
            ("rate-card meter", events, warm_events),
        ]
    else:
        phases = [("", events, warm_events)]
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    print(
        f"events: {len(events):,} in {len(batches)} batches of {BATCH}, "
        f"{CLIENTS} concurrent clients, {CUSTOMERS} customers; "
        f"average body {sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB"
    )
    if args.rated:
        print(
            f"rated: each llm.completion event (60%) a token event of one of "
            f"{len(RATED_MODELS)} models and {len(TOKEN_TYPES)} token types, in two phases: "
            f"{PLAIN_METER} (no group_by) and {RATED_METER} (group_by model, token_type)"
        )
    elif args.grouped:
        print(
            f"grouped: {', '.join(TOKEN_METERS)} group by {', '.join(GROUP_BY)}; each "
            f"llm.completion event carries one of {len(MODELS)} models, {len(WORKFLOWS)} "
            f"workflows and {len(API_KEYS)} API keys"
        )
    else:
        print(
            "grouped: as the demo catalog has it (llm_tokens by model and workflow); "
            "--grouped for three meters by three properties"
        )

    connections.close_all()
    server = Server(
        database_url, port=args.port, workers=args.workers, threads=args.threads, kind=args.server
    )
    # The folder, as production runs it: while it folds every --folder seconds, the
    # batches leave the folds to it (and fold again if it stops). Started for each
    # round's HTTP phase and stopped after it.
    folder = None
    from billing.usage.folding import (
        WATERMARK_TABLE,
        unfolded_events,
        usage_fold,
    )

    turn_taken = f"SELECT 1 FROM {WATERMARK_TABLE} WHERE bound_taken_at IS NOT NULL"  # noqa: S608
    meters = meter_cache.by_event_name()

    def truncate_usage():
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE billing_eventkey, billing_usageevent, billing_usagerollup, "
                "billing_usageuniquevalue, billing_usagepropertyrollup, "
                "billing_usagepropertyuniquevalue, billing_usagedailyrollup, "
                "billing_usagepropertydailyrollup, "
                f"{WATERMARK_TABLE}"
            )

    # The raw ceiling: the same rows and statements, straight through psycopg. The
    # target compares with the events insert alone; with the contributions (the
    # whole statement ingestion sends), the difference left is what Django,
    # validation and HTTP cost. --grouped and --rated add a third ceiling, the rows
    # the product stores (product_rows below).
    def ceilings_of(phase_events: list[dict], *, stored_rows: bool) -> list:
        phase_batches = [phase_events[i : i + BATCH] for i in range(0, len(phase_events), BATCH)]
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
            for b in ([json.loads(json.dumps(b), parse_float=Decimal) for b in phase_batches])
        ]
        documents = [_postgres.batch_json(b) for b in prepared_batches]
        ceilings = [
            ("insert only", [(_postgres.INSERT_EVENTS, True)], [(d,) for d in documents]),
            (
                "insert with contributions (ingestion's statement)",
                [(_postgres.STORE, True)],
                [(d,) for d in documents],
            ),
        ]
        if stored_rows:
            ceilings.append(product_rows(prepared_batches))
        return ceilings

    # label -> (the HTTP bodies per client, the warm-up bodies, the ceilings)
    runs = {}
    for label, phase_events, phase_warm in phases:
        phase_bodies = [
            json.dumps({"events": phase_events[i : i + BATCH]}).encode()
            for i in range(0, len(phase_events), BATCH)
        ]
        runs[label] = (
            [phase_bodies[i::CLIENTS] for i in range(CLIENTS)],
            [json.dumps({"events": b}).encode() for b in phase_warm],
            ceilings_of(phase_events, stored_rows=args.grouped or args.rated),
        )

    def http_round(label: str) -> dict:
        """The batches through the server, until every event is folded."""
        nonlocal folder
        per_client, warm_bodies, _ = runs[label]
        # The warm-up batches, all at once, so that they spread over the workers (one
        # after the other, they could all go to one), on empty tables, so that none of
        # them folds the last ceiling's events.
        truncate_usage()
        run_clients(http_client, [([body], key, args.port) for body in warm_bodies])
        # Every round on empty tables; the last ceiling's events are left for the usage
        # reads below, whose customer's events then lie among a thousand others', as in
        # production (on a table of its events alone, the reads' prepared statements
        # settle on plans that scan the partition: 10-20 ms a read).
        truncate_usage()
        folder = (
            subprocess.Popen(
                [sys.executable, "manage.py", "fold_usage", "--every", str(args.folder)],
                cwd=ROOT,
                env=server_env(database_url),
                start_new_session=True,
            )
            if args.folder
            else None
        )
        if folder:
            # Started (Django loaded, its first turn taken) before the clock starts.
            wait_for(folder, turn_taken)
        checkpoint()
        processes = [*server.pids(), *([folder.pid] if folder else [])]
        server_cpu, pg_cpu = cpu_seconds(processes), cpu_seconds(postgres_pids())
        elapsed, latencies, accepted = run_clients(
            http_client, [(chunk, key, args.port) for chunk in per_client]
        )
        # The run ends when every event is in the rollups: the folds still owed
        # count, so that no fold is work put off past the measurement. They are
        # folded here at once (after the fold the folder has under way, if any), not
        # at the folder's next turn: the wait for that turn (up to --folder seconds,
        # a fifth of a run) is idle time, and made the figure depend on where the
        # last batch fell between two turns.
        left = unfolded_events()
        started = time.perf_counter()
        usage_fold(wait=True)
        if unfolded_events():
            raise RuntimeError("events left unfolded after the last fold")
        catch_up = time.perf_counter() - started
        server_cpu = cpu_seconds(processes) - server_cpu
        pg_cpu = cpu_seconds(postgres_pids()) - pg_cpu
        stop_folder(folder)
        if accepted != len(events):
            raise RuntimeError(f"accepted {accepted}, sent {len(events)}")
        return {
            "rate": accepted / (elapsed + catch_up),
            "accepted alone": accepted / elapsed,
            "elapsed": elapsed,
            "left": left,
            "catch_up": catch_up,
            "latencies": latencies,
            "server_cpu": server_cpu / sum(map(len, per_client)),
            "pg_cpu": pg_cpu / sum(map(len, per_client)),
        }

    def ceiling_round(phase: str) -> dict[str, float]:
        rates = {}
        for label, statements, batch_documents in runs[phase][2]:
            truncate_usage()
            checkpoint()
            connections.close_all()
            raw_elapsed, _, _ = run_clients(
                raw_client,
                [(database_url, statements, batch_documents[i::CLIENTS]) for i in range(CLIENTS)],
            )
            rates[label] = len(events) / raw_elapsed
        return rates

    try:
        connections.close_all()
        print(
            f"\nHTTP ingestion ({server.describe()}, PostgreSQL, with auth, "
            f"dedup, rollups{', group rollups' if args.grouped or args.rated else ''}, "
            "one transaction a batch; "
            + (
                f"a folder folding every {args.folder:g} s"
                if args.folder
                else f"folds after batches, every {settings.BILLING_FOLD_MS} ms"
            )
            + f"), against the raw PostgreSQL ceiling (psycopg, {CLIENTS} processes, "
            f"same rows, same statements), in {args.rounds} round(s), each starting at a "
            "checkpoint on empty tables"
        )
        rounds = {label: [] for label in runs}
        for number in range(1, args.rounds + 1):
            for phase in runs:
                served = http_round(phase)
                rates = ceiling_round(phase)
                ratio = served["rate"] / rates["insert only"]
                rounds[phase].append((ratio, served, rates))
                print(
                    f"  round {number}{', ' + phase if phase else ''}: HTTP {served['rate']:,.0f} "
                    f"events/s accepted and folded ({served['accepted alone']:,.0f} accepted "
                    f"alone in {served['elapsed']:.2f} s; {served['left']:,} folded "
                    f"{served['catch_up']:.2f} s later); batch p50 "
                    f"{percentile(served['latencies'], 50) * 1000:.1f} ms, p99 "
                    f"{percentile(served['latencies'], 99) * 1000:.1f} ms; CPU a batch: "
                    f"{args.server}{' and folder' if args.folder else ''} "
                    f"{served['server_cpu'] * 1000:.1f} ms, PostgreSQL "
                    f"{served['pg_cpu'] * 1000:.1f} ms"
                )
                print(
                    "           ceiling "
                    + "; ".join(
                        f"{label}: {rate:,.0f} events/s (HTTP / raw = {served['rate'] / rate:.2f})"
                        for label, rate in rates.items()
                    )
                )
                print(f"           HTTP / events-only ceiling = {ratio:.2f}")
            if args.rated:
                plain, card = (rounds[phase][-1][0] for phase in runs)
                plain_rows, card_rows = (stored_ratio(rounds[phase][-1]) for phase in runs)
                print(
                    f"        round {number}: rate-card / plain, HTTP / raw: {card / plain:.2f} "
                    f"(against each phase's ceiling of the product's rows: "
                    f"{card_rows / plain_rows:.2f})"
                )
        rss, peak = server.memory_mib()
        print(f"  server memory (master + workers): {rss:.0f} MiB now, {peak:.0f} MiB peak")
        medians = {}
        for phase, phase_rounds in rounds.items():
            # The round of the median ratio speaks for the run (paired, so that the
            # machine's speed drifting between rounds moves both of its figures).
            median = sorted(phase_rounds, key=lambda r: r[0])[(len(phase_rounds) - 1) // 2]
            _, served, rates = median
            http_rate, ceiling = served["rate"], rates["insert only"]
            medians[phase] = http_rate / ceiling
            of = f" ({phase})" if phase else ""
            print(
                f"  the median round{of}: HTTP {http_rate:,.0f} events/s accepted and folded, "
                f"raw ceiling (events only) {ceiling:,.0f}"
            )
            record(f"HTTP ingestion{of}", http_rate, "events/s", target=None, higher=True)
            record(f"raw ceiling, events only{of}", ceiling, "events/s", target=None, higher=True)
            met = record(
                f"HTTP / raw (events only){of}",
                http_rate / ceiling,
                "",
                target=TARGET_RATIO,
                higher=True,
            )
            print(f"  HTTP / events-only ceiling{of} = {http_rate / ceiling:.2f}; {met}")
        if args.rated:
            plain, card = medians.values()
            # Each round's two phases run a minute apart: the median of the rounds'
            # own comparisons, less moved by the machine's speed between rounds.
            paired = [c[0] / p[0] for p, c in zip(*rounds.values(), strict=True)]
            paired_median = sorted(paired)[(len(paired) - 1) // 2]
            met = record(
                "HTTP / raw, rate-card meter / plain meter",
                paired_median,
                "",
                target=TARGET_RATED_RATIO,
                higher=True,
            )
            print(
                f"  rate-card meter's HTTP / raw against the plain meter's: each round's "
                f"{', '.join(f'{r:.2f}' for r in paired)}, median {paired_median:.2f} ({met}); "
                f"of each phase's median round {card / plain:.2f}"
            )
            # Not the target's figure (that is against the events-only ceilings, the
            # same work in both phases): each phase's HTTP against the ceiling of the
            # rows it must store, the card's group rows included.
            stored = [
                stored_ratio(c) / stored_ratio(p) for p, c in zip(*rounds.values(), strict=True)
            ]
            print(
                f"  the same against each phase's ceiling of the product's rows: each round's "
                f"{', '.join(f'{r:.2f}' for r in stored)}, median "
                f"{sorted(stored)[(len(stored) - 1) // 2]:.2f} (not the target's figure)"
            )
            # The CPU a batch costs (web server and folder, and PostgreSQL), steadier
            # than the rates on a machine that other work shares.
            cpu = {
                phase: sorted(r[1]["server_cpu"] + r[1]["pg_cpu"] for r in phase_rounds)[
                    (len(phase_rounds) - 1) // 2
                ]
                for phase, phase_rounds in rounds.items()
            }
            plain_cpu, card_cpu = cpu.values()
            print(
                f"  CPU a batch (median of the rounds): plain meter {plain_cpu * 1000:.1f} ms, "
                f"rate-card meter {card_cpu * 1000:.1f} ms; the plain one's / the card's "
                f"{plain_cpu / card_cpu:.2f} (the rate ratio to expect where CPU bounds both)"
            )

        # Usage reads for a customer with args.big events in the current period.
        from common.periods import month_start

        whale = Customer.objects.create(external_id="whale", name="Whale", currency="USD")
        period_start = month_start(now)
        if args.rated:
            # On the card, so that its /usage line carries a row for each row that
            # priced usage: every row, the default too (1% of its token events carry
            # no model).
            from billing.subscriptions.lifecycle import subscription_create
            from plans.models import Plan

            subscription_create(
                customer=whale, plan=Plan.objects.get(code="rate_card"), start=period_start
            )
            whale_rng = random.Random(13)
        span = (now - timedelta(minutes=10) - period_start).total_seconds()
        t0 = time.perf_counter()
        sent = 0
        while sent < args.big:
            size = min(1000, args.big - sent)
            batch = []
            for n in range(sent, sent + size):
                moment = period_start + timedelta(seconds=rng.random() * span)
                event = make_event(rng, n, "whale", moment, groups)
                if args.rated:
                    event = rated(event, whale_rng, RATED_EVENT, unlisted=0.01)
                batch.append(event | {"id": f"whale_{n}"})
            result = events_ingest(events=batch, now=now)
            if result.rejected:
                raise RuntimeError(result.rejected[0])
            sent += size
        load_s = time.perf_counter() - t0
        # What the last second of the backfill left unfolded is folded, as the beat
        # (every minute) or `manage.py fold_usage --every 1` would.
        from billing.usage.folding import usage_fold

        left = unfolded_events()
        usage_fold(wait=True)
        # The statistics autovacuum keeps in a running deployment (it is off on this
        # machine's PostgreSQL), for every table the load wrote, as bench/check.py:
        # with the events' alone, the group rollups had none, and the reads' prepared
        # statements settled on a plan that scanned the customer's daily group rows
        # by value for a range of days that holds none (a third of a millisecond a read).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(
            f"\nUsage reads: customer with {args.big:,} events this period "
            f"(loaded in-process in {load_s:.0f} s = {args.big / load_s:,.0f} events/s; "
            f"{left:,} events folded after the load)"
        )
        # What the reads add up: the plain read the hourly rows, a group_by read the
        # group rows of its meters (one per hour and combination of values).
        from billing.models import UsagePropertyDailyRollup, UsagePropertyRollup, UsageRollup

        stored = f"{UsageRollup.objects.filter(customer=whale).count():,} hourly rollup rows"
        if args.grouped or args.rated:
            rows = UsagePropertyRollup.objects.filter(customer=whale).count()
            days = UsagePropertyDailyRollup.objects.filter(customer=whale).count()
            stored += f", {rows:,} group rollup rows, {days:,} daily group rollup rows"
        print(f"  the customer's {stored}")
        connections.close_all()
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        headers = {"Authorization": f"Bearer {key}"}
        periods = [
            ("on the hour", ""),
            (
                "mid-hour",
                "period_start="
                + (period_start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            ),
        ]
        reads = ["", "group_by=model", "group_by=api_key"] if args.grouped else [""]
        print(
            "  period starting on the hour: the current month; mid-hour: 30 minutes into it "
            "(its first partial hour read from the raw events once a worker, then kept: "
            "billing.usage.edge_cache; 'first read' is the very first request's time)"
        )
        print(f"  {'read':<34} {'period':<12} {'p50 ms':>8} {'p95 ms':>8}  {'target':<22}  answer")
        misses = 0
        for period_label, period_query in periods:
            for read in reads:
                query = "&".join(q for q in (period_query, read) if q)
                timings = []
                for i in range(220):
                    t0 = time.perf_counter()
                    conn.request(
                        "GET",
                        "/api/v1/customers/whale/usage" + (f"?{query}" if query else ""),
                        headers=headers,
                    )
                    response = conn.getresponse()
                    body = response.read()
                    if i == 0:  # cold: a mid-hour edge aggregated from the raw events
                        cold = time.perf_counter() - t0
                    if i >= 20:  # the first requests warm each worker
                        timings.append(time.perf_counter() - t0)
                    if response.status != 200:
                        raise RuntimeError(body[:300])
                p50, p95 = percentile(timings, 50) * 1000, percentile(timings, 95) * 1000
                label = "/usage" + (f"?{read}" if read else "")
                target = record(
                    f"{label} p95, period {period_label}",
                    p95,
                    "ms",
                    target=TARGET_USAGE_P95_MS,
                    higher=False,
                ).replace("target ", "p95 ")
                misses += p95 > TARGET_USAGE_P95_MS
                print(
                    f"  {label:<34} {period_label:<12} {p50:>8.2f} {p95:>8.2f}  {target:<22}  "
                    + usage_answer(json.loads(body)["lines"])
                    + (f"; first read {cold * 1000:.2f} ms" if period_query else "")
                )
        print(
            f"  {len(timings)} requests each (after 20 to warm up), one connection; "
            f"target met by {len(periods) * len(reads) - misses} of {len(periods) * len(reads)}"
        )
    finally:
        stop_folder(folder)
        server.stop()
        connections.close_all()
        fresh_database(args.database)  # leave an empty database, not gigabytes


def product_rows(prepared_batches: list[list]) -> tuple[str, list, list]:
    """The ceiling of what the product stores for each batch (rollups.PreparedEvent
    lists), each batch one transaction: ingestion's statement (events with their
    contributions), then what the fold adds for them, with the product's own
    statements and rows (billing.usage.rollups): the hourly rollups (ROLLUP_INSERT)
    and their days (DAILY_ROLLUP_INSERT), and, when the phase's meters have
    group_by, the group rollups (GROUP_ROLLUP_INSERT, the combination only for a
    count or sum meter grouping by two or more) and, for the days before the
    current one, their days (GROUP_DAILY_ROLLUP_INSERT; the current day's are
    rolled up once, after it: folding.group_days_roll). Per batch, where the fold adds up a second's
    batches: more statements, of fewer rows each, and a row that several batches
    add to written by each. Returns (label, statements, documents), as raw_client
    takes them."""
    from billing.usage.rollups import (
        DAILY_ROLLUP_INSERT,
        GROUP_DAILY_ROLLUP_INSERT,
        GROUP_ROLLUP_INSERT,
        ROLLUP_INSERT,
        _postgres,
        daily_deltas,
        day_of,
        rollup_deltas,
    )
    from plans.models import Meter

    latest = set(Meter.objects.filter(aggregation=Meter.LATEST).values_list("id", flat=True))
    today = day_of(datetime.now(UTC))

    def as_folded(rows: list[tuple]) -> list[tuple]:
        # The latest columns as the fold writes them: a `latest` meter's only, NULL,
        # '' and NULL for the others' (summing.sums_per_key, latest_meters_only).
        return [r if r[1] in latest else (*r[:-3], None, "", None) for r in rows]

    statements = [(_postgres.STORE, True), (ROLLUP_INSERT, False), (DAILY_ROLLUP_INSERT, False)]
    documents = []
    for batch in prepared_batches:
        hours = as_folded(rollup_deltas(batch))
        groups = as_folded(
            rollup_deltas(
                [e for e in batch if any(c.group is not None for c in e.contributions)],
                grouped=True,
            )
        )
        documents.append(
            (
                _postgres.batch_json(batch),
                _postgres.rollup_json(hours),
                _postgres.rollup_json(daily_deltas(hours)),
                _postgres.group_rollup_json(groups),
                _postgres.group_rollup_json([r for r in daily_deltas(groups) if r[2] < today]),
            )
        )
    label = f"{PRODUCT_ROWS} (events with contributions, hourly and daily rollups"
    if any(d[3] != "[]" for d in documents):
        statements += [(GROUP_ROLLUP_INSERT, False), (GROUP_DAILY_ROLLUP_INSERT, False)]
        return label + ", hourly and daily group rollups)", statements, documents
    return label + "; no group rows)", statements, [d[:3] for d in documents]


def stored_ratio(phase_round: tuple) -> float:
    """A round's (ratio, served, rates) HTTP rate over its ceiling of the product's
    rows (--grouped and --rated)."""
    _, served, rates = phase_round
    (ceiling,) = (rate for label, rate in rates.items() if label.startswith(PRODUCT_ROWS))
    return served["rate"] / ceiling


def checkpoint() -> None:
    """Start a measured phase at a fresh checkpoint, as every phase then is.
    PostgreSQL starts one after about half max_wal_size of WAL (some 500 MB, about
    one a phase here), and the phase it falls in writes each page it touches first
    after it whole to the WAL again. A role that may not (neither a superuser nor
    in pg_checkpoint) is told so once, and the phases start where the last left off."""
    from django.db import DatabaseError, connection

    global _checkpoint_refused
    if _checkpoint_refused:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as exc:
        _checkpoint_refused = True
        print(f"  (no checkpoint before each phase: {str(exc).strip()})")


_checkpoint_refused = False


def wait_for(folder, sql: str, *, seconds: float = 120) -> None:
    """Poll, every 20 ms, until `sql` returns a row; fails if the folder stops or
    the time runs out."""
    from django.db import connection

    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while folder.poll() is None:
            cursor.execute(sql)
            if cursor.fetchone():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the folder did not get there in {seconds:g} s: {sql}")
            time.sleep(0.02)
    raise RuntimeError(f"the folder stopped (exit {folder.returncode})")


def stop_folder(folder) -> None:
    """Stop the folder, if any (a kill at any point is safe: its fold rolls back)."""
    if folder is not None and folder.poll() is None:
        folder.terminate()
        try:
            folder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            folder.kill()
            folder.wait()


def usage_answer(lines: list[dict]) -> str:
    """The first lines' quantities, and each grouped line's number of groups and
    whether they add up to its quantity (they do for count and sum meters)."""
    carded = [line for line in lines if line.get("rates") is not None]
    if carded:
        parts = []
        for line in carded:
            rates = line["rates"]
            total = sum(Decimal(r["quantity"]) for r in rates)
            adds_up = "add up" if total == Decimal(line["quantity"]) else f"sum to {total}"
            parts.append(f"{line['meter']}={line['quantity']} ({len(rates)} rates rows {adds_up})")
        return ", ".join(parts)
    grouped = [line for line in lines if line.get("groups") is not None]
    if not grouped:
        return ", ".join(f"{line['meter']}={line['quantity']}" for line in lines[:3])
    parts = []
    for line in grouped:
        total = sum(Decimal(g["quantity"]) for g in line["groups"])
        adds_up = "add up" if total == Decimal(line["quantity"]) else f"sum to {total}"
        parts.append(f"{line['meter']}={line['quantity']} ({len(line['groups'])} groups {adds_up})")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
