"""The log drill: the README's `bash scripts/run.sh` itself with LOG_FORMAT=json, on a
throwaway PostgreSQL and a Redis of its own (free ports, its var directory in a
temporary one), through a Redis restart: Redis stopped (SIGKILL) for DOWN seconds
while events, checks, readiness checks and metrics scrapes keep coming, then started
again; events and a check once more; a management command; run.sh stopped with
SIGTERM.

It holds when: every line run.sh wrote (standard output and error: its own, the
setup's, the web server's) and every line of every file in its log directory (the
workers', the beat's, the folder's, the metrics server's) is a JSON object with time,
level, logger and message, and so is every line of the command's; each request line
(runserver's) carries the request's id, the ids the API answered among them; each
worker line about a task carries the task's id; and the restart made at most one
line a second per process saying the broker is out of reach, none with a traceback.
Prints the figures. Takes two or three minutes (run.sh migrates and loads the demo).

    bash scripts/test.sh -n 0 -m drill tests/test_log_drill.py

Marked `drill`, so the default run leaves it out; CI runs it in its Drill step.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.test_broker_drill import ThrowawayRedis
from tests.test_outage_drill import (
    ROOT,
    VENV,
    ThrowawayPostgres,
    free_port,
    postgres_bindir,
    unavailable,
    wait_until,
)

pytestmark = pytest.mark.drill

DOWN = 10.0  # seconds Redis stays stopped
EVERY = 0.5  # seconds between the requests sent while it is
STARTUP = 900.0  # at most this long for run.sh to serve (fonts, migrations, the demo)
# The settings' variables: the drill's run has only its own.
SETTINGS_PREFIXES = (
    "BILLING_",
    "CELERY_",
    "DATABASE_",
    "STRIPE_",
    "EMAIL_",
    "SECURE_",
    "AXES_",
    "API_",
    "LOG_",
)
SETTINGS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DJANGO_SETTINGS_MODULE",
    "PROMETHEUS_MULTIPROC_DIR",
    "CACHE_URL",
    "PORT",
    "METRICS_PORT",
    "ADMIN_PASSWORD",
    "MEDIA_ROOT",
    "DEFAULT_FROM_EMAIL",
    "TRUSTED_PROXY_COUNT",
}
FIELDS = {"time", "level", "logger", "message"}


def call(port: int, method: str, path: str, key: str | None = None, body=None):
    """(status, X-Request-ID) of one request."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Request-ID")
    finally:
        conn.close()


def events(batch: str) -> dict:
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "events": [
            {
                "id": f"{batch}_{customer}",
                "customer": customer,
                "event_name": "prompt",
                "timestamp": moment,
            }
            for customer in ("acme", "globex", "initech")
        ]
    }


def parsed(path: Path) -> tuple[list[dict], list[str]]:
    """A file's JSON objects with the four fields, and its other lines."""
    objects, others = [], []
    for line in path.read_text(errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            others.append(line)
            continue
        if isinstance(value, dict) and value.keys() >= FIELDS:
            objects.append(value)
        else:
            others.append(line)
    return objects, others


def at(value: dict) -> datetime:
    return datetime.fromisoformat(value["time"].replace("Z", "+00:00"))


def test_run_sh_logs_json_lines_only_and_a_redis_restart_one_broker_line_a_second(tmp_path, capsys):
    bindir = postgres_bindir()
    if not shutil.which("redis-server"):
        unavailable("the log drill needs redis-server (apt-get install redis-server)")
    pg_dir = Path(tempfile.mkdtemp(prefix="billing-drill-pg-"))
    postgres = ThrowawayPostgres(bindir, pg_dir)
    (tmp_path / "redis").mkdir()
    broker = ThrowawayRedis(tmp_path / "redis")
    var = tmp_path / "var"
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    run = None
    try:
        # given: run.sh serving, with LOG_FORMAT=json
        database_url = postgres.start()
        broker.start()
        port, metrics_port = free_port(), free_port()
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in SETTINGS and not name.startswith(SETTINGS_PREFIXES)
        }
        env.update(
            LOG_FORMAT="json",
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=broker.url,
            PORT=str(port),
            METRICS_PORT=str(metrics_port),
            BILLING_VAR_DIR=str(var),
        )
        with out.open("wb") as stdout, err.open("wb") as stderr:
            run = subprocess.Popen(  # the README's command
                ["bash", "scripts/run.sh"],  # noqa: S607
                cwd=ROOT,
                env=env,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def serving() -> bool:
            assert run.poll() is None, f"run.sh exited: {err.read_text()[-3000:]}"
            return call(port, "GET", "/readyz")[0] == 200

        wait_until("run.sh", serving, STARTUP)
        key = (var / "dev-api-key.txt").read_text().strip()
        log_dir = var / "log"
        answered_ids = []

        def post(batch: str) -> None:
            status, request_id = call(port, "POST", "/api/v1/events", key, events(batch))
            assert status == 202
            answered_ids.append(request_id)
            status, request_id = call(
                port, "POST", "/api/v1/customers/acme/check", key, {"meter": "prompts"}
            )
            assert status == 200
            answered_ids.append(request_id)

        # when: events and a check; a worker takes the usage check they queue
        post("before")
        wait_until(
            "the urgent worker's check",
            lambda: "succeeded" in (log_dir / "worker-urgent.log").read_text(),
            60,
        )

        # Redis stopped for DOWN seconds while requests keep coming, then started again
        def reconnections() -> dict[str, int]:
            return {
                path.name: path.read_text().count("Connected to redis")
                for path in log_dir.glob("worker-*.log")
            }

        connected = reconnections()
        outage_start = datetime.now(UTC)
        broker.kill()
        sent = Counter()
        deadline = time.monotonic() + DOWN
        while time.monotonic() < deadline:
            batch = events(f"down{sent.total()}")
            sent[f"events {call(port, 'POST', '/api/v1/events', key, batch)[0]}"] += 1
            sent[f"readyz {call(port, 'GET', '/readyz')[0]}"] += 1
            sent[f"metrics {call(metrics_port, 'GET', '/metrics')[0]}"] += 1
            time.sleep(EVERY)
        broker.start()
        restarted = datetime.now(UTC)
        wait_until(
            "the workers back on Redis",
            lambda: all(n > connected[name] for name, n in reconnections().items()),
            120,
        )
        wait_until("run.sh ready again", serving, 60)
        recovered = datetime.now(UTC)
        post("after")

        # a management command, with LOG_FORMAT=json
        command_env = {
            **env,
            "SECRET_KEY": (var / "secret-key.txt").read_text().strip(),
            "ALLOWED_HOSTS": "127.0.0.1",
        }
        command = subprocess.run(  # noqa: S603 (the project's manage.py)
            [str(VENV / "python"), "manage.py", "fold_usage"],
            cwd=ROOT,
            env=command_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

        # and run.sh stopped as a service manager stops it
        run.send_signal(signal.SIGTERM)
        status = run.wait(timeout=120)
    finally:
        if run is not None and run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        broker.stop()
        postgres.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)

    # then: every line a JSON object, everywhere
    files = {"run.sh stdout": out, "run.sh stderr": err}
    files.update({f"log/{path.name}": path for path in sorted((var / "log").iterdir())})
    records, not_json = {}, {}
    for name, path in files.items():
        records[name], not_json[name] = parsed(path)
    command_lines = command.stdout.splitlines() + command.stderr.splitlines()
    command_records = [json.loads(line) for line in command_lines if line.startswith("{")]

    # the request lines, and the worker's task lines
    server_lines = [r for r in records["run.sh stderr"] if r["logger"] == "django.server"]
    without_id = [r["message"] for r in server_lines if not r.get("request_id")]
    logged_ids = {r.get("request_id") for r in server_lines}
    task_lines = [
        r
        for name, found in records.items()
        if name.startswith("log/worker-")
        for r in found
        if r["message"].startswith("Task ")
    ]
    tasks_without_id = [r["message"] for r in task_lines if not r.get("task_id")]

    # the outage: per process (file and pid), its lines, its broker lines, tracebacks
    broker_pattern = re.compile(
        rf"Connection refused|Cannot connect|Connection to broker lost|Connection reset"
        rf"|Connection closed|Error \d+ connecting|:{broker.port}\b",
        re.IGNORECASE,
    )
    figures = {}
    per_second = defaultdict(Counter)
    for name, found in records.items():
        for record in found:
            if not outage_start <= at(record) <= recovered:
                continue
            process = f"{name} pid {record.get('pid')}"
            figure = figures.setdefault(process, Counter())
            figure["lines"] += 1
            figure["tracebacks"] += "exception" in record
            text = record["message"] + record.get("exception", "")
            if record["level"] in ("WARNING", "ERROR", "CRITICAL") and broker_pattern.search(text):
                figure["broker lines"] += 1
                figure["broker tracebacks"] += "exception" in record
                per_second[process][record["time"][:19]] += 1
    for process, seconds in per_second.items():
        figures[process]["most in a second"] = max(seconds.values())

    with capsys.disabled():
        print(
            f"\n\nLog drill: run.sh with LOG_FORMAT=json, Redis stopped for {DOWN:.0f} s "
            f"({(restarted - outage_start).total_seconds():.1f} s from the kill to the start, "
            f"{(recovered - outage_start).total_seconds():.1f} s to the workers back on it); "
            f"sent meanwhile: {dict(sent)}; run.sh exit status {status}"
        )
        for name in files:
            print(f"  {name}: {len(records[name])} JSON lines, {len(not_json[name])} others")
        print(
            f"  request lines {len(server_lines)}, without a request id {len(without_id)}; "
            f"worker task lines {len(task_lines)}, without a task id {len(tasks_without_id)}"
        )
        print("  from the kill to the recovery, per process (broker lines: it is out of reach):")
        for process, figure in sorted(figures.items()):
            print(
                f"    {process}: lines {figure['lines']}, tracebacks {figure['tracebacks']}, "
                f"broker lines {figure['broker lines']} (most in one second "
                f"{figure['most in a second']})"
            )
        print(f"  manage.py fold_usage: {command_lines}")
        for name, lines in not_json.items():
            for line in lines[:3]:
                print(f"  not JSON in {name}: {line[:200]!r}")

    assert status == 143  # stopped by SIGTERM, every service with it
    assert not_json == {name: [] for name in files}
    assert set(files) >= {
        "run.sh stdout",
        "run.sh stderr",
        "log/worker-urgent.log",
        "log/worker-default.log",
        "log/worker-bulk.log",
        "log/beat.log",
        "log/folder.log",
        "log/metrics.log",
    }
    assert command.returncode == 0, command.stderr[-2000:]
    assert len(command_records) == len(command_lines) > 0
    assert any(r["message"].startswith("folded ") for r in command_records)
    assert server_lines and without_id == []
    assert set(answered_ids) <= logged_ids
    assert task_lines and tasks_without_id == []
    # the outage was seen (or the drill proved nothing): by the web server and each worker
    seen = {process.split(" pid")[0] for process, f in figures.items() if f["broker lines"]}
    assert seen >= {"run.sh stderr", "log/worker-urgent.log", "log/worker-default.log"}
    assert all(f["most in a second"] <= 1 for f in figures.values() if f["broker lines"])
    assert all(f["broker tracebacks"] == 0 for f in figures.values())
