"""Customers that existed before migration 0018 (issue 90): 0018 gave each of them
(and each of their history rows) the JSON *string* "{}" as its limits, and every
`check`, `GET /limits`, usage alert and portal page of theirs failed. The code reads
whatever a row may hold that is not an object as "no limits", and migration 0022
turns those rows into the empty object and makes the object the column's default.

The whole upgrade, from the previous release's own database, is the upgrade drill
(tests/test_upgrade_drill.py)."""

from datetime import UTC, datetime
from importlib import import_module
from types import SimpleNamespace

import pytest
import time_machine
from django.apps import apps as current_apps
from django.db import connection

from billing.tasks import check_usage_alerts
from customers.models import Customer
from customers.services import customer_create
from tests.factories import api_client, hard_cap, prompts_meter, published_version, subscribe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
migration = import_module("customers.migrations.0022_customer_limits_object")


def stored_as(customer: Customer, text: str) -> None:
    """Write `text` (JSON) into the customer's limits column and its history rows,
    bypassing the model, as a migration's column default does."""
    literal = f"'{text}'::jsonb" if connection.vendor == "postgresql" else f"'{text}'"
    with connection.cursor() as cursor:
        for table in migration.TABLES:
            cursor.execute(f"UPDATE {table} SET limits = {literal} WHERE id = %s", [customer.pk])  # noqa: S608


def column_texts(table: str) -> list[str]:
    cast = "limits::text" if connection.vendor == "postgresql" else "limits"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {cast} FROM {table} ORDER BY 1")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def old_customer(db):
    """A customer on a hard-capped plan whose limits column holds what 0018 left."""
    prompts_meter()
    published_version("capped", charges=(hard_cap("prompts", 10),))
    customer = customer_create(external_id="before_0018", name="Before 0018", currency="USD")
    subscribe(customer, "capped", start=datetime(2026, 11, 1, tzinfo=UTC))
    stored_as(customer, '"{}"')
    customer.refresh_from_db()
    assert customer.limits == "{}"
    with time_machine.travel(NOW, tick=False):
        yield customer


def test_a_customer_that_0018_gave_the_string_reads_as_no_limits(old_customer):
    client = api_client()

    checked = client.post(
        "/api/v1/customers/before_0018/check", {"meter": "prompts", "quantity": "4"}, format="json"
    )
    limits = client.get("/api/v1/customers/before_0018/limits")
    alerts_checked = check_usage_alerts([old_customer.pk])
    session = client.post("/api/v1/customers/before_0018/portal-session", {}, format="json")
    page = client.get(session.json()["url"].split("testserver", 1)[-1])

    assert checked.status_code == 200, checked.content
    assert (checked.json()["allowed"], checked.json()["remaining"]) == (True, "10")
    assert limits.status_code == 200, limits.content
    assert limits.json()["budget"] is None
    assert limits.json()["caps"] == []
    assert alerts_checked == 0
    assert page.status_code == 200


@pytest.mark.parametrize("text", ['"{}"', "null", "[]", '"budget"', "7"])
def test_the_migration_turns_every_value_but_an_object_into_no_limits(old_customer, text):
    kept = customer_create(external_id="has_limits", name="Has limits", currency="USD")
    client = api_client()
    set_limits = client.put(
        "/api/v1/customers/has_limits/limits",
        {"budget": {"amount": "300.00", "action": "stop"}},
        format="json",
    )
    assert set_limits.status_code == 200, set_limits.content
    stored_as(old_customer, text)

    # (what the migration's step reads of its schema editor: the connection)
    migration.limits_objects(current_apps, SimpleNamespace(connection=connection))

    old_customer.refresh_from_db()
    kept.refresh_from_db()
    assert old_customer.limits == {}
    assert kept.limits["budget"] == {"amount": "300.00", "action": "stop"}
    assert all(
        value.replace(" ", "") != text for value in column_texts("customers_historicalcustomer")
    )


def column_default(table: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT column_default FROM information_schema.columns "
                "WHERE table_name = %s AND column_name = 'limits'",
                [table],
            )
            return cursor.fetchone()[0]
        cursor.execute(f"PRAGMA table_info({table})")
        return next(row[4] for row in cursor.fetchall() if row[1] == "limits")


@pytest.mark.parametrize("table", migration.TABLES)
def test_a_row_written_without_limits_gets_the_empty_object(db, table):
    expected = "'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"
    assert column_default(table) == expected
