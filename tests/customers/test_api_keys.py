"""API keys: Bearer authentication, scopes, revocation, `create_api_key`, and the
schema pages that need no key."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from customers import api_keys
from customers.api_keys import api_key_create, api_key_revoke
from customers.models import ApiKey
from plans.models import Meter

METER = {"code": "prompts", "name": "Prompts", "event_name": "prompt", "aggregation": "count"}


def client_for(secret: str | None = None, *, header: str | None = None) -> APIClient:
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.fixture
def client_with_scopes(db):
    def make(scopes: list[str]) -> APIClient:
        _, secret = api_key_create(name=f"key {' '.join(scopes)}", scopes=scopes)
        return client_for(secret)

    return make


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    return error


# Authentication


def test_no_authorization_header_is_401_with_www_authenticate(db, row_counts):
    # given
    before = row_counts()

    # when
    response = client_for().post("/api/v1/meters", METER, format="json")

    # then
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert row_counts() == before


def test_get_without_a_key_is_401(db):
    response = client_for().get("/api/v1/meters")

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    ["Basic x", "Bearer", "Bearer ", "Token sk_whatever", "bearer sk_not_a_real_key"],
)
def test_bad_authorization_header_is_401(db, row_counts, header):
    before = row_counts()

    response = client_for(header=header).post("/api/v1/meters", METER, format="json")

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert row_counts() == before


def test_unknown_key_is_401(db):
    response = client_for("sk_this_key_was_never_issued").get("/api/v1/meters")

    assert_error(response, 401, "authentication_failed")


def test_revoked_key_is_401_and_writes_nothing(db, row_counts):
    # given a key that worked, then was revoked
    key, secret = api_key_create(name="ci")
    assert client_for(secret).get("/api/v1/meters").status_code == 200
    api_key_revoke(key=key)
    before = row_counts()

    # when
    read = client_for(secret).get("/api/v1/meters")
    write = client_for(secret).post("/api/v1/meters", METER, format="json")

    # then
    assert_error(read, 401, "authentication_failed")
    assert_error(write, 401, "authentication_failed")
    assert row_counts() == before


@pytest.mark.parametrize("change", ["revoked", "deleted"])
def test_a_key_revoked_by_another_process_is_refused_within_the_cache_bound(
    db, monkeypatch, change
):
    # given: a key this process has accepted (and cached), on a clock of the test's
    clock = [1000.0]
    monkeypatch.setattr(api_keys, "_clock", lambda: clock[0])
    key, secret = api_key_create(name="ci")
    assert client_for(secret).get("/api/v1/meters").status_code == 200

    # when: another process revokes or deletes it (this process's cache is not told)
    if change == "revoked":
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    else:
        ApiKey.objects.filter(pk=key.pk).delete()

    # then: accepted at most until KEY_CACHE_SECONDS after this process read it ...
    clock[0] += api_keys.KEY_CACHE_SECONDS - 0.001
    assert client_for(secret).get("/api/v1/meters").status_code == 200
    # ... and refused from then on
    clock[0] += 0.001
    assert_error(client_for(secret).get("/api/v1/meters"), 401, "authentication_failed")
    clock[0] += api_keys.KEY_CACHE_SECONDS
    assert_error(client_for(secret).get("/api/v1/meters"), 401, "authentication_failed")


def test_a_request_with_a_known_key_reads_and_writes_nothing(db, django_assert_num_queries):
    _, secret = api_key_create(name="ci")
    client = client_for(secret)
    assert client.get("/api/v1/plans").status_code == 200

    # the plans list's own query only: the key is not read again, nothing is written
    with django_assert_num_queries(1):
        assert client.get("/api/v1/plans").status_code == 200


def test_revoking_twice_keeps_the_first_revocation_time(db):
    key, _ = api_key_create(name="ci")
    api_key_revoke(key=key)
    revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at

    api_key_revoke(key=ApiKey.objects.get(pk=key.pk))

    assert ApiKey.objects.get(pk=key.pk).revoked_at == revoked_at


# Scopes


def test_read_key_can_list_but_not_create(client_with_scopes, row_counts):
    # given
    client = client_with_scopes(["read"])
    before = row_counts()

    # when
    listed = client.get("/api/v1/meters")
    created = client.post("/api/v1/meters", METER, format="json")

    # then
    assert listed.status_code == 200
    assert listed.json() == {"results": [], "next": None}
    error = assert_error(created, 403, "permission_denied")
    assert error["message"] == "this API key lacks the 'admin' scope"
    assert row_counts() == before
    assert not Meter.objects.filter(code="prompts").exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/plans", {"code": "p", "name": "P", "currency": "USD"}),
        ("post", "/api/v1/customers", {"external_id": "a", "name": "A", "currency": "USD"}),
        (
            "post",
            "/api/v1/credit-packs",
            {"code": "c", "credits": "1", "price": "1.00", "currency": "USD"},
        ),
    ],
)
def test_read_key_cannot_write_anything(client_with_scopes, row_counts, method, path, body):
    client = client_with_scopes(["read"])
    before = row_counts()

    response = getattr(client, method)(path, body, format="json")

    assert_error(response, 403, "permission_denied")
    assert row_counts() == before


def test_events_write_key_cannot_read_the_catalog(client_with_scopes):
    client = client_with_scopes(["events:write"])

    response = client.get("/api/v1/plans")

    error = assert_error(response, 403, "permission_denied")
    assert error["message"] == "this API key lacks the 'read' scope"


def test_events_write_key_cannot_create_a_meter(client_with_scopes, row_counts):
    client = client_with_scopes(["events:write"])
    before = row_counts()

    response = client.post("/api/v1/meters", METER, format="json")

    assert_error(response, 403, "permission_denied")
    assert row_counts() == before


def test_admin_scope_writes_but_does_not_read(client_with_scopes):
    client = client_with_scopes(["admin"])

    created = client.post("/api/v1/meters", METER, format="json")
    listed = client.get("/api/v1/plans")

    assert created.status_code == 201
    error = assert_error(listed, 403, "permission_denied")
    assert error["message"] == "this API key lacks the 'read' scope"
    assert Meter.objects.filter(code="prompts").count() == 1


def test_scope_is_checked_before_the_body_is_read(client_with_scopes, row_counts):
    # A malformed body from a key without the scope is a 403, not a 400.
    client = client_with_scopes(["read"])
    before = row_counts()

    response = client.post("/api/v1/meters", data="{bad", content_type="application/json")

    assert_error(response, 403, "permission_denied")
    assert row_counts() == before


def test_api_key_create_without_scopes_gets_every_scope(db):
    key, _ = api_key_create(name="all")

    assert key.scopes == ["events:write", "read", "finance:read", "admin"]


# manage.py create_api_key


def test_create_api_key_prints_a_secret_once_and_stores_only_its_hash(db):
    # when
    stdout, stderr = StringIO(), StringIO()
    call_command("create_api_key", "--name", "x", "--scopes", "read", stdout=stdout, stderr=stderr)

    # then the secret is the only thing on stdout
    secret = stdout.getvalue().strip()
    assert secret.startswith("sk_")
    assert "\n" not in secret
    assert secret not in stderr.getvalue()
    key = ApiKey.objects.get()
    assert key.name == "x"
    assert key.scopes == ["read"]
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in ApiKey.objects.values().get().items():
        assert secret not in str(value), f"the secret is stored in {column}"

    # and it authenticates, with its scope only
    client = client_for(secret)
    assert client.get("/api/v1/meters").status_code == 200
    assert client.post("/api/v1/meters", METER, format="json").status_code == 403


def test_create_api_key_with_an_unknown_scope_is_refused(db, row_counts):
    before = row_counts()

    with pytest.raises(CommandError, match="unknown scope 'write'"):
        call_command(
            "create_api_key", "--name", "x", "--scopes", "read", "write", stdout=StringIO()
        )

    assert row_counts() == before


def test_create_api_key_with_a_blank_name_is_refused(db, row_counts):
    before = row_counts()

    with pytest.raises(CommandError, match="needs a name"):
        call_command("create_api_key", "--name", "  ", stdout=StringIO(), stderr=StringIO())

    assert row_counts() == before


# Schema and docs need no key


def test_openapi_schema_is_served_without_a_key(db):
    response = client_for().get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/plans" in response.content


def test_api_docs_are_served_without_a_key(db):
    response = client_for().get("/api/docs/")

    assert response.status_code == 200
    assert b"/api/schema/" in response.content
