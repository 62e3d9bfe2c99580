"""Input no endpoint can serve, refused before any view runs, the same way everywhere:

- a body declared larger than DATA_UPLOAD_MAX_MEMORY_SIZE, on the API and the
  Stripe webhook: 413, before anything reads it or checks a signature;
- a query parameter holding text no database column can store: 400 naming it;
- a path segment a view receives as text holding such text: 404, since no
  customer, plan or meter can have that code;
- a cookie holding such text (a quoted "\\000" decodes to a NUL): ignored, as if
  absent, so a forged session cookie starts a new session instead of a failed
  lookup on every page.

Text no column can store (billing.core.storable): a NUL, which PostgreSQL refuses,
or a lone UTF-16 surrogate, which is not UTF-8. Left to the views, each became a
database error and a 500 on PostgreSQL. The API answers in its error envelope;
the admin and the portal get Django's 400 and 404 pages.
"""

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import JsonResponse
from django.views import defaults

from billing.core.storable import unstorable_text_reason
from config.api import error_body, handler404

# Where a body over the limit is answered 413 without being read. Elsewhere (the
# admin's forms) Django refuses it itself when the form is read.
SIZE_LIMITED_PREFIXES = ("/api/", "/webhooks/")


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
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
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
        segments = [*view_args, *view_kwargs.values()]
        if any(isinstance(s, str) and unstorable_text_reason(s) for s in segments):
            return handler404(request)
        return None

    @staticmethod
    def _bad_query(request, message: str, fields: dict):
        if request.path_info.startswith("/api/"):
            return JsonResponse(error_body("invalid_request", message, fields), status=400)
        return defaults.bad_request(request, ValueError(message))
