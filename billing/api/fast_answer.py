"""The fast answer of the API's two hottest reads, in the views' own entry point:

    POST /api/v1/customers/{external_id}/check         (billing.api.usage.CheckApi)
    GET  /api/v1/customers/{external_id}/entitlements  (billing.api.entitlements)

The product asks `check` before every expensive call, and DRF's own work (its
Request, authentication, permissions, negotiation, the Response rendered by the
handler) was a third of a check's CPU (bench/check_cpu.py, bench/RESULTS.md). The
two views are FastAnswerApi: config/urls.py routes them like every other view,
every middleware in settings.MIDDLEWARE runs for them, and their `dispatch` first
tries the plain 200 with what it must do: the key, the scopes, the rate limit, the
body, the answer.

The answer is DRF's, by construction. The same functions read the key
(customers.auth, customers.api_keys), count the rate limit (common.throttling),
parse the body (common.rest_api.json_body), validate it (common.rest_api.validated with the
view's serializer) and compute the answer (the view's `fast_answer`, which calls
what its handler calls); the view's first renderer renders it, and the view's own
`finalize_response` finishes it with the view's `headers`, as DRF finishes the
handler's. A header the view adds there is on every answer, fast or not.

It answers only the 200s, and hands everything else to DRF's dispatch (the request
goes on through authentication, permissions and the handler): another method, a
query string, an Accept header other than JSON's, a body that is not
`application/json`, any cookie (a browser's request), a missing, malformed, unknown
or revoked key (DRF's authentication refuses it and counts the failure), a key
without the scope, a request over the rate limit, and any error while answering (an
unknown customer, an invalid body, a database out of reach): DRF answers it again,
with its error envelope and logging. What the fast answer may have done by then is
what DRF would do again with the same result: a request is counted against the rate
limit once (common.throttling keeps the verdict on the request), and a soft spend
limit's alert is raised once a period. An error DRF is expected to answer (a
refusal, the database away) is handed on silently; any other is logged here first.

The fast answer copies how DRF is set up for the view (authentication,
permission, rate limit, parser, negotiation, no versioning): a view set up
otherwise stops the process when its URL is configured (ImproperlyConfigured)
rather than let the fast answer skip it. tests/test_fast_answer.py compares each
answer with DRF's own, to the byte.
"""

import logging

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import Http404, HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from common import outage
from common.errors import BillingError
from common.rest_api import ContentNegotiation, StrictJSONParser, plainly_accepted
from common.throttling import ApiKeyRateThrottle, key_rate_allows
from customers.api_keys import api_key_for_secret
from customers.auth import ApiClient, ApiKeyAuthentication, HasScope, accepted_scopes, bearer_secret

logger = logging.getLogger(__name__)

JSON = "application/json"
# (view class, whether its instance has HEAD) -> its default_response_headers.
_HEADERS: dict[tuple[type, bool], dict[str, str]] = {}


class FastAnswerApi(APIView):
    """An APIView for one method (`fast_method`) on a URL with `external_id`,
    answered by `fast_answer` when nothing but a plain 200 is due."""

    fast_method: str
    # Whether the fast answer reads a JSON body (a POST's).
    takes_body = False

    def fast_answer(self, request, external_id: str) -> dict:
        """The answer's data; any exception hands the request to DRF."""
        raise NotImplementedError

    # Found once per view (as_view): the renderer of its 200s and the scopes of
    # which a key needs one for fast_method.
    fast_renderer: BaseRenderer
    fast_scopes: tuple[str, ...]

    @classmethod
    def as_view(cls, **initkwargs):
        _same_setup_as_copied(cls)
        # The renderer DRF picks for a request that accepts JSON (or anything): the
        # first (common.rest_api.ContentNegotiation). It keeps nothing of a request.
        cls.fast_renderer = cls.renderer_classes[0]()
        cls.fast_scopes = accepted_scopes(cls, cls.fast_method)
        return super().as_view(**initkwargs)

    def dispatch(self, request, *args, **kwargs):
        response = self.fast_response(request, kwargs)
        if response is None:
            return super().dispatch(request, *args, **kwargs)
        # What DRF's dispatch sets before finishing a response (View.setup has set
        # the request, args and kwargs).
        self.headers = self.default_response_headers
        return self.finalize_response(request, response, *args, **kwargs)

    @property
    def default_response_headers(self):
        # Allow (and Vary): the same for every instance of a view that View.setup
        # prepared alike (it adds HEAD beside GET), so found once. A copy, as
        # finalize_response takes Vary out of it.
        key = (type(self), "head" in self.__dict__)
        found = _HEADERS.get(key)
        if found is None:
            found = _HEADERS[key] = super().default_response_headers
        return dict(found)

    def fast_response(self, request, kwargs: dict) -> HttpResponse | None:
        """The view's 200, not yet finalized, or None to leave the request to DRF."""
        meta = request.META
        renderer = self.fast_renderer
        media_type = renderer.media_type
        if (
            request.method != self.fast_method
            or meta.get("QUERY_STRING")
            or not plainly_accepted(meta.get("HTTP_ACCEPT", "*/*"), media_type)
            or (self.takes_body and meta.get("CONTENT_TYPE") != JSON)
            or meta.get("HTTP_COOKIE")
        ):
            return None
        secret = bearer_secret(meta.get("HTTP_AUTHORIZATION", ""))
        if secret is None:
            return None
        try:
            key = api_key_for_secret(secret)
            if key is None or not ApiClient(key).has_any_scope(self.fast_scopes):
                return None
            allowed, _ = key_rate_allows(request, key)
            if not allowed:
                return None
            body = self.fast_answer(request, kwargs["external_id"])
        except Exception as exc:
            # DRF answers it again: its error envelope, its status, its log.
            expected = isinstance(exc, APIException | BillingError | Http404 | RequestDataTooBig)
            if not expected and not outage.database_unavailable(exc):
                logger.warning(
                    "fast answer left %s to DRF after an error", request.path, exc_info=True
                )
            return None
        # Rendered for the renderer's own media type, which has no parameters: no
        # indent is asked, so none is looked for (DRF's get_indent parses it).
        return HttpResponse(renderer.render(body), content_type=media_type)


def _same_setup_as_copied(view_class) -> None:
    """ImproperlyConfigured unless DRF is set up for the view as the fast answer
    copies it."""
    expected = {
        "authentication_classes": [ApiKeyAuthentication],
        "permission_classes": [HasScope],
        "throttle_classes": [ApiKeyRateThrottle],
        "parser_classes": [StrictJSONParser],
        "content_negotiation_class": ContentNegotiation,
        "versioning_class": None,
    }
    found = {name: getattr(view_class, name) for name in expected}
    found = {name: list(v) if isinstance(v, list | tuple) else v for name, v in found.items()}
    differs = sorted(name for name in expected if found[name] != expected[name])
    if differs:
        raise ImproperlyConfigured(
            f"billing.api.fast_answer answers {view_class.__name__} as DRF was set up for it; "
            f"{', '.join(differs)} changed since: make the fast answer do the same, or "
            "make the view a plain APIView"
        )
