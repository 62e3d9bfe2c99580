"""Django's Redis cache backend, keeping one Redis client per connection pool, with
a counter that costs one round trip.

Django's client builds a new `redis.Redis` for every cache call, and redis-py's
constructor copies its ~170 response callbacks each time: about as much CPU as the
round trip itself. The API's rate limits call the cache on every request, so the
client is built once per pool here. A `redis.Redis` is safe to share between threads
(it takes a connection from its pool per command) and its pool reconnects after a fork.

Django's `incr` asks whether the key exists, then increments it: two round trips
on every API request. `count_hit` increments (by one, or by a lease of hits:
common.throttling), and gives a new key its lifetime, in one script.
"""

from django.core.cache.backends import redis as django_redis


class _SharedClientRedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClientRedisCacheClient
        self._scripts = {}

    # INCRBY, and the expiry set by the hits that created the key: atomic in Redis.
    _COUNT_HIT = (
        "local hits = redis.call('INCRBY', KEYS[1], ARGV[2]) "
        "if hits == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
        "return hits"
    )

    def count_hit(self, key: str, timeout: int, hits: int = 1) -> int:
        """`hits` more hits on the counter `key`, which lives `timeout` seconds from
        its first hits; returns the hits so far. One round trip (a script run by
        its digest), where Django's incr takes two (EXISTS, then INCRBY) and a
        window's first hit two more (add). The count is stored as Django stores an
        int, so `get` reads it."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(self._COUNT_HIT)
        return script(keys=[key], args=[timeout, hits])
