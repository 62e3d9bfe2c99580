import gc
import os
import re
import shutil
import tempfile
from urllib.parse import quote, unquote

import pytest
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Property tests are about values, never about time: a machine busy with other work
# (two test processes a core, a CI neighbour) must not fail them as "too slow".
# In CI (CI=true) they draw the same examples on every run, so that whether main is
# green does not depend on the draw; elsewhere each run draws new ones, and a failure
# prints the blob that replays it (@reproduce_failure).
hypothesis_settings.register_profile(
    "billing",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI", "").lower() == "true",
    print_blob=True,
)
hypothesis_settings.load_profile("billing")


def pytest_configure(config):
    _broker_of_this_worker()
    _flush_by_delete()
    _seeds_after_a_flush()
    # The translation catalogs are build output (scripts/compilemessages.py, which
    # scripts/test.sh runs too): compiled here as well, so that a bare `pytest`
    # renders French and German invoices. Writes only a .mo whose .po changed.
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    compiler = runpy.run_path(str(root / "scripts" / "compilemessages.py"))
    compiler["compile_all"]([root / "locale"])

    # No worker runs under pytest: tasks run where they are sent. A test about
    # the worker itself starts one and turns this off.
    from config.celery import app

    app.conf.task_always_eager = True

    # Files the code writes (invoice PDFs) go to a directory of this run, for the
    # worker processes a test starts too, never to var/media.
    from django.conf import settings

    media = tempfile.mkdtemp(prefix="billing-tests-media-")
    os.environ["MEDIA_ROOT"] = settings.MEDIA_ROOT = media
    config.add_cleanup(lambda: shutil.rmtree(media, ignore_errors=True))

    # The API's rate limits count in the cache; tests clear it between them, so it is
    # this process's memory, never a Redis that the settings found in CACHE_URL or
    # CELERY_BROKER_URL (clearing that would empty its database).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    # Users are made in hundreds of tests: hashed cheaply, verifiable by the default
    # hasher everywhere (tests/password_hashers.py).
    settings.PASSWORD_HASHERS = [
        "tests.password_hashers.OneIterationPBKDF2PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


def _flush_by_delete() -> None:
    """After each transactional test pytest-django empties the database with Django's
    flush, on PostgreSQL a TRUNCATE of every table: half a second each time for
    about a hundred tables, mostly empty. In this run it deletes their rows instead
    (a tenth of that), the foreign keys deferred (all of ours are DEFERRABLE
    INITIALLY DEFERRED), sequences left as TRUNCATE without RESTART IDENTITY leaves
    them. Production's flush is not touched."""
    if connection.vendor != "postgresql":
        return
    operations = type(connection.ops)
    truncate = operations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        deletes = [f"{style.SQL_KEYWORD('DELETE FROM')} {self.quote_name(t)};" for t in tables]
        return [f"{style.SQL_KEYWORD('SET CONSTRAINTS ALL DEFERRED')};", *deletes]

    operations.sql_flush = sql_flush


def _seeds_after_a_flush() -> None:
    """What a migration writes besides tables (customers 0008: the default billing
    entity, from the settings) is written again after pytest-django's flush of a
    transactional test (Django's flush then sends post_migrate), so that a test after
    one finds the database as migrate left it, whatever order the tests run in."""
    from importlib import import_module

    from django.apps import apps
    from django.db.models.signals import post_migrate

    seed = import_module("customers.migrations.0008_billing_entity_from_settings").seed

    def seeds_again(sender, using, **kwargs):
        if sender.label == "customers":
            seed(apps, None)

    post_migrate.connect(seeds_again, weak=False, dispatch_uid="tests.seeds_after_a_flush")


def _broker_of_this_worker() -> None:
    """Under pytest-xdist (scripts/test.sh), each test process has a broker of its own,
    so that the real workers one process's tests start never take another's tasks,
    nor a purge empty its queues: on Redis worker gwN takes the run's database number
    plus N; on RabbitMQ the virtual host `<the run's>-gwN`, made here (rabbitmqctl)
    if it is not there yet. In the environment, which the Celery workers a test
    starts inherit, and in this process's settings, read before this runs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not worker.startswith("gw"):
        return
    redis = re.fullmatch(r"(redis://[^/]*)/(\d+)", broker)
    rabbitmq = re.fullmatch(r"((?:py)?amqps?://(?:([^:@/]*)(?::[^@/]*)?@)?[^/]*)/?([^/?]*)", broker)
    if redis:
        broker = f"{redis[1]}/{(int(redis[2]) + int(worker[2:])) % 16}"
    elif rabbitmq:
        run_vhost = unquote(rabbitmq[3]).strip("/") or "billing-tests"
        vhost = f"{run_vhost}-{worker}"
        _rabbitmq_vhost_ensure(vhost, user=unquote(rabbitmq[2] or "guest"))
        broker = f"{rabbitmq[1]}/{quote(vhost, safe='')}"
    else:
        return
    os.environ["CELERY_BROKER_URL"] = broker

    from django.conf import settings

    from config.celery import app

    settings.CELERY_BROKER_URL = app.conf.broker_url = broker


def _rabbitmq_vhost_ensure(vhost: str, *, user: str) -> None:
    """The virtual host on the local RabbitMQ, `user` allowed everything in it."""
    import subprocess

    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise pytest.UsageError(
            "a RabbitMQ broker under pytest-xdist needs rabbitmqctl (a virtual host per "
            "test process); or run in one process (TEST_WORKERS=0)"
        )
    listed = subprocess.run([ctl, "-q", "list_vhosts"], capture_output=True, text=True)  # noqa: S603
    if vhost not in listed.stdout.split():
        subprocess.run([ctl, "-q", "add_vhost", vhost], capture_output=True, check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


# Files whose tests take seconds each (a browser, a migration back and forth, real
# processes racing): run first, so that the test processes end together on the short
# tests instead of one waiting for the other's last browser.
_SLOW_FILES = re.compile(
    r"(_browser|concurrency|test_billing_entities|test_folding|test_daily_rollups"
    r"|test_urgent_queue|test_hostile_input|test_hostile_lists|test_metrics_scrape"
    r"|test_chunked_bodies|test_closed_days_adversarial)\.py$"
)


def pytest_collection_finish(session):
    """What the test process has loaded by now (Django, the project, every test
    module) lives as long as the process: frozen out of the cyclic collector's
    walks, and the young generation collected less often, as config/wsgi.py does
    for a server. The tests make millions of small objects, and with the default
    thresholds each test process spent about a tenth of its time collecting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def _uses_the_browser(item) -> bool:
    return "browser_page" in getattr(item, "fixturenames", ())


def _slow_first(item) -> int:
    """The browser tests first, together (each test process keeps one browser open
    while they run), then the other slow files, then the rest."""
    if _uses_the_browser(item):
        return 0
    return 1 if _SLOW_FILES.search(item.path.name) else 2


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL; on SQLite they are skipped with the reason.
    In CI (CI=true) the database must be PostgreSQL, so none of them is skipped there.
    The slow tests first (_slow_first; each file's tests kept in their order)."""
    items.sort(key=_slow_first)
    on_postgres = connection.vendor == "postgresql"
    if os.environ.get("CI") == "true" and not on_postgres:
        raise pytest.UsageError("CI runs the suite on PostgreSQL: set DATABASE_URL")
    if on_postgres:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...); always runs in CI"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _alert_checks_after_every_batch(settings):
    """Tasks run eagerly here, so a trailing (throttled) check would run at once and
    then cover nothing later: tests check alerts after every batch. The throttle
    has its own test."""
    from tests.shared_rows import EVERY_TEST_SETTINGS

    settings.BILLING_ALERT_CHECK_SECONDS = EVERY_TEST_SETTINGS["BILLING_ALERT_CHECK_SECONDS"]


@pytest.fixture(autouse=True)
def _fold_after_every_batch(settings):
    """On PostgreSQL each batch's rollups wait in the tail until a fold
    (billing.usage.folding): tests fold after every batch, so that the fold runs
    everywhere and rollup rows are there to look at. The reads of an unfolded tail
    have tests of their own (tests/billing/test_folding.py)."""
    from tests.shared_rows import EVERY_TEST_SETTINGS

    settings.BILLING_FOLD_MS = EVERY_TEST_SETTINGS["BILLING_FOLD_MS"]


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Ingestion caches customers and meters per process; a test's rolled-back rows
    must not leak into the next test through them, nor one test's requests count
    against the next one's rate limits (the cache). What never changes while the
    process runs (the PDF renderer, the time zones, the column converters) is kept."""
    from django.core.cache import cache

    from config.process_caches import process_caches_clear

    process_caches_clear(also_constant=False)
    cache.clear()
    yield
    process_caches_clear(also_constant=False)
    cache.clear()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, django_db_blocker):
    """Before pytest-django makes this process's test database: make it a copy of
    the migrated template (tests/template_databases.py) instead of migrating it."""
    from tests import template_databases

    with django_db_blocker.unblock():
        template_databases.prepare(connection)


@pytest.fixture(scope="module")
def module_transaction(request, django_db_setup, django_db_blocker):
    """A transaction held open across a test module's tests, for rows made once for
    all of them (tests/shared_rows.py), rolled back after the last."""
    from tests.shared_rows import ModuleTransaction

    held = ModuleTransaction(request, django_db_blocker)
    yield held
    held.close()


@pytest.fixture
def sent_ahead(monkeypatch):
    """The statements each read-ahead round trip sent together (common.rawsql
    read_ahead): the first, then those ahead, each by the start of its text."""
    from common import rawsql

    sent = []
    together = rawsql._fetched_together

    def spy(db, statements):
        sent.append([sql[:24] for sql, _ in statements])
        return together(db, statements)

    monkeypatch.setattr(rawsql, "_fetched_together", spy)
    return sent


@pytest.fixture
def delayed_sends(monkeypatch):
    """The tasks sent with a delay (a countdown or an eta, by apply_async or a task's
    retry), eager or not, as (task name, countdown, eta): what would wait in a real
    broker. A retry due later than common.task_sending.COUNTDOWN_LIMIT_SECONDS must be a
    row that a beat sweep sends, never one of these."""
    from config.celery import BillingTask

    sent = []
    send, retry = BillingTask.apply_async, BillingTask.retry

    def apply_async(self, args=None, kwargs=None, *rest, **options):
        if options.get("countdown") or options.get("eta"):
            sent.append((self.name, options.get("countdown"), options.get("eta")))
        return send(self, args, kwargs, *rest, **options)

    def retry_spied(self, *args, **options):
        if options.get("countdown") or options.get("eta"):
            sent.append((self.name, options.get("countdown"), options.get("eta")))
        return retry(self, *args, **options)

    monkeypatch.setattr(BillingTask, "apply_async", apply_async)
    monkeypatch.setattr(BillingTask, "retry", retry_spied)
    return sent


@pytest.fixture
def api_key_secret(db):
    from tests.factories import ApiKeyFactory

    return ApiKeyFactory(name="tests").secret


@pytest.fixture
def api(api_key_secret):
    """A DRF test client authenticated with an all-scopes key."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
    return client


@pytest.fixture
def row_counts(db):
    """A function returning the row count of each catalog, customer and key table,
    to show that a refused request changed nothing."""
    from customers.models import ApiKey, Customer
    from plans.models import Charge, CreditPack, Meter, Plan, PlanVersion, PriceTier, TaxRate

    models = (Meter, Plan, PlanVersion, Charge, PriceTier, CreditPack, TaxRate, Customer, ApiKey)

    def counts() -> dict[str, int]:
        return {model.__name__: model.objects.count() for model in models}

    return counts


@pytest.fixture
def catalog_meters(db):
    """The meters of API.md's plan example: prompts, sms, agent_runs, gpt4o_input_tokens."""
    from tests.factories import MeterFactory, gpt4o_tokens_meter, prompts_meter

    return {
        meter.code: meter
        for meter in (
            prompts_meter(),
            MeterFactory(code="sms", name="SMS messages", event_name="sms.sent"),
            MeterFactory(code="agent_runs", event_name="agent.run"),
            gpt4o_tokens_meter("input", filters={"model": ["gpt-4o"]}),
        )
    }


CHROMIUM = "/usr/bin/chromium"
# Screenshots and downloads of the real-browser tests, kept after the run.
TEST_OUTPUT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-output")


@pytest.fixture
def output_dir(request):
    """A directory of this test's own under test-output/ (ignored by git)."""
    path = os.path.join(TEST_OUTPUT, request.node.name)
    os.makedirs(path, exist_ok=True)
    return path


class _Chromium:
    """One Chromium a test process, launched by its first browser test and closed
    after the last of a run of them (the browser files run first, together): a
    launch takes about a second, a new context a few milliseconds. Each test gets
    a context of its own, so no cookie, storage or download crosses tests.

    Playwright's sync API keeps an event loop open in this thread while it runs;
    the tests' own ORM calls are still synchronous, so Django's async-context guard
    is turned off (DJANGO_ALLOW_ASYNC_UNSAFE) only while the browser is open."""

    def __init__(self):
        self._playwright = None
        self._browser = None
        self._guard_before = None  # DJANGO_ALLOW_ASYNC_UNSAFE as it was, put back

    def browser(self):
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._guard_before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            self._playwright = sync_playwright().start()
            try:
                self._browser = self._playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                )
            except BaseException:
                self.close()
                raise
        return self._browser

    def close(self):
        """The browser and Playwright's driver stopped, each even if the other
        fails, and the guard put back as it was; nothing when none is open."""
        browser, playwright = self._browser, self._playwright
        if playwright is None:
            return
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            playwright.stop()
            if self._guard_before is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = self._guard_before


_CHROMIUM = _Chromium()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After the test's own fixtures are torn down (its browser context among
    them): the browser is closed when the next test does not use it."""
    result = yield
    if not _uses_the_browser(nextitem):  # None after the last test
        _CHROMIUM.close()
    return result


@pytest.fixture
def browser_page():
    """A page in Debian's Chromium driven by Playwright (never a downloaded browser),
    in a browser context of this test's own. Skipped with the reason where Chromium
    is not installed; CI installs it, so the browser tests always run there."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    context = _CHROMIUM.browser().new_context(
        accept_downloads=True, viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _celery_joins_allowed():
    """Each test starts with Celery's process-wide "a join would block" flag as a new
    process has it. Eager tasks run from several threads at once (the concurrency
    tests) each set it and put back what they found, so the last one out can leave
    it set, and a later test's `.delay(...).get()` then raises "Never call
    result.get() within a task!"."""
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)
