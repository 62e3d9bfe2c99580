"""Books per seller (issue 75), the entity's side: a billing entity has a
functional currency (ISO 4217) and a time zone (IANA), both validated; the
migration gives each existing entity the currency most of its customers bill
in (USD when it has none); the admin shows and edits both."""

from importlib import import_module

import pytest
from django.apps import apps

from common.errors import InvalidRequest
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from tests.factories import CustomerFactory, default_seller

pytestmark = pytest.mark.django_db

entities_migration = import_module("customers.migrations.0016_books_functional_currency")


def entity(code: str, **changes) -> BillingEntity:
    fields = {
        "code": code,
        "legal_name": f"{code.title()} Ltd",
        "country": "FR",
        "invoice_prefix": code.upper()[:6],
        "credit_note_prefix": f"C{code.upper()[:5]}",
    } | changes
    return billing_entity_save(entity=BillingEntity(**fields))


def test_an_entity_keeps_its_functional_currency_and_zone():
    sas = entity("sas", functional_currency="EUR", timezone="Europe/Paris")

    sas.refresh_from_db()
    assert (sas.functional_currency, sas.timezone) == ("EUR", "Europe/Paris")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("functional_currency", "ABC", "unknown currency 'ABC'"),
        ("functional_currency", "eur", "unknown currency 'eur'"),
        ("timezone", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ],
)
def test_an_unknown_currency_or_zone_is_refused_naming_the_field(field, value, words):
    with pytest.raises(InvalidRequest) as refused:
        entity("sas", **{field: value})

    assert list(refused.value.fields) == [field]
    assert words in refused.value.fields[field][0]
    assert not BillingEntity.objects.filter(code="sas").exists()


def test_the_migration_gives_each_entity_its_customers_most_used_currency():
    # given the default entity (customers naming none count for it), an EUR-mostly
    # entity and one without customers
    default_seller({"name": "Default Inc", "country": "US"})
    sas = entity("sas")
    empty = entity("empty", functional_currency="JPY")
    CustomerFactory(external_id="u1", currency="GBP")
    CustomerFactory(external_id="u2", currency="GBP")
    CustomerFactory(external_id="u3", currency="USD")
    for name, currency in (("e1", "EUR"), ("e2", "EUR"), ("e3", "USD")):
        CustomerFactory(external_id=name, currency=currency, billing_entity="sas")

    entities_migration.functional_currencies(apps, None)

    assert dict(BillingEntity.objects.values_list("code", "functional_currency")) == {
        "default": "GBP",
        sas.code: "EUR",
        empty.code: "USD",
    }


def test_the_admin_shows_and_saves_the_functional_currency_and_zone(admin_client):
    sas = entity("sas")
    url = f"/admin/customers/billingentity/{sas.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="functional_currency"' in page
    assert 'name="timezone"' in page

    form = {
        "code": "sas",
        "legal_name": "Sas Ltd",
        "country": "FR",
        "invoice_prefix": "SAS",
        "credit_note_prefix": "CSAS",
        "functional_currency": "eur",
        "timezone": "Mars/Base",
    }
    refused = admin_client.post(url, form)
    assert refused.status_code == 200
    assert "unknown time zone" in refused.content.decode()
    sas.refresh_from_db()
    assert (sas.functional_currency, sas.timezone) == ("USD", "UTC")

    saved = admin_client.post(url, form | {"timezone": "Europe/Paris"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    sas.refresh_from_db()
    assert (sas.functional_currency, sas.timezone) == ("EUR", "Europe/Paris")
