"""Shared pieces of the benchmarks: a fresh PostgreSQL database, a web server
(granian or gunicorn), percentiles. Benchmarks print figures; they assert nothing."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def fresh_database(name: str) -> str:
    """Drop and create the database; returns its URL."""
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(
            ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            env={**os.environ, "PGOPTIONS": "--client-min-messages=warning"},
        )
    return f"{PG}/{name}"


def translations_compile(locale_dirs: list[Path] | None = None) -> None:
    """Compile the translation catalogs (the project's unless given) as scripts/run.sh
    does: the .mo files are build output, and with DEBUG off the benchmark's process
    (its checks) and its web server refuse to start while one is missing
    (config.catalogs). Cheap when they are compiled: a .mo is rewritten only when its
    content changes."""
    spec = importlib.util.spec_from_file_location(
        "compilemessages", ROOT / "scripts" / "compilemessages.py"
    )
    compilemessages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compilemessages)
    compilemessages.compile_all(locale_dirs or [ROOT / "locale"])


def django_setup(database_url: str) -> None:
    translations_compile()
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"  # no worker beside a benchmark
    os.environ["LOG_LEVEL"] = "WARNING"
    # As production runs: DEBUG off (with it on, Django also records every query in
    # memory), so the settings it then requires; emails kept in memory.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# The server hands tasks (usage alert checks) to a broker, as in production, instead
# of running them in the request as the benchmark process itself does.
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14")


def server_env(database_url: str) -> dict:
    return {
        **os.environ,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_BROKER_URL": BROKER,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain http on localhost: production's redirect to https would answer 301.
        "SECURE_SSL_REDIRECT": "0",
        # check.py sends 10,000 checks with one key faster than a key may (6000/min);
        # the limit is still counted, so its cost is in the figures.
        "API_THROTTLE_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }


SERVERS = ("granian", "gunicorn")


def add_server_arguments(parser, *, workers: int) -> None:
    """--server, --workers and --threads: the web server a benchmark starts (Server)."""
    parser.add_argument(
        "--server", choices=SERVERS, default="granian", help="the web server (docs/running.md)"
    )
    parser.add_argument("--workers", type=int, default=workers, help="the web server's workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads a worker (granian: 1 unless given; gunicorn: gthread workers, which "
        "keep connections, instead of sync ones)",
    )


def server_command(kind: str, *, port: int, workers: int, threads: int = 0) -> list[str]:
    """The command that serves config.wsgi on `port` as production does
    (docs/running.md): granian's WSGI workers, one request at a time each; or
    gunicorn's sync workers, or with `threads` its gthread workers of that many
    threads, which keep a client's connection between requests."""
    if kind == "granian":
        # fmt: off
        return [
            str(ROOT / ".venv/bin/granian"), "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads or 1),
            "--log-level", "warning", "config.wsgi:application",
        ]
        # fmt: on
    if kind != "gunicorn":
        raise ValueError(f"unknown server {kind!r}; one of {', '.join(SERVERS)}")
    worker_class = ["gthread", "--threads", str(threads)] if threads else ["sync"]
    # fmt: off
    return [
        str(ROOT / ".venv/bin/gunicorn"), "config.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", *worker_class, "--keep-alive", "30", "--log-level", "warning",
    ]
    # fmt: on


class Server:
    """config.wsgi served by `kind` (server_command) on PostgreSQL, until stop()."""

    def __init__(
        self,
        database_url: str,
        *,
        port: int,
        workers: int,
        threads: int = 0,
        kind: str = "granian",
    ):
        self.port = port
        self.workers = workers
        self.threads = threads
        self.kind = kind
        self.process = subprocess.Popen(
            server_command(kind, port=port, workers=workers, threads=threads),
            cwd=ROOT,
            env=server_env(database_url),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{kind} did not start")

    def describe(self) -> str:
        if self.kind == "granian":
            return f"granian, {self.workers} WSGI workers of {self.threads or 1} thread(s)"
        if self.threads:
            return f"gunicorn, {self.workers} gthread workers of {self.threads} threads"
        return f"gunicorn, {self.workers} sync workers"

    def pids(self) -> list[int]:
        # The whole process group (the server was started in a session of its
        # own): granian's workers are not all the main process's children.
        members = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        return sorted({self.process.pid, *map(int, members)})

    def memory_mib(self) -> tuple[float, float]:
        """(current RSS, peak RSS) summed over master and workers, in MiB."""
        rss = peak = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
        return rss / 1024, peak / 1024

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        _broker_empty()


def _broker_empty() -> None:
    """Drop the tasks the server queued: no worker runs beside a benchmark."""
    from celery import Celery

    from config.celery import QUEUES

    with Celery(broker=BROKER).connection_for_write() as connection:
        for queue in QUEUES:
            connection.default_channel.queue_purge(queue)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes, in seconds, with that of the children
    each has waited for: a PostgreSQL backend that exits (a connection closed, a
    close's process ended) adds its time to the postmaster's, so the difference of
    two readings counts it (left out, it made some figures negative)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


# bench/all.py sets this: each benchmark appends its headline figures there.
SUMMARY = os.environ.get("BENCH_SUMMARY")


def record(figure: str, value: float, unit: str, *, target: float | None, higher: bool) -> str:
    """Note a headline figure for bench/all.py's table (when it runs this benchmark)
    and return the words that say whether it meets its target: `higher` when more
    is better (a rate), else less is (a latency)."""
    met = None if target is None else (value >= target if higher else value <= target)
    if SUMMARY:
        import json

        with open(SUMMARY, "a") as out:
            row = {"figure": figure, "value": value, "unit": unit, "target": target}
            out.write(json.dumps(row | {"higher": higher, "met": met}) + "\n")
    if target is None:
        return ""
    sign = ">=" if higher else "<="
    return f"target {sign} {target:g}{' ' + unit if unit else ''}: {'met' if met else 'missed'}"
