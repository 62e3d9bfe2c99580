"""Where a check's CPU goes: the requests of bench/check.py, made in process through
the project's WSGI application (config.wsgi, loaded as the web server loads it, called
without an HTTP server), each one's CPU split by layer, beside the CPU of the
PostgreSQL backend that answered it.

    .venv/bin/python bench/check_cpu.py [--requests 2000] [--events-per-customer 20000]
        [--reuse] [--instructions] [--database billing_bench_check]

Requests (bench/check.py's customers): a meter check of a period starting mid-hour
(three statements in one round trip), a meter check drawing credits, a feature check
(one statement), and the entitlements of the credits customer.

For each, per request:
- the wall time, the process's CPU, and that of the PostgreSQL backend of its
  connection (from /proc; the connection is kept for the whole run);
- the process's CPU by layer, from a second run timed per thread around the
  functions that make each layer, each call's time less that of the timed calls
  inside it, so that the layers add up to the timed run's CPU. The timers' own cost
  is in those figures, shared between a timed function's layer and its caller's: the
  number of timed calls a layer makes is printed beside it, and the cost of one timed
  call, measured at the start, gives the total. What is not timed counts in its
  caller's layer (the ORM's cursors, rawsql's value conversions);
- with --instructions: the instructions this process executes for a request
  (valgrind's callgrind, the difference between a run of 250 requests and one of 50,
  hash seed fixed; PostgreSQL's are not counted). Wall and CPU time vary from hour to
  hour on a shared machine (bench/RESULTS.md: this development machine's p99 of fixed
  work is 1.3 to 2 times its p50); the instruction count of the same code on the same
  data varies about 1% from run to run: the figure to compare two versions of the
  code with, on the same database. Needs valgrind; takes some minutes (Django starts
  under valgrind for each run).

Needs PostgreSQL (BENCH_PG, as bench/check.py). Without --reuse the database is made
as bench/check.py makes it (dropped first); --reuse takes the one bench/check.py
left. Prints figures only: there is no target here (the check's target is its
latency over HTTP, bench/check.py).
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PG,
    ROOT,
    cpu_seconds,
    django_setup,
    fresh_database,
    server_env,
)

# label -> (bench/check.py's request kind, customer)
REQUESTS = {
    "meter check, period from 00:30": ("meter", "mid_hour"),
    "meter check, credits": ("meter", "credits"),
    "feature check": ("feature", "overage"),
    "entitlements, credits": ("entitlements", "credits"),
}

# The layers: each is the functions whose time (less the time of the wrapped calls
# inside them) it counts. What no function claims is the request's own layer (OUTER):
# Django's handler, its middleware, URL resolution, signals.
LAYERS = [
    (
        "the fast answer (billing.api.fast_answer): key, scopes, rate limit, response",
        [
            ("billing.api.fast_answer", "FastAnswerApi.dispatch"),
            ("billing.api.fast_answer", "FastAnswerApi.fast_response"),
        ],
    ),
    (
        "DRF: request, authentication, rate limit, permissions, negotiation",
        [
            ("rest_framework.views", "APIView.initialize_request"),
            ("rest_framework.views", "APIView.initial"),
            ("rest_framework.views", "APIView.finalize_response"),
        ],
    ),
    (
        "the body: parse and validate",
        [
            ("rest_framework.request", "Request._load_data_and_files"),
            ("rest_framework.serializers", "Serializer.run_validation"),
            ("rest_framework.serializers", "BaseSerializer.is_valid"),
            ("billing.api.usage", "json_body"),
            ("billing.api.usage", "validated"),
        ],
    ),
    (
        "the view: the answer from the rows (rating, models, the response's dict)",
        [
            ("rest_framework.views", "APIView.dispatch"),
            ("billing.api.usage", "check_answer"),
            ("billing.api.entitlements", "entitlements_answer"),
        ],
    ),
    ("model instances from the rows (rawsql.instance)", [("common.rawsql", "instance")]),
    (
        "database client: statements sent and rows read (psycopg, Django's cursor)",
        [
            ("common.rawsql", "_fetched"),
            ("common.rawsql", "_fetched_together"),
            ("django.db.backends.utils", "CursorWrapper.execute"),
            ("psycopg", "Cursor.fetchone"),
            ("psycopg", "Cursor.fetchmany"),
            ("psycopg", "Cursor.fetchall"),
            ("config.postgresql.base", "DatabaseWrapper.prepared_cursor"),
        ],
    ),
    (
        "the response: JSON rendered",
        [
            ("django.template.response", "SimpleTemplateResponse.render"),
            ("rest_framework.renderers", "JSONRenderer.render"),
        ],
    ),
]
OUTER = "Django: the handler, middleware, URL resolution, signals"


class Layers:
    """Thread CPU by layer, each call's time less that of the wrapped calls inside it."""

    def __init__(self):
        self.spent = {label: 0 for label, _ in LAYERS} | {OUTER: 0}
        self.calls = dict.fromkeys(self.spent, 0)
        self.stack: list[list] = []  # [label, started, inner time]
        self.wrapped: list[tuple] = []

    def install(self) -> None:
        import importlib

        for label, functions in LAYERS:
            for module_name, qualified in functions:
                owner = importlib.import_module(module_name)
                *path, name = qualified.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = owner.__dict__[name]  # KeyError: moved; the layer would lie
                setattr(owner, name, self._timed(label, original))
                self.wrapped.append((owner, name, original))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self.wrapped):
            setattr(owner, name, original)
        self.wrapped.clear()

    def _timed(self, label: str, function):
        clock = time.thread_time_ns
        stack = self.stack
        spent = self.spent
        calls = self.calls

        def timed(*args, **kwargs):
            frame = [label, clock(), 0]
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                stack.pop()
                elapsed = clock() - frame[1]
                spent[label] += elapsed - frame[2]
                calls[label] += 1
                if stack:
                    stack[-1][2] += elapsed

        return timed

    def request(self, call) -> None:
        clock = time.thread_time_ns
        frame = [OUTER, clock(), 0]
        self.stack.append(frame)
        try:
            call()
        finally:
            self.stack.pop()
            self.spent[OUTER] += clock() - frame[1] - frame[2]
            self.calls[OUTER] += 1

    def reset(self) -> None:
        for label in self.spent:
            self.spent[label] = self.calls[label] = 0

    @staticmethod
    def cost_of_a_timer(times: int = 200_000) -> float:
        """CPU µs one timed call adds (a wrapped no-op against the bare one)."""

        def nothing():
            return None

        timed = Layers()._timed(OUTER, nothing)
        spent = []
        for function in (nothing, timed):
            started = time.process_time()
            for _ in range(times):
                function()
            spent.append(time.process_time() - started)
        return (spent[1] - spent[0]) / times * 1e6


def setup(database_url: str, *, reuse: bool, events_per_customer: int):
    """The WSGI application on the benchmark's database and an API key for it."""
    # The rate limit as the web server has it in the benchmarks (server_env): high
    # enough for the requests, still counted. Tasks run in process (django_setup),
    # as for bench/check.py's load; these requests queue none.
    os.environ["API_THROTTLE_RATE"] = server_env(database_url)["API_THROTTLE_RATE"]
    django_setup(database_url)
    if not reuse:
        from bench.check import load

        load(events_per_customer)
    from django.db import connections

    from customers.api_keys import api_key_create

    # One connection for the whole run: with production's CONN_MAX_AGE (60 s) the
    # connection is replaced now and then, and a new backend's first statements
    # (prepared again) would land in some runs' figures and not others'.
    connections["default"].close()
    connections["default"].settings_dict["CONN_MAX_AGE"] = None
    # The application as the web server loads it: config.wsgi also sets the
    # collector up as production runs it (frozen at start, a young collection
    # before each request).
    from config.wsgi import application

    _, secret = api_key_create(name="bench check_cpu", scopes=["read"])
    return application, secret


def caller(application, secret: str, kind: str, customer: str):
    """A function that makes one request and checks it was answered 200."""
    from bench.check import request_of

    method, path, body = request_of(kind, customer)
    body = (body or "").encode()
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {secret}",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    if body:
        base |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))}
    started = []

    def start_response(status, headers):
        started.append(status)

    def call():
        started.clear()
        response = application({**base, "wsgi.input": io.BytesIO(body)}, start_response)
        try:
            payload = b"".join(response)
        finally:
            response.close()  # as the server does: request_finished
        if not started[0].startswith("200"):
            raise RuntimeError(f"{method} {path}: {started[0]} {payload[:300]!r}")

    return call


def backend_pid() -> int:
    """The PostgreSQL backend of this process's connection (kept for the run)."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection.info.backend_pid


def measure(call, requests: int) -> tuple[float, float, float]:
    """Per request, in µs: the process's CPU, the wall time, and the CPU of the
    PostgreSQL backend serving its connection."""
    for _ in range(100):
        call()
    pid = backend_pid()
    postgres, cpu, wall = cpu_seconds([pid]), time.process_time(), time.perf_counter()
    for _ in range(requests):
        call()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    postgres = cpu_seconds([pid]) - postgres
    if backend_pid() != pid:
        raise RuntimeError("the connection was replaced during the run")
    return cpu / requests * 1e6, wall / requests * 1e6, postgres / requests * 1e6


def instructions(database_url: str, kind: str, customer: str) -> int:
    """Instructions a request executes: callgrind's totals of 250 requests and of
    50, run at once, their difference over 200 (what starting Django costs cancels)."""
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for count in (50, 250):
            out = Path(folder) / f"callgrind.{count}"
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--database-url",
                database_url,
                "--count-only",
                f"{kind}:{customer}:{count}",
            ]
            env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dicts' layouts each run
            log = Path(folder) / f"valgrind.{count}.log"
            with log.open("w") as errors:
                process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors
                )
            runs[count] = (process, out, log)
        totals = {}
        try:
            for count, (process, out, log) in runs.items():
                if process.wait() != 0:
                    tail = "\n".join(log.read_text().splitlines()[-20:])
                    raise RuntimeError(f"valgrind exited {process.returncode}:\n{tail}")
                summary = [
                    line for line in out.read_text().splitlines() if line.startswith("summary:")
                ]
                if not summary:
                    raise RuntimeError(f"no summary in callgrind's output {out}")
                totals[count] = int(summary[0].split()[1])
        finally:
            for process, _, _ in runs.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return (totals[250] - totals[50]) // 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--events-per-customer", type=int, default=20_000)
    parser.add_argument("--reuse", action="store_true", help="bench/check.py's database as left")
    parser.add_argument("--instructions", action="store_true", help="count them (valgrind)")
    parser.add_argument("--database", default="billing_bench_check")
    # Internal: a run under valgrind (instructions()).
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--count-only", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.count_only:
        application, secret = setup(args.database_url, reuse=True, events_per_customer=0)
        kind, customer, count = args.count_only.split(":")
        call = caller(application, secret, kind, customer)
        for _ in range(int(count)):
            call()
        return

    database_url = f"{PG}/{args.database}" if args.reuse else fresh_database(args.database)
    started = time.perf_counter()
    application, secret = setup(
        database_url, reuse=args.reuse, events_per_customer=args.events_per_customer
    )
    if not args.reuse:
        print(f"loaded as bench/check.py loads ({time.perf_counter() - started:.0f} s)")
    print(f"{args.requests:,} requests of each, in process, one at a time; µs per request")
    layers = Layers()
    timer = Layers.cost_of_a_timer()
    print(f"one timed call costs about {timer:.2f} µs of CPU (a wrapped no-op less a bare one)")
    for label, (kind, customer) in REQUESTS.items():
        call = caller(application, secret, kind, customer)
        cpu, wall, postgres = measure(call, args.requests)
        try:
            layers.install()
            for _ in range(100):
                layers.request(call)
            layers.reset()
            for _ in range(args.requests):
                layers.request(call)
        finally:
            layers.uninstall()
        timed = sum(layers.spent.values()) / args.requests / 1000
        calls = sum(layers.calls.values()) / args.requests
        print(f"\n{label} ({kind}, bench_{customer})")
        print(f"  {'wall':<76} {wall:>7.0f}")
        print(f"  {'process CPU':<76} {cpu:>7.0f}")
        print(f"  {'PostgreSQL CPU (the backend of its connection)':<76} {postgres:>7.0f}")
        print(
            f"  process CPU by layer, timed run: {timed:.0f}, of which its {calls:.0f} timed "
            f"calls about {calls * timer:.0f} (timed calls a request in the last column)"
        )
        for layer, spent in sorted(layers.spent.items(), key=lambda item: -item[1]):
            if not spent:
                continue  # a GET has no body
            share = spent / args.requests / 1000
            print(
                f"    {layer:<74} {share:>7.0f} {share / timed:>5.0%} "
                f"{layers.calls[layer] / args.requests:>5.1f}"
            )
        layers.reset()
    if args.instructions:
        print("\ninstructions per request, this process's only (callgrind; the same code and")
        print("data give the same count within about 1%, whatever else the machine is doing)")
        for label, (kind, customer) in REQUESTS.items():
            print(f"  {label:<40} {instructions(database_url, kind, customer):>12,}", flush=True)


if __name__ == "__main__":
    main()
