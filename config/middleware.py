"""Input no endpoint can serve, refused before any view runs, the same way everywhere:

- a body declared larger than DATA_UPLOAD_MAX_MEMORY_SIZE (BILLING_INTEGRATION_MAX_BODY
  on INTEGRATION_PREFIXES), on the API and the Stripe webhook: 413, before anything
  reads it or checks a signature (a body sent chunked, without a Content-Length,
  arrives here with its length: SizedBodies);
- a body sent without a Content-Length that the server could not end for us
  (SizedBodies): 411 Length Required, rather than a body read as empty;
- a query parameter holding text no database column can store: 400 naming it;
- a path segment a view receives as text holding such text: 404, since no
  customer, plan or meter can have that code;
- a cookie holding such text (a quoted "\\000" decodes to a NUL): ignored, as if
  absent, so a forged session cookie starts a new session instead of a failed
  lookup on every page.

Text no column can store (common.storable): a NUL, which PostgreSQL refuses,
or a lone UTF-16 surrogate, which is not UTF-8. Left to the views, each became a
database error and a 500 on PostgreSQL. The API answers in its error envelope;
the admin and the portal get Django's 400 and 404 pages.
"""

import io

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpResponse, JsonResponse
from django.views import defaults

from common.rest_api import error_body, handler404
from common.storable import unstorable_text_reason

# Where a body over the limit is answered 413 without being read. Elsewhere (the
# admin's forms) Django refuses it itself when the form is read.
SIZE_LIMITED_PREFIXES = ("/api/", "/webhooks/")
# Where a gateway or an exporter posts its batches (billing.api.integrations), each
# endpoint holding its body to BILLING_INTEGRATION_MAX_BODY itself: LiteLLM's batches
# (512 calls of 5 KB or more each) are past POST /events' limit, and LiteLLM drops a
# batch answered 413.
INTEGRATION_PREFIXES = ("/api/v1/integrations/", "/v1/traces")


def body_limit(path: str) -> int | None:
    """The most bytes a request body to `path` may hold."""
    if path.startswith(INTEGRATION_PREFIXES):
        return settings.BILLING_INTEGRATION_MAX_BODY
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# SizedBodies reads a body without a length in pieces of at most this many bytes.
READ_SIZE = 64 * 1024


def read_at_most(stream, limit: int | None) -> bytes:
    """What a stream that ends where the body does holds, up to `limit` + 1 bytes
    (all of it with no limit): enough to tell a body over the limit, never more.
    Read in pieces, as many as the stream needs (a read may return fewer bytes than
    asked), and always with a size: granian's wsgi.input loses the rest of its
    buffer when read() without one follows a read(n)."""
    pieces = []
    size = 0
    while limit is None or size <= limit:
        piece = stream.read(READ_SIZE if limit is None else min(READ_SIZE, limit + 1 - size))
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


class SizedBodies:
    """WSGI middleware (config.wsgi wraps the application in it): a request body
    sent without a Content-Length (`Transfer-Encoding: chunked`) is handed to Django
    as one with a length. Django reads a body up to its CONTENT_LENGTH, and with none
    it read an empty body: a valid batch was answered 400 "malformed JSON".

    Where the server ends the body for us (`wsgi.input_terminated`: granian and
    gunicorn de-chunk it, and so does the development server, config.devserver), at
    most DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes are read, never the whole stream. A
    body past the limit is handed on as those limit + 1 bytes, so InputGuardMiddleware
    answers it 413 as it answers one declared that long (and a form elsewhere is refused
    by Django as too large); on INTEGRATION_PREFIXES, BILLING_INTEGRATION_MAX_BODY + 1
    bytes, for the view to refuse past its limit. An error while reading (chunks framed
    wrong, a client gone) is the server's to answer: gunicorn and the development
    server answer 400. Where the server does not end the body, it is left unread: 411
    (InputGuardMiddleware)."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if (
            "HTTP_TRANSFER_ENCODING" in environ
            and not environ.get("CONTENT_LENGTH")
            and environ.get("wsgi.input_terminated")
        ):
            limit = body_limit(environ.get("PATH_INFO", ""))
            body = read_at_most(environ["wsgi.input"], limit)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        # Django reads no body at all then (WSGIRequest treats it as 0).
        return 0


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            return self._length_required(request)
        limit = body_limit(request.path_info)
        if (
            limit is not None
            and request.path_info.startswith(SIZE_LIMITED_PREFIXES)
            and _declared_length(request) > limit
        ):
            return JsonResponse(
                error_body("payload_too_large", f"request body over {limit} bytes; refused unread"),
                status=413,
            )
        try:
            parameters = list(request.GET.lists())
        except TooManyFieldsSent:
            return self._bad_query(request, "too many query parameters", {})
        for name, values in parameters:
            reason = next(filter(None, map(unstorable_text_reason, [name, *values])), None)
            if reason is not None:
                return self._bad_query(
                    request, f"query parameter {name!r}: {reason}", {name: [reason]}
                )
        cookies = {
            name: value
            for name, value in request.COOKIES.items()
            if not unstorable_text_reason(name) and not unstorable_text_reason(value)
        }
        if len(cookies) != len(request.COOKIES):
            request.COOKIES = cookies
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # A plain loop: it runs for every request that reaches a view.
        for segment in (*view_args, *view_kwargs.values()):
            if isinstance(segment, str) and unstorable_text_reason(segment):
                return handler404(request)
        return None

    @staticmethod
    def _length_required(request):
        """A body whose end only its chunks' framing tells, which this server does
        not undo (SizedBodies): refused, not read as empty."""
        message = (
            "this server cannot read a request body sent without a Content-Length "
            "(Transfer-Encoding: chunked); send it with a Content-Length"
        )
        if request.path_info.startswith("/api/"):
            return JsonResponse(error_body("invalid_request", message), status=411)
        return HttpResponse(message, status=411, content_type="text/plain; charset=utf-8")

    @staticmethod
    def _bad_query(request, message: str, fields: dict):
        if request.path_info.startswith("/api/"):
            return JsonResponse(error_body("invalid_request", message, fields), status=400)
        return defaults.bad_request(request, ValueError(message))
