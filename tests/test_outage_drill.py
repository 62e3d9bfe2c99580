"""The outage drill: PostgreSQL restarted (pg_ctl stop -m fast, start) while 4 clients
post event batches through gunicorn and a real Celery worker on Redis checks the
customers' usage alerts. A throwaway cluster, Redis, server and worker of its
own (initdb as the `postgres` user when run as root), so the database everyone
else uses is never restarted.

It holds when: no request answers 500 (503 with Retry-After is allowed, and the
clients send the batch again, as the API asks); every event of an acknowledged
batch (202) is stored, and nothing else; every threshold the customers' usage
crossed has its alert and its email, the ones whose tasks met the restart
included; no task failed; /readyz answered 503 naming the database while it was
stopped, and 200 once it was back; the metrics `manage.py serve_metrics` scraped
(every process's counts added up) are what the clients and the worker's log saw.
Prints the figures. Takes about a minute.

    bash scripts/test.sh -m drill tests/test_outage_drill.py

Marked `drill`, so the default run leaves it out; CI runs it as a step of its own.
"""

import glob
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.celery import QUEUES

pytestmark = pytest.mark.drill

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"
CLIENTS = 4
CUSTOMERS = 8
BATCH = 50
# A threshold every 100 prompts (10% of the included 1,000, up to 1000%): a crossing
# every other batch of a customer, so the restart falls among alert checks and emails.
INCLUDED = 1_000
THRESHOLDS = list(range(10, 1001, 10))
LOAD_BEFORE = 6.0  # seconds of load before the restart
LOAD_AFTER = 6.0  # and after it
# Each client keeps to a pace of one batch this often from its start (one behind it,
# after 503s or on a slow machine, catches up): at most 80 batches a second in all, 10
# a customer, so the thresholds last 20 s, past the load's 12 and the restart's few,
# however fast the machine is (unpaced, a fast machine passed them all before the
# restart, and no task met it), and the API key stays under its 6,000 requests a
# minute (API_THROTTLE_RATE).
SEND_EVERY = 0.05
SETTLE = 60.0  # at most this long for the worker to deliver what is due


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unavailable(reason: str):
    """Skip where a tool is missing; in CI, which installs them, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_bindir() -> Path:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)  # noqa: S603
        candidates.append(bindir.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    unavailable(
        "the outage drill needs PostgreSQL's server programs (initdb, pg_ctl): "
        "apt-get install postgresql"
    )


class ThrowawayPostgres:
    """A cluster of the drill's own in a temporary directory, on a free port. Run as
    root, its programs run as the `postgres` user (initdb refuses root)."""

    def __init__(self, bindir: Path, directory: Path):
        self.bindir, self.directory = bindir, directory
        self.data = directory / "data"
        self.port = free_port()
        self.options = (
            f"-p {self.port} -k {directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("the outage drill runs initdb as the `postgres` user, which is missing")
            if not shutil.which("runuser"):
                unavailable("the outage drill needs runuser to run initdb as `postgres`")
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        command = [*self.as_user, *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.directory, timeout=60)  # noqa: S603

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--no-instructions",
        )
        self._pg_ctl("start", "-o", self.options, "-l", str(self.directory / "server.log"))
        self._run(
            str(self.bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-qc",
            "CREATE DATABASE billing_drill",
        )
        return f"postgres://postgres@127.0.0.1:{self.port}/billing_drill"

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args)

    def stop_fast(self) -> None:
        """Every session is ended at once, as in a real restart."""
        self._pg_ctl("stop", "-m", "fast")

    def start_again(self) -> None:
        self._pg_ctl("start", "-o", self.options, "-l", str(self.directory / "server.log"))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def spawn(*command: str, **options) -> subprocess.Popen:
    """Start one of the drill's servers (fixed programs and arguments)."""
    return subprocess.Popen(command, **options)  # noqa: S603


def processes_stop(processes: list[subprocess.Popen]) -> None:
    """Stop a drill's servers, the last started first: SIGTERM to each, then each
    waited for, killed after 30 s."""
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
    for process in reversed(processes):
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(what: str, ready, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # noqa: S110 (not answering yet)
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def seed() -> None:
    """Run in a subprocess on the drill's database: the catalog, the customers
    (each with its thresholds) and an API key, which it prints."""
    from decimal import Decimal as D

    from billing.subscriptions.lifecycle import subscription_create
    from customers.api_keys import api_key_create
    from customers.services import customer_create
    from plans.models import Plan
    from plans.pricing import PricingSpec
    from plans.services import meter_create, plan_create
    from plans.validation import ChargeSpec, VersionSpec

    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    plan_create(
        code="drill",
        name="Drill",
        version=VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec(
                    "prompts",
                    "overage",
                    D(INCLUDED),
                    pricing=PricingSpec("per_unit", unit_price=D("0.01")),
                ),
            ),
        ),
        publish=True,
    )
    plan = Plan.objects.get(code="drill")
    start = datetime.now(UTC) - timedelta(hours=1)
    for index in range(CUSTOMERS):
        customer = customer_create(
            external_id=f"drill_{index}",
            name=f"Drill customer {index}",
            currency="USD",
            email=f"drill_{index}@example.test",
            alert_thresholds=THRESHOLDS,
        )
        subscription_create(customer=customer, plan=plan, start=start)
    _, secret = api_key_create(name="drill", scopes=["events:write"])
    print(json.dumps({"key": secret}))


def readyz(port: int) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def answers(port: int, status: int) -> dict:
    """/readyz's body once it answers `status` (asked every 0.1 s for at most 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        got, body = readyz(port)
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        time.sleep(0.1)


def scrape(port: int) -> dict:
    """The metrics' samples, by name and labels (frozensets of the label pairs)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200
    text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def error_type(body: bytes) -> str | None:
    try:
        return json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Tally:
    """What the clients saw, added up under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    acked_ids: set[str] = field(default_factory=set)
    without_retry_after: int = 0
    without_envelope: int = 0
    connection_errors: int = 0
    abandoned: int = 0
    unexpected: list[str] = field(default_factory=list)

    def count(self, status: int, body: bytes, retry_after: str | None) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 503 and not retry_after:
                self.without_retry_after += 1
            if status == 503 and error_type(body) != "service_unavailable":
                self.without_envelope += 1
            if status not in (202, 503) and len(self.unexpected) < 5:
                self.unexpected.append(f"{status} {body[:300]!r}")


def post_batches(index: int, port: int, key: str, stop: threading.Event, tally: Tally) -> None:
    """One client: a batch of BATCH events at a time for its customers in turn,
    each sent again after a 503 (waiting its Retry-After) until it is acknowledged."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    customers = [f"drill_{c}" for c in range(index, CUSTOMERS, CLIENTS)]
    sent = 0
    began = time.monotonic()
    while not stop.is_set():
        # Paced (SEND_EVERY): a client behind its pace, on a slow machine or after a
        # 503, sends at once until it is back on it.
        time.sleep(max(0.0, began + sent * SEND_EVERY - time.monotonic()))
        customer = customers[sent % len(customers)]
        moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        ids = [f"c{index}_{sent * BATCH + i}" for i in range(BATCH)]
        body = json.dumps(
            {
                "events": [
                    {"id": i, "customer": customer, "event_name": "prompt", "timestamp": moment}
                    for i in ids
                ]
            }
        )
        sent += 1
        for _attempt in range(100):
            try:
                conn.request("POST", "/api/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                with tally.lock:
                    tally.connection_errors += 1
                conn.close()
                time.sleep(0.2)
                continue
            retry_after = response.getheader("Retry-After")
            tally.count(response.status, payload, retry_after)
            if response.status == 202:
                answer = json.loads(payload)
                with tally.lock:
                    tally.accepted += answer["accepted"]
                    tally.duplicates += answer["duplicates"]
                    tally.acked_ids.update(ids)
                break
            if response.status not in (500, 503):
                break  # a refusal: sending it again would not change it
            time.sleep(float(retry_after or 1))
        else:
            with tally.lock:
                tally.abandoned += 1


def stored_and_alerted(database_url: str) -> tuple[set, set, list]:
    """What a drill reads back: the stored events' ids, the (customer, threshold key)
    pairs their usage crossed, and the usage alerts raised (customer, key, emailed,
    announced: not a lower threshold recorded with a higher one passed in the same
    crossing, announced_with, which alone is emailed)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        stored_ids = {row[0] for row in db.execute("SELECT event_id FROM billing_usageevent")}
        usage = dict(
            db.execute(
                "SELECT c.external_id, count(e.*) FROM customers_customer c "
                "LEFT JOIN billing_usageevent e ON e.customer_id = c.id "
                "GROUP BY c.external_id"
            ).fetchall()
        )
        alerts = db.execute(
            "SELECT c.external_id, a.key, a.emailed_at IS NOT NULL, "
            "(a.payload->>'announced_with') IS NULL FROM billing_alert a "
            "JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE a.kind = 'usage_threshold'"
        ).fetchall()
    expected = {
        (customer, f"prompts:{p}")
        for customer, count in usage.items()
        for p in THRESHOLDS
        if count * 100 >= INCLUDED * p
    }
    return stored_ids, expected, alerts


def test_a_database_restart_under_load_loses_nothing_and_answers_no_500(tmp_path, capsys):
    bindir = postgres_bindir()
    if not shutil.which("redis-server"):
        unavailable("the outage drill needs redis-server (apt-get install redis-server)")
    import psycopg
    import redis

    # given: a throwaway PostgreSQL and Redis, migrated and seeded
    pg_dir = Path(tempfile.mkdtemp(prefix="billing-drill-pg-"))
    postgres = ThrowawayPostgres(bindir, pg_dir)
    processes: list[subprocess.Popen] = []
    worker_log = tmp_path / "worker.log"
    server_log = tmp_path / "gunicorn.log"
    try:
        database_url = postgres.start()
        redis_port = free_port()
        processes.append(
            spawn(
                shutil.which("redis-server"),
                *("--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                stdout=subprocess.DEVNULL,
            )
        )
        broker = f"redis://127.0.0.1:{redis_port}/0"
        wait_until("Redis", lambda: redis.Redis.from_url(broker).ping())
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DEBUG": "0",
            "SECRET_KEY": "outage-drill-only-secret-key",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback, no TLS proxy
            "LOG_LEVEL": "WARNING",
            "BILLING_ALERT_CHECK_SECONDS": "1",
            # Every process counts here, and serve_metrics adds them up.
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            # The worker's output is its log: each email is counted there.
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        }

        def run(*args: str) -> str:
            command = [str(VENV / "python"), *args]
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603
            assert done.returncode == 0, done.stderr[-3000:]
            return done.stdout

        run("manage.py", "migrate", "--verbosity", "0")
        seeded = run(
            "-c",
            "import django; django.setup(); from tests.test_outage_drill import seed; seed()",
        )
        key = json.loads(seeded.strip().splitlines()[-1])["key"]

        processes.append(
            spawn(
                # One worker for both queues (config.celery): the drill is about the
                # outage, and its tasks (usage checks, alert emails) are all urgent.
                *(str(VENV / "celery"), "-A", "config", "worker", "--concurrency", "2"),
                *("-Q", ",".join(QUEUES)),
                *("--loglevel", "info", "--logfile", str(worker_log)),
                *("--without-heartbeat", "--without-mingle", "--without-gossip"),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        port = free_port()
        processes.append(
            spawn(
                *(str(VENV / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "2", "--log-level", "warning", "--error-logfile", str(server_log)),
                cwd=ROOT,
                env=env,
            )
        )
        metrics_port = free_port()
        processes.append(
            spawn(
                *(str(VENV / "python"), "manage.py", "serve_metrics"),
                *("--port", str(metrics_port)),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        wait_until("gunicorn", lambda: listening(port))
        wait_until("serve_metrics", lambda: listening(metrics_port))
        wait_until("the worker", lambda: "ready." in worker_log.read_text(), timeout=60)

        # when: 4 clients post continuously, and the database restarts in the middle
        stop, tally = threading.Event(), Tally()
        clients = [
            threading.Thread(target=post_batches, args=(i, port, key, stop, tally), daemon=True)
            for i in range(CLIENTS)
        ]
        started = time.monotonic()
        for client in clients:
            client.start()
        time.sleep(LOAD_BEFORE)
        restart_at = time.monotonic() - started
        # Stopped, then started again once /readyz has said so (a load balancer
        # would take the instance out meanwhile); ready again once it answers.
        postgres.stop_fast()
        while_stopped = answers(port, 503)
        postgres.start_again()
        restart_took = time.monotonic() - started - restart_at
        ready_again = answers(port, 200)
        time.sleep(LOAD_AFTER)
        stop.set()
        for client in clients:
            client.join(timeout=120)
        assert not any(c.is_alive() for c in clients), "a client is still sending"
        load_seconds = time.monotonic() - started

        # then: the worker delivers what is due, the tasks that met the restart too
        def figures():
            with psycopg.connect(database_url, autocommit=True) as db:
                stored = db.execute("SELECT count(*) FROM billing_usageevent").fetchone()[0]
            return stored, *stored_and_alerted(database_url)

        deadline = time.monotonic() + SETTLE
        while True:
            stored, stored_ids, expected, alerts = figures()
            raised = {(customer, key) for customer, key, _, _ in alerts}
            announced = sum(1 for *_, told in alerts if told)
            emailed = sum(1 for _, _, sent, _ in alerts if sent)
            if (raised == expected and emailed == announced) or time.monotonic() > deadline:
                break
            time.sleep(1)
        settled = time.monotonic() - started - load_seconds
        metrics = scrape(metrics_port)
    finally:
        processes_stop(processes)
        postgres.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)

    log = worker_log.read_text(errors="replace")
    retried = re.findall(r"\] retry: Retry in .*(?:OperationalError|InterfaceError)", log)
    retries = len(re.findall(r"\] retry: Retry in ", log))
    tasks = {
        outcome: sum(
            v
            for (n, labels), v in metrics.items()
            if n == "billing_tasks_total" and ("outcome", outcome) in labels
        )
        for outcome in ("succeeded", "retried", "failed")
    }
    events = {
        outcome: sample(metrics, "billing_usage_events_total", outcome=outcome)
        for outcome in ("accepted", "duplicate", "rejected")
    }
    batches = {
        status: sample(
            metrics,
            "billing_http_request_duration_seconds_count",
            route="api/v1/events",
            method="POST",
            status=str(status),
        )
        for status in (202, 503)
    }
    failed = re.findall(r"\] raised unexpected: .*", log)
    email_messages = len(re.findall(r"Subject: You have used", log))
    statuses = tally.statuses
    requests = sum(statuses.values())
    with capsys.disabled():
        print(
            f"\n\nOutage drill: PostgreSQL stopped (pg_ctl stop -m fast) {restart_at:.1f} s "
            f"into {load_seconds:.1f} s of load and started again once /readyz answered 503; "
            f"stopped for {restart_took:.2f} s\n"
            f"  requests {requests}: 202 {statuses.get(202, 0)}, 503 {statuses.get(503, 0)} "
            f"({tally.without_retry_after} without Retry-After, {tally.without_envelope} "
            f"without the error envelope), 500 {statuses.get(500, 0)}, "
            f"other {requests - sum(statuses.get(s, 0) for s in (202, 503, 500))}; "
            f"connection errors {tally.connection_errors}, batches given up {tally.abandoned}\n"
            f"  events: acknowledged {len(tally.acked_ids)} (accepted {tally.accepted}, "
            f"duplicates {tally.duplicates}), stored {stored}\n"
            f"  tasks retried after a database error: {len(retried)}; tasks failed: {len(failed)}\n"
            f"  usage alerts: {len(expected)} thresholds crossed, {len(raised)} raised, "
            f"{announced} announced (one per crossing), {emailed} emailed ({email_messages} "
            "email messages in the worker's output), "
            f"{settled:.1f} s after the load\n"
            f"  /readyz while stopped: {while_stopped}\n"
            f"  /readyz once started: {ready_again}\n"
            f"  metrics scraped: events {events}, batches by status {batches}, tasks {tasks}\n"
        )
        for line in tally.unexpected + failed[:5]:
            print(f"  {line}")

    assert statuses.get(500, 0) == 0, tally.unexpected
    assert set(statuses) <= {202, 503}, tally.unexpected
    assert statuses.get(503, 0) > 0, "no request met the restart: the drill proved nothing"
    assert tally.without_retry_after == tally.without_envelope == 0
    assert tally.connection_errors == tally.abandoned == 0
    assert stored == tally.accepted + tally.duplicates == len(tally.acked_ids)
    assert stored_ids == tally.acked_ids
    assert failed == []
    assert retried, "no task met the restart: the drill proved nothing about the worker"
    assert raised == expected
    # /readyz named the database while it was stopped, and nothing else
    assert while_stopped["failed"] == ["database"]
    assert ready_again["status"] == "ready"
    # the metrics, added up over gunicorn's workers and the worker's processes, are
    # what the clients and the worker's log saw
    assert events == {"accepted": tally.accepted, "duplicate": tally.duplicates, "rejected": 0}
    assert batches == {202: statuses.get(202, 0), 503: statuses.get(503, 0)}
    assert tasks["failed"] == 0
    assert tasks["retried"] == retries >= len(retried)
    assert emailed == announced
    assert email_messages >= announced
