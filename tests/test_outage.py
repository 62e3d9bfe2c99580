"""A database out of reach for a moment (common.outage): the API answers 503 with
Retry-After in the error envelope, the admin and the portal a plain 503 page, a
statement's own error stays a 500, and a task that met the outage is retried
with backoff until the database is back (config.celery.BillingTask). The real
restart under load is tests/test_outage_drill.py."""

import contextlib
import random
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError, connection
from rest_framework.test import APIClient

from billing.notifications import alerts
from common.outage import RETRY_AFTER_SECONDS
from config.celery import BillingTask, app
from customers.portal import portal_session_create
from customers.services import customer_create
from wallets import ledger

pytestmark = pytest.mark.django_db

UNAVAILABLE = {
    "error": {
        "type": "service_unavailable",
        "message": "the database is unavailable for a moment; try the request again shortly",
    }
}


@contextlib.contextmanager
def database_fails(error: Exception):
    """Every statement sent on the connection raises `error`, as a restart makes
    them (the wrapper runs outside Django's error wrapping, so a driver error
    arrives unwrapped, as it does from ingestion's raw cursor)."""

    def fail(execute, sql, params, many, context):
        raise error

    with connection.execute_wrapper(fail):
        yield


def driver_error(name: str) -> Exception:
    """The database driver's own exception (psycopg's, or sqlite3's)."""
    return getattr(connection.Database, name)("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        "driver OperationalError",
        "driver InterfaceError",
    ],
    ids=["OperationalError", "InterfaceError", "driver-OperationalError", "driver-InterfaceError"],
)
def test_an_api_request_that_loses_the_database_is_503_with_retry_after(api, error):
    if isinstance(error, str):
        error = driver_error(error.split()[1])

    # when
    with database_fails(error):
        response = api.get("/api/v1/meters")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == UNAVAILABLE


def test_an_event_batch_that_loses_the_database_is_503_and_stores_nothing(
    api, catalog_meters, row_counts
):
    from billing.models import UsageEvent

    customer_create(external_id="acme", name="Acme", currency="USD")
    before = row_counts()
    batch = {
        "events": [
            {
                "id": "evt_1",
                "customer": "acme",
                "event_name": "prompt",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        ]
    }

    # when
    with database_fails(OperationalError("terminating connection due to administrator command")):
        response = api.post("/api/v1/events", batch, format="json")

    # then: the client is told to send it again, and nothing was stored
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == UNAVAILABLE
    assert UsageEvent.objects.count() == 0
    assert row_counts() == before


@pytest.mark.parametrize(
    "error",
    [ProgrammingError('relation "billing_meter" does not exist'), IntegrityError("duplicate key")],
    ids=["ProgrammingError", "IntegrityError"],
)
def test_a_statement_error_stays_a_500(api_key_secret, error):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")

    # when
    with database_fails(error):
        response = client.get("/api/v1/meters")

    # then
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert response.json()["error"]["type"] == "server_error"


def test_an_admin_page_that_loses_the_database_is_a_503_page(admin_client):
    # when
    with database_fails(OperationalError("the database system is shutting down")):
        response = admin_client.get("/admin/billing/alert/")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"The database is unavailable for a moment" in response.content


def test_the_portal_that_loses_the_database_is_a_503_page(client):
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    token = portal_session_create(customer=acme, now=datetime.now(UTC)).token

    # when
    with database_fails(driver_error("OperationalError")):
        response = client.get(f"/portal/{token}/")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert b"The database is unavailable for a moment" in response.content
    assert b"Acme" not in response.content


def test_an_admin_programming_error_stays_a_500(admin_user):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(admin_user)

    # when
    with database_fails(ProgrammingError('column "x" does not exist')):
        response = client.get("/admin/billing/alert/")

    # then
    assert response.status_code == 500


class LosesTheDatabase:
    """A middleware that meets the outage itself (as sessions or messages would
    when they save), outside any view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise OperationalError("could not receive data from server")


@pytest.mark.parametrize(
    ("path", "json_body"), [("/api/v1/meters", True), ("/admin/login/", False)]
)
def test_a_middleware_that_loses_the_database_is_503_too(settings, client, path, json_body):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_outage.LosesTheDatabase"]
    client.raise_request_exception = False

    # when
    response = client.get(path)

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    if json_body:
        assert response.json() == UNAVAILABLE
    else:
        assert b"The database is unavailable for a moment" in response.content


# The worker's side.

PROJECT_APPS = ("billing.", "customers.", "invoices.", "plans.", "wallets.")


def test_every_task_of_the_project_retries_on_database_errors():
    app.loader.import_default_modules()
    names = [name for name in app.tasks if name.startswith(PROJECT_APPS)]

    assert "billing.tasks.check_usage_alerts" in names
    assert "billing.tasks.send_alert_email" in names
    assert [n for n in names if not isinstance(app.tasks[n], BillingTask)] == []


@pytest.fixture
def flaky_expire(monkeypatch):
    """wallets.tasks.expire_credits, whose service fails `failures` times with the
    error given, then answers 3; returns how often it was called."""

    calls = []

    def arrange(error: Exception, failures: int) -> list:
        def expire(*, now):
            calls.append(now)
            if len(calls) <= failures:
                raise error
            return 3

        monkeypatch.setattr(ledger, "credits_expire", expire)
        return calls

    return arrange


@pytest.fixture
def countdowns(monkeypatch):
    """The countdowns the task asks to be retried after, with the jitter at its
    top (full jitter draws from 0 to the backoff)."""
    task = app.tasks["wallets.tasks.expire_credits"]
    asked = []
    original = task.retry

    def retry(*args, **kwargs):
        asked.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", retry)
    monkeypatch.setattr(random, "randrange", lambda stop: stop - 1)
    return asked


def test_a_task_that_meets_the_outage_is_retried_with_backoff_until_it_succeeds(
    flaky_expire, countdowns
):
    from wallets.tasks import expire_credits

    calls = flaky_expire(OperationalError("the database system is starting up"), failures=3)

    # when (eagerly: the retries run at once, their countdowns recorded)
    result = expire_credits.apply()

    # then
    assert (result.state, result.result) == ("SUCCESS", 3)
    assert len(calls) == 4
    assert countdowns == [2, 4, 8]


def test_the_backoff_is_capped(flaky_expire, countdowns):
    from wallets.tasks import expire_credits

    flaky_expire(driver_error("OperationalError"), failures=1)

    # when: the 9th retry
    result = expire_credits.apply(retries=8)

    # then: 2 * 2**8 = 512 s, capped at 300
    assert result.result == 3
    assert countdowns == [300]


def test_a_task_gives_up_after_its_database_retries(flaky_expire):
    from wallets.tasks import expire_credits

    calls = flaky_expire(OperationalError("connection refused"), failures=100)

    # when
    result = expire_credits.apply()

    # then: the first run and ten retries, then the error
    assert result.state == "FAILURE"
    assert isinstance(result.result, OperationalError)
    assert len(calls) == 1 + BillingTask.database_max_retries


def test_a_task_with_a_statement_error_is_not_retried(flaky_expire):
    from wallets.tasks import expire_credits

    calls = flaky_expire(ProgrammingError("syntax error"), failures=100)

    # when
    result = expire_credits.apply()

    # then
    assert result.state == "FAILURE"
    assert isinstance(result.result, ProgrammingError)
    assert len(calls) == 1


def test_a_task_keeps_its_own_retry_limit_for_other_errors(monkeypatch):
    """send_alert_email retries a mail server that is down (OSError) up to its own
    limit of 5, also right after a database retry (whose limit is 10)."""
    from billing.models import Alert
    from billing.tasks import send_alert_email

    acme = customer_create(external_id="acme", name="Acme", currency="USD", email="a@acme.test")
    alert = Alert.objects.create(
        customer=acme,
        kind=Alert.LOW_BALANCE,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        key="credits",
        payload={},
        created_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    attempts = []

    def send(*, alert, now):
        attempts.append(now)
        if len(attempts) == 5:
            raise OperationalError("server closed the connection unexpectedly")
        raise OSError("connection refused by the mail server")

    monkeypatch.setattr(alerts, "alert_email_send", send)

    # when
    result = send_alert_email.apply((alert.pk,))

    # then: the first attempt and 5 retries (the 4th of them for the database), no more
    assert result.state == "FAILURE"
    assert isinstance(result.result, OSError)
    assert len(attempts) == 6


def test_a_usage_alert_whose_check_met_the_outage_is_raised_when_it_is_back(
    api, catalog_meters, mailoutbox, django_capture_on_commit_callbacks
):
    """The alert check an ingest enqueues fails while the database is away, and
    raises the alert (and its email) on its retry."""
    from billing.models import Alert
    from billing.subscriptions.lifecycle import subscription_create
    from billing.tasks import check_usage_alerts
    from plans.models import Plan
    from plans.pricing import PricingSpec
    from plans.services import plan_create
    from plans.validation import ChargeSpec, VersionSpec

    plan_create(
        code="prompts",
        name="Prompts",
        version=VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec(
                    "prompts", "overage", D(10), pricing=PricingSpec("per_unit", unit_price=D(1))
                ),
            ),
        ),
        publish=True,
    )
    acme = customer_create(
        external_id="acme", name="Acme", currency="USD", email="a@acme.test", alert_thresholds=[50]
    )
    now = datetime.now(UTC)
    subscription_create(customer=acme, plan=Plan.objects.get(code="prompts"), start=now)
    moment = now.isoformat().replace("+00:00", "Z")
    batch = {
        "events": [
            {"id": f"evt_{i}", "customer": "acme", "event_name": "prompt", "timestamp": moment}
            for i in range(5)
        ]
    }
    response = api.post("/api/v1/events", batch, format="json")
    # (its check is enqueued on commit, which this test's transaction never does)
    assert response.status_code == 202
    assert not Alert.objects.exists()
    failures = []

    def away_twice(execute, sql, params, many, context):
        if len(failures) < 2:
            failures.append(sql)
            raise OperationalError("the database system is shutting down")
        return execute(sql, params, many, context)

    # when
    with (
        django_capture_on_commit_callbacks(execute=True),
        connection.execute_wrapper(away_twice),
    ):
        result = check_usage_alerts.apply(([acme.pk],))

    # then
    assert (result.state, result.result) == ("SUCCESS", 1)
    assert len(failures) == 2
    assert list(Alert.objects.values_list("key", flat=True)) == ["prompts:50"]
    assert [m.subject for m in mailoutbox] == ["You have used 50% of your included Prompts"]
