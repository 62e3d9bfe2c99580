"""The webhook receiver and endpoint of the billing tests, for the margin alert's."""

from tests.billing.conftest import endpoint, webhook_receiver  # noqa: F401
