"""The metrics (common.metrics), counted in this process: requests by route
pattern and status (check's fast answer too, under its view's pattern), event batches,
invoices finalized as they commit, email attempts, tasks; and the gauges read at
scrape time: the queues named by Celery's configuration and their depths on the
broker, the fold's lag. tests/test_metrics_scrape.py scrapes real processes."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from kombu import Connection
from prometheus_client import REGISTRY, generate_latest

from billing.usage.folding import fold_lag_seconds, usage_fold
from billing.usage.ingestion import events_ingest
from config.celery import app, queue_depths, queue_names
from invoices import tasks
from invoices.emails import document_email_send_again
from invoices.models import DocumentEmail
from invoices.services import invoice_finalize
from plans.services import meter_create
from tests.factories import ApiKeyFactory, CustomerFactory
from tests.invoices.test_emails import DEC_2, closed_port, customer, draft, finalize, run_at
from tests.test_health import celery_conf

pytestmark = pytest.mark.django_db

CHECK = "api/v1/customers/<str:external_id>/check"


class Counts:
    """Samples of the default registry (this process's counts), read before and
    compared after: each test sees only what it added."""

    def __init__(self, *series: tuple[str, dict]):
        self.series = series
        self.before = [self.read(name, labels) for name, labels in series]

    @staticmethod
    def read(name: str, labels: dict) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def added(self) -> list[float]:
        return [
            self.read(name, labels) - before
            for (name, labels), before in zip(self.series, self.before, strict=True)
        ]


def requests(route: str, method: str, status: int) -> tuple[str, dict]:
    labels = {"route": route, "method": method, "status": str(status)}
    return "billing_http_request_duration_seconds_count", labels


def events(outcome: str) -> tuple[str, dict]:
    return "billing_usage_events_total", {"outcome": outcome}


def emails(outcome: str) -> tuple[str, dict]:
    return "billing_document_email_attempts_total", {"outcome": outcome}


FINALIZED = ("billing_invoices_finalized_total", {})


def test_requests_are_counted_by_route_pattern_whichever_path_answers(client):
    # given: a key, and a customer with no subscription (its check answers 200)
    key = ApiKeyFactory(name="all").secret
    CustomerFactory(external_id="acme-7f3a")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    counts = Counts(
        requests(CHECK, "POST", 200),
        requests(CHECK, "POST", 401),
        requests(CHECK, "POST", 404),
        requests("api/v1/plans", "GET", 200),
        requests("unmatched", "GET", 404),
        requests("api/v1/events", "POST", 413),
        requests("readyz", "GET", 200),
        requests("api/v1/plans", "other", 405),
    )

    # when: a check its fast answer gives, one left to DRF (a wrong key),
    # an unknown customer (the view's 404), a view, a path no route has, a body
    # over the limit refused before any view, the readiness check, a made-up method
    body = {"meter": "none"}
    check = "/api/v1/customers/{}/check"
    json = "application/json"
    assert client.post(check.format("acme-7f3a"), body, json, **auth).status_code == 200
    assert client.post(check.format("acme-7f3a"), body, json).status_code == 401
    assert client.post(check.format("nobody"), body, json, **auth).status_code == 404
    assert client.get("/api/v1/plans", **auth).status_code == 200
    assert client.get("/no/such/page-9c1e").status_code == 404
    oversized = client.generic(
        "POST", "/api/v1/events", b"", "application/json", CONTENT_LENGTH="2000000", **auth
    )
    assert oversized.status_code == 413
    assert client.get("/readyz").status_code == 200
    assert client.generic("BREW", "/api/v1/plans", **auth).status_code == 405

    # then
    assert Counts.added(counts) == [1.0] * 8
    exposition = generate_latest(REGISTRY).decode()
    assert "acme-7f3a" not in exposition and "nobody" not in exposition
    assert "9c1e" not in exposition and "BREW" not in exposition


@pytest.fixture
def prompts():
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    CustomerFactory(external_id="acme")


def batch(*ids: str, customer: str = "acme", at: datetime) -> list[dict]:
    stamp = at.isoformat()
    return [
        {"id": i, "customer": customer, "event_name": "prompt", "timestamp": stamp} for i in ids
    ]


def test_event_batches_are_counted_by_outcome(prompts):
    now = datetime.now(UTC)
    counts = Counts(events("accepted"), events("duplicate"), events("rejected"))

    # when: 3 new, then 1 new with 2 stored before and one repeated, and one for a
    # customer nobody knows; then a batch of rejections only
    events_ingest(events=batch("a", "b", "c", at=now), now=now)
    events_ingest(
        events=[*batch("c", "d", "d", "a", at=now), *batch("x", customer="nobody", at=now)],
        now=now,
    )
    events_ingest(events=batch("y", "z", customer="nobody", at=now), now=now)

    # then
    assert counts.added() == [4.0, 3.0, 3.0]


def test_invoices_finalized_are_counted_when_they_commit(django_capture_on_commit_callbacks):
    owner = customer()
    counts = Counts(FINALIZED)

    # when: a finalization rolled back, then one that commits
    capture = django_capture_on_commit_callbacks(execute=True)
    with capture, pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice=draft(owner), now=DEC_2)
        raise RuntimeError("the close failed after it")
    assert counts.added() == [0.0]
    finalize(draft(owner), django_capture_on_commit_callbacks)

    # then
    assert counts.added() == [1.0]


def test_email_attempts_are_counted_by_outcome(settings, django_capture_on_commit_callbacks):
    # given: SMTP to a port where nothing listens; one retry, after a minute
    settings.BILLING_INVOICE_EMAILS = True
    settings.BILLING_INVOICE_EMAIL_RETRY_MINUTES = [1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    counts = Counts(emails("sent"), emails("retrying"), emails("failed"))

    # when: the first attempt fails, the second too (the last)
    invoice = finalize(draft(customer()), django_capture_on_commit_callbacks)
    assert counts.added() == [0.0, 1.0, 0.0]
    email = DocumentEmail.objects.get(invoice=invoice)
    send = tasks.send_document_email
    run_at(DEC_2 + timedelta(minutes=1), django_capture_on_commit_callbacks, send, email.pk)
    assert counts.added() == [0.0, 1.0, 1.0]

    # and sent again once the mail server is back
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        assert document_email_send_again(email=email, now=DEC_2 + timedelta(minutes=2))
    assert counts.added() == [1.0, 1.0, 1.0]


def test_tasks_are_counted_by_task_and_outcome():
    @app.task(bind=True, max_retries=1, name="tests.metrics_flaky")
    def flaky(self, attempts: list):
        attempts.append(1)
        if len(attempts) == 1:
            raise self.retry(countdown=0)
        return len(attempts)

    @app.task(name="tests.metrics_broken")
    def broken():
        raise ValueError("broken")

    def tasks_of(name: str):
        return [("billing_tasks_total", {"task": name, "outcome": o}) for o in OUTCOMES]

    counts = Counts(*tasks_of("tests.metrics_flaky"), *tasks_of("tests.metrics_broken"))

    # when: eagerly, as here (a worker sends the same signals)
    assert flaky.delay([]).get() == 2
    with pytest.raises(ValueError, match="broken"):
        broken.delay().get()

    # then: succeeded, retried, failed
    assert counts.added() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


OUTCOMES = ("succeeded", "retried", "failed")


def test_the_queues_are_read_from_celerys_configuration():
    assert queue_names() == ["bulk", "default", "urgent"]
    routes = {
        "billing.tasks.check_usage_alerts": {"queue": "urgent"},
        "invoices.tasks.*": "documents",
    }
    with celery_conf(task_routes=routes):
        assert queue_names() == ["default", "documents", "urgent"]


def send(url: str, queue: str, count: int, **transport_options) -> None:
    with Connection(url, transport_options=transport_options) as conn:
        box = conn.SimpleQueue(queue)
        for n in range(count):
            box.put({"n": n})
        box.close()


def test_queue_depths_on_the_filesystem_broker(tmp_path):
    # given: the filesystem transport in a directory of this test, 3 messages
    # waiting in the default queue and 2 in a routed one
    folders = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    send("filesystem://", "default", 3, **folders)
    send("filesystem://", "urgent", 2, **folders)

    # then
    with celery_conf(
        broker_read_url="filesystem://",
        broker_transport_options=folders,
        task_routes={"invoices.tasks.*": {"queue": "urgent"}},
    ):
        assert queue_depths(timeout=1) == {"default": 3, "urgent": 2}


@pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith(("redis://", "amqp://")),
    reason="needs Redis or RabbitMQ (CELERY_BROKER_URL=redis://... or amqp://...)",
)
def test_queue_depths_on_redis_or_rabbitmq():
    # given: a queue of this test's own on the broker (Redis's database, RabbitMQ's
    # virtual host), and one never sent to
    url = os.environ["CELERY_BROKER_URL"]
    urgent, unused = f"urgent-{uuid.uuid4().hex}", f"unused-{uuid.uuid4().hex}"
    routes = {"invoices.tasks.*": {"queue": urgent}, "billing.tasks.*": {"queue": unused}}
    try:
        send(url, urgent, 4)
        # then: 4 waiting, none in the other
        with celery_conf(task_routes=routes):
            depths = queue_depths(timeout=1)
        assert (depths[urgent], depths[unused]) == (4, 0)
    finally:
        with Connection(url) as conn:
            conn.SimpleQueue(urgent).queue.delete()


@pytest.mark.postgres
def test_the_fold_lag_is_the_time_from_the_oldest_unfolded_event_to_the_newest(prompts, settings):
    settings.BILLING_FOLD_MS = 10**9  # no batch folds: the folder alone would
    now = datetime.now(UTC).replace(microsecond=0)
    usage_fold(wait=True)
    assert fold_lag_seconds() == 0.0

    # when: batches arrive 7 s and 12.5 s after one, and nothing folds
    for offset, ids in ((0, "ab"), (7, "c"), (12.5, "de")):
        at = now + timedelta(seconds=offset)
        events_ingest(events=batch(*ids, at=now), now=at)
        assert fold_lag_seconds() == offset

    # then folded, none
    usage_fold(wait=True)
    assert fold_lag_seconds() == 0.0
