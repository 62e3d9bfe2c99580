"""Read replicas for real: a primary of the test's own (initdb, a throwaway cluster as
the outage drill's) holding a copy of the test database, a hot standby streaming from
it (pg_basebackup -R -X stream, started with pg_ctl), and gunicorn with
DATABASE_URL on the primary and DATABASE_REPLICA_URLS on the standby.

The machine's own cluster is not used as the primary: its pg_hba.conf has no
`replication` entry (pg_basebackup is refused), and a base backup of it would copy
every database on it; initdb's pg_hba.conf lets replication in from 127.0.0.1.

It shows, replay paused on the standby: another customer's portal page and the admin's
list served stale from the standby, the customer who just wrote reading its write
from the primary, `/usage` and the check on the primary; the standby past the lag
bound, the primary read; the standby stopped, the primary read, 200 not 500. Prints
the lag seen and the requests counted by outcome. About 20 s."""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from customers.portal import portal_session_create
from tests.factories import ApiKeyFactory, CustomerFactory, prompts_meter
from tests.test_outage_drill import (
    ThrowawayPostgres,
    free_port,
    listening,
    postgres_bindir,
    spawn,
    unavailable,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
# The standby is read while within 4 s of the primary, its lag measured every 0.25 s
# per process; a writer reads the primary for 5 s after it wrote.
MAX_LAG_MS, CHECK_MS, READ_YOUR_WRITES_MS = 4000, 250, 5000


class Standby:
    """A hot standby of `primary`, by pg_basebackup, on a free port."""

    def __init__(self, primary: ThrowawayPostgres):
        self.primary = primary
        self.data = primary.directory / "standby"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/billing_drill"

    def _run(self, program: str, *args: str) -> None:
        command = [*self.primary.as_user, str(self.primary.bindir / program), *args]
        subprocess.run(  # noqa: S603
            command, check=True, capture_output=True, cwd=self.primary.directory, timeout=60
        )

    def start(self) -> None:
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "--checkpoint", "fast", "--no-sync"),
        )
        options = f"-p {self.port} -k {self.primary.directory} -c listen_addresses=127.0.0.1"
        log = str(self.primary.directory / "standby.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", "30", "start", "-o", options, "-l", log
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "stop", "-m", "fast")


def _tools() -> Path:
    bindir = postgres_bindir()
    for program in ("pg_basebackup", "pg_dump", "psql"):
        if not (bindir / program).exists():
            unavailable(
                f"the replica test needs PostgreSQL's {program} (apt-get install postgresql)"
            )
    return bindir


def _copy_test_database(bindir: Path, primary_url: str) -> None:
    """The test database as it is now (migrated, this test's rows committed) into the
    throwaway primary: a dump is a second, a migration twenty."""
    source = connection.settings_dict
    dump = subprocess.run(  # noqa: S603
        [
            str(bindir / "pg_dump"),
            *("-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432)),
            *("-U", source["USER"] or "postgres", "--no-owner", "--no-privileges", source["NAME"]),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(  # noqa: S603
        [str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", primary_url],
        input=dump.stdout,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _caught_up(primary, standby) -> None:
    """Waits until the standby replayed everything the primary wrote so far."""
    (position,) = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
    wait_until(
        "the standby's replay",
        lambda: standby.execute(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position]
        ).fetchone()[0],
        timeout=20,
    )


def _lag(standby) -> float:
    return standby.execute(
        "SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
    ).fetchone()[0]


class Site:
    def __init__(self, port: int, api_key: str, session: str):
        self.port, self.api_key, self.session = port, api_key, session

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.api_key}", "Cookie": self.session}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = conn.getresponse()
        try:
            return response.status, response.read().decode()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)


def _counted(metrics_dir: Path) -> dict[str, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    return {
        sample.labels["outcome"]: sample.value
        for family in registry.collect()
        if family.name == "billing_replica_reads"
        for sample in family.samples
        if sample.name == "billing_replica_reads_total"
    }


def test_reads_from_a_streaming_replica(admin_user):
    bindir = _tools()
    # given the rows the pages show, committed, then copied to the primary
    initech = CustomerFactory(external_id="initech", name="Initech Old")
    globex = CustomerFactory(external_id="globex", name="Globex Old")
    prompts_meter()
    api_key = ApiKeyFactory(name="replica test").secret
    browser = Client()
    browser.force_login(admin_user)
    session = (
        f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    )
    now = timezone.now()
    initech_page = f"/portal/{portal_session_create(customer=initech, now=now).token}/"
    globex_page = f"/portal/{portal_session_create(customer=globex, now=now).token}/"

    directory = Path(tempfile.mkdtemp(prefix="billing-replica-"))
    primary = ThrowawayPostgres(bindir, directory)
    standby = Standby(primary)
    server = None
    started = time.monotonic()
    try:
        primary_url = primary.start()
        phases = {"primary": time.monotonic() - started}
        _copy_test_database(bindir, primary_url)
        phases["copy"] = time.monotonic() - started - sum(phases.values())
        standby.start()
        phases["standby"] = time.monotonic() - started - sum(phases.values())
        metrics_dir = directory / "metrics"
        metrics_dir.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "1",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": primary_url,
            "DATABASE_REPLICA_URLS": standby.url,
            "DATABASE_REPLICA_MAX_LAG_MS": str(MAX_LAG_MS),
            "DATABASE_REPLICA_CHECK_MS": str(CHECK_MS),
            "DATABASE_REPLICA_READ_YOUR_WRITES_MS": str(READ_YOUR_WRITES_MS),
            # One process: its memory is the cache the writes are noted in.
            "CELERY_BROKER_URL": "",
            "CACHE_URL": "",
            "BILLING_VAR_DIR": str(directory / "var"),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LOG_LEVEL": "WARNING",
        }
        port = free_port()
        server = spawn(
            *(str(VENV / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "1", "--log-level", "warning"),
            *("--error-logfile", str(directory / "gunicorn.log")),
            cwd=ROOT,
            env=env,
        )
        wait_until("gunicorn", lambda: listening(port))
        site = Site(port, api_key, session)
        phases["server"] = time.monotonic() - started - sum(phases.values())

        # the first of each request imports and compiles what it needs: not in the
        # seconds the paused standby is within the bound (counted, read from it)
        for warm_up in (
            globex_page,
            "/admin/customers/customer/",
            "/api/v1/customers/globex/usage",
        ):
            assert site.get(warm_up)[0] == 200, warm_up

        with (
            psycopg.connect(primary_url, autocommit=True) as on_primary,
            psycopg.connect(standby.url, autocommit=True) as on_standby,
        ):
            # a fresh commit replayed, then replay paused: the standby stays there
            on_primary.execute("CREATE TABLE heartbeat AS SELECT now() AS at")
            _caught_up(on_primary, on_standby)
            on_standby.execute("SELECT pg_wal_replay_pause()")
            paused = time.monotonic()

            # when Initech's name is changed through the API (noted: Initech wrote), and
            # Globex's by another hand (nothing noted), renamed and its id changed
            patched = site.request("PATCH", "/api/v1/customers/initech", {"name": "Initech New"})
            on_primary.execute(
                "UPDATE customers_customer SET name = 'Globex New', external_id = 'globex-2' "
                "WHERE id = %s",
                [globex.pk],
            )
            globex_stale = site.get(globex_page)
            initech_fresh = site.get(initech_page)
            admin_list = site.get("/admin/customers/customer/")
            usage = site.get("/api/v1/customers/globex-2/usage")
            check = site.request(
                "POST", "/api/v1/customers/globex-2/check", {"meter": "prompts", "quantity": "1"}
            )
            stale_lag = _lag(on_standby)
            read_within = time.monotonic() - paused

            # then the standby falls behind past the bound
            wait_until("the lag bound", lambda: _lag(on_standby) > MAX_LAG_MS / 1000 + 0.5)
            time.sleep(CHECK_MS / 1000)
            lagging_lag = _lag(on_standby)
            globex_lagging = site.get(globex_page)

            on_standby.execute("SELECT pg_wal_replay_resume()")
            _caught_up(on_primary, on_standby)
        counts_before_stop = _counted(metrics_dir)

        # then the standby is stopped
        standby.stop()
        time.sleep(CHECK_MS / 1000)  # the last check (lagging) is due again
        globex_stopped = site.get(globex_page)
        admin_stopped = site.get("/admin/customers/customer/")
        time.sleep(CHECK_MS / 1000)
        globex_stopped_again = site.get(globex_page)
        counts = _counted(metrics_dir)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        standby.stop()
        primary.stop()
        shutil.rmtree(directory, ignore_errors=True)

    print(
        f"\nreplica: ready in {sum(phases.values()):.1f} s "
        f"({', '.join(f'{k} {v:.1f}' for k, v in phases.items())}); "
        f"paused replay read {read_within:.2f} s after, "
        f"lag {stale_lag:.2f} s; past the bound at lag {lagging_lag:.2f} s "
        f"(bound {MAX_LAG_MS / 1000:.1f} s); requests by outcome before the stop "
        f"{counts_before_stop}, after {counts}; {time.monotonic() - started:.1f} s in all"
    )
    assert patched[0] == 200, patched
    # the standby served Globex's page and the admin's list as they were
    assert globex_stale[0] == 200 and "Globex Old" in globex_stale[1]
    assert admin_list[0] == 200 and "Globex Old" in admin_list[1]
    assert "Initech Old" in admin_list[1]  # a list of all customers: the standby's
    # the customer who wrote read its write, from the primary
    assert initech_fresh[0] == 200 and "Initech New" in initech_fresh[1]
    # /usage and the check found the id only the primary has
    assert usage[0] == 200, usage
    assert check[0] == 200, check
    assert stale_lag < MAX_LAG_MS / 1000
    # past the bound: the primary
    assert globex_lagging[0] == 200 and "Globex New" in globex_lagging[1]
    # stopped: the primary, 200
    for status, page in (globex_stopped, globex_stopped_again):
        assert status == 200 and "Globex New" in page
    assert admin_stopped[0] == 200 and "Globex New" in admin_stopped[1]
    assert counts_before_stop == {
        "replica": 4,
        "recent_write": 1,
        "lagging": 1,
        "unavailable": 0,
        "failed": 0,
    }
    # the stopped standby: left out at each check (a standby lost between two checks,
    # mid-request: tests/test_replica_reads.py)
    assert counts == {**counts_before_stop, "unavailable": 3}
