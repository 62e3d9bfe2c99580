"""The read replica router (config.db_routers, config.replica_reads), in this process:
the replica is `replica_0`, the test database itself (a test mirror), so that which
connection a request's queries went through is what shows where it read. Against a
real streaming replica: tests/test_replica_streaming.py."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.db import connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common import metrics
from config import replica_reads
from config.db_routers import ReplicaRouter, reading_from
from config.recent_writes import customer_key, writes_note
from customers.models import ApiKey, Customer
from customers.portal import portal_session_create
from tests.factories import CustomerFactory, api_client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=["default", "replica_0"]),
]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def replicas(settings):
    settings.DATABASE_REPLICAS = ["replica_0"]
    settings.DATABASE_ROUTERS = ["config.db_routers.ReplicaRouter"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "config.replica_reads.ReplicaReadsMiddleware"]
    settings.DATABASE_REPLICA_MAX_LAG_MS = 2000
    settings.DATABASE_REPLICA_CHECK_MS = 1000
    settings.DATABASE_REPLICA_READ_YOUR_WRITES_MS = 5000
    replica_reads._lags.clear()
    yield
    replica_reads._lags.clear()
    connections["replica_0"].close()


class Reads:
    """The queries a block sent to the replica (its lag checks left out) and the
    requests counted by outcome, taken as the block ends (a request's start empties
    the connections' query logs). capture=False for a replica out of reach."""

    OUTCOMES = ("replica", "recent_write", "lagging", "unavailable", "failed")

    def __init__(self, capture: bool = True):
        self.capture = CaptureQueriesContext(connections["replica_0"]) if capture else None
        self.replica_queries = 0
        self.counted: dict[str, float] = {}

    @classmethod
    def _counts(cls) -> dict[str, float]:
        return {o: metrics.REPLICA_READS.labels(o)._value.get() for o in cls.OUTCOMES}

    def __enter__(self):
        self.before = self._counts()
        if self.capture is not None:
            self.capture.__enter__()
        return self

    def __exit__(self, *exc):
        if self.capture is not None:
            self.capture.__exit__(*exc)
            queries = self.capture.captured_queries
            self.replica_queries = sum("pg_is_in_recovery" not in q["sql"] for q in queries)
        after = self._counts()
        self.counted = {o: after[o] - self.before[o] for o in after if after[o] != self.before[o]}


def portal_path(customer) -> str:
    return f"/portal/{portal_session_create(customer=customer, now=timezone.now()).token}/"


def test_the_router_reads_the_replica_only_for_the_billing_apps_outside_writes():
    router = ReplicaRouter()
    token = reading_from.set("replica_0")
    try:
        assert router.db_for_read(Customer) == "replica_0"
        assert router.db_for_read(Session) == "default"
        assert router.db_for_read(ApiKey) == "default"
        with transaction.atomic():
            assert router.db_for_read(Customer) == "default"
        assert router.db_for_write(Customer) == "default"
        # The request wrote: what it reads next is read where it wrote.
        assert router.db_for_read(Customer) == "default"
    finally:
        reading_from.reset(token)
    assert router.db_for_read(Customer) == "default"
    assert router.allow_migrate("replica_0", "customers") is False
    assert router.allow_migrate("default", "customers") is True


def test_the_portal_page_reads_the_replica(replicas):
    acme = CustomerFactory(name="Acme")

    with Reads() as reads:
        response = Client().get(portal_path(acme))

    assert response.status_code == 200
    assert b"Acme" in response.content
    assert reads.replica_queries > 0
    assert reads.counted == {"replica": 1}


def test_a_customer_reads_the_primary_for_a_while_after_its_data_was_written(replicas, settings):
    acme, globex = CustomerFactory(external_id="acme"), CustomerFactory(external_id="globex")
    api = api_client()
    assert api.patch("/api/v1/customers/acme", {"name": "Acme 2"}, format="json").status_code == 200

    with Reads() as acme_reads:
        assert Client().get(portal_path(acme)).status_code == 200
    with Reads() as globex_reads:
        assert Client().get(portal_path(globex)).status_code == 200

    assert (acme_reads.replica_queries, acme_reads.counted) == (0, {"recent_write": 1})
    assert globex_reads.replica_queries > 0
    # After the window, the replica again.
    settings.DATABASE_REPLICA_READ_YOUR_WRITES_MS = 0
    with Reads() as later:
        assert Client().get(portal_path(acme)).status_code == 200
    assert later.counted == {"replica": 1}


def test_a_task_that_wrote_for_a_customer_keeps_its_reads_on_the_primary(replicas):
    from config.celery import app

    acme = CustomerFactory()

    @app.task(name="tests.replica_reads.rename")
    def rename(customer_id):
        customer = Customer.objects.get(pk=customer_id)
        customer.name = "Renamed"
        customer.save(update_fields=["name"])

    rename.delay(acme.pk)
    with Reads() as reads:
        assert Client().get(portal_path(acme)).status_code == 200

    assert reads.counted == {"recent_write": 1}


def test_the_check_and_usage_read_the_primary(replicas):
    CustomerFactory(external_id="acme")
    api = api_client()

    with Reads() as reads:
        usage = api.get("/api/v1/customers/acme/usage")
        check = api.post("/api/v1/customers/acme/check", {"meter": "prompts"}, format="json")
        entitlements = api.get("/api/v1/customers/acme/entitlements")

    assert (usage.status_code, entitlements.status_code) == (200, 200)
    assert check.status_code in (200, 404)  # no meter "prompts": the primary said so
    assert (reads.replica_queries, reads.counted) == (0, {})
    assert not replica_reads._lags  # not even a lag check


def test_the_admin_lists_read_the_replica_until_the_user_writes(replicas, admin_client):
    CustomerFactory(name="Acme")

    with Reads() as listing:
        page = admin_client.get("/admin/customers/customer/")
    with Reads() as form:
        assert admin_client.get("/admin/customers/customer/add/").status_code == 200
    admin_client.post("/admin/language/", {"language": "en"})
    with Reads() as after_writing:
        assert admin_client.get("/admin/customers/customer/").status_code == 200

    assert page.status_code == 200 and b"Acme" in page.content
    assert listing.replica_queries > 0 and listing.counted == {"replica": 1}
    assert (form.replica_queries, form.counted) == (0, {})
    assert (after_writing.replica_queries, after_writing.counted) == (0, {"recent_write": 1})


def test_the_reports_read_the_replica(replicas):
    api = api_client()

    with Reads() as reads:
        margins = api.get(
            "/api/v1/margins", {"period_start": "2026-11-01", "period_end": "2026-12-01"}
        )
        journal = api.get(
            "/api/v1/journal/trial-balance", {"from": "2026-11-01", "to": "2026-12-01"}
        )

    assert (margins.status_code, journal.status_code) == (200, 200), journal.content
    assert reads.counted == {"replica": 2}


def test_a_streamed_export_reads_the_replica_as_it_is_sent(replicas):
    api = api_client()
    response = api.get("/api/v1/journal.csv", {"from": "2026-11-01", "to": "2026-12-01"})
    assert response.status_code == 200 and response.streaming

    with Reads() as reads:
        body = b"".join(response.streaming_content)

    assert body.startswith(b"id,date,")
    assert reads.replica_queries > 0
    assert reading_from.get() is None


def test_a_lagging_replica_is_left_out_until_it_catches_up(replicas, monkeypatch):
    acme = CustomerFactory()
    lag = {"seconds": 3.5}
    monkeypatch.setattr(replica_reads, "_measure_lag", lambda alias: lag["seconds"])

    with Reads() as behind:
        assert Client().get(portal_path(acme)).status_code == 200
    lag["seconds"] = 0.5
    replica_reads._lags.clear()  # the next check is due
    with Reads() as caught_up:
        assert Client().get(portal_path(acme)).status_code == 200

    assert (behind.replica_queries, behind.counted) == (0, {"lagging": 1})
    assert caught_up.counted == {"replica": 1}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def replica_down(monkeypatch):
    replica = connections["replica_0"]
    replica.close()
    monkeypatch.setitem(replica.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(replica.settings_dict, "PORT", str(_closed_port()))
    yield
    replica.close()


def test_a_replica_out_of_reach_is_read_from_the_primary(replicas, replica_down):
    acme = CustomerFactory(name="Acme")

    with Reads(capture=False) as reads:
        response = Client().get(portal_path(acme))

    assert response.status_code == 200 and b"Acme" in response.content
    assert reads.counted == {"unavailable": 1}
    assert replica_reads._lags["replica_0"][1] is None


def test_a_replica_lost_during_a_request_is_answered_again_from_the_primary(replicas, replica_down):
    acme = CustomerFactory(name="Acme")
    # Its last check found it well; it has gone since.
    replica_reads._lags["replica_0"] = (time.monotonic(), 0.0)

    with Reads(capture=False) as reads:
        response = Client(raise_request_exception=False).get(portal_path(acme))

    assert response.status_code == 200 and b"Acme" in response.content
    assert reads.counted == {"replica": 1, "failed": 1}
    assert replica_reads._lags["replica_0"][1] is None


def test_the_reads_of_a_recent_write_stay_on_the_primary_when_the_cache_is_lost(
    replicas, monkeypatch
):
    acme = CustomerFactory()
    writes_note([customer_key(acme.pk)])

    def lost(*args, **kwargs):
        raise ConnectionError("cache out of reach")

    monkeypatch.setattr("config.recent_writes.cache.get_many", lost)
    with Reads() as reads:
        assert Client().get(portal_path(CustomerFactory())).status_code == 200

    assert reads.counted == {"recent_write": 1}


def _settings_with(var_dir: Path, **environ) -> subprocess.CompletedProcess:
    code = (
        "import json, config.settings as s; print(json.dumps({'replicas': s.DATABASE_REPLICAS,"
        " 'mirror': s.DATABASES.get('replica_0', {}).get('TEST'), 'routers': "
        "s.DATABASE_ROUTERS, 'middleware': s.MIDDLEWARE[-1]}))"
    )
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "BILLING_VAR_DIR": str(var_dir)}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, **environ},
        check=False,
    )


def test_the_settings_add_a_replica_per_url_and_refuse_a_window_shorter_than_the_lag(tmp_path):
    urls = "postgres://u@replica-a:5432/billing,postgres://u@replica-b:5432/billing"
    configured = _settings_with(
        tmp_path, DATABASE_REPLICA_URLS=urls, DATABASE_URL="postgres://u@p/billing"
    )
    unset = _settings_with(tmp_path)
    refused = _settings_with(
        tmp_path,
        DATABASE_REPLICA_URLS=urls,
        DATABASE_REPLICA_MAX_LAG_MS="5000",
        DATABASE_REPLICA_READ_YOUR_WRITES_MS="5500",
    )

    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip() == (
        '{"replicas": ["replica_0", "replica_1"], "mirror": {"MIRROR": "default"}, '
        '"routers": ["config.db_routers.ReplicaRouter"], '
        '"middleware": "config.replica_reads.ReplicaReadsMiddleware"}'
    )
    assert unset.stdout.strip() == (
        '{"replicas": [], "mirror": null, "routers": [], '
        '"middleware": "axes.middleware.AxesMiddleware"}'
    )
    assert "must be at least DATABASE_REPLICA_MAX_LAG_MS" in refused.stderr
