"""Settings are read from the environment at import, so each case runs in a process of
its own: production (DEBUG off) passes `check --deploy` with no warning, the embedded
mode keeps plain http, and the cache and rate limits follow their variables."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Variables that would change what these processes see, whatever the test run has set.
CLEARED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "API_THROTTLE_RATE",
    "API_AUTH_FAILURE_RATE",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_MINUTES",
    "AXES_LOCKOUT_PARAMETERS",
)


def environment(tmp_path, **variables) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    return {
        **env,
        "BILLING_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **variables,
    }


def development(tmp_path, **variables) -> dict:
    return environment(tmp_path, DEBUG="1", **variables)


def production(tmp_path, **variables) -> dict:
    return environment(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="billing.example.com",
        **variables,
    )


def python(*args: str, env: dict) -> subprocess.CompletedProcess:
    """This interpreter with these arguments, in the project, with this environment only."""
    command = [sys.executable, *args]
    return subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env)


SHOW = """
import json
from config import settings as s
c = s.CACHES["default"]
print(json.dumps({
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "CACHE": [c["BACKEND"].rsplit(".", 1)[1], c.get("LOCATION")],
    "API_THROTTLE_RATE": s.API_THROTTLE_RATE,
    "API_AUTH_FAILURE_RATE": s.API_AUTH_FAILURE_RATE,
    "AXES": [s.AXES_FAILURE_LIMIT, str(s.AXES_COOLOFF_TIME), s.AXES_LOCKOUT_PARAMETERS],
}))
"""


def settings_in(env: dict) -> dict:
    done = python("-c", SHOW, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_production_settings_pass_check_deploy_with_no_warning(tmp_path):
    # when
    done = check_deploy(production(tmp_path))

    # then
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_check_deploy_reports_a_setting_turned_off(tmp_path):
    # when: the redirect turned off (a proxy that redirects itself), with nothing in its place
    done = check_deploy(production(tmp_path, SECURE_SSL_REDIRECT="0"))

    # then
    assert done.returncode == 1
    assert "security.W008" in done.stderr
    assert "System check identified 1 issue (0 silenced)." in done.stderr


def test_production_defaults_are_https_and_shared_limits(tmp_path):
    # when: DEBUG off, Redis as the broker
    shown = settings_in(production(tmp_path, CELERY_BROKER_URL="redis://redis-host:6379/0"))

    # then
    assert shown == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "CACHE": ["RedisCache", "redis://redis-host:6379/0"],
        "API_THROTTLE_RATE": [6000, 60],
        "API_AUTH_FAILURE_RATE": [60, 60],
        "AXES": [5, "0:15:00", [["username", "ip_address"]]],
    }


def test_debug_is_off_when_the_variable_is_unset(tmp_path):
    # given: a deployment that sets its key and hosts but forgets DEBUG
    env = environment(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="b.example")

    # when
    done = python("-c", "from config import settings as s; print(s.DEBUG)", env=env)

    # then
    assert (done.returncode, done.stdout) == (0, "False\n"), done.stderr
    assert settings_in(env)["SECURE_SSL_REDIRECT"] is True


def test_nothing_set_refuses_to_start_and_names_the_development_switch(tmp_path):
    done = python("-c", SHOW, env=environment(tmp_path))

    assert done.returncode == 1
    assert (
        "SECRET_KEY and ALLOWED_HOSTS must be set when DEBUG is off (DEBUG=1 for development)"
        in done.stderr
    )


@pytest.mark.parametrize(
    ("command", "variables", "error"),
    [
        # A fresh clone, nothing set: the command an operator ran first (issue 90).
        (["close_periods"], {}, "SECRET_KEY and ALLOWED_HOSTS must be set"),
        (["migrate", "--check"], {"ALLOWED_HOSTS": "b.example"}, "SECRET_KEY must be set"),
        (["help"], {"SECRET_KEY": "k" * 50}, "ALLOWED_HOSTS must be set"),
        (["check"], {"DEBUG": "1", "API_THROTTLE_RATE": "many"}, "API_THROTTLE_RATE must be"),
    ],
)
def test_a_management_command_without_its_settings_says_what_to_set_in_one_line(
    tmp_path, command, variables, error
):
    done = python("manage.py", *command, env=environment(tmp_path, **variables))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {error}")
    assert done.stderr.count("\n") == 1, done.stderr


def test_development_mode_keeps_plain_http_and_local_memory(tmp_path):
    shown = settings_in(development(tmp_path))

    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0
    assert shown["CACHE"] == ["LocMemCache", None]


def test_every_default_is_overridable(tmp_path):
    # when: behind a TLS-terminating proxy, with a cache of its own and other limits
    shown = settings_in(
        production(
            tmp_path,
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
            SECURE_HSTS_SECONDS="3600",
            CELERY_BROKER_URL="redis://redis-host:6379/0",
            CACHE_URL="redis://cache-host:6379/2",
            API_THROTTLE_RATE="100/s",
            API_AUTH_FAILURE_RATE="off",
            AXES_FAILURE_LIMIT="10",
            AXES_COOLOFF_MINUTES="0",
            AXES_LOCKOUT_PARAMETERS="ip_address,username",
        )
    )

    # then
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["SECURE_HSTS_SECONDS"] == 3600
    assert shown["CACHE"] == ["RedisCache", "redis://cache-host:6379/2"]
    assert shown["API_THROTTLE_RATE"] == [100, 1]
    assert shown["API_AUTH_FAILURE_RATE"] is None
    assert shown["AXES"] == [10, "None", ["ip_address", "username"]]


@pytest.mark.parametrize("rate", ["6000", "6000/fortnight", "-1/min", "many/min"])
def test_a_malformed_rate_refuses_to_start(tmp_path, rate):
    done = python("-c", SHOW, env=development(tmp_path, API_THROTTLE_RATE=rate))

    assert done.returncode == 1
    assert "API_THROTTLE_RATE must be like 6000/min or off" in done.stderr


def test_the_margin_alert_percent_is_a_number_or_unset(tmp_path):
    show = "from config import settings as s; print(repr(s.BILLING_MARGIN_ALERT_PERCENT))"

    shown = [
        python("-c", show, env=development(tmp_path, BILLING_MARGIN_ALERT_PERCENT=value))
        for value in ("", "20", "-5.5")
    ]

    assert [(done.returncode, done.stdout.strip()) for done in shown] == [
        (0, "None"),
        (0, "Decimal('20')"),
        (0, "Decimal('-5.5')"),
    ]


def test_the_vat_checker_is_none_vies_or_fake_and_nothing_else_starts(tmp_path):
    show = "from config import settings as s; print(s.BILLING_VAT_CHECKER, s.BILLING_VIES_URL)"

    shown = [
        python("-c", show, env=development(tmp_path, BILLING_VAT_CHECKER=value))
        for value in ("", "VIES", "fake", "vise")
    ]

    vies = "https://ec.europa.eu/taxation_customs/vies/rest-api"
    assert [(done.returncode, done.stdout.strip()) for done in shown[:3]] == [
        (0, vies),
        (0, f"vies {vies}"),
        (0, f"fake {vies}"),
    ]
    assert shown[3].returncode == 1
    assert 'BILLING_VAT_CHECKER must be "", "vies" or "fake", got \'vise\'' in (shown[3].stderr)


@pytest.mark.parametrize("value", ["twenty", "20%", "NaN", "Infinity"])
def test_a_malformed_margin_alert_percent_refuses_to_start(tmp_path, value):
    done = python("-c", SHOW, env=development(tmp_path, BILLING_MARGIN_ALERT_PERCENT=value))

    assert done.returncode == 1
    assert f"BILLING_MARGIN_ALERT_PERCENT must be a number such as 20, got {value!r}" in (
        done.stderr
    )


def test_the_embedded_broker_names_its_host_so_kombu_warns_of_nothing(tmp_path):
    # given: no CELERY_BROKER_URL, the broker on the filesystem under var/
    send = """
import logging; logging.basicConfig()
import django; django.setup()
from config.celery import app
with app.connection_for_write() as connection:
    queue = connection.SimpleQueue("probe")
    queue.put({"n": 1})
    message = queue.get(timeout=1)
    message.ack()
    print(message.payload, connection.as_uri())
"""

    # when
    done = python("-c", send, env=development(tmp_path))

    # then: the message went through, with no "No hostname was supplied" on the way
    assert (done.returncode, done.stdout) == (0, "{'n': 1} filesystem://:**@localhost//\n")
    assert done.stderr == ""


CELERY_QUEUES_SHOWN = """
import json
import django
django.setup()
from config.celery import QUEUES, app
queues = {name: app.amqp.queues[name] for name in QUEUES}
print(json.dumps({
    "queues": {n: [q.exchange.type, q.queue_arguments] for n, q in queues.items()},
    "detect_quorum_queues": app.conf.worker_detect_quorum_queues,
    "transport_options": app.conf.broker_transport_options,
    "acks_late": app.conf.task_acks_late,
}))
"""


@pytest.mark.parametrize("url", ["amqp://guest:guest@rabbit:5672/billing", "pyamqp://rabbit//"])
def test_a_rabbitmq_broker_has_quorum_queues_on_topic_exchanges_and_confirms(tmp_path, url):
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CELERY_QUEUES_SHOWN],
        cwd=ROOT,
        env=production(tmp_path, CELERY_BROKER_URL=url),
        capture_output=True,
        text=True,
        check=True,
    )

    quorum = ["topic", {"x-queue-type": "quorum"}]
    assert json.loads(done.stdout) == {
        "queues": {"urgent": quorum, "default": quorum, "bulk": quorum},
        "detect_quorum_queues": True,
        "transport_options": {"confirm_publish": True},
        "acks_late": True,
    }


def test_a_redis_broker_keeps_celerys_classic_queues(tmp_path):
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CELERY_QUEUES_SHOWN],
        cwd=ROOT,
        env=production(tmp_path, CELERY_BROKER_URL="redis://redis-host:6379/0"),
        capture_output=True,
        text=True,
        check=True,
    )

    classic = ["direct", None]
    shown = json.loads(done.stdout)
    assert shown["queues"] == {"urgent": classic, "default": classic, "bulk": classic}
    assert shown["transport_options"] == {}
