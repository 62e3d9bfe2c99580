"""The WSGI process collects the reference cycles each request leaves as the next
request starts (config.wsgi), instead of letting them pile up into a collection of
thousands of objects inside a later request, and runs a full collection every
FULL_COLLECTION_EVERY requests, the first of which freezes what warm-up loaded."""

import gc
import io
import sys

import pytest


@pytest.fixture
def wsgi():
    """config.wsgi, in this test only: the collector's settings it changes are put
    back, and its receiver leaves the other tests' requests."""
    from django.core.signals import request_started

    threshold = gc.get_threshold()
    from config import wsgi

    request_started.connect(wsgi._collect_before_request, dispatch_uid="config.wsgi.collect")
    warmed = wsgi._warmed
    yield wsgi
    request_started.disconnect(dispatch_uid="config.wsgi.collect")
    wsgi._warmed = warmed
    gc.unfreeze()
    gc.set_threshold(*threshold)


def request(application) -> str:
    """GET /api/v1/meters without a key, through the WSGI application, its response
    read and closed as a server does; returns the status."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/meters",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    statuses = []
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(response)
    response.close()
    return statuses[0]


def collections_during(action) -> list[tuple[int, int]]:
    """(generation, objects collected) of each collection while `action` runs."""
    seen = []

    def watch(phase, info):
        if phase == "stop":
            seen.append((info["generation"], info["collected"]))

    gc.callbacks.append(watch)
    try:
        action()
    finally:
        gc.callbacks.remove(watch)
    return seen


@pytest.mark.django_db
def test_a_request_s_cycles_are_collected_as_the_next_one_starts(wsgi):
    assert request(wsgi.application) == "401 Unauthorized"
    statuses = []

    seen = collections_during(lambda: statuses.append(request(wsgi.application)))

    assert statuses == ["401 Unauthorized"]
    # The young generations, once, before Django builds the second request: what it
    # frees is the first request's cycle (its request, view, response and theirs).
    assert seen[0][0] == 1
    assert seen[0][1] >= 10
    # Nothing else: the second request's own cycle waits for the third.
    assert [generation for generation, _ in seen] == [1]


@pytest.mark.django_db
def test_every_so_many_requests_a_full_collection_and_the_first_freezes(wsgi, monkeypatch):
    monkeypatch.setattr(wsgi, "FULL_COLLECTION_EVERY", 3)
    monkeypatch.setattr(wsgi, "_warmed", False)
    gc.collect()
    frozen = gc.get_freeze_count()

    seen = collections_during(lambda: [request(wsgi.application) for _ in range(4)])

    # A young collection a request counts one towards the full one: full at the
    # fourth request (three counted), which froze what survived it.
    assert [generation for generation, _ in seen] == [1, 1, 1, 2]
    assert wsgi._warmed
    after_first = gc.get_freeze_count()
    assert after_first > frozen

    seen = collections_during(lambda: [request(wsgi.application) for _ in range(4)])

    # Full again at the eighth, which froze nothing more (frozen objects a request
    # dropped have left the frozen ones).
    assert [generation for generation, _ in seen] == [1, 1, 1, 2]
    assert gc.get_freeze_count() <= after_first
