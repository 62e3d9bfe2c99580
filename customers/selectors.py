"""Reads for customers and API keys."""

from customers.models import ApiKey, Customer
from customers.services import hash_secret


def api_key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    return ApiKey.objects.filter(secret_hash=hash_secret(secret), revoked_at__isnull=True).first()


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()
