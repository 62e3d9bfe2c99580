"""API key authentication and scopes for the REST API."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from common.throttling import client_address, window_count, window_hit
from customers.api_keys import api_key_for_secret
from customers.models import ApiKey


class ApiClient:
    """The caller behind an API key (DRF's request.user)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.scopes = frozenset(key.scopes)

    def has_scope(self, scope: str) -> bool:
        # No scope implies another (API.md: a call outside a key's scopes is a 403):
        # `admin` writes but neither reads nor ingests, `read` reads no finance data.
        return scope in self.scopes

    def has_any_scope(self, scopes) -> bool:
        return any(self.has_scope(s) for s in scopes)


def bearer_secret(header: str) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header, or None when the
    header is not that (refused 401)."""
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > 200:
        return None
    return secret


def accepted_scopes(view, method: str) -> tuple[str, ...]:
    """The scopes of which a key needs one to call `view` with `method`: the view's
    `required_scopes` for the method, else `read` for reads and `admin` for writes.
    HEAD is GET without its body (Django runs the view's get): it needs what GET does."""
    scope = getattr(view, "required_scopes", {}).get("GET" if method == "HEAD" else method)
    if scope is None:
        scope = ApiKey.SCOPE_READ if method in permissions.SAFE_METHODS else ApiKey.SCOPE_ADMIN
    # A view may accept any of several scopes (a tuple).
    return scope if isinstance(scope, tuple) else (scope,)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <secret>`.

    A client address whose keys failed API_AUTH_FAILURE_RATE times in the current
    window has its further wrong keys answered 429 (Retry-After) until the window
    ends, instead of 401. A key that verifies is never refused: behind a shared
    address (a NAT, a proxy) one client's bad key must not lock the others out, and
    keys of 256 random bits are not guessed. Each request with a key costs one cache
    read for this.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = bearer_secret(header)
        if secret is None:
            self._refuse(request, "use 'Authorization: Bearer <api key>'")
        key = api_key_for_secret(secret)
        if key is None:
            self._refuse(request, "unknown or revoked API key")
        return ApiClient(key), key

    @staticmethod
    def _refuse(request, message: str):
        """401, counted against the client's address; 429 once the address is past
        API_AUTH_FAILURE_RATE in this window."""
        rate = settings.API_AUTH_FAILURE_RATE
        if rate is not None:
            limit, period = rate
            address = client_address(request)
            failures, seconds_left = window_count(f"auth-failures:{address}", period)
            if failures >= limit:
                raise exceptions.Throttled(
                    wait=seconds_left,
                    detail="too many requests with a wrong API key from this address.",
                )
            window_hit(f"auth-failures:{address}", period)
        raise exceptions.AuthenticationFailed(message)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """Reads need `read`, writes `admin`, unless the view names its scope per method
    in `required_scopes` (e.g. {"POST": "events:write"}, {"GET": "finance:read"})."""

    message = "this API key's scopes do not allow this call"

    def has_permission(self, request, view):
        client = request.user
        if not isinstance(client, ApiClient):
            raise exceptions.NotAuthenticated(
                "an API key is required: 'Authorization: Bearer <key>'"
            )
        accepted = accepted_scopes(view, request.method)
        if not client.has_any_scope(accepted):
            self.message = f"this API key lacks the {' or '.join(map(repr, accepted))} scope"
            return False
        return True


class ApiKeySchema(OpenApiAuthenticationExtension):
    """Documents the bearer API key in the OpenAPI schema."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <secret>"}
