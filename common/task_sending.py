"""How a service starts a task and what time it gives it: by name, once the current
transaction commits (enqueue_on_commit), with the time limits of its kind
(time_limits). Looked up in the running Celery app (config.celery makes it the current
one), so that no domain module imports the project's wiring or a tasks module."""

from celery import Task, current_app
from django.conf import settings
from django.db import transaction

# The longest a task may wait in the broker for its countdown, in seconds. Anything
# due later is a row with its due time that a beat sweep sends when due (a payment's,
# a webhook's or an email's retry): a worker holds a task with a countdown unacked
# until it runs, which RabbitMQ ends at its consumer timeout (30 minutes by default:
# the channel closed, the task delivered again) and which Redis delivers a second time
# past its visibility timeout; a broker restarted empty loses it outright.
COUNTDOWN_LIMIT_SECONDS = 300


def time_limits(kind: str) -> dict[str, int]:
    """The time limits a task of this kind names (settings.BILLING_TASK_LIMITS: "pdf",
    "beat", "bulk"), for its decorator: @shared_task(..., **time_limits("pdf")). A task
    naming none has the default (CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT).
    At the soft limit SoftTimeLimitExceeded is raised in the task (its transaction
    rolls back, the task fails and is not redelivered); at the hard one its process is
    killed and replaced, and the worker goes on with the next task."""
    soft, hard = settings.BILLING_TASK_LIMITS[kind]
    return {"soft_time_limit": soft, "time_limit": hard}


def enqueue_on_commit(
    name: str, *args, countdown: float = 0, robust: bool = True, **kwargs
) -> None:
    """Send the task registered as `name` (its module path and function name, e.g.
    "invoices.tasks.render_invoice_pdf") with these arguments once the current
    transaction commits, at once when there is none. How every service starts a
    task: by name, so that no service imports a tasks module, which imports the
    services back. The task is looked up in the app's registry (every tasks module
    is loaded before the first lookup), so its routing, retries and eager mode in
    tests apply as if it were called directly. `robust` (the default): a broker out
    of reach is logged, not raised, and never undoes what committed; each caller
    says what finds the work later (a beat task, the next batch, the first download).
    An unknown name raises KeyError at once, inside the transaction, and so does a
    `countdown` over COUNTDOWN_LIMIT_SECONDS (ValueError: work due later is a row a
    beat sweep sends, never a task waiting in the broker)."""
    task = _registered(name)
    if countdown > COUNTDOWN_LIMIT_SECONDS:
        raise ValueError(
            f"{name}: a countdown of {countdown} s is over {COUNTDOWN_LIMIT_SECONDS} s; "
            "work due later is a row that a beat sweep sends when due"
        )

    def send() -> None:
        task.apply_async(args, kwargs, countdown=countdown or None)

    send.__qualname__ = f"send {name}"
    transaction.on_commit(send, robust=robust)


def _registered(name: str) -> Task:
    if name not in current_app.tasks:
        # The tasks modules are imported by the worker when it starts; in a web
        # process, the first time a task is sent.
        current_app.loader.import_default_modules()
    return current_app.tasks[name]
