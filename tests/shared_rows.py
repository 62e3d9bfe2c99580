"""Rows made once for a test module instead of once a test.

Most tests start from the same catalog (meters, plans, published versions, packs),
made through the services as finance would make it: some forty queries a plan. Made
for every test, that was most of many tests' time. The `module_transaction` fixture
(tests/conftest.py) opens a transaction for a test module, rolled back after its last
test; rows made in it once (`ModuleTransaction.once`) are there for every test of the
module, and each test's own transaction (pytest-django's, as Django's TestCase) is a
savepoint inside it, so what a test writes is gone after it. Each test gets its own
copy of what was made (as Django's setUpTestData gives each test a copy), so a test
changing an object in memory does not change it for the next.

A module with tests that empty the database after them (transactional tests: real
processes, a live server) cannot hold a transaction open across them: there the rows
are made for each test, as before; likewise in a module where some test does not ask
for them (it must not see rows it did not ask for, whatever order the tests run in).

A shared fixture, in a conftest:

    @pytest.fixture(scope="module")
    def _catalog_once(module_transaction):
        return module_transaction.once(build_catalog, "catalog")

    @pytest.fixture
    def catalog(_catalog_once, db):
        return _catalog_once.for_test()
"""

import copy
from collections.abc import Callable

from django.db import transaction
from django.test import override_settings

# What every test runs with (tests/conftest.py's autouse fixtures say why): rows made
# once for a module are made with the same.
EVERY_TEST_SETTINGS = {"BILLING_ALERT_CHECK_SECONDS": 0, "BILLING_FOLD_MS": 0}


def _transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return bool({"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))


class Made:
    """What a build made once for a module, or, where the module cannot share, the
    build itself, run for each test."""

    def __init__(self, build: Callable, made, *, shared: bool):
        self._build, self._made, self.shared = build, made, shared

    def for_test(self):
        return copy.deepcopy(self._made) if self.shared else self._build()


class ModuleTransaction:
    def __init__(self, request, blocker):
        self._request, self._blocker = request, blocker
        self._items = [i for i in request.session.items if i.module is request.module]
        self.shared = not any(_transactional(item) for item in self._items)
        self._atomic = None

    def once(self, build: Callable, fixture: str) -> Made:
        # Shared only where every test of the module asks for the fixture, so that no
        # test sees rows it did not ask for, whatever order the tests run in.
        if not self.shared or any(fixture not in i.fixturenames for i in self._items):
            return Made(build, None, shared=False)
        with self._blocker.unblock():
            if self._atomic is None:
                self._atomic = transaction.atomic()
                # Marked as Django's TestCase marks its own, so that a durable atomic
                # block in the code under test may still open inside it.
                self._atomic._from_testcase = True
                self._atomic.__enter__()
            with override_settings(**EVERY_TEST_SETTINGS):
                return Made(build, build(), shared=True)

    def close(self) -> None:
        if self._atomic is None:
            return
        with self._blocker.unblock():
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)
