"""Real Celery workers for the tests about the worker: `celery worker` processes on
the test's database and the broker the run was given (Redis, or RabbitMQ with the
settings' RabbitMQ profile: quorum queues, native delayed delivery), each consuming
the queues it is told (config.celery), as docs/running.md runs them."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from config.celery import QUEUES, app

ROOT = Path(__file__).resolve().parent.parent


def redis_broker() -> str:
    """The run's broker; the test is skipped without a Redis one (CI gives it)."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("needs a Redis broker (CELERY_BROKER_URL=redis://...); runs in CI")
    return broker


def worker_broker() -> str:
    """The run's broker, for a test that starts workers: Redis or RabbitMQ (CI runs
    these tests on both); skipped on the filesystem broker."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "amqp://", "pyamqp://")):
        pytest.skip("needs a Redis or RabbitMQ broker (CELERY_BROKER_URL); runs in CI")
    return broker


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def queues_purge() -> None:
    """Each queue declared as the app declares it (on RabbitMQ a purge of a queue
    that is not there closes the channel), then emptied."""
    with app.connection_for_write() as broker:
        for name in QUEUES:
            queue = app.amqp.queues[name].bind(broker.default_channel)
            queue.declare()
            queue.purge()


def queue_size(name: str) -> int:
    """The tasks waiting in queue `name`, none of them taken by a worker yet (declared
    with the app's arguments: RabbitMQ refuses a quorum queue declared without)."""
    with app.connection_for_read() as broker:
        queue = app.amqp.queues[name].bind(broker.default_channel)
        return queue.queue_declare().message_count


@contextmanager
def tasks_on_the_broker() -> Iterator[None]:
    """Tasks sent from here go to the broker instead of running where they are sent
    (tests/conftest.py), into empty queues; emptied again on the way out."""
    app.conf.task_always_eager = False
    try:
        queues_purge()
        yield
    finally:
        app.conf.task_always_eager = True
        queues_purge()


@contextmanager
def celery_worker(
    *queues: str, name: str, options: tuple = (), env: dict | None = None
) -> Iterator[str]:
    """A `celery worker` consuming `queues` as node `name@<host>` (one process unless
    `options` say otherwise), `env` added to its environment; yields its node name.
    Stopped on the way out as a service manager stops it (SIGTERM: the task under way
    finishes, the tasks it holds go back to the broker), its output printed for a
    failing test's report."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
        # Mail (alerts, invoices) printed to the worker's output, never sent.
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        **(env or {}),
    }
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(  # noqa: S603
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                *("-Q", ",".join(queues), "-n", f"{name}@%h"),
                *(options or ("--concurrency", "1")),
                *("--loglevel", "warning"),
                *("--without-heartbeat", "--without-mingle", "--without-gossip"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"{name}@{socket.gethostname()}"
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.seek(0)
            output = log.read().decode(errors="replace")
            print(f"-- worker {name} ({','.join(queues)}):\n{output}")


def workers_wait(*nodes: str, timeout: float = 60) -> None:
    """Until each of these workers answers a ping (it is consuming its queues)."""
    deadline = time.monotonic() + timeout
    answered: set[str] = set()
    while answered != set(nodes):
        assert time.monotonic() < deadline, (
            f"workers not up in {timeout} s: {set(nodes) - answered}"
        )
        for reply in app.control.ping(destination=list(nodes), timeout=0.5):
            answered.update(reply)
