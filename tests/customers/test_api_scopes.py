"""Scopes as API.md says: a call outside a key's scopes is a 403. `read` reads all
but finance data, `finance:read` reads margins, cost rates and the journal, `admin`
writes (it neither reads nor ingests), `events:write` ingests; none implies another.
Existing keys keep what they could do only when they held every scope
(customers/migrations/0015_api_key_finance_read_scope)."""

import importlib

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from customers.api_keys import api_key_create
from customers.models import ApiKey
from plans.models import CostRate
from tests.factories import CustomerFactory, MeterFactory

pytestmark = pytest.mark.django_db

WINDOW = "period_start=2026-11-01&period_end=2026-12-01"
FINANCE_READS = [
    f"/api/v1/margins?{WINDOW}",
    "/api/v1/cost-rates",
    "/api/v1/exchange-rates",
    "/api/v1/journal?from=2026-11-01&to=2026-12-01",
    "/api/v1/journal.csv?from=2026-11-01&to=2026-12-01",
    "/api/v1/journal/trial-balance?from=2026-11-01&to=2026-12-01",
]
READS = [
    "/api/v1/customers",
    "/api/v1/plans",
    "/api/v1/meters",
    "/api/v1/invoices",
    "/api/v1/billing-entities",
]
EVENT = {
    "id": "e1",
    "customer": "acme",
    "event_name": "prompt",
    "timestamp": "2026-11-20T10:00:00Z",
    "properties": {},
}


def client(*scopes: str) -> APIClient:
    _, secret = api_key_create(name="-".join(scopes), scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def refused(response, scope: str) -> None:
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["type"] == "permission_denied"
    assert scope in error["message"]


@pytest.mark.parametrize("path", FINANCE_READS)
def test_a_read_key_does_not_read_finance_data(path):
    refused(client("read").get(path), "'finance:read'")


@pytest.mark.parametrize("path", FINANCE_READS)
def test_a_head_takes_the_scope_of_its_get(path):
    # Django answers HEAD with the view's get: the finance query ran for a read key.
    assert client("read").head(path).status_code == 403
    assert client("finance:read").head(path).status_code == 200


@pytest.mark.parametrize("path", FINANCE_READS)
def test_a_finance_read_key_reads_finance_data(path):
    assert client("finance:read").get(path).status_code == 200


@pytest.mark.parametrize("path", FINANCE_READS + READS)
@pytest.mark.parametrize("scope", ["admin", "events:write"])
def test_admin_and_events_write_alone_read_nothing(scope, path):
    refused(client(scope).get(path), "read'")


@pytest.mark.parametrize("path", READS)
def test_finance_read_alone_reads_nothing_else(path):
    refused(client("finance:read").get(path), "'read'")


@pytest.mark.parametrize("scope", ["admin", "read", "finance:read"])
def test_only_events_write_ingests(scope):
    CustomerFactory(external_id="acme")
    MeterFactory(code="prompts", event_name="prompt")
    api = client(scope)

    refused(api.post("/api/v1/events", {"events": [EVENT]}, format="json"), "'events:write'")
    assert (
        client("events:write")
        .post("/api/v1/events", {"events": [EVENT]}, format="json")
        .json()["accepted"]
        == 1
    )


@pytest.mark.parametrize("scope", ["admin", "finance:read"])
def test_check_needs_read_or_events_write(scope):
    CustomerFactory(external_id="acme")
    body = {"meter": "prompts", "quantity": "1"}

    response = client(scope).post("/api/v1/customers/acme/check", body, format="json")

    refused(response, "'read' or 'events:write'")


def test_finance_read_does_not_write_a_cost_rate_and_admin_does():
    MeterFactory(code="prompts", event_name="prompt")
    rate = {
        "meter": "prompts",
        "unit_cost": "0.01",
        "currency": "USD",
        "effective_from": "2026-11-01T00:00:00Z",
    }

    refused(client("finance:read").post("/api/v1/cost-rates", rate, format="json"), "'admin'")
    assert CostRate.objects.count() == 0
    assert client("admin").post("/api/v1/cost-rates", rate, format="json").status_code == 201


def test_a_key_that_held_every_scope_keeps_finance_reads_and_no_other_gains_them():
    migration = importlib.import_module("customers.migrations.0015_api_key_finance_read_scope")
    kinds = [
        ["events:write", "read", "admin"],
        ["read", "admin"],
        ["read"],
        ["admin"],
        ["events:write"],
    ]
    keys = [api_key_create(name=str(i), scopes=scopes)[0] for i, scopes in enumerate(kinds)]

    migration.grant_finance_read(apps, None)

    assert [ApiKey.objects.get(pk=k.pk).scopes for k in keys] == [
        ["events:write", "read", "admin", "finance:read"],
        ["read", "admin"],
        ["read"],
        ["admin"],
        ["events:write"],
    ]


def test_the_schema_names_each_operations_scope():
    schema = APIClient().get("/api/schema/?format=json").json()

    assert schema["paths"]["/api/v1/margins"]["get"]["description"].endswith(
        "Scope: `finance:read`."
    )
    assert schema["paths"]["/api/v1/events"]["post"]["description"].endswith(
        "Scope: `events:write`."
    )
    assert schema["paths"]["/api/v1/customers"]["post"]["description"].endswith("Scope: `admin`.")
