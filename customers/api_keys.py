"""API keys: created with a secret shown once and stored as its digest, revoked,
and looked up by secret on every request (cached per process)."""

import hashlib
import secrets
import time

from django.utils import timezone

from common.errors import InvalidRequest
from customers.models import ApiKey

SECRET_PREFIX = "sk_"


def hash_secret(secret: str) -> str:
    # The secret carries 256 random bits, so a fast digest is safe and keeps
    # authentication one indexed lookup on the hot path.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is not stored and
    cannot be shown again. No scopes given means every scope."""
    scopes = list(ApiKey.SCOPES) if not scopes else list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in ApiKey.SCOPES]
    if unknown:
        raise InvalidRequest(
            f"unknown scope {unknown[0]!r}; scopes are {', '.join(ApiKey.SCOPES)}",
            fields={"scopes": [f"unknown scope {s!r}" for s in unknown]},
        )
    if not name or not name.strip():
        raise InvalidRequest("an API key needs a name", fields={"name": ["must not be blank"]})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name, prefix=secret[:10], secret_hash=hash_secret(secret), scopes=scopes
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key. This process refuses it at once; others within
    KEY_CACHE_SECONDS."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    api_key_cache_clear()
    return key


# Authentication sits in front of every request, ingestion's included: keys are
# cached per process for a few seconds, so a request with a known key costs no query
# (and writes nothing). Revoking clears this process's cache; other processes stop
# accepting a revoked (or deleted) key within KEY_CACHE_SECONDS. Unknown keys are
# not cached: a key is accepted from the moment it is created.
KEY_CACHE_SECONDS = 10


_key_cache: dict[str, tuple[ApiKey, float]] = {}


def _clock() -> float:
    return time.monotonic()


def api_key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    digest = hash_secret(secret)
    cached = _key_cache.get(digest)
    if cached is not None and cached[1] > _clock():
        return cached[0]
    key = ApiKey.objects.filter(secret_hash=digest, revoked_at__isnull=True).first()
    if key is not None:
        _key_cache[digest] = (key, _clock() + KEY_CACHE_SECONDS)
    else:
        _key_cache.pop(digest, None)
    return key


def api_key_cache_clear() -> None:
    _key_cache.clear()
