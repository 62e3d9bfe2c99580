"""What `manage.py serve_metrics` answers Prometheus with, on a port of its own
(docs/running.md: keep it private):

- every process's counts (common.metrics), added up from their files in
  METRICS_DIR and its folders (prometheus-client's MultiProcessCollector): the web
  server's workers, Celery's, the beat, the folder, on this host, or in the
  containers sharing the metrics volume, a folder each (compose.yaml);
- what describes the system as a whole, read as the scrape asks (SystemCollector):
  the fold's lag behind the newest event, whether sending is paused after a restore
  and the PDF renders overdue (the database), and the messages waiting in each queue
  (the broker). A
  source that cannot be read leaves its gauges out and says so in
  billing_metrics_source_up, so a scrape always answers.

A process of its own rather than a path of the web server: no web worker spends a
scrape's database and broker round trips, and nothing needs a token, since the
port is not the one the load balancer forwards."""

import logging
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from billing.notifications.outbound_pause import outbound_paused
from billing.usage.folding import fold_lag_seconds
from config.celery import queue_depths
from invoices.selectors import pdf_renders_overdue

logger = logging.getLogger(__name__)

# A scrape's reads each give up after this: Prometheus' scrape times out at 10 s by
# default, and an answer without the gauge (source down) beats no answer.
READ_TIMEOUT_SECONDS = 2


def _database_gauges() -> tuple[float, bool, int]:
    """The fold's lag, whether sending is paused and the PDF renders overdue, read
    within READ_TIMEOUT_SECONDS."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    [f"{READ_TIMEOUT_SECONDS}s"],
                )
        return fold_lag_seconds(), outbound_paused(), pdf_renders_overdue(now=timezone.now())


class SystemCollector:
    """The gauges read at scrape time, from the database and the broker."""

    def collect(self):
        up = GaugeMetricFamily(
            "billing_metrics_source_up",
            "Whether this scrape could read its gauges from the source (database: the "
            "fold's lag, the pause of sending, the PDF renders overdue; broker: the "
            "queues), 1 or 0",
            labels=["source"],
        )
        try:
            lag, paused, overdue = _database_gauges()
        except DatabaseError as exc:
            logger.warning("metrics: the database not read: %s: %s", type(exc).__name__, exc)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily(
                "billing_usage_fold_lag_seconds",
                "Seconds from the arrival of the oldest usage event not folded into the "
                "rollups yet to that of the newest event (0: all folded)",
                value=lag,
            )
            yield GaugeMetricFamily(
                "billing_outbound_paused",
                "1 while sending (e-mails, webhooks, Peppol e-invoices, Stripe charges of "
                "invoices) is paused after a restore until someone resumes it "
                "(manage.py after_restore --resume), else 0",
                value=1 if paused else 0,
            )
            yield GaugeMetricFamily(
                "billing_pdf_renders_overdue",
                "PDF renders claimed longer ago than the render task's hard time limit, "
                "their document's PDF still missing or out of date: their process died "
                "(killed, out of memory); each is rendered again once its claim runs out "
                "and it is asked for",
                value=overdue,
            )
        try:
            depths = queue_depths(timeout=READ_TIMEOUT_SECONDS)
        except Exception as exc:  # kombu's, redis-py's or the filesystem's: any is "down"
            logger.warning("metrics: the queues not read: %s: %s", type(exc).__name__, exc)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            queues = GaugeMetricFamily(
                "billing_queue_messages",
                "Task messages waiting in each Celery queue (not those a worker holds)",
                labels=["queue"],
            )
            for name, count in depths.items():
                queues.add_metric([name], count)
            yield queues
        yield up


class FoldersCollector(MultiProcessCollector):
    """The files of METRICS_DIR and of its folders, one level down: a container's
    processes are numbered from 1 like every other container's, so each container
    writes in a folder of its own (scripts/container_entrypoint.sh), and their
    files are added up here as one host's are."""

    def collect(self):
        root = Path(self._path)
        files = sorted(str(path) for path in (*root.glob("*.db"), *root.glob("*/*.db")))
        return self.merge(files, accumulate=True)


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    FoldersCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(SystemCollector())
    return registry


def metrics_application(registry: CollectorRegistry):
    """prometheus-client's WSGI application for `registry`, with the database
    connection handled as Django handles a request's: checked before, and closed
    after when it broke or outlived CONN_MAX_AGE."""
    exposition = make_wsgi_app(registry)

    def application(environ, start_response):
        close_old_connections()
        try:
            return exposition(environ, start_response)
        finally:
            close_old_connections()

    return application
