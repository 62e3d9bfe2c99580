"""How every process of the project logs (docs/running.md, Logs), by LOG_FORMAT:
settings.LOGGING (logging_settings), applied by Django as it sets up
(configure_logging, settings.LOGGING_CONFIG), and Celery's own handlers adapted
after Celery sets them up (config.celery calls celery_handlers_adapted and the task
hooks below).

In both formats a broker out of reach is one line a second at most, without its
traceback (common.logs.BrokerOutageFilter on every handler). In JSON, besides
the records: Python's warnings, an uncaught exception (one record, its traceback a
field), and what the process prints (a command's output, runserver's banner, the
console email backend's emails) are JSON lines too, a write that ends a line being
one record of the logger "stdout" or "stderr".

The servers' own processes are set up by their command lines (the JSON dictConfig
file config/json_logging.json: granian's --log-config, gunicorn's --log-config-json);
Celery's banner is left out with -q (scripts/run.sh, scripts/container_entrypoint.sh).
"""

import contextlib
import inspect
import logging
import logging.config
import os
import sys
import threading
from pathlib import Path

from common import logs

# Commands whose standard output is what they make (a file's contents, data a
# script reads, SQL), left as it is in JSON: their messages on standard error and
# their log records are JSON lines. The interactive ones keep both streams.
DATA_COMMANDS = frozenset(
    {
        "dumpdata",
        "spectacular",
        "sqlmigrate",
        "sqlflush",
        "sqlsequencereset",
        "inspectdb",
        "diffsettings",
        # scripts/run.sh reads the dev admin's password and the dev API key from these;
        # an operator's script reads a new key's secret.
        "ensure_dev_admin",
        "ensure_dev_api_key",
        "create_api_key",
    }
)
INTERACTIVE_COMMANDS = frozenset({"shell", "dbshell", "createsuperuser", "changepassword"})

# Logged at WARNING by default: dozens of lines per PDF, or a line per request.
QUIET_LOGGERS = {
    # PDF rendering: WeasyPrint's progress steps and fontTools' subsetting report
    # dozens of lines per document at INFO.
    "weasyprint.progress": {"level": "WARNING"},
    "fontTools": {"level": "WARNING"},
    # The stripe library logs each request at INFO; invoices.stripe_client logs
    # the retries and invoices.collection the failures.
    "stripe": {"level": "WARNING"},
}


def logging_settings(*, log_format: str, level: str) -> dict:
    """settings.LOGGING: every record to standard error through the root logger's
    handler, plain (its message alone, as Django's default handler writes it) or
    JSON. In JSON, Django's own handlers (its DEBUG console, runserver's request
    lines, the admins' emails) are taken off, so their records reach that one
    handler."""
    handler = {"class": "logging.StreamHandler", "filters": ["broker_outage"]}
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"broker_outage": {"()": "common.logs.BrokerOutageFilter"}},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {name: dict(options) for name, options in QUIET_LOGGERS.items()},
    }
    if log_format == "json":
        config["formatters"] = {"json": {"()": "common.logs.JsonFormatter"}}
        handler["formatter"] = "json"
        # The process's own standard error, also once sys.stderr writes records.
        handler["stream"] = "ext://sys.__stderr__"
        for name in ("django", "django.server", "py.warnings"):
            config["loggers"][name] = {"handlers": [], "propagate": True}
    return config


def configure_logging(config: dict) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, and in JSON what a JSON log
    needs beyond the records (the module's docstring)."""
    from django.conf import settings

    logging.config.dictConfig(config)
    # Django's own handlers too (its DEBUG console, runserver's request lines), which
    # this configuration keeps in plain.
    outage_filtered(
        handler
        for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]
        for handler in getattr(logger, "handlers", ())
    )
    if settings.LOG_FORMAT == "json":
        logging.captureWarnings(True)
        log_uncaught_exceptions()
        capture_output(sys.argv)


def log_uncaught_exceptions() -> None:
    """An exception nothing caught, in the main thread or another, written as one
    record (its traceback the record's exception) rather than printed."""
    uncaught = logging.getLogger("uncaught")

    def main_thread(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            uncaught.warning("interrupted (KeyboardInterrupt)")
            return
        uncaught.critical(
            "uncaught %s: %s", kind.__name__, value, exc_info=(kind, value, traceback)
        )

    def other_thread(args):
        if issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "?"
        uncaught.critical(
            "uncaught %s in thread %s: %s",
            args.exc_type.__name__,
            name,
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = main_thread
    threading.excepthook = other_thread


def capture_output(argv: list[str]) -> None:
    """sys.stdout and sys.stderr as log records (common.logs.LogStream), but
    for the commands that print data or talk to a person (DATA_COMMANDS,
    INTERACTIVE_COMMANDS): what is printed to standard output stays there, as JSON
    lines; the other handlers keep the streams they were given."""
    command = argv[1] if len(argv) > 1 and Path(argv[0]).name == "manage.py" else None
    if command in INTERACTIVE_COMMANDS:
        return
    if command not in DATA_COMMANDS and not isinstance(sys.stdout, logs.LogStream):
        # Its records stay on standard output, where a pipe or a script reads what a
        # command prints (`manage.py showmigrations | grep`), as JSON lines.
        printed = logging.getLogger("stdout")
        handler = logging.StreamHandler(sys.__stdout__)
        handler.setFormatter(logs.JsonFormatter())
        handler.addFilter(logs.BrokerOutageFilter())
        printed.handlers = [handler]
        printed.propagate = False
        sys.stdout = logs.LogStream("stdout", logging.INFO, sys.stdout)
    if not isinstance(sys.stderr, logs.LogStream):
        sys.stderr = logs.LogStream("stderr", logging.WARNING, sys.stderr)


def celery_handlers_adapted(loggers: list[logging.Logger], *, log_format: str) -> None:
    """The handlers Celery set on these loggers (the worker's and beat's root logger,
    celery.task's, billiard's): the broker outage filter, and in JSON the JSON
    formatter in place of Celery's."""
    handlers = [handler for logger in loggers for handler in logger.handlers]
    outage_filtered(handlers)
    if log_format == "json":
        for handler in handlers:
            handler.setFormatter(logs.JsonFormatter())
        celery_says_json()


def outage_filtered(handlers) -> None:
    """The broker outage filter on each of these handlers that has none yet."""
    for handler in handlers:
        if not any(isinstance(f, logs.BrokerOutageFilter) for f in handler.filters):
            handler.addFilter(logs.BrokerOutageFilter())


def celery_says_json() -> None:
    """The few lines Celery's worker writes itself, past logging and sys.stdout, to
    its standard output's file descriptor ("worker: Warm shutdown (MainProcess)", from
    its signal handlers, where logging could deadlock: celery.apps.worker.safe_say):
    JSON objects too, written the same way, in one os.write."""
    from celery.apps import worker

    formatter = logs.JsonFormatter()

    def say(message, stream=None) -> None:
        record = logging.LogRecord(
            "celery.apps.worker", logging.INFO, __file__, 0, str(message).strip(), None, None
        )
        line = (formatter.format(record) + "\n").encode()
        # As Celery's: a line lost must not stop the shutdown.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.write((stream or sys.__stderr__).fileno(), line)

    worker.safe_say = say


# The context a running task set (task_started), by task id, reset as it ends.
_task_tokens: dict[str, tuple] = {}


def task_started(*, task_id: str, task, args, kwargs) -> None:
    """Celery's task_prerun: the task's records carry its id and name, and the
    customer it is about when an argument names one."""
    tokens = (
        logs.task.set((task_id, task.name)),
        logs.customer.set(task_customer(task, args or (), kwargs or {})),
    )
    _task_tokens[task_id] = tokens


def task_ended(*, task_id: str) -> None:
    """Celery's task_postrun: the context as it was before the task (an eager task
    runs inside a request, whose customer it must not leave behind)."""
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        logs.task.reset(tokens[0])
        logs.customer.reset(tokens[1])


def task_customer(task, args, kwargs) -> str | None:
    """The customer a task is about: its `customer_id` argument, or `customer_ids`
    naming one."""
    try:
        arguments = inspect.signature(task.run).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return None
    if arguments.get("customer_id") is not None:
        return str(arguments["customer_id"])
    ids = arguments.get("customer_ids")
    if isinstance(ids, list | tuple) and len(ids) == 1:
        return str(ids[0])
    return None
