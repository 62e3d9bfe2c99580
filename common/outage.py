"""A database that is briefly out of reach (a restart, a failover) answers 503
with Retry-After, never 500: the client sends the request again (events are
idempotent by id, so a batch whose answer was lost is counted once).

Three places answer it, by where the error is raised:
- in a DRF view (all of /api/): common.rest_api.exception_handler, the error envelope;
- in any other view (admin, portal, Stripe webhook): DatabaseUnavailableMiddleware;
- in a middleware (sessions, messages) with DEBUG off: common.rest_api.handler500.

The worker's side is config.celery.BillingTask, which retries a task with backoff.
A connection that broke is closed at the end of the request (Django's
close_if_unusable_or_obsolete) and checked before the next one reuses it
(CONN_HEALTH_CHECKS), so the next request reconnects.
"""

import logging

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpResponse

logger = logging.getLogger(__name__)

# A restart takes about a second; a client that honours this comes back after it.
RETRY_AFTER_SECONDS = 1
MESSAGE = "the database is unavailable for a moment; try the request again shortly"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Service unavailable</title></head>
<body><h1>Service unavailable</h1>
<p>The database is unavailable for a moment. Please try again shortly.</p>
</body></html>
"""


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or dropped the
    connection: OperationalError or InterfaceError, Django's or the driver's own
    (raised through a raw driver cursor, as ingestion uses). ProgrammingError,
    IntegrityError and DataError are the statement's fault and stay errors."""
    driver = connections[DEFAULT_DB_ALIAS].Database
    return isinstance(
        exc, OperationalError | InterfaceError | driver.OperationalError | driver.InterfaceError
    )


def log_unavailable(request, exc: BaseException) -> None:
    """One line per refused request (no traceback: an outage refuses many)."""
    logger.warning(
        "database unavailable, answered 503: %s %s: %s: %s",
        request.method,
        request.path,
        type(exc).__name__,
        str(exc).strip(),
    )


def unavailable_page() -> HttpResponse:
    """The 503 page for the admin, the portal and anything else outside /api/."""
    response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Answers a view outside DRF that lost the database with the 503 page, also
    with DEBUG on. /api/ is left alone: its views are DRF's, answered with the
    error envelope by common.rest_api.exception_handler."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith("/api/") or not database_unavailable(exception):
            return None
        log_unavailable(request, exception)
        return unavailable_page()
