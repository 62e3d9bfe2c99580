"""What a container waits for before it starts its role (scripts/container_entrypoint.sh),
with one cheap query at a time and a backoff, so that the waiting services of a first
boot or an upgrade leave the CPU to the migrations they wait for:

    python3 container_wait.py database      the database at DATABASE_URL answers
    python3 container_wait.py migrations    it holds every migration of this image
    python3 container_wait.py say LEVEL MESSAGE...   the entrypoint's own lines

Its lines, and the entrypoint's (`say`), are written as LOG_FORMAT says, as every
process's are: plain, or a JSON object a line (common.logs).

Every wait is a plain connection and a query (psycopg), never a Django start-up
and never the migration graph: the image knows
its migrations, written at build time (the Containerfile) by

    python scripts/container_wait.py write-leaves

as the leaf migration of each app (app and name a line, in MIGRATION_LEAVES). A leaf
is applied only after every migration it depends on, so "every leaf is in
django_migrations" is "every migration is applied". The waits back off from 1 s to
BILLING_WAIT_MAX_INTERVAL (default 10 s) and give up, exiting 75 with what to look
at, after BILLING_DATABASE_WAIT (default 120 s) or BILLING_MIGRATE_WAIT (default
600 s)."""

import logging
import os
import sys
import time
from pathlib import Path

# The project's log format (common.logs: the standard library only).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.logs import JsonFormatter, log_format_from

MIGRATION_LEAVES = Path(os.environ.get("BILLING_MIGRATION_LEAVES", "/app/migration-leaves.txt"))
FIRST_INTERVAL = 1.0
GROWTH = 1.5
CONNECT_TIMEOUT = 5


def leaves_write(path: Path = MIGRATION_LEAVES) -> list[tuple[str, str]]:
    """At build time, with Django set up: the leaf migration of each app, written to
    `path` (no database is read)."""
    from django.db.migrations.loader import MigrationLoader

    leaves = sorted(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes())
    path.write_text("".join(f"{app} {name}\n" for app, name in leaves))
    return leaves


def leaves_read(path: Path = MIGRATION_LEAVES) -> list[tuple[str, str]]:
    leaves = []
    for line in path.read_text().splitlines():
        app, name = line.split()
        leaves.append((app, name))
    if not leaves:
        raise ValueError(f"{path} names no migration")
    return leaves


def connect(url: str):
    """A connection to DATABASE_URL (the containers' PostgreSQL)."""
    import psycopg

    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)


def missing_leaves(url: str, leaves: list[tuple[str, str]]) -> int | None:
    """How many of `leaves` the database lacks; None while it does not answer."""
    try:
        connection = connect(url)
    except Exception:
        return None
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT app, name FROM django_migrations")
        except Exception:
            return len(leaves)  # no migration applied yet: the table is not there
        applied = set(map(tuple, cursor.fetchall()))
        return sum(1 for leaf in leaves if leaf not in applied)
    finally:
        connection.close()


def answers(url: str) -> bool:
    try:
        connection = connect(url)
    except Exception:
        return False
    connection.close()
    return True


def wait(ready, *, limit: float, max_interval: float) -> float | None:
    """Call `ready()` until it is true, waiting 1 s, then half as long again each
    time, at most `max_interval`; the seconds waited, or None after `limit`."""
    began = time.monotonic()
    interval = FIRST_INTERVAL
    attempt = 0
    while True:
        if ready(attempt):
            return time.monotonic() - began
        waited = time.monotonic() - began
        if waited >= limit:
            return None
        time.sleep(min(interval, max(0.0, limit - waited)))
        interval = min(interval * GROWTH, max_interval)
        attempt += 1


def logger_made() -> logging.Logger:
    """The container's own logger, writing to standard error as LOG_FORMAT says."""
    handler = logging.StreamHandler(sys.stderr)
    try:
        json_lines = log_format_from(os.environ.get("LOG_FORMAT")) == "json"
    except ValueError:
        json_lines = False  # the settings refuse it, saying so, as the role starts
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(message)s"))
    logger = logging.getLogger("container")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else ""
    log = logger_made()
    if what == "say" and len(argv) > 3:
        log.log(logging.getLevelName(argv[2].upper()), " ".join(argv[3:]))
        return 0
    if what not in ("database", "migrations", "write-leaves"):
        log.error("usage: container_wait.py database|migrations|write-leaves|say LEVEL MESSAGE")
        return 64
    if what == "write-leaves":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        leaves = leaves_write()
        log.info("%s: %d apps' leaf migrations", MIGRATION_LEAVES, len(leaves))
        return 0
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        log.error("error: DATABASE_URL is not set")
        return 64
    max_interval = float(os.environ.get("BILLING_WAIT_MAX_INTERVAL", "10"))

    if what == "database":
        limit = float(os.environ.get("BILLING_DATABASE_WAIT", "120"))
        waited = wait(lambda _: answers(url), limit=limit, max_interval=max_interval)
        if waited is None:
            log.error("error: the database does not answer at DATABASE_URL after %.0fs", limit)
            return 75
        return 0

    leaves = leaves_read()
    limit = float(os.environ.get("BILLING_MIGRATE_WAIT", "600"))

    def applied(attempt: int) -> bool:
        missing = missing_leaves(url, leaves)
        if missing == 0:
            return True
        if attempt == 0:
            log.info(
                "waiting for the migrate container to apply this image's migrations"
                + (
                    f" ({missing} of {len(leaves)} apps behind)"
                    if missing
                    else " (the database does not answer yet)"
                )
            )
        return False

    waited = wait(applied, limit=limit, max_interval=max_interval)
    if waited is None:
        log.error(
            "error: the database still lacks this image's migrations after %.0fs; did the "
            "migrate container fail? (its log: podman-compose logs migrate)",
            limit,
        )
        return 75
    if waited >= 1:
        log.info("this image's migrations are applied (waited %.0fs)", waited)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
