"""Reads for customers and API keys."""

import time

from customers.models import ApiKey, Customer
from customers.services import hash_secret

# Authentication sits in front of every request, ingestion's included: keys are
# cached per process for a few seconds. Revoking clears this process's cache; other
# processes stop accepting a revoked key within KEY_CACHE_SECONDS.
KEY_CACHE_SECONDS = 10
_key_cache: dict[str, tuple[ApiKey, float]] = {}


def api_key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    digest = hash_secret(secret)
    cached = _key_cache.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    key = ApiKey.objects.filter(secret_hash=digest, revoked_at__isnull=True).first()
    if key is not None:
        _key_cache[digest] = (key, time.monotonic() + KEY_CACHE_SECONDS)
    return key


def api_key_cache_clear() -> None:
    _key_cache.clear()


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()
