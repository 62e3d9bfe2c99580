"""Middleware only the site (the admin, the portal) needs, skipped for the REST
API under /api/v1/: the session, the logged-in user, messages and the audit
history's request.

The API authenticates each request by its API key (customers.auth), keeps no
session and shows no messages; an audit row written by an API request has no
user either way (config.history: only a logged-in admin user is recorded, and
/api/v1/ requests have none). The lazy user and the messages' storage cost about
40 microseconds a request; the session store and the history's request about
85,000 instructions more, 4% of a feature check (bench/check_cpu.py
--instructions). They are subclasses or
wrappers of the middleware they stand for, so the admin's system checks still
find them; everywhere else they do exactly what those do. CSRF stays Django's
own for every path: a bad CSRF cookie is replaced on any answer, and
`check --deploy` looks for it by name.
"""

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from simple_history import middleware as history

API_PREFIX = "/api/v1/"


class SkippedForApi:
    """A MiddlewareMixin middleware that passes /api/v1/ requests straight on."""

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(SkippedForApi, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(SkippedForApi, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(SkippedForApi, messages.MessageMiddleware):
    pass


def HistoryRequestMiddleware(get_response):
    """simple_history's, which hands the request to the audit rows' user lookup."""
    site = history.HistoryRequestMiddleware(get_response)

    def middleware(request):
        if request.path_info.startswith(API_PREFIX):
            return get_response(request)
        return site(request)

    return middleware
