"""/api/v1/customers: create, read and update customers; every refusal changes nothing."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from customers.models import Customer
from customers.services import customer_create

ACME = {
    "external_id": "acme",
    "name": "Acme Inc",
    "email": "billing@acme.test",
    "currency": "USD",
    "timezone": "Europe/Paris",
    "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
    "tax_id": "FR40303265045",
    "spend_limit": "500.00",
    "spend_limit_mode": "soft",
    "alert_thresholds": ["80", "100"],
    "payment_terms_days": 14,
    "locale": "fr",
    "tax_exempt": "reverse_charge",
    "invoice_emails": ["ap@acme.test"],
    "tax_rates": [],
    # Billed by the default entity.
    "billing_entity": None,
    "buyer_reference": "Einkauf 7",
    "order_reference": "PO-4711",
    "leitweg_id": "04011000-12345-67",
    "peppol_id": "0208:0123456749",
    "e_invoice_format": "xrechnung",
    "sepa_mandate_reference": "MANDATE-1",
    "debtor_iban": "DE89370400440532013000",
    "card_last_digits": "4242",
    "card_holder_name": "Anna Muster",
}


@pytest.fixture
def acme(db) -> Customer:
    return customer_create(
        external_id="acme",
        name="Acme Inc",
        email="billing@acme.test",
        currency="USD",
        timezone_name="UTC",
        address={"country": "US"},
        spend_limit=Decimal("100.00"),
    )


def stored(customer: Customer) -> dict:
    return model_to_dict(Customer.objects.get(pk=customer.pk))


def assert_field_error(response, path: str) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert path in error["fields"], error
    assert error["fields"][path]
    return error


# Create and read


def test_create_customer_with_every_field(api):
    # when
    response = api.post("/api/v1/customers", ACME, format="json")

    # then
    assert response.status_code == 201
    body = response.json()
    shown = {k: v for k, v in body.items() if k not in ("created_at", "credit_balance")}
    # and its dunning: the default policy, in good standing
    assert shown == ACME | {
        "vat_id": "FR40303265045",
        "dunning_policy": None,
        "standing": "good",
        "standing_since": None,
        "standing_invoice": None,
        "dunning_paused_until": None,
        "vat_check": None,
    }
    assert body["credit_balance"] == "0.00"
    assert body["created_at"]
    customer = Customer.objects.get(external_id="acme")
    assert customer.spend_limit == Decimal("500.00")
    assert (customer.spend_limit_mode, customer.alert_thresholds) == ("soft", [80, 100])
    assert customer.timezone == "Europe/Paris"
    assert customer.address == ACME["address"]


def test_create_customer_with_the_api_md_example(api):
    body = {
        "external_id": "acme",
        "name": "Acme Inc",
        "email": "billing@acme.test",
        "currency": "USD",
        "timezone": "UTC",
        "address": {"line1": "1 Main St"},
        "tax_id": None,
        "spend_limit": None,
    }

    response = api.post("/api/v1/customers", body, format="json")

    assert response.status_code == 201
    assert response.json()["tax_id"] is None
    assert response.json()["spend_limit"] is None
    assert Customer.objects.get(external_id="acme").tax_id == ""


def test_create_customer_with_only_the_required_fields(api):
    response = api.post(
        "/api/v1/customers", {"external_id": "a", "name": "A", "currency": "JPY"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["timezone"] == "UTC"
    assert body["email"] == ""
    assert body["address"] == {}
    assert body["spend_limit"] is None


def test_spend_limit_accepts_a_json_number_and_answers_money(api):
    body = {"external_id": "a", "name": "A", "currency": "USD", "spend_limit": 250}

    response = api.post("/api/v1/customers", body, format="json")

    assert response.status_code == 201
    assert response.json()["spend_limit"] == "250.00"


def test_get_customer_by_external_id(api, acme):
    response = api.get("/api/v1/customers/acme")

    assert response.status_code == 200
    body = response.json()
    assert body["external_id"] == "acme"
    assert body["name"] == "Acme Inc"
    assert body["currency"] == "USD"
    assert body["spend_limit"] == "100.00"
    assert body["address"] == {"country": "US"}


def test_get_unknown_customer_is_404_envelope(api):
    response = api.get("/api/v1/customers/nobody")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_list_customers_is_paginated(api, acme):
    customer_create(external_id="globex", name="Globex", currency="USD")

    first = api.get("/api/v1/customers?limit=1")

    assert first.status_code == 200
    assert [c["external_id"] for c in first.json()["results"]] == ["acme"]
    second = api.get(first.json()["next"])
    assert [c["external_id"] for c in second.json()["results"]] == ["globex"]
    assert second.json()["next"] is None


# Create refused


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"spend_limit": "-1"}, "spend_limit"),
        ({"spend_limit": "10.001"}, "spend_limit"),
        ({"spend_limit": "NaN"}, "spend_limit"),
        ({"spend_limit": True}, "spend_limit"),
        ({"external_id": "acme inc"}, "external_id"),
        ({"external_id": "acme/eu"}, "external_id"),
        ({"external_id": "acme?x"}, "external_id"),
        ({"external_id": ""}, "external_id"),
        ({"email": "not-an-email"}, "email"),
        ({"address": ["1 Main St"]}, "address"),
        ({"name": ""}, "name"),
    ],
)
def test_create_customer_refused_with_field_error(api, row_counts, change, path):
    before = row_counts()

    response = api.post("/api/v1/customers", ACME | change, format="json")

    assert_field_error(response, path)
    assert row_counts() == before


def test_spend_limit_in_jpy_has_no_decimals(api, row_counts):
    body = ACME | {"currency": "JPY", "spend_limit": "100.5"}
    before = row_counts()

    refused = api.post("/api/v1/customers", body, format="json")

    assert_field_error(refused, "spend_limit")
    assert row_counts() == before
    accepted = api.post("/api/v1/customers", body | {"spend_limit": "100"}, format="json")
    assert accepted.status_code == 201
    assert accepted.json()["spend_limit"] == "100"


def test_duplicate_external_id_is_409(api, acme, row_counts):
    # given
    before = row_counts()
    acme_before = stored(acme)

    # when
    response = api.post("/api/v1/customers", ACME, format="json")

    # then
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["type"] == "conflict"
    assert error["fields"] == {"external_id": ["already exists"]}
    assert row_counts() == before
    assert stored(acme) == acme_before


# Update


def test_patch_name_and_spend_limit(api, acme):
    response = api.patch(
        "/api/v1/customers/acme", {"name": "Acme Corp", "spend_limit": "250.5"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Corp"
    assert response.json()["spend_limit"] == "250.50"
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"
    assert acme.spend_limit == Decimal("250.5")
    assert acme.email == "billing@acme.test"


def test_patch_spend_limit_to_null_removes_the_limit(api, acme):
    response = api.patch("/api/v1/customers/acme", {"spend_limit": None}, format="json")

    assert response.status_code == 200
    assert response.json()["spend_limit"] is None
    acme.refresh_from_db()
    assert acme.spend_limit is None


def test_patch_with_the_same_currency_is_accepted(api, acme):
    response = api.patch("/api/v1/customers/acme", {"currency": "USD"}, format="json")

    assert response.status_code == 200
    assert response.json()["currency"] == "USD"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"currency": "EUR"}, "currency"),
        ({"timezone": "Nowhere/Special"}, "timezone"),
        ({"spend_limit": "-5"}, "spend_limit"),
        ({"spend_limit": "1.999"}, "spend_limit"),
        ({"address": "1 Main St"}, "address"),
    ],
)
def test_patch_refused_changes_nothing(api, acme, row_counts, change, path):
    # given
    before = row_counts()
    acme_before = stored(acme)

    # when a valid rename comes with a refused change
    response = api.patch("/api/v1/customers/acme", change | {"name": "Renamed"}, format="json")

    # then neither is applied
    assert_field_error(response, path)
    assert row_counts() == before
    assert stored(acme) == acme_before


def test_patch_currency_is_refused_and_unchanged(api, acme):
    response = api.patch("/api/v1/customers/acme", {"currency": "EUR"}, format="json")

    error = assert_field_error(response, "currency")
    assert error["fields"] == {"currency": ["cannot change"]}
    assert Customer.objects.get(pk=acme.pk).currency == "USD"


def test_patch_blank_name_is_refused(api, acme):
    acme_before = stored(acme)

    response = api.patch("/api/v1/customers/acme", {"name": ""}, format="json")

    assert_field_error(response, "name")
    assert stored(acme) == acme_before


def test_patch_unknown_customer_is_404(api, row_counts):
    before = row_counts()

    response = api.patch("/api/v1/customers/nobody", {"name": "X"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert row_counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spend_limit_mode", "sometimes"),
        ("alert_thresholds", ["0"]),
        ("alert_thresholds", ["50", "50"]),
        ("alert_thresholds", "50"),
        ("alert_thresholds", ["abc"]),
    ],
)
def test_bad_alert_settings_are_refused_and_nothing_is_stored(api, field, value):
    response = api.post("/api/v1/customers", {**ACME, field: value}, format="json")

    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert any(path.split(".")[0] == field for path in fields), fields
    assert not Customer.objects.exists()
