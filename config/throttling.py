"""Rate limits of the REST API, counted in Django's cache (Redis in production, so
that every gunicorn worker counts against the same limit): requests per API key, and
failed authentications per client address (customers.auth).

Counters are fixed windows (one cache key per window, incremented atomically), not
DRF's SimpleRateThrottle, which reads and rewrites a list of every request's time per
key: at 6,000 a minute that is a 6,000-item list per request, and concurrent workers
overwrite each other's. A window lets a client send up to twice the limit across its
edge, which is acceptable for a guard against runaway clients and key guessing.
"""

import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """The client's IP address. With TRUSTED_PROXY_COUNT proxies in front, the address
    the outermost of them saw (the Nth entry of X-Forwarded-For from the right); the
    entries left of it are whatever the client sent, so never trusted. Used by the API's
    limits and by django-axes for admin logins (AXES_CLIENT_IP_CALLABLE)."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [
        address.strip()
        for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address.strip()
    ]
    if len(forwarded) < proxies:
        # Fewer entries than proxies: the leftmost is whatever the client sent.
        return remote
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _window(period: int) -> tuple[str, float]:
    """This window's name and the seconds left in it."""
    now = time.time()
    index = int(now // period)
    return str(index), (index + 1) * period - now


def window_hit(name: str, period: int) -> tuple[int, float]:
    """Count one hit on `name` in the current window of `period` seconds. Returns the
    hits so far in the window (this one included) and the seconds until it ends; (0, 0)
    when the cache cannot be reached: a limit is a guard, and an outage of the cache
    must not stop the API."""
    window, seconds_left = _window(period)
    key = f"ratelimit:{name}:{window}"
    try:
        count_hit = getattr(cache, "count_hit", None)
        if count_hit is not None:  # Redis (config.cache): one round trip
            return count_hit(key, period), seconds_left
        try:
            return cache.incr(key), seconds_left
        except ValueError:
            # The window's first hit. A key lives `period` seconds from its first hit,
            # so it outlives its window and is never incremented after it expired.
            if cache.add(key, 1, timeout=period):
                return 1, seconds_left
            return cache.incr(key), seconds_left  # another process added it first
    except Exception:
        logger.warning("rate limit %s not counted: the cache failed", name, exc_info=True)
        return 0, 0.0


def window_count(name: str, period: int) -> tuple[int, float]:
    """The hits on `name` in the current window and the seconds until it ends (0 hits
    when the cache cannot be reached)."""
    window, seconds_left = _window(period)
    try:
        return cache.get(f"ratelimit:{name}:{window}", 0), seconds_left
    except Exception:
        logger.warning("rate limit %s not read: the cache failed", name, exc_info=True)
        return 0, 0.0


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """At most API_THROTTLE_RATE requests per API key, whatever the endpoint; beyond it
    429 with Retry-After (the seconds until the window ends). Costs one cache increment,
    no database query. Requests without a key (the schema) are not counted."""

    def allow_request(self, request, view) -> bool:
        rate = settings.API_THROTTLE_RATE
        key = request.auth
        if rate is None or key is None:
            return True
        limit, period = rate
        hits, self.seconds_left = window_hit(f"key:{key.pk}", period)
        return hits <= limit

    def wait(self) -> float:
        return self.seconds_left
