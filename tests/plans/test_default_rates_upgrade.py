"""An earlier release let finance mark two default rates for one country; both
were charged to that country's customers. Migration plans 0026 refuses a second
default from now on (a unique index), so before the index it makes the rates each
such customer was charged its own and keeps the first default by code: nobody's
tax changes on upgrade, and the migration cannot fail on such data."""

from decimal import Decimal as D
from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection

from customers.services import customer_create
from plans.models import TaxRate
from plans.taxes import customer_tax_rates

pytestmark = pytest.mark.django_db

migration = import_module("plans.migrations.0026_tax_rate_one_default_per_country")
INDEX = "tax_rate_one_default_per_country"


def rate(code: str, percentage: str, country: str = "", **fields) -> TaxRate:
    return TaxRate.objects.create(
        code=code, name=code, percentage=D(percentage), country=country, **fields
    )


def codes(customer) -> list[str]:
    return [r.code for r in customer_tax_rates(customer)]


def test_stacked_defaults_become_the_customers_own_and_one_default_stays():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {INDEX}")  # as the earlier release's schema had it
    de_a = rate("de_a", "19", "DE", is_default=True)
    rate("de_b", "7", "DE", is_default=True)
    rate("fr", "20", "FR", is_default=True)
    rate("eu", "1", "", is_default=True)
    rate("eu_b", "2", "", is_default=True)
    berlin = customer_create(
        external_id="berlin", name="B", currency="EUR", address={"country": "DE"}
    )
    paris = customer_create(
        external_id="paris", name="P", currency="EUR", address={"country": "FR"}
    )
    nowhere = customer_create(external_id="nowhere", name="N", currency="EUR")
    own = customer_create(external_id="own", name="O", currency="EUR", address={"country": "DE"})
    own.tax_rates.set([de_a])
    # Holding only an archived rate of its own, charged the defaults.
    archived = customer_create(
        external_id="archived", name="A", currency="EUR", address={"country": "DE"}
    )
    archived.tax_rates.set([rate("old", "16", "DE", active=False)])
    before = {c.external_id: codes(c) for c in (berlin, paris, nowhere, own, archived)}
    assert before["archived"] == ["de_a", "de_b", "eu", "eu_b"]
    assert before["berlin"] == ["de_a", "de_b", "eu", "eu_b"]

    migration.one_default_per_country(apps, None)

    after = {c.external_id: codes(c) for c in (berlin, paris, nowhere, own, archived)}
    assert after == before
    assert sorted(TaxRate.objects.filter(is_default=True).values_list("code", flat=True)) == [
        "de_a",
        "eu",
        "fr",
    ]
    assert list(own.tax_rates.values_list("code", flat=True)) == ["de_a"]
    # The index the migration adds next now holds.
    constraint = next(c for c in TaxRate._meta.constraints if c.name == INDEX)
    sql = str(constraint.create_sql(TaxRate, connection.schema_editor()))
    with connection.cursor() as cursor:
        cursor.execute(sql)
    newcomer = customer_create(
        external_id="newcomer", name="New", currency="EUR", address={"country": "DE"}
    )
    assert codes(newcomer) == ["de_a", "eu"]


def test_nothing_changes_where_no_country_has_two_defaults():
    rate("de", "19", "DE", is_default=True)
    berlin = customer_create(
        external_id="berlin", name="B", currency="EUR", address={"country": "DE"}
    )

    migration.one_default_per_country(apps, None)

    assert berlin.tax_rates.count() == 0
    assert codes(berlin) == ["de"]
