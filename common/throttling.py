"""Rate limits of the REST API, counted in Django's cache (Redis in production, so
that every gunicorn worker counts against the same limit): requests per API key, and
failed authentications per client address (customers.auth).

Counters are fixed windows (one cache key per window, incremented atomically), not
DRF's SimpleRateThrottle, which reads and rewrites a list of every request's time per
key: at 6,000 a minute that is a 6,000-item list per request, and concurrent workers
overwrite each other's. A window lets a client send up to twice the limit across its
edge, which is acceptable for a guard against runaway clients and key guessing.
Requests per key are counted in leases of requests per process (WindowLeases), so
that most requests cost no round trip to the cache.
"""

import ipaddress
import logging
import threading
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


def window_hit(name: str, period: int, hits: int = 1) -> tuple[int, float]:
    """Count `hits` hits on `name` in the current window of `period` seconds. Returns
    the hits so far in the window (these included) and the seconds until it ends;
    (0, 0) when the cache cannot be reached: a limit is a guard, and an outage of
    the cache must not stop the API."""
    window, seconds_left = _window(period)
    key = f"ratelimit:{name}:{window}"
    try:
        count_hit = getattr(cache, "count_hit", None)
        if count_hit is not None:  # Redis (config.cache): one round trip
            return count_hit(key, period, hits), seconds_left
        try:
            return cache.incr(key, hits), seconds_left
        except ValueError:
            # The window's first hit. A key lives `period` seconds from its first hit,
            # so it outlives its window and is never incremented after it expired.
            if cache.add(key, hits, timeout=period):
                return hits, seconds_left
            return cache.incr(key, hits), seconds_left  # another process added it first
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


# A lease is at most this many requests, and at most this share of what the window
# has left as last seen: near the limit, leases shrink to one request, so the limit
# is counted exactly where it matters.
LEASE_MOST = 64
LEASE_SHARE = 16


class WindowLeases:
    """Requests per key counted in leases: a process takes a lease of requests from
    the shared counter (one round trip, the counter raised by the whole lease) and
    spends it locally, one request at a time, until the lease or the window ends.
    A counter reading at the limit refuses, so the processes together never allow
    more than the limit in a window; what they hold unspent when the window ends is
    lost, so a client near its limit may be refused up to a lease per process
    early (with a shared cache: CACHE_URL; without one each process counts its
    own). Below the limit a request costs no round trip most of the time (the
    check sits in front of every AI call). Per process; `clear` forgets every lease."""

    def __init__(self):
        self._lock = threading.Lock()
        self._window: tuple[int, int] | None = None  # (period, window index)
        # name -> [requests left in the lease, the highest count a lease read]
        self._held: dict[str, list[int]] = {}

    def take(self, name: str, limit: int, period: int) -> tuple[bool, float]:
        """Whether one more request on `name` is within `limit` in the current
        window of `period` seconds, and the seconds until the window ends."""
        window, seconds_left = _window(period)
        current = (period, int(window))
        with self._lock:
            if self._window is None or self._window[0] != period or current[1] > self._window[1]:
                self._window = current
                self._held.clear()
            # A thread still in the window before (at its end) takes one request.
            late = self._window != current
            held = None if late else self._held.get(name)
            if held is not None and held[0] > 0:
                held[0] -= 1
                return True, seconds_left
            seen = held[1] if held is not None else 0
        size = 1 if late else max(1, min(LEASE_MOST, (limit - seen) // LEASE_SHARE))
        counted, seconds_left = window_hit(name, period, size)
        if counted == 0:  # the cache failed (logged): let the request through
            return True, seconds_left
        granted = max(0, min(size, limit - (counted - size)))
        with self._lock:
            if self._window == current:
                # Added to what another thread of this process may have leased
                # meanwhile, not put in its place: both leases were counted.
                held = self._held.setdefault(name, [0, 0])
                held[0] += max(0, granted - 1)
                held[1] = max(held[1], counted)
        return granted > 0, seconds_left

    def clear(self) -> None:
        with self._lock:
            self._window = None
            self._held.clear()


key_leases = WindowLeases()


def key_rate_allows(request, key) -> tuple[bool, float]:
    """Whether `request`, made with `key`, is within API_THROTTLE_RATE, and the
    seconds until the window ends. A request is counted once: the answer is kept
    on it, and asked again (billing.api.fast_answer hands on to DRF after asking) it
    is read back, not counted a second time."""
    rate = settings.API_THROTTLE_RATE
    if rate is None or key is None:
        return True, 0.0
    counted = getattr(request, "key_rate_counted", None)
    if counted is not None and counted[0] == key.pk:
        return counted[1], counted[2]
    limit, period = rate
    allowed, seconds_left = key_leases.take(f"key:{key.pk}", limit, period)
    request.key_rate_counted = (key.pk, allowed, seconds_left)
    return allowed, seconds_left


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """At most API_THROTTLE_RATE requests per API key, whatever the endpoint; beyond it
    429 with Retry-After (the seconds until the window ends). Counted in leases
    (WindowLeases): no database query, and most requests no cache round trip."""

    def allow_request(self, request, view) -> bool:
        allowed, self.seconds_left = key_rate_allows(request, request.auth)
        return allowed

    def wait(self) -> float:
        return self.seconds_left
