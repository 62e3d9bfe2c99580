"""The e-invoice details of customers and billing entities (API.md v1.3,
"E-invoices"): each bad identifier refused by the API with a 400 naming the
field, and by the admin's form on the field, the row unchanged; good ones kept
and copied on the customer's invoices."""

import pytest
from django.core.exceptions import ValidationError

from common.errors import InvalidRequest
from customers.billing_entities import billing_entity_save
from customers.e_invoice_details import E_INVOICE_DETAILS
from customers.models import BillingEntity, Customer
from customers.services import customer_create
from invoices.services import customer_snapshot
from tests.customers.test_billing_entity_admin import form as entity_form
from tests.customers.test_customer_form_admin import customer_form
from tests.factories import api_client

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers"
ENTITIES = "/api/v1/billing-entities"


@pytest.fixture
def api():
    return api_client("read", "admin")


@pytest.fixture
def kunde() -> Customer:
    return customer_create(
        external_id="kunde",
        name="Kunde AG",
        currency="EUR",
        tax_id="DE811907980",
        leitweg_id="04011000-12345-67",
        e_invoice_format="xrechnung",
    )


E_INVOICE_STORED = ("tax_id", "leitweg_id", "peppol_id", "e_invoice_format", "buyer_reference")


def stored(customer: Customer) -> dict:
    customer.refresh_from_db()
    return {name: getattr(customer, name) for name in E_INVOICE_STORED}


KUNDE_STORED = {
    "tax_id": "DE811907980",
    "leitweg_id": "04011000-12345-67",
    "peppol_id": "",
    "e_invoice_format": "xrechnung",
    "buyer_reference": "",
}

BAD_VALUES = [
    ("tax_id", "FR41303265045", "check digits do not match"),
    ("tax_id", "BE0123456748", "check digits do not match"),
    ("vat_id", "BE0123456748", "check digits do not match"),
    ("leitweg_id", "04011000_12345", "is not the form of a Leitweg-ID"),
    ("leitweg_id", "ABC-12", "is not the form of a Leitweg-ID"),
    ("peppol_id", "9999:123", "not in Peppol's EAS code list"),
    ("peppol_id", "0208:12", "is not the form of a Belgian enterprise number"),
]


@pytest.mark.parametrize(("field", "value", "words"), BAD_VALUES)
def test_the_api_refuses_a_bad_identifier_naming_its_field(api, kunde, field, value, words):
    response = api.patch(f"{CUSTOMERS}/kunde", {field: value}, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["fields"][field][0]
    assert stored(kunde) == KUNDE_STORED


@pytest.mark.parametrize(("field", "value", "words"), BAD_VALUES)
def test_the_api_creates_no_customer_with_a_bad_identifier(api, field, value, words):
    body = {"external_id": "neu", "name": "Neu", "currency": "EUR", field: value}

    response = api.post(CUSTOMERS, body, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["fields"][field][0]
    assert not Customer.objects.filter(external_id="neu").exists()


def test_the_api_refuses_an_unknown_format_and_xrechnung_without_a_reference(api, kunde):
    unknown = api.patch(f"{CUSTOMERS}/kunde", {"e_invoice_format": "pdf"}, format="json")
    no_reference = api.patch(
        f"{CUSTOMERS}/kunde", {"leitweg_id": None, "buyer_reference": ""}, format="json"
    )
    peppol = api.patch(f"{CUSTOMERS}/kunde", {"e_invoice_format": "peppol"}, format="json")

    assert unknown.status_code == 400
    assert list(unknown.json()["error"]["fields"]) == ["e_invoice_format"]
    assert no_reference.status_code == 400
    assert no_reference.json()["error"]["fields"] == {
        "leitweg_id": ["XRechnung needs a Leitweg-ID or a buyer reference"]
    }
    assert peppol.status_code == 400
    assert peppol.json()["error"]["fields"] == {
        "peppol_id": ["Peppol needs the buyer's Peppol endpoint"]
    }
    assert stored(kunde) == KUNDE_STORED


def test_the_api_takes_and_returns_the_good_values(api, kunde):
    response = api.patch(
        f"{CUSTOMERS}/kunde",
        {
            "vat_id": "BE0123456749",
            "peppol_id": "9925:BE0123456749",
            "e_invoice_format": "peppol",
            "buyer_reference": "Einkauf 7",
            "order_reference": "PO-4711",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["tax_id"], body["vat_id"]) == ("BE0123456749", "BE0123456749")
    assert (body["peppol_id"], body["e_invoice_format"]) == ("9925:BE0123456749", "peppol")
    assert (body["buyer_reference"], body["order_reference"]) == ("Einkauf 7", "PO-4711")
    assert stored(kunde) == {
        "tax_id": "BE0123456749",
        "leitweg_id": "04011000-12345-67",
        "peppol_id": "9925:BE0123456749",
        "e_invoice_format": "peppol",
        "buyer_reference": "Einkauf 7",
    }
    none = api.patch(f"{CUSTOMERS}/kunde", {"e_invoice_format": None}, format="json")
    assert none.json()["e_invoice_format"] is None
    assert Customer.objects.get(pk=kunde.pk).e_invoice_format == ""


def test_vat_id_and_tax_id_must_agree(api, kunde):
    response = api.patch(
        f"{CUSTOMERS}/kunde",
        {"vat_id": "BE0123456749", "tax_id": "FR40303265045"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"vat_id": ["differs from tax_id"]}
    assert stored(kunde) == KUNDE_STORED


def test_the_model_refuses_a_bad_identifier_on_its_field(kunde):
    kunde.peppol_id = "0208:12"
    kunde.tax_id = "FR41303265045"

    with pytest.raises(ValidationError) as refused:
        kunde.full_clean()

    assert set(refused.value.message_dict) == {"peppol_id", "tax_id"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tax_id", "FR41303265045"),
        ("leitweg_id", "ABC-12"),
        ("peppol_id", "9999:123"),
        ("peppol_id", "0208:12"),
    ],
)
def test_the_admin_form_refuses_a_bad_identifier_on_its_field(admin_client, kunde, field, value):
    kunde_as_stored = {
        "tax_id": "DE811907980",
        "leitweg_id": "04011000-12345-67",
        "e_invoice_format": "xrechnung",
    }
    post = customer_form(
        external_id="kunde", name="Kunde AG", currency="EUR", **kunde_as_stored | {field: value}
    )

    response = admin_client.post(f"/admin/customers/customer/{kunde.pk}/change/", post)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert stored(kunde) == KUNDE_STORED


def test_the_admin_form_saves_good_values(admin_client, kunde):
    post = customer_form(
        external_id="kunde",
        name="Kunde AG",
        currency="EUR",
        tax_id="FR40303265045",
        leitweg_id="04011000-12345-67",
        peppol_id="0208:0123456749",
        e_invoice_format="xrechnung",
    )

    response = admin_client.post(f"/admin/customers/customer/{kunde.pk}/change/", post)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert stored(kunde)["peppol_id"] == "0208:0123456749"
    page = admin_client.get(f"/admin/customers/customer/{kunde.pk}/change/").content.decode()
    assert "E-invoicing" in page and 'name="leitweg_id"' in page


def test_the_invoice_copies_the_buyers_e_invoice_details(kunde):
    snapshot = customer_snapshot(kunde)

    assert {key: snapshot[key] for key in E_INVOICE_DETAILS} == {
        "buyer_reference": "",
        "order_reference": "",
        "leitweg_id": "04011000-12345-67",
        "peppol_id": "",
        "e_invoice_format": "xrechnung",
        "sepa_mandate_reference": "",
        "debtor_iban": "",
        "card_last_digits": "",
        "card_holder_name": "",
    }


# Billing entities.

SELLER = {
    "code": "gmbh",
    "legal_name": "Usage Billing GmbH",
    "functional_currency": "EUR",
    "number_prefix": "DE",
    "timezone": "Europe/Berlin",
    "address": {"line1": "Friedrichstr. 1", "line2": "Hof 2", "postal_code": "10117",
                "city": "Berlin", "country": "DE"},
    "vat_id": "DE811907980",
    "e_invoicing": True,
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "peppol_id": "9930:DE811907980",
    "contact_name": "Buchhaltung",
    "contact_phone": "+49 30 1234567",
}  # fmt: skip


def test_an_e_invoicing_entity_is_created_with_its_address_in_parts(api):
    response = api.post(ENTITIES, SELLER, format="json")

    assert response.status_code == 201, response.content
    entity = BillingEntity.objects.get(code="gmbh")
    assert (entity.street, entity.postal_code, entity.city) == (
        "Friedrichstr. 1, Hof 2",
        "10117",
        "Berlin",
    )
    body = response.json()
    assert (body["e_invoicing"], body["peppol_id"], body["payment_means"]) == (
        True,
        "9930:DE811907980",
        "credit_transfer",
    )
    assert (body["iban"], body["contact_name"]) == ("DE89370400440532013000", "Buchhaltung")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"iban": "DE89370400440532013001"}, "iban", "IBAN check digits do not match"),
        ({"vat_id": "BE0123456748"}, "vat_id", "check digits do not match"),
        ({"peppol_id": "9999:123"}, "peppol_id", "not in Peppol's EAS code list"),
        ({"bic": "XX1"}, "bic", "is not the form of a BIC"),
        ({"iban": ""}, "iban", "e-invoices paid by credit transfer need an IBAN"),
        (
            {"payment_means": "direct_debit"},
            "sepa_creditor_id",
            "e-invoices paid by direct debit need a SEPA creditor id",
        ),
        ({"address": {"line1": "Friedrichstr. 1", "country": "DE"}}, "city", "required"),
    ],
)
def test_an_entity_with_a_bad_detail_is_refused_naming_the_field(api, changes, field, words):
    response = api.post(ENTITIES, SELLER | changes, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["fields"][field][0]
    assert not BillingEntity.objects.filter(code="gmbh").exists()


def test_the_entity_admin_refuses_a_bad_iban_on_its_field(admin_client):
    entity = BillingEntity.objects.get(is_default=True)
    before = (entity.iban, entity.peppol_id)
    post = entity_form(
        code=entity.code,
        invoice_prefix=entity.invoice_prefix,
        credit_note_prefix=entity.credit_note_prefix,
        is_default="on",
        iban="DE89370400440532013001",
        peppol_id="0208:12",
    )

    response = admin_client.post(f"/admin/customers/billingentity/{entity.pk}/change/", post)

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"iban", "peppol_id"}
    entity.refresh_from_db()
    assert (entity.iban, entity.peppol_id) == before


def test_the_entity_admin_saves_e_invoicing_when_complete(admin_client):
    entity = BillingEntity.objects.get(is_default=True)
    post = entity_form(
        code=entity.code,
        invoice_prefix=entity.invoice_prefix,
        credit_note_prefix=entity.credit_note_prefix,
        is_default="on",
        e_invoicing="on",
        street="5 rue de la Paix",
        postal_code="75002",
        city="Paris",
        peppol_id="0009:12345678200077",
        payment_means="credit_transfer",
    )

    response = admin_client.post(f"/admin/customers/billingentity/{entity.pk}/change/", post)

    assert response.status_code == 302, response.context["adminform"].form.errors
    entity.refresh_from_db()
    assert (entity.e_invoicing, entity.city, entity.peppol_id) == (
        True,
        "Paris",
        "0009:12345678200077",
    )


def test_an_e_invoicing_entity_without_its_address_is_refused_by_the_service():
    entity = BillingEntity.objects.get(is_default=True)
    entity.e_invoicing = True

    with pytest.raises(InvalidRequest) as refused:
        billing_entity_save(entity=entity)

    assert {"street", "city", "postal_code"} <= set(refused.value.fields)
    assert BillingEntity.objects.get(pk=entity.pk).e_invoicing is False
