"""The middleware only the site (the admin, the portal) needs, in one entry of
MIDDLEWARE that passes the REST API under /api/v1/ (and OTLP's /v1/traces) straight
on: the session, the logged-in user, messages, the audit history's request, the
outage page and the admin user's language.

The API authenticates each request by its API key (customers.auth), keeps no
session and shows no messages; an audit row written by an API request has no
user either way (common.history: only a logged-in admin user is recorded, and
/api/v1/ requests have none); and a DRF view that lost the database answers in
the API's error envelope (common.rest_api), never the outage page. As five entries,
each skipping /api/v1/ on its own, they still cost the API a layer each: a
wrapper and a call (bench/check_cpu.py --instructions, bench/RESULTS.md). As one,
the API pays one.

For every other path SiteMiddleware runs SITE_ONLY as Django's handler runs
MIDDLEWARE: in that order, each wrapped so that an exception becomes a response,
and their exception hooks called as the handler calls MIDDLEWARE's. None of them
has a view or template-response hook (the handler would call those for every
request, the API's too): one that has is refused when the chain is built.
It is a subclass of the session, user and messages middleware it stands for, so
that the admin's system checks (admin.E408-E410) find them. CSRF, frame options
and django-axes stay Django's own entries, found by name by `check --deploy` and
by axes' checks; CSRF does nothing for the API's views, which are csrf_exempt.
"""

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

# The REST API, and OTLP/HTTP's path for traces (an API view at the site's root).
API_PREFIX = ("/api/v1/", "/v1/traces")

# Run for the site only, in this order, where SiteMiddleware stands in MIDDLEWARE.
SITE_ONLY = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Audit history: who made each change through the admin.
    "simple_history.middleware.HistoryRequestMiddleware",
    # A view outside DRF that lost the database (restart, failover): 503, Retry-After.
    "common.outage.DatabaseUnavailableMiddleware",
    # The admin user's own language (config.user_language), inside the outage page's
    # middleware: a database lost while reading it still answers the outage page.
    "config.user_language.UserLanguageMiddleware",
]


class SiteMiddleware(
    sessions.SessionMiddleware, auth.AuthenticationMiddleware, messages.MessageMiddleware
):
    """SITE_ONLY for every path but /api/v1/'s, which go straight on."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self.exception_hooks = []
        # As BaseHandler.load_middleware builds MIDDLEWARE's chain.
        handler = get_response
        for path in reversed(SITE_ONLY):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view") or hasattr(
                middleware, "process_template_response"
            ):
                raise ImproperlyConfigured(
                    f"{path} has a view or template-response hook: list it in "
                    "MIDDLEWARE, not in config.site_middleware.SITE_ONLY"
                )
            if hasattr(middleware, "process_exception"):
                self.exception_hooks.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self.site = handler

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return self.site(request)

    def process_exception(self, request, exception):
        if request.path_info.startswith(API_PREFIX):
            return None
        for hook in self.exception_hooks:
            response = hook(request, exception)
            if response:
                return response
        return None
