import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from celery import Celery, Task, signals
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from kombu.exceptions import ChannelError

from common import outage
from common.task_sending import COUNTDOWN_LIMIT_SECONDS
from config import log_setup, redis_transport
from config.recent_writes import customer_writes_noted

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Before any connection: a Redis restart must end no worker (config/redis_transport.py).
redis_transport.register()


class BillingTask(Task):
    """Every task of the project (the app's default task class): a task that finds
    the database out of reach (common.outage.database_unavailable: a restart, a
    failover) is retried with exponential backoff and full jitter (a wait drawn
    from 0 to 2, 4, 8 ... s, at most 300), up to `database_max_retries` times
    (about 18 minutes at the most, half that on average), instead of failing and
    losing its alert or payment. Every task is safe to run twice, so retrying
    one that got halfway is too.

    Not Celery's autoretry_for: a task that sets its own (OSError for SMTP and
    Stripe, with a policy of its own) would replace a class-wide default. The
    worker closes each task's connections before and after it (Celery's Django
    fixup), so a retry connects afresh."""

    # A task's own autoretry (retry_backoff: OSError for SMTP and Stripe) waits at most
    # this long too, jitter included.
    retry_backoff_max = COUNTDOWN_LIMIT_SECONDS
    database_retry_backoff = 2  # seconds before the first retry, at most; doubles
    database_retry_backoff_max = COUNTDOWN_LIMIT_SECONDS
    database_max_retries = 10

    def __call__(self, *args, **kwargs):
        try:
            # What it wrote for a customer is read from the primary for a while
            # after, beside read replicas (config.recent_writes).
            with customer_writes_noted():
                return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not outage.database_unavailable(exc) or _met_stopping(exc):
                raise
            countdown = get_exponential_backoff_interval(
                factor=self.database_retry_backoff,
                retries=self.request.retries,
                maximum=self.database_retry_backoff_max,
                full_jitter=True,
            )
            try:
                raise self.retry(
                    exc=exc, countdown=countdown, max_retries=self.database_max_retries
                ) from exc
            finally:
                # retry() keeps the override on the task; the task's own autoretry
                # (OSError) must see its own max_retries again.
                self.__dict__.pop("override_max_retries", None)


def _met_stopping(exc: BaseException) -> bool:
    """Whether a database error was met while the task stopped at its soft time limit
    (a statement the limit interrupted leaves its connection broken): no outage, and
    a retry would only run the task past its limit again."""
    seen = exc.__context__
    while seen is not None:
        if isinstance(seen, SoftTimeLimitExceeded):
            return True
        seen = seen.__context__
    return False


# Queues by urgency (docs/running.md, Queues). `urgent` holds what changes money or
# enforcement within seconds of an ingest: the usage check (alerts, the spend limit,
# threshold invoices), an alert's email and webhooks, and a purchase's charge (an
# auto top-up's usage runs uncovered until it is paid). `bulk` holds the heavy work
# that comes by the thousand or runs for minutes: PDFs, the emails that attach them,
# plan migrations, price simulations, rollup rebuilds. Each has a worker of its own,
# so that neither a PDF backlog nor one huge render holds up the checks or the beat's
# close, finalization, credit expiry and payments, which stay on `default`.
URGENT_QUEUE = "urgent"
DEFAULT_QUEUE = "default"
BULK_QUEUE = "bulk"
QUEUES = (URGENT_QUEUE, DEFAULT_QUEUE, BULK_QUEUE)
URGENT_TASKS = (
    "billing.tasks.check_usage_alerts",
    "billing.tasks.send_alert_email",
    "billing.tasks.deliver_alert_webhook",
    "billing.tasks.deliver_channel_message",
    "invoices.tasks.collect_purchase_payment",
)
BULK_TASKS = (
    "invoices.tasks.render_invoice_pdf",
    "invoices.tasks.render_credit_note_pdf",
    "invoices.tasks.send_document_email",
    "billing.tasks.run_plan_migration",
    "billing.tasks.rebuild_meter_usage",
    "billing.tasks.replay_refused_records",
    "plans.tasks.run_price_simulation",
)

app = Celery("billing", task_cls=BillingTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = DEFAULT_QUEUE
app.conf.task_routes = {
    **{name: {"queue": URGENT_QUEUE} for name in URGENT_TASKS},
    **{name: {"queue": BULK_QUEUE} for name in BULK_TASKS},
}
app.autodiscover_tasks()


@signals.celeryd_init.connect(dispatch_uid="config.celery.catalogs")
def _refuse_stale_catalogs(**_) -> None:
    """A worker with DEBUG off starts only with the translation catalogs compiled: its
    PDFs and emails would come out in English (config.catalogs)."""
    from config.catalogs import refuse_stale_catalogs

    refuse_stale_catalogs()


@signals.after_setup_logger.connect(dispatch_uid="config.celery.logs")
@signals.after_setup_task_logger.connect(dispatch_uid="config.celery.task_logs")
def _adapt_log_handlers(logger=None, **_) -> None:
    """Celery's handlers, which it sets after Django's (on the root logger, in the
    worker and the beat, celery.task's and billiard's): LOG_FORMAT's (config.log_setup)."""
    from celery.utils.log import get_multiprocessing_logger

    loggers = [logger, get_multiprocessing_logger()]
    log_setup.celery_handlers_adapted(
        [each for each in loggers if each is not None], log_format=settings.LOG_FORMAT
    )


@signals.celeryd_after_setup.connect(dispatch_uid="config.celery.worker_line")
def _worker_line(sender=None, instance=None, **_) -> None:
    """With LOG_FORMAT=json, what Celery's banner (left out: -q) said that its log
    lines do not: the worker's queues and concurrency."""
    if settings.LOG_FORMAT == "json":
        queues = ", ".join(sorted(instance.app.amqp.queues.consume_from or ()))
        logger.info("worker %s: queues %s, concurrency %s", sender, queues, instance.concurrency)


@signals.task_prerun.connect(dispatch_uid="config.celery.task_log_context")
def _task_log_context(task_id=None, task=None, args=None, kwargs=None, **_) -> None:
    log_setup.task_started(task_id=task_id, task=task, args=args, kwargs=kwargs)


@signals.task_postrun.connect(dispatch_uid="config.celery.task_log_context_end")
def _task_log_context_end(task_id=None, **_) -> None:
    log_setup.task_ended(task_id=task_id)


@contextmanager
def broker_channel(*, timeout: float) -> Iterator:
    """A channel on the broker, connected in one try within `timeout` seconds (on
    Redis: a connection that answered PING); kombu's OperationalError when it
    cannot be. For the readiness check and the queues' depths, never for tasks."""
    options = {"max_retries": 0, "socket_timeout": timeout}
    with app.connection_for_read(connect_timeout=timeout, transport_options=options) as conn:
        yield conn.default_channel


def queue_names() -> list[str]:
    """The queues tasks are sent to, read from the configuration: the default queue,
    the declared ones (task_queues) and those task_routes sends tasks to. A router
    given as a function is not read: declare its queues in task_queues."""
    # Declared in the configuration, not app.amqp.queues: that grows with every queue
    # this process has sent a task to (a test's, a one-off's) and would then be read.
    declared = app.conf.task_queues or ()
    names = {app.conf.task_default_queue, *(getattr(q, "name", q) for q in declared)}
    routes = app.conf.task_routes
    for router in routes if isinstance(routes, list | tuple) else [routes]:
        if isinstance(router, Mapping):
            destinations = router.values()
        elif isinstance(router, list | tuple):  # (task name or pattern, destination) pairs
            destinations = [pair[1] for pair in router]
        else:
            continue
        for destination in destinations:
            queue = destination.get("queue") if isinstance(destination, Mapping) else destination
            name = getattr(queue, "name", queue)
            if isinstance(name, str) and name:
                names.add(name)
    return sorted(names)


def queue_depths(*, timeout: float) -> dict[str, int]:
    """Messages waiting in each queue (queue_names), as the broker counts them: on
    Redis the length of the queue's lists (one a priority), on the filesystem
    transport its message files. Not the messages a worker holds (prefetched, or
    waiting for their countdown: a retry's), which it has taken off the queue."""
    with broker_channel(timeout=timeout) as channel:
        return {name: _waiting(channel, name) for name in queue_names()}


def _waiting(channel, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # never sent to, or emptied: Redis keeps no empty list
        return 0
