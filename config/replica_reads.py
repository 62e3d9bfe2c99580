"""Which requests read from a read replica (DATABASE_REPLICA_URLS, docs/scaling.md),
and which replica: the GET and HEAD requests of the views that only read and promise
no read-your-writes of their own:

- the customer portal's page, unless that customer's data was written within
  DATABASE_REPLICA_READ_YOUR_WRITES_MS (config.recent_writes);
- the admin's lists (changelists, the margins and trial balance reports, history
  pages), its dashboard and the journal's export, unless the admin user wrote within
  the window (or, on a customer's pages, the customer's data was written);
- the API's margins, revenue and journal reads and the journal's CSV export, unless
  the same API client wrote within the window.

Every other request reads the primary: writes, the usage check, `/usage`, ingestion,
the entitlements, the admin's forms (what is saved from a form must not be what a
replica had a moment ago), and Celery tasks and commands (no request). The reads go
through config.db_routers.ReplicaRouter, to whom the chosen replica is named.

A replica is read when its lag, measured at most every DATABASE_REPLICA_CHECK_MS per
process, is within DATABASE_REPLICA_MAX_LAG_MS; one that does not answer, or lags,
is left out until a later check finds it well. A replica that fails during a request
(its connection broken) is left out and the request is answered again from the
primary: 200, not 500. What each request read from is counted
(billing_replica_reads_total)."""

import itertools
import threading
import time
from contextlib import suppress

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from common import metrics
from config.db_routers import reading_from
from config.recent_writes import (
    client_key,
    customer_key,
    customer_writes_noted,
    user_key,
    writes_note,
    written_recently,
)
from customers.models import Customer
from customers.portal import PortalTokenExpired, PortalTokenInvalid, portal_customer_id

SAFE_METHODS = ("GET", "HEAD")
PORTAL_ROUTE = "portal/<str:token>/"
API_READS = frozenset(
    {
        "api/v1/margins",
        "api/v1/revenue",
        "api/v1/journal",
        "api/v1/journal.csv",
        "api/v1/journal/trial-balance",
        "api/v1/journal/periods",
    }
)
# Writes noted nowhere: the check writes nothing, and an events batch reaches the
# reports above through the fold (seconds) anyway. The two busiest routes pay nothing.
UNNOTED_WRITES = frozenset({"api/v1/customers/<str:external_id>/check", "api/v1/events"})
# The admin's views that only read, by URL name: every changelist and history page
# (the margins and trial balance reports are changelists), and these.
ADMIN_READ_SUFFIXES = ("_changelist", "_history")
ADMIN_READS = frozenset({"billing_journalentry_export"})
ADMIN_DASHBOARD_ROUTE = "admin/"
# The query parameters of an admin list filtered to one customer.
ADMIN_CUSTOMER_FILTERS = ("customer__id__exact", "customer__exact", "customer_id", "customer")

# How far behind a replica is, by its last replayed transaction's commit time on the
# primary; none when it replayed all it received. Not streaming (the primary out of its
# reach) counts as infinitely behind: it would not know what it misses.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN NOT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) THEN 'Infinity'
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
END::float8
"""

_lags: dict[str, tuple[float, float | None]] = {}
_lags_lock = threading.Lock()
_turns = itertools.count()


def replica_lag(alias: str) -> float | None:
    """The replica's lag in seconds as last measured in this process (again when the
    measure is older than DATABASE_REPLICA_CHECK_MS); None: it did not answer."""
    now = time.monotonic()
    measured = _lags.get(alias)
    if measured is not None and now - measured[0] < settings.DATABASE_REPLICA_CHECK_MS / 1000:
        return measured[1]
    with _lags_lock:
        measured = _lags.get(alias)
        if measured is None or now - measured[0] >= settings.DATABASE_REPLICA_CHECK_MS / 1000:
            measured = _lags[alias] = (time.monotonic(), _measure_lag(alias))
    return measured[1]


def _measure_lag(alias: str) -> float | None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            return cursor.fetchone()[0]
    except DatabaseError:
        _drop_connection(alias)
        return None


def _drop_connection(alias: str) -> None:
    with suppress(DatabaseError):
        connections[alias].close()


def replica_left_out(alias: str) -> None:
    """A replica found failing: not read until its next check."""
    _lags[alias] = (time.monotonic(), None)
    _drop_connection(alias)


def replica_to_read() -> tuple[str | None, str]:
    """A replica within the lag bound, in turn among those that are; else None, and
    why: `lagging` or `unavailable`."""
    bound = settings.DATABASE_REPLICA_MAX_LAG_MS / 1000
    ready, why = [], "unavailable"
    for alias in settings.DATABASE_REPLICAS:
        lag = replica_lag(alias)
        if lag is None:
            continue
        if lag > bound:
            why = "lagging"
            continue
        ready.append(alias)
    if not ready:
        return None, why
    return ready[next(_turns) % len(ready)], "replica"


def _read_keys(request, view_kwargs) -> list[str] | None:
    """The read-your-writes keys of a request that may read from a replica; None for
    any other request."""
    match = request.resolver_match
    if match.route == PORTAL_ROUTE:
        try:
            customer = portal_customer_id(token=view_kwargs["token"], now=timezone.now())
        except (PortalTokenInvalid, PortalTokenExpired):
            return None
        return [customer_key(customer)]
    if match.route in API_READS:
        authorization = request.headers.get("Authorization", "")
        return [client_key(authorization)] if authorization else None
    name = match.url_name or ""
    if match.route == ADMIN_DASHBOARD_ROUTE or (
        "admin" in match.namespaces and (name.endswith(ADMIN_READ_SUFFIXES) or name in ADMIN_READS)
    ):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        keys = [user_key(user.pk)]
        customer = _admin_customer(name, view_kwargs, request.GET)
        if customer is not None:
            keys.append(customer_key(customer))
        return keys
    return None


def _admin_customer(url_name: str, view_kwargs, query) -> int | None:
    if (
        url_name.startswith("customers_customer_")
        and str(view_kwargs.get("object_id", "")).isdigit()
    ):
        return int(view_kwargs["object_id"])
    for parameter in ADMIN_CUSTOMER_FILTERS:
        if query.get(parameter, "").isdigit():
            return int(query[parameter])
    return None


def _write_keys(request, view_kwargs) -> list[str]:
    """Who a request that may have written wrote as: its admin user, its API client,
    the customer its path names."""
    keys = []
    if request.path_info.startswith("/api/"):
        if "Authorization" in request.headers:
            keys.append(client_key(request.headers["Authorization"]))
    elif (user := getattr(request, "user", None)) is not None and user.is_authenticated:
        keys.append(user_key(user.pk))
    if external_id := view_kwargs.get("external_id"):
        customer = Customer.objects.filter(external_id=external_id).values_list("pk", flat=True)
        keys.extend(customer_key(pk) for pk in customer[:1])
    if token := view_kwargs.get("token"):
        with suppress(PortalTokenInvalid, PortalTokenExpired):
            keys.append(customer_key(portal_customer_id(token=token, now=timezone.now())))
    return keys


def _streamed_from(alias: str, chunks):
    """A streamed answer (a CSV export) read from the replica as it is sent too."""
    reading_from.set(alias)
    try:
        yield from chunks
    finally:
        reading_from.set(None)


class ReplicaReadsMiddleware:
    """Names the replica a request reads from (process_view: the view is known), and
    notes what it wrote for read-your-writes (config.recent_writes)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            with customer_writes_noted():
                response = self.get_response(request)
                alias = request.__dict__.pop("_replica", None)
                reading_from.set(None)
                if alias is not None and _failed(alias):
                    replica_left_out(alias)
                    metrics.REPLICA_READS.labels("failed").inc()
                    request._replica_failed = True
                    response = self.get_response(request)
                elif alias is not None and response.streaming:
                    response.streaming_content = _streamed_from(alias, response.streaming_content)
        finally:
            reading_from.set(None)
        match = request.resolver_match
        if request.method not in SAFE_METHODS and (
            match is None or match.route not in UNNOTED_WRITES
        ):
            writes_note(_write_keys(request, match.kwargs if match else {}))
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in SAFE_METHODS or getattr(request, "_replica_failed", False):
            return None
        keys = _read_keys(request, view_kwargs)
        if keys is None:
            return None
        if written_recently(keys):
            metrics.REPLICA_READS.labels("recent_write").inc()
            return None
        alias, outcome = replica_to_read()
        metrics.REPLICA_READS.labels(outcome).inc()
        if alias is not None:
            request._replica = alias
            reading_from.set(alias)
        return None


def _failed(alias: str) -> bool:
    """Whether the replica's connection failed during the request: an error Django
    noted on it (a statement's own error leaves it usable, and is no failure)."""
    connection = connections[alias]
    if not connection.errors_occurred:
        return False
    return connection.connection is None or not connection.is_usable()
