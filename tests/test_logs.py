"""The log records (common.logs, config.log_setup, config.request_log): LOG_FORMAT
plain or json, the JSON object each record is, the context it carries (request id,
customer, task), a broker out of reach written once a second without its traceback,
printed lines as records, and the shell scripts' own lines (scripts/_log.sh). The
drill (tests/test_log_drill.py) runs scripts/run.sh itself with LOG_FORMAT=json."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from common import logs
from config import log_setup
from config.request_log import GIVEN_ID

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
# 2026-11-28 08:40:20.301 UTC
CREATED = 1795855220.301


def record(
    message="something %s",
    *args,
    name="billing.test",
    level=logging.WARNING,
    created=CREATED,
    exc=None,
    **extra,
):
    made = logging.LogRecord(name, level, __file__, 1, message, args or None, None)
    made.created = created
    if exc is not None:
        try:
            raise exc
        except type(exc):
            made.exc_info = sys.exc_info()
    made.__dict__.update(extra)
    return made


def as_json(made: logging.LogRecord) -> dict:
    line = logs.JsonFormatter().format(made)
    assert "\n" not in line
    return json.loads(line)


def raised(exc: BaseException, context: BaseException) -> BaseException:
    """`exc` as raised while handling `context`."""
    try:
        raise context
    except BaseException:
        try:
            raise exc  # implicitly chained, as Celery's gossip error is
        except BaseException as caught:
            return caught


# The format


@pytest.mark.parametrize(
    ("value", "chosen"),
    [(None, "plain"), ("", "plain"), (" ", "plain"), ("plain", "plain"), (" JSON ", "json")],
)
def test_log_format_is_plain_unless_json_is_asked(value, chosen):
    assert logs.log_format_from(value) == chosen


def test_any_other_log_format_is_refused_as_the_settings_load():
    for value in ("xml", "jsonl"):
        with pytest.raises(ValueError, match=f"LOG_FORMAT must be plain or json, got '{value}'"):
            logs.log_format_from(value)
    env = {**os.environ, "LOG_FORMAT": "xml", "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(  # noqa: S603 (the project's interpreter, fixed code)
        [str(PYTHON), "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: LOG_FORMAT must be plain or json, got 'xml'"
    )


# The JSON object of a record


def test_a_record_is_one_json_object_with_its_time_in_utc():
    assert as_json(record("%s events stored", 3, level=logging.INFO)) == {
        "time": "2026-11-28T08:40:20.301Z",
        "level": "INFO",
        "logger": "billing.test",
        "message": "3 events stored",
        "pid": os.getpid(),
    }


def test_an_exception_is_a_field_of_its_record_not_lines_after_it():
    got = as_json(record("it broke", exc=ValueError("bad\nvalue")))
    assert got["message"] == "it broke"
    assert got["exception"].startswith("Traceback (most recent call last):\n")
    assert got["exception"].endswith("ValueError: bad\nvalue")


def test_a_record_carries_the_request_and_customer_of_its_context():
    request_token = logs.request_id.set("req-1")
    try:
        with logs.customer_context("acme"):
            inside = as_json(record("inside"))
        after = as_json(record("after"))
    finally:
        logs.request_id.reset(request_token)
    assert (inside["request_id"], inside["customer"]) == ("req-1", "acme")
    assert (after["request_id"], "customer" in after) == ("req-1", False)
    assert "request_id" not in as_json(record("outside"))


def test_what_a_caller_passes_wins_over_the_context():
    with logs.customer_context("acme"):
        got = as_json(record("x", customer=42, request_id="given", fields={"status": 503}))
    assert (got["customer"], got["request_id"], got["status"]) == ("42", "given", 503)
    # fields never replace the ones every record has
    assert as_json(record("x", fields={"level": "nope"}))["level"] == "WARNING"


def test_celerys_task_lines_carry_the_task_they_are_about():
    received = record(
        "Task %(name)s[%(id)s] received",
        {"name": "billing.tasks.fold_usage", "id": "t-1"},
        name="celery.worker.strategy",
        level=logging.INFO,
    )
    assert as_json(received)["task_id"] == "t-1"
    assert as_json(received)["task_name"] == "billing.tasks.fold_usage"
    # and a record written inside a task, the task's (config.log_setup.task_started)
    token = logs.task.set(("t-2", "invoices.tasks.render_invoice_pdf"))
    try:
        inside = as_json(record("rendering"))
    finally:
        logs.task.reset(token)
    assert (inside["task_id"], inside["task_name"]) == ("t-2", "invoices.tasks.render_invoice_pdf")
    # Celery's placeholder outside a task is no task
    assert "task_id" not in as_json(record("x", task_id="???", task_name="???"))


def test_a_record_whose_arguments_do_not_fit_is_still_written():
    got = as_json(record("%s and %s", "one"))
    assert got["message"].startswith("'%s and %s' % ('one',) (TypeError: ")


# A broker out of reach


def broker_filter() -> logs.BrokerOutageFilter:
    return logs.BrokerOutageFilter(logs.OutageLimiter())


def test_a_broker_error_is_one_line_without_its_traceback():
    error = RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")
    made = record("Error calling %s in on_commit()", "send billing.tasks.x", exc=error)

    assert broker_filter().filter(made) is True
    got = as_json(made)
    assert "exception" not in got
    assert got["message"] == (
        "Error calling send billing.tasks.x in on_commit(): "
        "ConnectionError: Error 111 connecting to redis:6379. Connection refused."
    )


def test_broker_errors_are_written_once_a_second_and_the_next_line_counts_the_rest():
    # given: the same process's handlers (one filter each, one limiter)
    limiter = logs.OutageLimiter()
    web, other = logs.BrokerOutageFilter(limiter), logs.BrokerOutageFilter(limiter)
    refused = KombuOperationalError("Error 111 connecting to redis:6379. Connection refused.")

    def broker_line(at: float, name="config.health"):
        return record("readiness: broker unavailable: %s", refused, name=name, created=at)

    first = broker_line(CREATED)
    assert web.filter(first) and other.filter(first)  # a record two handlers write counts once
    # within the second: left out, whichever logger writes it
    assert not web.filter(broker_line(CREATED + 0.2))
    assert not other.filter(broker_line(CREATED + 0.5, name="django.db.backends.base"))
    assert not web.filter(broker_line(CREATED + 0.999))
    # a second after the last one written: written, saying what was left out
    later = broker_line(CREATED + 1.0)
    assert web.filter(later)
    got = as_json(later)
    assert got["suppressed"] == 3
    assert got["message"].endswith(
        "[3 more like it since the last, not written: 2 config.health, 1 django.db.backends.base]"
    )
    # any other record passes whatever the time, its traceback kept
    assert web.filter(record("other", created=CREATED + 1.1, exc=ValueError("v")))
    assert "exception" in as_json(record("other", exc=ValueError("v")))


def test_a_broker_line_over_several_lines_is_one_in_plain_too():
    refused = KombuOperationalError("Error 111 connecting. Connection refused.")
    made = record(
        "consumer: Cannot connect to %s: %s.\n%s\n",
        "redis://localhost:6379/0",
        refused,
        "Trying again in 2.00 seconds... (1/100)",
        name="celery.worker.consumer.consumer",
    )
    assert broker_filter().filter(made)
    assert logging.Formatter().format(made) == (
        "consumer: Cannot connect to redis://localhost:6379/0: Error 111 connecting. "
        "Connection refused.. Trying again in 2.00 seconds... (1/100)"
    )


def test_an_error_raised_while_handling_a_lost_broker_is_the_outage_too():
    # Celery's gossip restarting on a channel Redis closed under it
    error = raised(
        AttributeError("'NoneType' object has no attribute 'connection_errors'"),
        RedisConnectionError("Connection closed by server."),
    )
    assert logs.broker_unreachable(error)
    assert not logs.broker_unreachable(raised(AttributeError("x"), ValueError("y")))


def test_the_standard_librarys_connection_errors_count_only_in_celerys_records():
    refused = ConnectionRefusedError(111, "Connection refused")
    assert logs.broker_unreachable(refused, logger="celery.worker.consumer.consumer")
    assert logs.broker_unreachable(refused, logger="kombu.connection")
    # an SMTP server or Stripe refusing is not the broker
    assert not logs.broker_unreachable(refused, logger="invoices.emails")
    made = record("sending failed", name="invoices.emails", exc=refused)
    assert broker_filter().filter(made)
    assert made.exc_info is not None


# What a process prints


def test_what_a_process_prints_is_one_record_a_line_written():
    written = []

    class Collect(logging.Handler):
        def emit(self, made):
            written.append((made.levelname, made.getMessage()))

    collect = Collect()
    logger = logging.getLogger("stdout.test")
    logger.addHandler(collect)
    logger.propagate = False
    original = io.StringIO()
    stream = logs.LogStream("stdout.test", logging.INFO, original)
    try:
        print("Operations to perform:\n  Apply all migrations", file=stream)
        stream.write("folded ")
        stream.write("12 rows")
        assert written == [("INFO", "Operations to perform:\n  Apply all migrations")]
        stream.write(" of events\n")
        stream.write("\n")  # a blank line is no record
        stream.write("no end")
        stream.flush()
    finally:
        logger.removeHandler(collect)
        logger.propagate = True
    assert written == [
        ("INFO", "Operations to perform:\n  Apply all migrations"),
        ("INFO", "folded 12 rows of events"),
        ("INFO", "no end"),
    ]
    assert original.getvalue() == ""


def test_a_handler_writing_to_the_captured_stream_is_not_written_round_again():
    original = io.StringIO()
    stream = logs.LogStream("loop.test", logging.WARNING, original)
    loop = logging.StreamHandler(stream)
    loop.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("loop.test")
    logger.addHandler(loop)
    logger.propagate = False
    try:
        stream.write("printed\n")
    finally:
        logger.removeHandler(loop)
        logger.propagate = True
    assert json.loads(original.getvalue())["message"] == "printed"


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        **env,
    }
    return subprocess.run(  # noqa: S603 (the project's interpreter, fixed code)
        [str(PYTHON), *(["-c", code] if code else []), *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    return lines


def test_a_command_in_json_writes_json_lines_only():
    # A command's output, a warning, a record, a print and an uncaught exception.
    done = run_python(
        "",
        "manage.py",
        "shell",
        "--no-imports",
        "-c",
        "import logging, sys, warnings;"
        "logging.getLogger('billing.x').info('a record');"
        "warnings.warn('careful');"
        "1 / 0",
        LOG_FORMAT="json",
    )
    # shell is interactive, so its streams stay as they are; the records do not
    assert done.returncode == 1
    lines = json_lines(done.stderr)
    assert [(line["logger"], line["message"].split(": ")[-1]) for line in lines] == [
        ("billing.x", "a record"),
        ("py.warnings", "careful"),
        ("uncaught", "division by zero"),
    ]
    assert lines[-1]["exception"].endswith("ZeroDivisionError: division by zero")

    # what a command prints stays on standard output (a pipe reads it), as JSON lines
    done = run_python("", "manage.py", "check", LOG_FORMAT="json")
    assert done.returncode == 0
    assert done.stderr == ""
    assert [line["message"] for line in json_lines(done.stdout)] == [
        "System check identified no issues (0 silenced)."
    ]


def test_a_command_printing_data_keeps_it_as_it_is():
    done = run_python("", "manage.py", "diffsettings", "--all", LOG_FORMAT="json")
    assert done.returncode == 0
    assert "LOG_FORMAT = 'json'  ###" in done.stdout.splitlines()


def test_plain_is_what_it_always_was():
    done = run_python("", "manage.py", "check")
    no_issues = "System check identified no issues (0 silenced).\n"
    assert (done.returncode, done.stdout) == (0, no_issues)


# Requests


def test_each_answer_carries_its_request_id_and_keeps_one_given():
    first = Client().get("/healthz")
    second = Client().get("/healthz")
    assert GIVEN_ID.fullmatch(first["X-Request-ID"]) and len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]
    given = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.1")
    assert given["X-Request-ID"] == "lb-7f3a.1"
    # one that is no id is replaced
    odd = Client().get("/healthz", HTTP_X_REQUEST_ID='a b"c')
    assert len(odd["X-Request-ID"]) == 32


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
        self.setFormatter(logs.JsonFormatter())

    def emit(self, made):
        self.lines.append(json.loads(self.format(made)))


@pytest.fixture
def captured():
    handler = Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)


def test_a_requests_records_carry_its_id_and_customer_and_json_adds_its_line(
    api, settings, captured
):
    settings.LOG_FORMAT = "json"
    response = api.get("/api/v1/customers/nobody_here", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 404
    by_logger = {line["logger"]: line for line in captured}
    # Django's "Not Found" warning, written inside the request
    assert by_logger["django.request"]["request_id"] == "req-42"
    assert by_logger["django.request"]["customer"] == "nobody_here"
    line = by_logger["config.request_log"]
    assert line["message"].startswith('"GET /api/v1/customers/nobody_here" 404 ')
    assert (line["request_id"], line["customer"], line["status"]) == ("req-42", "nobody_here", 404)
    assert line["level"] == "WARNING"


def test_plain_writes_no_request_line(api, settings, captured):
    settings.LOG_FORMAT = "plain"
    api.get("/api/v1/customers/nobody_here")
    assert "config.request_log" not in {line["logger"] for line in captured}


def test_a_portal_token_is_left_out_of_the_request_line(client, settings, captured, db):
    settings.LOG_FORMAT = "json"
    client.get("/portal/sEcReT-tOkEn/")
    line = next(line for line in captured if line["logger"] == "config.request_log")
    assert line["path"] == "/portal/<token>/"
    assert "sEcReT" not in line["message"]


# Celery's handlers and tasks


def test_celerys_handlers_get_the_filter_and_in_json_the_formatter(monkeypatch):
    from celery.apps import worker

    monkeypatch.setattr(worker, "safe_say", worker.safe_say)  # replaced in json
    logger = logging.getLogger("celery.test")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        log_setup.celery_handlers_adapted([logger], log_format="plain")
        log_setup.celery_handlers_adapted([logger], log_format="plain")
        assert [type(f) for f in handler.filters] == [logs.BrokerOutageFilter]
        assert not isinstance(handler.formatter, logs.JsonFormatter)
        log_setup.celery_handlers_adapted([logger], log_format="json")
        assert isinstance(handler.formatter, logs.JsonFormatter)
    finally:
        logger.removeHandler(handler)


def test_a_tasks_records_carry_it_and_the_customer_it_names(captured):
    class Task:
        name = "invoices.tasks.sync_stripe_customer"

        def run(self, customer_id):
            logging.getLogger("invoices.test").warning("syncing")

    task = Task()
    with logs.customer_context("outer"):
        log_setup.task_started(task_id="t-9", task=task, args=[17], kwargs={})
        task.run(17)
        log_setup.task_ended(task_id="t-9")
        logging.getLogger("invoices.test").warning("after")
    inside, after = captured[-2:]
    assert (inside["task_id"], inside["task_name"], inside["customer"]) == (
        "t-9",
        "invoices.tasks.sync_stripe_customer",
        "17",
    )
    # the context as it was before the task (an eager task inside a request)
    assert (after.get("task_id"), after["customer"]) == (None, "outer")


def test_the_customer_of_a_task_is_the_one_it_names():
    class Check:
        def run(self, customer_ids):
            pass

    assert log_setup.task_customer(Check(), [[5]], {}) == "5"
    assert log_setup.task_customer(Check(), [], {"customer_ids": [5, 6]}) is None
    assert log_setup.task_customer(Check(), [1, 2, 3], {}) is None  # arguments that do not fit


# The shell scripts' own lines


def bash(script: str, **env: str) -> str:
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", f'. "$1"; {script}', "-", str(ROOT / "scripts" / "_log.sh")],  # noqa: S607
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_scripts_lines_are_json_objects_whatever_they_hold():
    awkward = 'a "quoted" \\ back\tslash é 日本 \x1b[1mbold\x07'
    out = bash('log_line INFO run.sh "$MESSAGE"', LOG_FORMAT="json", MESSAGE=awkward)
    (line,) = json_lines(out)
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "run.sh", awkward)
    assert line["time"].endswith("Z")
    out = bash("printf 'one\\n\\ntwo\\r\\nthree' | json_lines WARNING setup", LOG_FORMAT="json")
    assert [line["message"] for line in json_lines(out)] == ["one", "two", "three"]
    # plain: as they always were
    assert bash('log_line INFO run.sh "$MESSAGE"', MESSAGE=awkward) == awkward + "\n"


def test_the_scripts_refuse_another_log_format():
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", '. "$1"; log_format_check', "-", str(ROOT / "scripts" / "_log.sh")],  # noqa: S607
        env={**os.environ, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 64
    assert done.stderr == "error: LOG_FORMAT must be plain or json, got 'xml'\n"


def test_the_supervisors_restart_line_is_a_json_object(tmp_path):
    supervisor = subprocess.Popen(  # noqa: S603
        ["bash", str(ROOT / "scripts" / "_supervise.sh"), "quitter", "true"],  # noqa: S607
        env={**os.environ, "LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = supervisor.stderr.readline()
    finally:
        supervisor.terminate()
        supervisor.communicate(timeout=30)
    line = json.loads(first)
    assert (line["level"], line["logger"]) == ("WARNING", "supervise")
    assert line["message"].startswith("quitter exited (status 0) after 0 s; starting it again")
