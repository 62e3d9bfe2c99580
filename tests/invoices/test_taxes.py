"""Taxes: tax rates as a catalog (frozen once an invoice is taxed at them), the
rates a customer is charged, and tax per rate on an invoice's taxable amount,
rounded once per rate, half up."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from customers.models import Customer
from invoices.models import Invoice
from plans.models import TaxRate
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, api_client
from tests.invoices.conftest import base_fee_lines, finalized_invoice

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


# Tax on invoices


def test_two_rates_are_each_rounded_once_half_up(api):
    # given: a Canadian customer charged GST 5 % and PST 7 %
    tax_rate_create(code="ca_gst", name="GST", percentage=D("5"), country="CA")
    tax_rate_create(code="bc_pst", name="PST", percentage=D("7"), country="CA")
    customer = CustomerFactory(
        external_id="maple", address={"country": "CA"}, tax_rates=["ca_gst", "bc_pst"]
    )

    # when: an invoice of 30.10
    invoice = invoice_for(customer, "20.00", "10.10")

    # then (rates in code order): GST 1.505 rounds half up to 1.51, PST 2.107 to
    # 2.11; 3.62 in all (one rounding of the summed tax, 3.612, would say 3.61)
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert body["tax_lines"] == [
        {
            "code": "bc_pst",
            "name": "PST",
            "percentage": "7.00",
            "taxable_amount": "30.10",
            "amount": "2.11",
        },
        {
            "code": "ca_gst",
            "name": "GST",
            "percentage": "5.00",
            "taxable_amount": "30.10",
            "amount": "1.51",
        },
    ]
    assert (body["subtotal"], body["discount"], body["tax"], body["total"]) == (
        "30.10",
        "0.00",
        "3.62",
        "33.72",
    )
    assert body["amount_due"] == "33.72"


def test_reverse_charge_and_exempt_customers_are_charged_no_tax(api):
    # given: a default VAT of 20 % and three customers
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    taxed = CustomerFactory(external_id="taxed")
    reverse = CustomerFactory(external_id="reverse", tax_exempt="reverse_charge")
    exempt = CustomerFactory(external_id="exempt", tax_exempt="exempt")

    # when
    invoices = {c.external_id: invoice_for(c, "100.00") for c in (taxed, reverse, exempt)}

    # then
    totals = {
        name: (api.get(f"/api/v1/invoices/{i.pk}").json()["tax"], i.total, i.tax_lines.count())
        for name, i in invoices.items()
    }
    assert totals == {
        "taxed": ("20.00", D("120.00"), 1),
        "reverse": ("0.00", D("100.00"), 0),
        "exempt": ("0.00", D("100.00"), 0),
    }
    assert invoices["reverse"].customer_snapshot["tax_exempt"] == "reverse_charge"


def test_a_default_rate_with_a_country_applies_only_there():
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR", is_default=True)
    tax_rate_create(code="de_vat", name="MwSt.", percentage=D("19"), country="DE", is_default=True)
    paris = CustomerFactory(external_id="paris", address={"city": "Paris", "country": "FR"})
    berlin = CustomerFactory(external_id="berlin", address={"country": "DE"})
    seattle = CustomerFactory(external_id="seattle", address={"country": "US"})

    taxes = {
        c.external_id: [(t.code, t.amount) for t in invoice_for(c, "10.00").tax_lines.all()]
        for c in (paris, berlin, seattle)
    }

    assert taxes == {
        "paris": [("fr_vat", D("2.00"))],
        "berlin": [("de_vat", D("1.90"))],
        "seattle": [],
    }


def test_a_customer_without_rates_of_its_own_pays_no_archived_rate():
    rate = tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    rate.active = False
    rate.save()
    customer = CustomerFactory(external_id="acme")

    assert invoice_for(customer, "10.00").tax == 0


# The catalog of rates


def test_tax_rates_are_created_listed_and_validated(api):
    response = api.post(
        "/api/v1/tax-rates",
        {"code": "fr_vat", "name": "TVA", "percentage": "20.00", "country": "FR", "default": False},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "code": "fr_vat",
        "name": "TVA",
        "percentage": "20.00",
        "country": "FR",
        "default": False,
        "active": True,
        "vat_category": "S",
        "exemption_reason": "",
    }
    assert [r["code"] for r in api.get("/api/v1/tax-rates").json()["results"]] == ["fr_vat"]

    for bad, field in [
        ({"percentage": "100.01"}, "percentage"),
        ({"percentage": "-1"}, "percentage"),
        ({"percentage": "NaN"}, "percentage"),
        ({"country": "XX"}, "country"),
        ({"code": "has space"}, "code"),
        ({"code": "fr_vat"}, "code"),
    ]:
        body = {"code": "other", "name": "Other", "percentage": "5", **bad}
        response = api.post("/api/v1/tax-rates", body, format="json")
        assert response.status_code in (400, 409), (bad, response.content)
        assert field in response.json()["error"]["fields"], (bad, response.json())
    assert TaxRate.objects.count() == 1


def test_a_rate_that_taxed_an_invoice_is_archived_never_changed(api):
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    unused = tax_rate_create(code="spare", name="Spare", percentage=D("5"))
    invoice_for(CustomerFactory(external_id="acme"), "10.00")

    # an unused rate may still change
    response = api.patch("/api/v1/tax-rates/spare", {"percentage": "6"}, format="json")
    assert (response.status_code, response.json()["percentage"]) == (200, "6.00")
    unused.refresh_from_db()
    assert unused.percentage == D(6)

    # a used one may not; it is archived instead
    response = api.patch("/api/v1/tax-rates/vat", {"percentage": "21"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["fields"] == {
        "percentage": ["cannot change once invoices were taxed at it"]
    }
    response = api.patch("/api/v1/tax-rates/vat", {"active": False}, format="json")
    assert (response.status_code, response.json()["active"]) == (200, False)
    rate = TaxRate.objects.get(code="vat")
    assert (rate.percentage, rate.active) == (D(20), False)


def test_a_customer_is_given_its_rates_by_code(api):
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR")
    archived = tax_rate_create(code="old_vat", name="Old", percentage=D("19.6"), active=False)
    assert not archived.active

    body = {
        "external_id": "paris",
        "name": "Paris SARL",
        "currency": "EUR",
        "tax_rates": ["fr_vat"],
        "locale": "fr",
        "address": {
            "line1": "1 rue de Rivoli",
            "postal_code": "75001",
            "city": "Paris",
            "country": "FR",
        },
    }
    response = api.post("/api/v1/customers", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tax_rates"] == ["fr_vat"]

    for codes, message in [
        (["nope"], "unknown tax rate 'nope'"),
        (["old_vat"], "tax rate 'old_vat' is archived"),
    ]:
        response = api.patch("/api/v1/customers/paris", {"tax_rates": codes}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"tax_rates": [message]}
    assert api.get("/api/v1/customers/paris").json()["tax_rates"] == ["fr_vat"]


# Archiving a rate customers hold


@pytest.fixture
def german_customers(db):
    """MwSt. 19 % (de_vat) held by berlin, by hamburg with its successor of 20 %
    (de_vat_2027), by munich with a reduced rate; paris holds TVA, seattle none
    of its own."""
    tax_rate_create(code="de_vat", name="MwSt.", percentage=D("19"), country="DE")
    tax_rate_create(code="de_vat_2027", name="MwSt.", percentage=D("20"), country="DE")
    tax_rate_create(code="de_reduced", name="MwSt. reduziert", percentage=D("7"), country="DE")
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR")
    tax_rate_create(code="eu_flat", name="Flat", percentage=D("10"))
    tax_rate_create(code="de_old", name="MwSt. alt", percentage=D("16"), country="DE", active=False)
    for name, rates in [
        ("berlin", ["de_vat"]),
        ("hamburg", ["de_vat", "de_vat_2027"]),
        ("munich", ["de_reduced", "de_vat"]),
        ("paris", ["fr_vat"]),
        ("seattle", []),
    ]:
        CustomerFactory(external_id=name, currency="EUR", tax_rates=rates)


def customer_rates(api) -> dict[str, list[str]]:
    customers = api.get("/api/v1/customers").json()["results"]
    return {c["external_id"]: c["tax_rates"] for c in customers}


def rate_flags(api) -> dict[str, bool]:
    return {r["code"]: r["active"] for r in api.get("/api/v1/tax-rates").json()["results"]}


BEFORE = {
    "berlin": ["de_vat"],
    "hamburg": ["de_vat", "de_vat_2027"],
    "munich": ["de_reduced", "de_vat"],
    "paris": ["fr_vat"],
    "seattle": [],
}


def test_archiving_a_rate_with_replaced_by_moves_its_customers_to_the_replacement(
    api, german_customers
):
    assert customer_rates(api) == BEFORE

    # when: MwSt. 19 % is archived, its customers moved to 20 %
    response = api.patch(
        "/api/v1/tax-rates/de_vat", {"active": False, "replaced_by": "de_vat_2027"}, format="json"
    )

    # then: archived, and each customer that held it holds the replacement once
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert customer_rates(api) == {
        "berlin": ["de_vat_2027"],
        "hamburg": ["de_vat_2027"],
        "munich": ["de_reduced", "de_vat_2027"],
        "paris": ["fr_vat"],
        "seattle": [],
    }
    assert rate_flags(api)["de_vat"] is False
    # and berlin's next invoice of 100.00 is taxed at 20 %
    berlin = Customer.objects.get(external_id="berlin")
    invoice = invoice_for(berlin, "100.00")
    assert [(t.code, t.amount) for t in invoice.tax_lines.all()] == [("de_vat_2027", D("20.00"))]
    assert invoice.total == D("120.00")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"active": False, "replaced_by": "de_vat_2028"}, "unknown tax rate 'de_vat_2028'"),
        ({"active": False, "replaced_by": "de_old"}, "tax rate 'de_old' is archived"),
        ({"active": False, "replaced_by": "de_vat"}, "is the rate being archived"),
        (
            {"active": False, "replaced_by": "fr_vat"},
            "tax rate 'fr_vat' applies in FR, de_vat in DE",
        ),
        ({"replaced_by": "de_vat_2027"}, "only when the rate is archived (active: false)"),
        (
            {"active": True, "replaced_by": "de_vat_2027"},
            "only when the rate is archived (active: false)",
        ),
    ],
    ids=["unknown", "archived", "itself", "another-country", "not-archived", "kept-active"],
)
def test_a_replacement_that_cannot_take_the_customers_is_a_400_and_changes_nothing(
    api, german_customers, body, problem
):
    flags = rate_flags(api)

    response = api.patch("/api/v1/tax-rates/de_vat", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"replaced_by": [problem]}
    assert response.json()["error"]["message"] == f"invalid replaced_by: {problem}"
    assert (customer_rates(api), rate_flags(api)) == (BEFORE, flags)


def test_a_rate_without_a_country_replaces_a_country_s_rate(api, german_customers):
    response = api.patch(
        "/api/v1/tax-rates/de_reduced", {"active": False, "replaced_by": "eu_flat"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert customer_rates(api)["munich"] == ["de_vat", "eu_flat"]


def test_a_replacement_for_a_rate_no_customer_holds_moves_nothing(api, german_customers):
    tax_rate_create(code="de_spare", name="Spare", percentage=D("19"), country="DE")
    response = api.patch(
        "/api/v1/tax-rates/de_spare", {"active": False, "replaced_by": "de_vat"}, format="json"
    )

    assert (response.status_code, response.json()["active"]) == (200, False)
    assert customer_rates(api) == BEFORE


def invoice_for(customer, *amounts: str) -> Invoice:
    """A finalized period invoice of these base-fee lines."""
    return finalized_invoice(customer, base_fee_lines(*amounts))
