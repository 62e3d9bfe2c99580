"""The API's rate limits (common.throttling, customers.auth): requests per API key, and
wrong keys per client address, both answered 429 with Retry-After in the error
envelope; counted in the cache, never with a database query."""

import logging
import os
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient, APIRequestFactory

from common import throttling
from customers.api_keys import api_key_create
from customers.auth import ApiKeyAuthentication
from customers.models import ApiKey, Customer
from tests.threads import run_at_once

# Ten seconds into a minute: the current windows end in 50 s.
NOW = datetime(2026, 11, 10, 12, 0, 10, tzinfo=UTC)
NEXT_MINUTE = datetime(2026, 11, 10, 12, 1, 0, tzinfo=UTC)
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"


def client_from(address: str, secret: str, **extra) -> APIClient:
    client = APIClient(REMOTE_ADDR=address, **extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_rate_limited(response, *, retry_after: str) -> str:
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == retry_after
    error = response.json()["error"]
    assert error["type"] == "rate_limited"
    return error["message"]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# Wrong keys, per client address


def test_wrong_keys_from_one_address_are_refused_after_the_limit(db, frozen, api_key_secret):
    # given: the default limit, 60 wrong keys a minute per address
    answers = []

    # when: 300 wrong keys from one address within a second
    for _ in range(300):
        answers.append(client_from(ATTACKER, f"bk_{uuid.uuid4().hex}").get("/api/v1/meters"))

    # then: the first 60 are 401, the other 240 are 429 until the minute ends
    assert [r.status_code for r in answers[:60]] == [401] * 60
    assert [r.status_code for r in answers[60:]] == [429] * 240
    message = assert_rate_limited(answers[-1], retry_after="50")
    assert message == (
        "too many requests with a wrong API key from this address. "
        "Expected available in 50 seconds."
    )
    # and a right key from that address still gets through (a shared address, a NAT,
    # must not lock its other clients out)
    assert client_from(ATTACKER, api_key_secret).get("/api/v1/meters").status_code == 200
    # and another address is not affected
    assert client_from(NEIGHBOUR, api_key_secret).get("/api/v1/meters").status_code == 200
    assert client_from(NEIGHBOUR, "bk_wrong").get("/api/v1/meters").status_code == 401

    # when: the minute is over
    frozen.move_to(NEXT_MINUTE)

    # then: the address may try again
    assert client_from(ATTACKER, api_key_secret).get("/api/v1/meters").status_code == 200
    assert client_from(ATTACKER, "bk_wrong").get("/api/v1/meters").status_code == 401


def test_malformed_authorization_headers_count_as_failures(db, frozen, settings):
    # given
    settings.API_AUTH_FAILURE_RATE = (3, 60)
    client = APIClient(REMOTE_ADDR=ATTACKER, HTTP_AUTHORIZATION="Basic dXNlcjpwdw==")

    # when
    statuses = [client.get("/api/v1/meters").status_code for _ in range(4)]

    # then
    assert statuses == [401, 401, 401, 429]


def test_requests_without_a_key_are_not_counted_as_failures(db, frozen, settings):
    settings.API_AUTH_FAILURE_RATE = (3, 60)
    client = APIClient(REMOTE_ADDR=ATTACKER)

    statuses = [client.get("/api/v1/meters").status_code for _ in range(5)]

    assert statuses == [401] * 5
    assert cache.get(f"ratelimit:auth-failures:{ATTACKER}:{int(NOW.timestamp() // 60)}") is None


def test_a_forged_x_forwarded_for_does_not_escape_the_limit(db, frozen, settings):
    # given: no proxy in front (TRUSTED_PROXY_COUNT 0, the default), a limit of 3
    settings.API_AUTH_FAILURE_RATE = (3, 60)

    # when: each wrong key claims another address
    statuses = [
        client_from(ATTACKER, "bk_wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        .get("/api/v1/meters")
        .status_code
        for n in range(5)
    ]

    # then: they all count against the real one
    assert statuses == [401, 401, 401, 429, 429]


def test_behind_a_trusted_proxy_the_address_it_forwards_is_the_client(db, frozen, settings):
    # given: one proxy in front, which appends the address it saw to X-Forwarded-For
    settings.TRUSTED_PROXY_COUNT = 1
    settings.API_AUTH_FAILURE_RATE = (2, 60)
    proxy = "10.0.0.1"

    def wrong_key(forwarded_for: str) -> int:
        client = client_from(proxy, "bk_wrong", HTTP_X_FORWARDED_FOR=forwarded_for)
        return client.get("/api/v1/meters").status_code

    # when: an attacker prepends made-up addresses; a neighbour behind the same proxy
    attacker = [wrong_key(f"192.0.2.{n}, {ATTACKER}") for n in range(3)]
    neighbour = wrong_key(NEIGHBOUR)

    # then: the attacker is counted under the address the proxy saw, not the proxy's
    assert attacker == [401, 401, 429]
    assert neighbour == 401


# Requests per key


def test_a_key_beyond_its_rate_is_refused_and_the_request_changes_nothing(
    db, frozen, settings, api_key_secret
):
    # given: 5 requests a minute per key, and a second key
    settings.API_THROTTLE_RATE = (5, 60)
    _, other_secret = api_key_create(name="other")
    client = client_from(ATTACKER, api_key_secret)
    assert [client.get("/api/v1/meters").status_code for _ in range(5)] == [200] * 5

    # when: the key's sixth request of the minute
    response = client.post(
        "/api/v1/customers",
        {"external_id": "acme", "name": "Acme", "currency": "USD"},
        format="json",
    )

    # then: 429 with Retry-After, in the envelope, and no customer was created
    message = assert_rate_limited(response, retry_after="50")
    assert message == "Request was throttled. Expected available in 50 seconds."
    assert not Customer.objects.exists()
    # and the other key, from the same address, is not affected
    assert client_from(ATTACKER, other_secret).get("/api/v1/meters").status_code == 200

    # when: the minute is over
    frozen.move_to(NEXT_MINUTE)

    # then
    assert client.get("/api/v1/meters").status_code == 200


def test_the_default_rate_is_6000_requests_a_minute_per_key(db, frozen, api_key_secret):
    # given: 5,999 requests of this key counted this minute
    key = ApiKey.objects.get()
    cache.set(f"ratelimit:key:{key.pk}:{int(NOW.timestamp() // 60)}", 5999)
    client = client_from(ATTACKER, api_key_secret)

    # when / then: the 6,000th passes, the 6,001st does not
    assert client.get("/api/v1/meters").status_code == 200
    assert_rate_limited(client.get("/api/v1/meters"), retry_after="50")


def test_the_limits_add_no_database_query(db, frozen, api_key_secret, django_assert_num_queries):
    # given: the key known to this process (its cache of keys)
    request = APIRequestFactory().get(
        "/api/v1/meters", HTTP_AUTHORIZATION=f"Bearer {api_key_secret}"
    )
    authentication = ApiKeyAuthentication()
    authentication.authenticate(request)

    # when / then: authenticating (failures read) and counting the request
    with django_assert_num_queries(0):
        _, key = authentication.authenticate(request)
        request.auth = key
        assert throttling.ApiKeyRateThrottle().allow_request(request, view=None)


def test_a_cache_out_of_reach_lets_requests_through(db, api_key_secret, caplog):
    # given: a cache on a port nothing listens on
    unreachable = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=unreachable), caplog.at_level(logging.WARNING):
        # when
        ok = client_from(ATTACKER, api_key_secret).get("/api/v1/meters")
        wrong = client_from(ATTACKER, "bk_wrong").get("/api/v1/meters")

    # then: answered as without limits, and the failure is logged
    assert (ok.status_code, wrong.status_code) == (200, 401)
    assert "the cache failed" in caplog.text


def redis_url() -> str | None:
    for name in ("CACHE_URL", "CELERY_BROKER_URL"):
        if os.environ.get(name, "").startswith("redis://"):
            return os.environ[name]
    return None


def own_redis_cache() -> dict:
    """CACHES for the production cache (config.cache) on Redis, on keys of the test's own."""
    return {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": redis_url(),
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }


@pytest.mark.skipif(redis_url() is None, reason="needs Redis (CACHE_URL or CELERY_BROKER_URL)")
def test_the_counters_work_on_redis(db, frozen, settings, api_key_secret):
    # given: the production cache (config.cache), on keys of this test's own
    redis = own_redis_cache()
    settings.API_THROTTLE_RATE = (3, 60)
    settings.API_AUTH_FAILURE_RATE = (2, 60)
    window = int(NOW.timestamp() // 60)
    counters = [
        f"ratelimit:key:{ApiKey.objects.get().pk}:{window}",
        f"ratelimit:auth-failures:{NEIGHBOUR}:{window}",
    ]
    with override_settings(CACHES=redis):
        # when
        rated = [client_from(ATTACKER, api_key_secret).get("/api/v1/meters") for _ in range(4)]
        wrong = [client_from(NEIGHBOUR, "bk_wrong").get("/api/v1/meters") for _ in range(3)]
        client = cache._cache.get_client(write=True)
        ttl = client.ttl(cache.make_and_validate_key(counters[0]))
        reused = cache._cache.get_client(write=True) is client
        cache.delete_many(counters)

    # then
    assert [r.status_code for r in rated] == [200, 200, 200, 429]
    assert rated[-1]["Retry-After"] == "50"
    assert [r.status_code for r in wrong] == [401, 401, 429]
    assert 0 < ttl <= 60
    # and config.cache builds its Redis client once, not per call
    assert reused


@pytest.mark.skipif(redis_url() is None, reason="needs Redis (CACHE_URL or CELERY_BROKER_URL)")
def test_a_hit_on_redis_is_one_command_and_its_counter_lives_from_its_first_hit(
    db, frozen, monkeypatch
):
    # given: the production cache, on keys of this test's own, its commands counted
    redis = own_redis_cache()
    with override_settings(CACHES=redis):
        client = cache._cache.get_client(write=True)
        sent = []
        execute = client.execute_command

        def counted(*args, **options):
            sent.append(args[0])
            return execute(*args, **options)

        throttling.window_hit("warm", 60)  # the script is loaded once per client
        monkeypatch.setattr(client, "execute_command", counted)
        window = int(NOW.timestamp() // 60)
        counter = cache.make_and_validate_key(f"ratelimit:key:7:{window}")

        # when: three hits, the counter's expiry shortened after the first
        first = throttling.window_hit("key:7", 60)
        client.expire(counter, 5)
        later = [throttling.window_hit("key:7", 60) for _ in range(2)]
        ttl = client.ttl(counter)
        commands = list(sent)
        stored = cache.get(f"ratelimit:key:7:{window}")
        cache.delete_many([f"ratelimit:key:7:{window}", f"ratelimit:warm:{window}"])

    # then: counted, one command a hit, and only the first hit set the expiry
    assert [first[0], *(hits for hits, _ in later)] == [1, 2, 3]
    assert first[1] == 50
    assert commands == ["EVALSHA", "EXPIRE", "EVALSHA", "EVALSHA", "TTL"]
    assert 0 < ttl <= 5
    assert stored == 3


# Leases: requests per key taken ahead from the shared counter


def test_processes_counting_in_leases_allow_exactly_the_limit_with_few_round_trips(
    db, frozen, monkeypatch
):
    # given: two processes (their leases) sharing one counter, 1,000 requests a minute
    workers = [throttling.WindowLeases(), throttling.WindowLeases()]
    trips = []
    hit = throttling.window_hit

    def counted(name, period, hits=1):
        trips.append(hits)
        return hit(name, period, hits)

    monkeypatch.setattr(throttling, "window_hit", counted)

    # when: 1,200 requests on one key, the processes taking turns
    answers = [workers[n % 2].take("key:1", 1000, 60) for n in range(1200)]

    # then: exactly the limit allowed, then only refusals, all with the window's rest
    allowed = [ok for ok, _ in answers]
    assert sum(allowed) == 1000
    first_refused = allowed.index(False)
    assert not any(allowed[first_refused + throttling.LEASE_SHARE :])
    # refused at most a lease early: leases shrink near the limit
    assert first_refused >= 1000 - 2 * throttling.LEASE_SHARE
    assert {left for _, left in answers} == {50.0}
    # and below the limit a round trip every eight requests or more, not one a request:
    # leases of a sixteenth of what is left (62), shrinking to one near the limit
    below = trips[: len(trips) - (1200 - first_refused)]
    assert len(below) <= 1000 // 8
    assert below[:2] == [1000 // throttling.LEASE_SHARE] * 2 and below[-1] == 1
    assert cache.get(f"ratelimit:key:1:{int(NOW.timestamp() // 60)}") >= 1000


def test_a_lease_ends_with_its_window(db, frozen):
    # given: a process that leased requests on a key and spent one
    leases = throttling.WindowLeases()
    assert leases.take("key:2", 6000, 60) == (True, 50.0)

    # when: the minute is over
    frozen.move_to(NEXT_MINUTE)

    # then: the next request counts in the new window's counter, from a new lease
    assert leases.take("key:2", 6000, 60) == (True, 60.0)
    window = int(NEXT_MINUTE.timestamp() // 60)
    assert cache.get(f"ratelimit:key:2:{window}") == throttling.LEASE_MOST


def test_a_small_limit_is_counted_one_request_at_a_time(db, frozen):
    # given: three processes and a limit smaller than a lease share
    workers = [throttling.WindowLeases() for _ in range(3)]

    # when: each asks twice
    answers = [workers[n % 3].take("key:3", 4, 60)[0] for n in range(6)]

    # then: the first four are allowed, whichever process they came to
    assert answers == [True] * 4 + [False] * 2


@pytest.mark.skipif(redis_url() is None, reason="needs Redis (CACHE_URL or CELERY_BROKER_URL)")
def test_a_lease_on_redis_raises_the_counter_by_the_lease_and_sets_its_expiry_once(db, frozen):
    redis = own_redis_cache()
    with override_settings(CACHES=redis):
        client = cache._cache.get_client(write=True)
        counter = cache.make_and_validate_key(f"ratelimit:key:9:{int(NOW.timestamp() // 60)}")

        # when: a lease of 64, the expiry shortened, then a lease of 3
        first = throttling.window_hit("key:9", 60, 64)
        client.expire(counter, 5)
        second = throttling.window_hit("key:9", 60, 3)
        ttl = client.ttl(counter)
        cache.delete(f"ratelimit:key:9:{int(NOW.timestamp() // 60)}")

    # then
    assert (first[0], second[0]) == (64, 67)
    assert 0 < ttl <= 5


def test_threads_of_one_process_share_its_leases_and_never_pass_the_limit(db, frozen):
    # given: one process's leases, eight threads, 1,000 requests a minute
    leases = throttling.WindowLeases()

    # when: 1,200 requests, 150 a thread, all at once
    answers = run_at_once(
        lambda _: [leases.take("key:4", 1000, 60)[0] for _ in range(150)], clients=8
    )

    # then: never more than the limit, and no lease thrown away when two threads
    # took one at the same time (at most the leases in flight at the end go unused)
    allowed = [ok for thread in answers for ok in thread]
    assert len(allowed) == 1200
    assert 1000 - 8 * throttling.LEASE_MOST <= sum(allowed) <= 1000


def test_two_threads_leasing_at_once_keep_both_leases(db, frozen, monkeypatch):
    # given: another thread of the process takes a lease while this one counts its own
    # (between its look at the lease it held and its count: the race, made to happen)
    leases = throttling.WindowLeases()
    hit = throttling.window_hit
    trips = []

    def racing(name, period, hits=1):
        trips.append(hits)
        if len(trips) == 1:
            assert leases.take(name, 1000, 60)[0]
        return hit(name, period, hits)

    monkeypatch.setattr(throttling, "window_hit", racing)

    # when
    assert leases.take("key:5", 1000, 60)[0]

    # then: both leases (62 each, one request spent from each) serve the next 122
    # requests with no round trip; neither was thrown away
    assert all(leases.take("key:5", 1000, 60)[0] for _ in range(122))
    assert trips == [62, 62]
    assert cache.get(f"ratelimit:key:5:{int(NOW.timestamp() // 60)}") == 124
