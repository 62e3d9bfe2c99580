"""Health checks for a load balancer, an orchestrator or a deploy script, without
authentication:

    GET /healthz  200: the process answers (nothing else is looked at), with the
                  version it runs (config.version).
    GET /readyz   200 when this instance can serve: the database answers, every
                  migration the code knows is applied, the broker and the cache
                  answer; 503 naming what does not. Its `outbound` check says
                  "paused" while sending is paused after a restore
                  (billing.notifications.outbound_pause), and stays 200: the
                  application runs, and must, to bill again what the backup lost.
                  It also reports the PDF renders overdue (a render whose process
                  died), without failing on them: the instance serves all the same,
                  and taking it out of rotation would mend nothing.

Answered by the first middleware after the metrics' (HealthMiddleware), ahead of
the rest of the chain: no https redirect (a health check comes over plain http
from inside the network), the Host header never read (a load balancer's check
often names the instance's IP address, which ALLOWED_HOSTS does not list, and
nothing here builds a URL from it), no session, CSRF, rate limit, lockout or
history. The answer names each check and its outcome, never an address, a user
or an error's message (those go to the log): the paths are public.

A migration check loads the migration graph: once it finds every migration
applied, this process takes that as known (migrations are not unapplied under
running code) and sends nothing for it again."""

import json
import logging

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse
from django.utils import timezone

from billing.notifications.outbound_pause import outbound_paused
from config.celery import broker_channel
from config.version import VERSION
from invoices.selectors import pdf_renders_overdue

logger = logging.getLogger(__name__)

# The broker's connection and PING; the cache's and the database's own timeouts
# are in their settings.
BROKER_TIMEOUT_SECONDS = 1.0
# Migrations named in a 503, at most.
NAMED_MIGRATIONS = 5


class Unready(Exception):
    """A check's finding, said as it is in the answer (no secret in it)."""


def database_check() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


class MigrationsCheck:
    """Every migration of the code applied; known once found (per process)."""

    def __init__(self):
        self.applied = False

    def __call__(self) -> None:
        if self.applied:
            return
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
            named = ", ".join(names[:NAMED_MIGRATIONS])
            more = len(names) - NAMED_MIGRATIONS
            raise Unready(
                f"{len(names)} not applied: {named}" + (f" and {more} more" if more > 0 else "")
            )
        self.applied = True


def broker_check() -> None:
    with broker_channel(timeout=BROKER_TIMEOUT_SECONDS):
        pass


def cache_check() -> None:
    cache.get("readyz")


PAUSED = "paused"


def outbound_check() -> str | None:
    """PAUSED while sending is paused after a restore: said, and ready all the same."""
    return PAUSED if outbound_paused() else None


def pdf_renders_check() -> str | None:
    """The PDF renders overdue, when there are: said, and ready all the same."""
    overdue = pdf_renders_overdue(now=timezone.now())
    return f"{overdue} PDF render{'s' if overdue > 1 else ''} overdue" if overdue else None


migrations_check = MigrationsCheck()

# In order: the migrations are looked at only with the database answering, the pause
# and the PDF renders only with every migration applied (their tables may be a
# migration away).
CHECKS = {
    "database": database_check,
    "migrations": migrations_check,
    "broker": broker_check,
    "cache": cache_check,
    "outbound": outbound_check,
    "pdf_renders": pdf_renders_check,
}
# A check -> the check whose "ok" it needs.
NEEDS = {"migrations": "database", "outbound": "migrations", "pdf_renders": "migrations"}
# Reported in the answer, never a reason for a 503: what they say is for the
# operator, and taking the instance out of rotation would mend none of it.
REPORTED_ONLY = frozenset({"outbound", "pdf_renders"})


NOT_CHECKED = "not checked: the database is unavailable"
# What a check says when the one it needs is not ok.
NOT_CHECKED_WITHOUT = {"database": NOT_CHECKED, "migrations": "not checked: migrations missing"}
# Outcomes that leave the instance ready (one missing is a failure of its own).
READY = ("ok", *NOT_CHECKED_WITHOUT.values())


def readiness() -> dict[str, str]:
    """Each check's outcome: "ok", what failed (an error's type, not its message,
    which may name hosts and users: that is logged), NOT_CHECKED, or what a
    REPORTED_ONLY check says (PAUSED, the renders overdue)."""
    outcomes = {}
    failures = []
    for name, check in CHECKS.items():
        needed = NEEDS.get(name)
        if needed and outcomes[needed] != "ok":
            # Not checked since the one it needs was not, or was and failed.
            unchecked = outcomes[needed] in NOT_CHECKED_WITHOUT.values()
            outcomes[name] = outcomes[needed] if unchecked else NOT_CHECKED_WITHOUT[needed]
            continue
        try:
            said = check()
        except Unready as finding:
            outcomes[name] = str(finding)
        except Exception as exc:
            failures.append((name, type(exc).__name__, exc))
            outcomes[name] = f"unavailable ({type(exc).__name__})"
        else:
            outcomes[name] = said or "ok"
    if failures:
        # One line a readiness check (Redis down fails the broker and the cache), the
        # errors as its arguments: a broker out of reach is written once a second
        # (common.logs.BrokerOutageFilter).
        logger.warning(
            "readiness: " + "; ".join(["%s unavailable: %s: %s"] * len(failures)),
            *(part for failure in failures for part in failure),
        )
    return outcomes


def _answer(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def healthz() -> HttpResponse:
    return _answer(200, {"status": "ok", "version": VERSION})


def readyz() -> HttpResponse:
    checks = readiness()
    failed = [
        name
        for name, outcome in checks.items()
        if outcome not in READY and name not in REPORTED_ONLY
    ]
    if failed:
        return _answer(503, {"status": "unavailable", "failed": failed, "checks": checks})
    return _answer(200, {"status": "ready", "checks": checks})


ENDPOINTS = {"/healthz": healthz, "/readyz": readyz}


class HealthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        # Counted under its path (config.request_metrics), as a URL pattern is named.
        request.metrics_route = request.path_info.lstrip("/")
        return endpoint()
