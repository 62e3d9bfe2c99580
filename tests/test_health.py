"""/healthz and /readyz (config.health): no authentication, no secret in the
answer, answered ahead of the https redirect and the Host check; /readyz 503
naming the database, a migration not applied, the broker or the cache when one
fails (the PDF renders overdue are named, never failed on:
tests/invoices/test_pdf_renders_overdue.py). The outage drill
(tests/test_outage_drill.py) stops a real PostgreSQL."""

import json
import socket
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings

from config import health
from config.celery import app
from tests.test_outage import database_fails

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db

READY = {
    "database": "ok",
    "migrations": "ok",
    "broker": "ok",
    "cache": "ok",
    "outbound": "ok",
    "pdf_renders": "ok",
}


def closed_port() -> int:
    """A port on this host where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def celery_conf(**changes):
    """Celery's configuration changed for a block."""
    before = {name: app.conf[name] for name in changes}
    app.conf.update(changes)
    try:
        yield
    finally:
        app.conf.update(before)


@pytest.fixture(autouse=True)
def _migrations_not_known(monkeypatch):
    """Each test's process finds out about the migrations afresh."""
    monkeypatch.setattr(health.migrations_check, "applied", False)


def get(path: str, **headers):
    response = Client().get(path, **headers)
    return response.status_code, json.loads(response.content), response


def test_healthz_answers_without_the_database(django_assert_num_queries):
    with database_fails(OperationalError("the database is down")), django_assert_num_queries(0):
        status, body, response = get("/healthz")
    with open(ROOT / "pyproject.toml", "rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert (status, body) == (200, {"status": "ok", "version": version})
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_200_when_everything_answers():
    assert get("/readyz")[:2] == (200, {"status": "ready", "checks": READY})


def test_readyz_names_the_database_without_its_error_message(caplog):
    message = 'connection to server at "db.internal" (10.1.2.3), port 5432 failed: user "billing"'
    with database_fails(OperationalError(message)):
        status, body, _ = get("/readyz")
    assert (status, body) == (
        503,
        {
            "status": "unavailable",
            "failed": ["database"],
            "checks": {
                "database": "unavailable (OperationalError)",
                "migrations": health.NOT_CHECKED,
                "broker": "ok",
                "cache": "ok",
                "outbound": health.NOT_CHECKED,
                "pdf_renders": health.NOT_CHECKED,
            },
        },
    )
    # the message (hosts, users) is logged, not answered
    assert "db.internal" in caplog.text


def test_readyz_names_the_migrations_not_applied_and_knows_once_they_are():
    # given: the database says the latest migration of billing was never applied
    recorded = MigrationRecorder.Migration.objects.filter(app="billing").order_by("-name")
    latest = recorded.first().name
    recorded.filter(name=latest).delete()

    # then
    status, body, _ = get("/readyz")
    assert status == 503
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"] == f"1 not applied: billing.{latest}"
    assert body["checks"]["outbound"] == "not checked: migrations missing"

    # when it is applied (recorded), ready; and then not asked again in this process
    MigrationRecorder.Migration.objects.create(app="billing", name=latest)
    assert get("/readyz")[:2] == (200, {"status": "ready", "checks": READY})
    MigrationRecorder.Migration.objects.filter(app="billing", name=latest).delete()
    assert get("/readyz")[0] == 200


def test_readyz_names_a_broker_out_of_reach():
    with celery_conf(broker_read_url=f"redis://127.0.0.1:{closed_port()}/0"):
        status, body, _ = get("/readyz")
    assert status == 503
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"] == "unavailable (OperationalError)"


def test_readyz_names_a_cache_out_of_reach():
    redis_cache = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=redis_cache):
        status, body, _ = get("/readyz")
    assert status == 503
    assert body["failed"] == ["cache"]
    assert body["checks"]["cache"] == "unavailable (ConnectionError)"


@override_settings(
    SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["billing.example.com"], SESSION_COOKIE_SECURE=True
)
def test_a_load_balancers_check_over_http_with_an_ip_host_is_answered():
    """Production settings: https only, one host name. A check over plain http
    naming the instance's address is answered (no redirect, no 400) and sets no
    cookie; any other path from it is still refused."""
    instance = {"HTTP_HOST": "192.0.2.10:8000"}
    for path in ("/healthz", "/readyz"):
        status, _, response = get(path, **instance)
        assert status == 200, path
        assert not response.cookies
    assert Client().get("/api/v1/plans", **instance).status_code == 400  # DisallowedHost
    redirected = Client().get("/healthz/", HTTP_HOST="billing.example.com")
    assert redirected.status_code == 301  # only the exact paths are the checks'


def test_only_get_and_head_are_the_checks():
    assert Client().head("/readyz").status_code == 200
    assert Client().post("/healthz").status_code == 404
