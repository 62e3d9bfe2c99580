"""Read-your-writes beside read replicas: the moment a customer's data was last
written, or an admin user or API client last wrote, kept in the shared cache
(Redis when set: config.settings) for DATABASE_REPLICA_READ_YOUR_WRITES_MS, so that
every web process sends their next reads to the primary until a replica has the
write (config.replica_reads). Nothing is noted when no replica is set."""

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from config.db_routers import written

logger = logging.getLogger(__name__)

PREFIX = "replica:wrote:"


def customer_key(customer_id: int) -> str:
    return f"{PREFIX}customer:{customer_id}"


def user_key(user_id: int) -> str:
    return f"{PREFIX}user:{user_id}"


def client_key(authorization: str) -> str:
    """An API client, by its Authorization header (hashed: the key stays out of the cache)."""
    return f"{PREFIX}client:{hashlib.sha256(authorization.encode()).hexdigest()[:32]}"


def writes_note(keys: Iterable[str]) -> None:
    """Notes that `keys` wrote now. A cache out of reach is logged: those reads may
    then meet a replica behind them, for at most the lag bound."""
    keys = list(keys)
    if not keys or not settings.DATABASE_REPLICAS:
        return
    window = settings.DATABASE_REPLICA_READ_YOUR_WRITES_MS / 1000
    try:
        cache.set_many(dict.fromkeys(keys, time.time()), timeout=math.ceil(window))
    except Exception:  # the cache's client raises its own errors (redis-py's)
        logger.warning("read-your-writes not noted (cache unavailable): %s", keys, exc_info=True)


def written_recently(keys: Iterable[str]) -> bool:
    """Whether any of `keys` wrote within the window; True when the cache is out of
    reach (the primary is never behind)."""
    keys = list(keys)
    if not keys:
        return False
    window = settings.DATABASE_REPLICA_READ_YOUR_WRITES_MS / 1000
    try:
        moments = cache.get_many(keys)
    except Exception:  # as above
        return True
    now = time.time()
    return any(now - moment < window for moment in moments.values())


@contextmanager
def customer_writes_noted() -> Iterator[None]:
    """Notes, at the end, the customers whose rows the code inside saved or deleted
    (config.db_routers.ReplicaRouter sees each): around a task, a request."""
    token = written.set(set())
    try:
        yield
    finally:
        customers = written.get()
        written.reset(token)
        writes_note(customer_key(customer) for customer in customers)
