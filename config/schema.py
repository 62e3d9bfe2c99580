"""The OpenAPI schema's shared parts: the error envelope, and the error responses
every operation documents, added here once rather than on each view.

Which statuses an operation can answer follows from what the server does:
- 400 every operation: bad input, a query parameter holding text no column stores;
- 401 and 403 every operation: no or a bad API key, a key without the scope;
- 404 where the path names an object (also one holding a NUL), and on paginated
  lists (a bad `cursor`);
- 409 on writes (POST, PUT, PATCH, DELETE) whose view may meet a state that
  forbids them, unless the view says it cannot (`schema_may_conflict = False`);
- 413 and 415 on operations that take a request body;
- 414 on operations with parameters: a request line longer than the HTTP server
  takes (gunicorn: 4094 bytes) is refused before Django, in the server's own words;
- 429 and 503 every operation: the rate limit, the database out of reach.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from common.rest_api import ErrorSerializer
from customers.auth import accepted_scopes

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, a field or query parameter that breaks a rule.",
    401: "No API key, or an unknown or revoked one (`Authorization: Bearer <key>`).",
    403: "The API key's scopes do not allow this call.",
    404: "No such object (or path), or an invalid pagination cursor.",
    409: "The object's state forbids the operation (e.g. the code is taken, the version "
    "is published, the invoice is void).",
    413: "The request body is too large; nothing was stored.",
    415: "The body is not `application/json`.",
    429: "Too many requests for this API key, or too many wrong keys from this address; "
    "retry after `Retry-After` seconds.",
    503: "The service cannot reach its database for a moment; retry after `Retry-After` seconds.",
}

URI_TOO_LONG = (
    "The path and query are longer than the HTTP server takes; its answer is its own (not JSON)."
)

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before the next request.",
    }
}


class BillingAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses of every operation and
    the API key scopes it takes (customers.auth.accepted_scopes) in its description."""

    def get_operation(self, *args, **kwargs):
        # Here, not in get_description: extend_schema(description=...) replaces that.
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            scopes = " or ".join(f"`{s}`" for s in accepted_scopes(self.view, self.method))
            described = operation.get("description")
            scope = f"Scope: {scopes}."
            operation["description"] = f"{described}\n\n{scope}" if described else scope
        return operation

    def error_statuses(self, *, has_body: bool) -> list[int]:
        statuses = {400, 401, 403, 429, 503}
        if "{" in self.path or (self._is_list_view() and self._get_paginator()):
            statuses.add(404)
        if self.method in WRITE_METHODS and getattr(self.view, "schema_may_conflict", True):
            statuses.add(409)
        if has_body:
            statuses.update({413, 415})
        return sorted(statuses)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self._get_parameters():
            responses.setdefault("414", {"description": URI_TOO_LONG})
        has_body = bool(self._get_request_body())
        for status in self.error_statuses(has_body=has_body):
            code = str(status)
            if code in responses:
                continue
            response = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
            responses[code] = self._get_response_for_code(response, code, direction=direction)
            if status in (429, 503):
                responses[code]["headers"] = RETRY_AFTER
        return dict(sorted(responses.items()))
