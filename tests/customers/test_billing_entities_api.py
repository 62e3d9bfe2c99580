"""POST /api/v1/billing-entities and GET /api/v1/billing-entities[/{code}]
(API.md v1.3, "Books per seller"): an entity with its functional currency, zone,
number prefix, address and VAT number; a rule broken is a 400 naming the API's
field and writes nothing; a code taken is a 409."""

import pytest

from customers.models import BillingEntity
from tests.factories import api_client

pytestmark = pytest.mark.django_db

SAS = {
    "code": "sas",
    "legal_name": "Usage Billing SAS",
    "functional_currency": "EUR",
    "number_prefix": "FR",
    "timezone": "Europe/Paris",
    "address": {"line1": "5 rue de la Paix", "postal_code": "75002", "city": "Paris",
                "country": "FR"},
    "vat_id": "FR40303265045",
    "default": False,
}  # fmt: skip
SAS_READ = {
    "code": "sas",
    "legal_name": "Usage Billing SAS",
    "functional_currency": "EUR",
    "timezone": "Europe/Paris",
    "number_prefix": "FR",
    "credit_note_prefix": "FRCN",
    "address": {
        "lines": ["5 rue de la Paix", "75002 Paris"],
        "country": "FR",
        "street": "5 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
    },
    "vat_id": "FR40303265045",
    "default": False,
    "e_invoicing": False,
    "registration_id": "",
    "iban": "",
    "bic": "",
    "peppol_id": "",
    "contact_name": "",
    "contact_phone": "",
    "payment_means": "credit_transfer",
    "sepa_creditor_id": "",
    "email": "",
    "sender_email": "",
    "bank_name": "",
    "payment_instructions": "",
    "invoice_footer": "",
}


@pytest.fixture
def api():
    return api_client("read", "admin")


def test_an_entity_is_created_and_read_back(api):
    created = api.post("/api/v1/billing-entities", SAS, format="json")

    assert created.status_code == 201, created.content
    assert created.json() == SAS_READ
    assert api.get("/api/v1/billing-entities/sas").json() == SAS_READ
    listed = api.get("/api/v1/billing-entities").json()["results"]
    assert [entity["code"] for entity in listed] == ["default", "sas"]
    assert api.get("/api/v1/billing-entities/nope").status_code == 404


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"functional_currency": "ABC"}, "functional_currency"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"number_prefix": "INV"}, "number_prefix"),
        ({"address": {"line1": "1 Road", "country": "XX"}}, "address.country"),
        ({"address": {"line1": "1 Road"}}, "address.country"),
        ({"code": "not a slug"}, "code"),
    ],
)
def test_a_rule_broken_is_a_400_naming_the_field_and_writes_nothing(api, changes, field):
    response = api.post("/api/v1/billing-entities", SAS | changes, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert list(BillingEntity.objects.values_list("code", flat=True)) == ["default"]


def test_a_code_taken_is_a_409(api):
    assert api.post("/api/v1/billing-entities", SAS, format="json").status_code == 201

    again = api.post("/api/v1/billing-entities", SAS | {"number_prefix": "FR2"}, format="json")

    assert again.status_code == 409
    assert BillingEntity.objects.count() == 2
