"""The API's two hottest reads, answered by a middleware in front of the rest of
the chain, URL resolution and DRF:

    POST /api/v1/customers/{external_id}/check         (billing.api.usage.CheckApi)
    GET  /api/v1/customers/{external_id}/entitlements  (billing.api.entitlements)

The product asks `check` before every expensive call, so the framework's own work
was a third to a half of a check's CPU (bench/check_cpu.py, docs/scaling.md). Here
a check costs what it must: the key, the rate limit, the body, the answer.

The answer is the view's, by construction. The same functions read the key
(customers.auth, customers.api_keys), count the rate limit (config.throttling),
parse the body (config.api.json_body), validate it (config.api.validated with the
view's serializer), compute the answer (check_answer, entitlements_answer: the
views call them too) and render it (the view's renderer, with the headers DRF adds
for the view). The middleware that run before this one (security, input guards,
sessions, common, frame options) run for these requests as for every other, and
so do Django's handler and request signals.

It answers only the 200s, and steps aside (the request goes on down the chain to
the view) for everything else: another method or path, a query string, an Accept
header other than JSON's, a body that is not `application/json`, any cookie (a
browser's request: CSRF and sessions may have something to add), a missing,
malformed, unknown or revoked key (the view's authentication refuses it and counts
the failure), a key without the scope, a request over the rate limit, a path
segment no column can hold, and any error while answering (an unknown customer, an
invalid body, a database out of reach): the view answers it again, with its error
envelope and logging. What it may have done by then is what the view would do
again with the same result: a request is counted against the rate limit once
(config.throttling keeps the verdict on the request), and a soft spend limit's
alert is raised once a period. An error the view is expected to answer (a refusal,
the database away) steps aside silently; any other is logged here first.

The route copies how DRF is set up for the two views (authentication, permission,
rate limit, parser, negotiation, no versioning, no per-request transaction); a
setting that changes any of that stops the process at start (ImproperlyConfigured)
rather than let the route skip it. The tests send every API request through here
as production does, and tests/test_hot_routes.py compares each answer with the
view's own.
"""

import logging
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import resolve
from django.utils.cache import cc_delim_re, patch_vary_headers
from rest_framework.exceptions import APIException

from billing.api.entitlements import EntitlementsApi, entitlements_answer
from billing.api.usage import CheckApi, check_answer
from billing.core.errors import BillingError
from billing.core.storable import unstorable_text_reason
from config import outage
from config.api import ContentNegotiation, StrictJSONParser, json_body, plainly_accepted, validated
from config.throttling import ApiKeyRateThrottle, key_rate_allows
from customers.api_keys import api_key_for_secret
from customers.auth import ApiClient, ApiKeyAuthentication, HasScope, accepted_scopes, bearer_secret

logger = logging.getLogger(__name__)

# What config/urls.py routes to the two views (`<str:external_id>`: one segment).
PATH = re.compile(r"/api/v1/customers/([^/]+)/(check|entitlements)\Z")
JSON = "application/json"


class Route:
    """One view's method: its scopes, its renderer and response headers as DRF
    gives them, and the function that answers it."""

    def __init__(self, view_class, method: str, answer, *, takes_body: bool):
        view = view_class()
        _same_setup_as_copied(view)
        # As View.as_view prepares each instance (HEAD answered by a view with GET).
        view.setup(HttpRequest())
        self.scopes = accepted_scopes(view, method)
        # The renderer DRF picks for a request that accepts JSON (or anything):
        # the first (config.api.ContentNegotiation).
        self.renderer = view.renderer_classes[0]()
        # What APIView.finalize_response adds: Allow, and Vary with more than one
        # renderer.
        self.headers = dict(view.default_response_headers)
        self.vary = self.headers.pop("Vary", None)
        self.answer = answer
        self.takes_body = takes_body

    def respond(self, request, external_id: str) -> HttpResponse | None:
        """The view's 200 answer, or None to leave the request to the view."""
        meta = request.META
        media_type = self.renderer.media_type
        if (
            not plainly_accepted(meta.get("HTTP_ACCEPT", "*/*"), media_type)
            or (self.takes_body and meta.get("CONTENT_TYPE") != JSON)
            or meta.get("HTTP_COOKIE")
            or unstorable_text_reason(external_id)
        ):
            return None
        secret = bearer_secret(meta.get("HTTP_AUTHORIZATION", ""))
        if secret is None:
            return None
        try:
            key = api_key_for_secret(secret)
            if key is None or not ApiClient(key).has_any_scope(self.scopes):
                return None
            allowed, _ = key_rate_allows(request, key)
            if not allowed:
                return None
            body = self.answer(request, external_id)
        except Exception as exc:
            # The view answers it again: its error envelope, its status, its log.
            expected = isinstance(exc, APIException | BillingError | Http404 | RequestDataTooBig)
            if not expected and not outage.database_unavailable(exc):
                logger.warning(
                    "hot route left %s to the view after an error", request.path, exc_info=True
                )
            return None
        response = HttpResponse(
            self.renderer.render(body, accepted_media_type=media_type), content_type=media_type
        )
        for name, value in self.headers.items():
            response[name] = value
        if self.vary is not None:
            patch_vary_headers(response, cc_delim_re.split(self.vary))
        return response


def _same_setup_as_copied(view) -> None:
    """ImproperlyConfigured unless DRF is set up for `view` as Route copies it."""
    expected = {
        "authentication_classes": [ApiKeyAuthentication],
        "permission_classes": [HasScope],
        "throttle_classes": [ApiKeyRateThrottle],
        "parser_classes": [StrictJSONParser],
        "content_negotiation_class": ContentNegotiation,
        "versioning_class": None,
    }
    found = {name: getattr(view, name) for name in expected}
    found = {name: list(v) if isinstance(v, list | tuple) else v for name, v in found.items()}
    differs = sorted(name for name in expected if found[name] != expected[name])
    if any(database.get("ATOMIC_REQUESTS") for database in settings.DATABASES.values()):
        differs.append("ATOMIC_REQUESTS")
    if differs:
        raise ImproperlyConfigured(
            f"config.hot_routes answers {type(view).__name__} as DRF was set up for it; "
            f"{', '.join(differs)} changed since: make the route do the same, or take it out "
            "of MIDDLEWARE"
        )


def _check(request, external_id: str) -> dict:
    asked = validated(CheckApi.body_serializer, json_body(request.body))
    return check_answer(external_id, asked)


def _entitlements(request, external_id: str) -> dict:
    return entitlements_answer(external_id)


ROUTES = {
    ("POST", "check"): Route(CheckApi, "POST", _check, takes_body=True),
    ("GET", "entitlements"): Route(EntitlementsApi, "GET", _entitlements, takes_body=False),
}


class HotRoutesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        # Each route's URL pattern, as config/urls.py names it: a request answered
        # here is counted under the view's pattern (config.request_metrics).
        self.patterns = {name: resolve(f"/api/v1/customers/-/{name}").route for _, name in ROUTES}

    def __call__(self, request):
        match = PATH.match(request.path_info)
        if match is not None and not request.META.get("QUERY_STRING"):
            route = ROUTES.get((request.method, match[2]))
            if route is not None:
                response = route.respond(request, match[1])
                if response is not None:
                    request.metrics_route = self.patterns[match[2]]
                    return response
        return self.get_response(request)
