"""Middleware only the site (the admin, the portal) needs, skipped for the REST
API under /api/v1/: the logged-in user and messages.

The API authenticates each request by its API key (customers.auth) and shows no
messages; building the lazy user and the messages' storage costs about 40
microseconds a request, some 4% of a check's CPU. They are subclasses of Django's
own, so the admin's system checks still find them; everywhere else they do
exactly what Django's do. Sessions and CSRF stay Django's own for every path:
their cost is a few microseconds, and `check --deploy` looks for them by name.
"""

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages

API_PREFIX = "/api/v1/"


class SkippedForApi:
    """A MiddlewareMixin middleware that passes /api/v1/ requests straight on."""

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(SkippedForApi, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(SkippedForApi, messages.MessageMiddleware):
    pass
