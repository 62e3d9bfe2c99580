"""The log records every process writes (docs/running.md, Logs): their JSON form, the
context a record carries without its caller passing it (the request, the customer,
the task), and a broker outage said in one line a second instead of a flood.

Standard library only, and nothing read from the settings: granian's and gunicorn's
own processes load JsonFormatter from their --log-config file before any Django code.

    LOG_FORMAT=plain   (default) the lines as they always were, for a person
    LOG_FORMAT=json    one JSON object per line, for a log shipper:
                       {"time": "2026-11-28T08:40:20.301Z", "level": "ERROR",
                        "logger": "celery.worker.consumer.consumer", "message": "...",
                        "pid": 4182, "request_id": ..., "customer": ..., "task_id": ...,
                        "task_name": ..., "suppressed": ..., "exception": "Traceback ..."}
                       (the last six only where known)
"""

import io
import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

LOG_FORMATS = ("plain", "json")

# Set for a request by config.request_log, for a task by config.log_setup (Celery's
# task_prerun and task_postrun); read by JsonFormatter as each record is written.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
customer: ContextVar[str | None] = ContextVar("customer", default=None)
task: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)


def log_format_from(value: str | None) -> str:
    """LOG_FORMAT's value: "plain" when unset or empty; ValueError naming the choices
    for anything else."""
    chosen = (value or "").strip().lower() or "plain"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be plain or json, got {value!r}")
    return chosen


@contextmanager
def customer_context(external_id: str | None) -> Iterator[None]:
    """The records written inside name this customer (its external id, or its id
    where only that is known)."""
    token = customer.set(None if external_id is None else str(external_id))
    try:
        yield
    finally:
        customer.reset(token)


def utc_time(created: float) -> str:
    """A record's time, ISO 8601 in UTC to the millisecond: 2026-11-28T08:40:20.301Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _celery_task_of(record: logging.LogRecord) -> tuple[str, str] | None:
    """The task a Celery record is about, from its arguments: the worker's "Task
    %(name)s[%(id)s] received" is logged by its main process, outside the task."""
    args = record.args
    if record.name.startswith("celery.") and isinstance(args, Mapping) and "id" in args:
        return str(args["id"]), str(args.get("name") or "")
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: a message or a traceback over several
    lines is one string with its line breaks escaped. Fields a caller passes in
    `extra=` (request_id, customer, task_id, task_name) win over the context's, and
    a dict passed as extra={"fields": {...}} adds fields of its own (never replacing
    the ones above)."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage().rstrip()
        except Exception as exc:  # a call whose arguments do not fit its format
            message = f"{record.msg!r} % {record.args!r} ({type(exc).__name__}: {exc})"
        line = {
            "time": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "pid": record.process,
        }
        values = record.__dict__
        # Django's records about a request (django.request's "Not Found: ...", written
        # as its answer leaves, past the middleware) name it: its id and customer are
        # on it (config.request_log).
        about = values.get("request")
        request = values.get("request_id") or getattr(about, "request_id", None)
        request = request or request_id.get()
        if request:
            line["request_id"] = request
        who = values.get("customer") or getattr(about, "log_customer", None) or customer.get()
        if who is not None:
            line["customer"] = str(who)
        running = task.get() or _celery_task_of(record)
        task_id = values.get("task_id") or (running and running[0])
        if task_id and task_id != "???":  # Celery's placeholder outside a task
            line["task_id"] = task_id
            line["task_name"] = values.get("task_name") or (running[1] if running else "")
        if values.get("suppressed"):
            line["suppressed"] = values["suppressed"]
        fields = values.get("fields")
        if isinstance(fields, Mapping):
            line.update((key, value) for key, value in fields.items() if key not in line)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


# A broker that cannot be reached, by the errors it is seen through: kombu's (which
# wraps the transport's when publishing or connecting), redis-py's (the Redis
# transport, and the cache on the same Redis), py-amqp's (RabbitMQ). A connection
# error of the standard library's counts only in Celery's, kombu's and amqp's own
# records (their consumer retrying RabbitMQ): elsewhere it may be SMTP's or Stripe's.
_BROKER_ERRORS: tuple[type[BaseException], ...] | None = None
_BROKER_LOGGERS = ("celery.", "kombu.", "amqp.")


def _broker_errors() -> tuple[type[BaseException], ...]:
    global _BROKER_ERRORS
    if _BROKER_ERRORS is None:
        errors: list[type[BaseException]] = []
        try:
            from kombu.exceptions import ConnectionError as KombuConnectionError
            from kombu.exceptions import OperationalError, TimeoutError

            errors += [KombuConnectionError, OperationalError, TimeoutError]
        except ImportError:
            pass
        try:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            errors += [RedisConnectionError, RedisTimeoutError]
        except ImportError:
            pass
        try:
            from amqp.exceptions import RecoverableConnectionError

            errors.append(RecoverableConnectionError)
        except ImportError:
            pass
        _BROKER_ERRORS = tuple(errors)
    return _BROKER_ERRORS


def broker_unreachable(exc: BaseException, *, logger: str = "") -> bool:
    """Whether `exc`, or an error it was raised from or while handling (a broken
    channel's AttributeError after Redis went away), says the broker cannot be
    reached."""
    errors = _broker_errors()
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, errors):
            return True
        if isinstance(exc, ConnectionError) and logger.startswith(_BROKER_LOGGERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _record_error(record: logging.LogRecord) -> BaseException | None:
    """The broker error a record reports: its exception, or one among its arguments
    (logged as "...: %s" without a traceback)."""
    error = record.exc_info[1] if record.exc_info else None
    if error is not None and broker_unreachable(error, logger=record.name):
        return error
    args = record.args
    values = args.values() if isinstance(args, Mapping) else args or ()
    for value in values:
        if isinstance(value, BaseException) and broker_unreachable(value, logger=record.name):
            return value
    return None


_LINE_BREAKS = re.compile(r"\s*\n\s*")


class OutageLimiter:
    """One broker-unreachable record a second per process, whichever logger writes it
    (the web server's enqueues and readiness checks, a worker's consumer, gossip and
    heartbeat, the beat): the first is written, the ones within the next second are
    counted, and the next one written after it says how many were left out and from
    where. Shared by every handler of the process, so that a record two handlers
    write is counted once."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None
        self._left_out: dict[str, int] = {}

    def admit(self, created: float) -> dict[str, int] | None:
        """None when the record at `created` is left out; else what was left out
        since the last one written, by logger."""
        with self._lock:
            if self._last is not None and 0 <= created - self._last < self.interval:
                return None
            self._last = created
            left_out, self._left_out = self._left_out, {}
            return left_out

    def leave_out(self, logger: str) -> None:
        with self._lock:
            self._left_out[logger] = self._left_out.get(logger, 0) + 1


OUTAGES = OutageLimiter()


class BrokerOutageFilter(logging.Filter):
    """On a handler (every handler of a project process, config.log_setup): a record
    saying the broker cannot be reached is written as one line without its
    traceback (the error's type and message end its message instead), at most one a
    second (OUTAGES). Any other record passes untouched."""

    def __init__(self, limiter: OutageLimiter = OUTAGES):
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = record.__dict__.get("broker_outage")
        if verdict is None:
            verdict = self._judge(record)
            record.broker_outage = verdict
        return verdict != "left out"

    def _judge(self, record: logging.LogRecord) -> str:
        error = _record_error(record)
        if error is None:
            return "other"
        left_out = self.limiter.admit(record.created)
        if left_out is None:
            self.limiter.leave_out(record.name)
            return "left out"
        try:
            message = record.getMessage()
        except Exception:  # written as it is by the formatter, which says why
            return "written"
        if record.exc_info:
            summary = f"{type(error).__name__}: {error}"
            if str(error) not in message:
                message = f"{message.rstrip('. ')}: {summary}"
            record.exc_info = record.exc_text = None
        message = _LINE_BREAKS.sub(" ", message.strip())
        if left_out:
            total = sum(left_out.values())
            where = ", ".join(f"{count} {name}" for name, count in sorted(left_out.items()))
            message += f" [{total} more like it since the last, not written: {where}]"
            record.suppressed = total
        record.msg, record.args = message, None
        return "written"


class LogStream(io.TextIOBase):
    """A text stream (sys.stdout, sys.stderr) whose writes become log records of the
    logger `name`: a write that ends a line writes what the thread wrote since its
    last line as one record, so that a print() of several lines, or an email the
    console backend writes at once, is one record. A record written while the
    thread is writing one (a handler's own error report) goes to `original` as it
    is, never round again."""

    def __init__(self, name: str, level: int, original):
        super().__init__()
        self.logger = logging.getLogger(name)
        self.level = level
        self.original = original
        self._local = threading.local()

    @property
    def encoding(self) -> str:
        return getattr(self.original, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()

    def write(self, text: str) -> int:
        local = self._local
        if getattr(local, "writing", False):
            return self.original.write(text)
        pending = getattr(local, "pending", None)
        if pending is None:
            pending = local.pending = []
        pending.append(text)
        if text.endswith("\n"):
            self._emit()
        return len(text)

    def flush(self) -> None:
        self._emit()
        self.original.flush()

    def _emit(self) -> None:
        local = self._local
        pending = getattr(local, "pending", None)
        if not pending:
            return
        text = "".join(pending).strip("\n")
        pending.clear()
        if not text.strip():
            return
        local.writing = True
        try:
            self.logger.log(self.level, text)
        finally:
            local.writing = False
