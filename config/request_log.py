"""Each request's id and customer on the log records it writes, and in JSON its line
(docs/running.md, Logs).

The id is the request's X-Request-ID when it sends one that looks like an id (a
proxy's, or a client's own, to find its call in our logs), else a new one (32 hex
digits); the answer carries it back in X-Request-ID, whatever answers (a view, the
health checks, a refusal of the input). The customer is the one the URL names
(/api/v1/customers/{external_id}/...). Both are on every record the request writes
(common.logs), the errors' included, and on the request (request_id,
log_customer) for the records Django writes about it once the middleware is done
(django.request's "Not Found: ...").

In JSON each request ends with its line (logger config.request_log: method, path,
status, milliseconds, and the id and customer), since neither granian's nor
gunicorn's access log can see the id the application made. Not under the
development server, which logs each request itself with its id (config.devserver).
A portal's or a pay page's token is left out of the path: it opens the customer's
documents.
"""

import logging
import os
import re
from time import perf_counter

from django.conf import settings

from common import logs

logger = logging.getLogger(__name__)

HEADER = "X-Request-ID"
# An id a request brings, kept when it is one of these (a UUID, a trace id, ...).
GIVEN_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
# Set in the WSGI environ by a server that logs each request itself.
SERVER_LOGS_REQUESTS = "billing.server_logs_requests"


def request_id_for(given: str) -> str:
    # 128 random bits, as a UUID's, at a seventh of uuid4's cost.
    return given if given and GIVEN_ID.fullmatch(given) else os.urandom(16).hex()


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.lines = settings.LOG_FORMAT == "json"

    def __call__(self, request):
        started = perf_counter()
        request_id = request.request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID", ""))
        id_token = logs.request_id.set(request_id)
        customer_token = logs.customer.set(None)
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            if self.lines and not request.META.get(SERVER_LOGS_REQUESTS):
                _line(request, response.status_code, perf_counter() - started)
            return response
        finally:
            logs.customer.reset(customer_token)
            logs.request_id.reset(id_token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        external_id = view_kwargs.get("external_id")
        if external_id is not None:
            request.log_customer = external_id
            logs.customer.set(external_id)


def _line(request, status: int, seconds: float) -> None:
    path = request.path
    match = request.resolver_match
    if match is not None and "token" in match.kwargs:
        path = path.replace(match.kwargs["token"], "<token>")
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    milliseconds = round(seconds * 1000, 1)
    logger.log(
        level,
        '"%s %s" %s %s ms',
        request.method,
        path,
        status,
        milliseconds,
        extra={
            "fields": {
                "method": request.method,
                "path": path,
                "status": status,
                "duration_ms": milliseconds,
            }
        },
    )
