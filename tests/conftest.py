import os

import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL; on SQLite they are skipped with the reason.
    In CI (CI=true) the database must be PostgreSQL, so none of them is skipped there."""
    on_postgres = connection.vendor == "postgresql"
    if os.environ.get("CI") == "true" and not on_postgres:
        raise pytest.UsageError("CI runs the suite on PostgreSQL: set DATABASE_URL")
    if on_postgres:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...); always runs in CI"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def api_key_secret(db):
    from customers.services import api_key_create

    _, secret = api_key_create(name="tests")
    return secret


@pytest.fixture
def api(api_key_secret):
    """A DRF test client authenticated with an all-scopes key."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
    return client
