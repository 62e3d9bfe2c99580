"""The admin's forms of meters, credit packs, customers and API keys: rules shown as
form errors, amounts in minor units, filters typed as lines, a key's secret shown once.
(The catalog admin on the demo catalog: tests/plans/test_admin.py.)"""

from decimal import Decimal

import pytest

from customers.api_keys import hash_secret
from customers.models import ApiKey, Customer
from plans.models import Meter

pytestmark = pytest.mark.django_db


def test_meter_rules_show_as_form_errors(admin_client, db):
    response = admin_client.post(
        "/admin/plans/meter/add/",
        {
            "code": "tokens",
            "name": "Tokens",
            "event_name": "llm",
            "aggregation": "sum",
            "value_property": "",
            "unique_property": "",
            "filters": "model gpt-4o",
        },
    )
    page = response.content.decode()
    assert "Write each line as a property, a colon and its values" in page
    assert not Meter.objects.exists()


def test_credit_pack_price_in_minor_units(admin_client, db):
    form = {
        "code": "yen_pack",
        "name": "",
        "credits": "100",
        "price_0": "99.5",
        "price_1": "JPY",
        "active": "on",
    }
    response = admin_client.post("/admin/plans/creditpack/add/", form)
    assert "JPY amounts are whole numbers" in response.content.decode()
    response = admin_client.post("/admin/plans/creditpack/add/", {**form, "price_0": "990"})
    assert response.status_code == 302


def test_customer_form_validates_and_currency_is_fixed(admin_client, db):
    form = {
        "external_id": "acme",
        "name": "Acme",
        "email": "",
        "currency": "USD",
        "timezone": "Mars/Olympus",
        "address": "{}",
        "tax_id": "",
        "spend_limit": "",
        "spend_limit_mode": "hard",
        "locale": "en",
        "tax_exempt": "none",
    }
    response = admin_client.post("/admin/customers/customer/add/", form)
    assert "unknown time zone" in response.content.decode()
    assert not Customer.objects.exists()

    response = admin_client.post(
        "/admin/customers/customer/add/", {**form, "timezone": "Europe/Paris"}
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {**form, "timezone": "UTC", "currency": "EUR", "spend_limit": "100.00"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.currency, customer.timezone, customer.spend_limit) == (
        "USD",
        "UTC",
        Decimal("100.00"),
    )


def test_api_key_secret_is_shown_once_and_stored_hashed(admin_client, client, db):
    response = admin_client.post(
        "/admin/customers/apikey/add/", {"name": "product", "scopes": ["read"]}, follow=True
    )
    page = response.content.decode()
    key = ApiKey.objects.get(name="product")
    secret = page.split("(only its hash is stored): ")[1].split("<")[0].strip()
    assert key.secret_hash == hash_secret(secret)
    assert key.scopes == ["read"]
    assert (
        secret not in admin_client.get(f"/admin/customers/apikey/{key.pk}/change/").content.decode()
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/plans", **auth).status_code == 200
    assert (
        client.post("/api/v1/meters", {}, content_type="application/json", **auth).status_code
        == 403
    )


def test_finance_sets_a_meters_breakdown_in_the_admin(admin_client, db):
    form = {
        "code": "tokens",
        "name": "Tokens",
        "event_name": "llm",
        "aggregation": "sum",
        "value_property": "tokens",
        "unique_property": "",
        "filters": "",
        "group_by": "model, api_key",
        "invoice_breakdown": "model",
    }

    created = admin_client.post("/admin/plans/meter/add/", form)
    refused = admin_client.post(
        "/admin/plans/meter/add/", {**form, "code": "t2", "invoice_breakdown": "team"}
    )

    assert created.status_code == 302
    meter = Meter.objects.get(code="tokens")
    assert (meter.group_by, meter.invoice_breakdown) == (["model", "api_key"], "model")
    assert "Must be one of the properties in &#x27;Break usage down by&#x27;" in (
        refused.content.decode()
    )
    assert not Meter.objects.filter(code="t2").exists()
    page = admin_client.get(f"/admin/plans/meter/{meter.pk}/change/").content.decode()
    assert 'value="model, api_key"' in page


def test_meter_filters_are_typed_as_lines_and_read_back(admin_client, db):
    form = {
        "code": "gpt_tokens",
        "name": "GPT tokens",
        "event_name": "llm.completion",
        "aggregation": "sum",
        "value_property": "total_tokens",
        "unique_property": "",
        "filters": "model: gpt-4o, gpt-4o-mini\nregion: eu",
        "group_by": "",
        "invoice_breakdown": "",
    }

    response = admin_client.post("/admin/plans/meter/add/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    meter = Meter.objects.get(code="gpt_tokens")
    assert meter.filters == {"model": ["gpt-4o", "gpt-4o-mini"], "region": ["eu"]}
    page = admin_client.get(f"/admin/plans/meter/{meter.pk}/change/").content.decode()
    assert "model: gpt-4o, gpt-4o-mini\nregion: eu</textarea>" in page
    listing = admin_client.get("/admin/plans/meter/").content.decode()
    assert "model: gpt-4o, gpt-4o-mini; region: eu" in listing


@pytest.mark.parametrize(
    "stored",
    [
        {"http:method": ["GET"]},
        {"model": [" gpt-4o"]},
        {"customer": ["Acme, Inc"]},
        {"tier": [""]},
    ],
)
def test_filters_the_lines_cannot_write_are_kept_as_stored(admin_client, db, stored):
    meter = Meter.objects.create(
        code="calls", name="Calls", event_name="api.call", aggregation="count", filters=stored
    )
    page = admin_client.get(f"/admin/plans/meter/{meter.pk}/change/").content.decode()
    assert "change them through the API" in page

    form = {
        "code": "calls",
        "name": "API calls",
        "event_name": "api.call",
        "aggregation": "count",
        "value_property": "",
        "unique_property": "",
        "filters": "anything: typed",
        "group_by": "",
        "invoice_breakdown": "",
    }
    response = admin_client.post(f"/admin/plans/meter/{meter.pk}/change/", form)

    assert response.status_code == 302
    meter.refresh_from_db()
    assert (meter.name, meter.filters) == ("API calls", stored)


def test_typed_filters_stay_typed_when_the_lines_are_left_as_they_are(admin_client, db):
    meter = Meter.objects.create(
        code="flags",
        name="Flags",
        event_name="f",
        aggregation="count",
        filters={"tier": [1, True]},
    )
    form = {
        "code": "flags",
        "name": "Flag events",
        "event_name": "f",
        "aggregation": "count",
        "value_property": "",
        "unique_property": "",
        "filters": "tier: 1, true\n",
        "group_by": "",
        "invoice_breakdown": "",
    }

    response = admin_client.post(f"/admin/plans/meter/{meter.pk}/change/", form)

    assert response.status_code == 302
    meter.refresh_from_db()
    assert meter.filters == {"tier": [1, True]}


def test_a_refusal_inside_the_filters_lands_on_the_filters_field(admin_client, db):
    values = ", ".join(f"v{i}" for i in range(200))
    form = {
        "code": "many",
        "name": "Many",
        "event_name": "e",
        "aggregation": "count",
        "value_property": "",
        "unique_property": "",
        "filters": f"model: {values}",
        "group_by": "",
        "invoice_breakdown": "",
    }

    response = admin_client.post("/admin/plans/meter/add/", form)

    form_errors = response.context["adminform"].form.errors
    assert list(form_errors) == ["filters"]
    assert not Meter.objects.filter(code="many").exists()
