"""The one error type for domain failures, turned into the API envelope by
common.rest_api.exception_handler and into form errors by the admin."""


class BillingError(Exception):
    """A domain rule refused the operation. Nothing was changed."""

    status_code = 400
    error_type = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        words: str = "",
        field_words: dict[str, list[str]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        # What the admin shows finance and ops: plans and customers by their
        # names, what to do; the message (the API's, naming codes) when not told.
        self.words = words or message
        # The same per field: a field's messages for the admin where they differ
        # from the API's (admin_fields reads them).
        self.field_words = field_words or {}

    @property
    def details(self) -> dict:
        """What the API's error object carries besides type, message and fields."""
        return {}

    @property
    def admin_fields(self) -> dict[str, list[str]]:
        """The field messages the admin shows: `field_words` where given, else the API's."""
        return {path: self.field_words.get(path, texts) for path, texts in self.fields.items()}


class InvalidRequest(BillingError):
    """The input breaks a rule (400)."""


class NotFound(BillingError):
    """What the request names does not exist (404); the message says what."""

    status_code = 404
    error_type = "not_found"


class CustomerNotFound(NotFound):
    """No customer has the external_id a customer-scoped request names."""

    def __init__(self, external_id: str):
        super().__init__(f"no customer {external_id!r}")


class Conflict(BillingError):
    """The input is valid but the object's state forbids it (409)."""

    status_code = 409
    error_type = "conflict"


class WebhookSignatureError(BillingError):
    """A received webhook's Billing-Signature is missing, malformed, wrong or too old."""

    status_code = 400
