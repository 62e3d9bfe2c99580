"""The catalog's e-invoice fields (API.md v1.3, "E-invoices"): a tax rate's VAT
category and exemption reason (changeable even once it taxed invoices), a
meter's and a version's UN/ECE Rec 20 unit code; each bad value refused by the
API naming its field and by the admin on its field, nothing changed."""

from decimal import Decimal as D

import pytest

from common.errors import Conflict, InvalidRequest
from customers.models import Customer
from plans.models import Meter, PlanVersion, TaxRate
from plans.services import meter_create, tax_rate_update
from tests.factories import CustomerFactory, ai_assistant_plan, prompts_meter
from tests.invoices.test_taxes import (  # noqa: F401 (api, german_customers: fixtures)
    api,
    german_customers,
    invoice_for,
)

pytestmark = pytest.mark.django_db

RATE = {"code": "fr_vat", "name": "TVA", "percentage": "20.00", "country": "FR"}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"vat_category": "E", "percentage": "0"}, "exemption_reason", "names its exemption"),
        ({"vat_category": "S", "percentage": "0"}, "vat_category", "above 0"),
        ({"vat_category": "AE"}, "vat_category", "category AE charges 0 %"),
        ({"vat_category": "XX"}, "vat_category", "is not a valid choice"),
    ],
)
def test_the_api_refuses_a_category_that_does_not_fit(api, changes, field, words):  # noqa: F811
    response = api.post("/api/v1/tax-rates", RATE | changes, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["fields"][field][0]
    assert not TaxRate.objects.filter(code="fr_vat").exists()


def test_the_api_takes_and_returns_the_category(api):  # noqa: F811
    body = RATE | {
        "percentage": "0",
        "vat_category": "E",
        "exemption_reason": "Exonération de TVA, article 261 du CGI",
    }

    response = api.post("/api/v1/tax-rates", body, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["vat_category"], response.json()["exemption_reason"]) == (
        "E",
        "Exonération de TVA, article 261 du CGI",
    )
    standard = api.post("/api/v1/tax-rates", RATE | {"code": "fr_20"}, format="json")
    assert standard.json()["vat_category"] == "S"


def test_a_rate_written_before_categories_saves_until_its_percentage_or_category_moves():
    # given: 0 % in the default category S, as rates were before categories
    rate = TaxRate.objects.create(code="zero", name="No VAT", percentage=D(0))

    # when: an unrelated change
    tax_rate_update(rate=rate, name="Sans TVA")

    # then: saved; a change of its category is checked
    assert TaxRate.objects.get(pk=rate.pk).name == "Sans TVA"
    with pytest.raises(InvalidRequest) as refused:
        tax_rate_update(rate=rate, vat_category="E")
    assert refused.value.fields == {
        "exemption_reason": ["an exempt rate (E) names its exemption reason"]
    }
    tax_rate_update(rate=rate, vat_category="O")
    assert TaxRate.objects.get(pk=rate.pk).vat_category == "O"


def test_a_rate_that_taxed_invoices_is_reclassified_but_keeps_its_percentage(
    api,  # noqa: F811
    german_customers,  # noqa: F811
):
    invoice_for(Customer.objects.get(external_id="berlin"), "100.00")  # taxed at de_vat

    reclassified = api.patch(
        "/api/v1/tax-rates/de_vat", {"vat_category": "L", "exemption_reason": ""}, format="json"
    )
    repriced = api.patch("/api/v1/tax-rates/de_vat", {"percentage": "7"}, format="json")

    assert reclassified.status_code == 200, reclassified.content
    assert reclassified.json()["vat_category"] == "L"
    assert repriced.status_code == 409
    rate = TaxRate.objects.get(code="de_vat")
    assert (rate.vat_category, rate.percentage) == ("L", D("19.0000"))
    with pytest.raises(Conflict):
        tax_rate_update(rate=rate, percentage=D(7), vat_category="S")


def test_the_tax_rate_admin_refuses_a_category_on_its_field(admin_client):
    rate = TaxRate.objects.create(code="fr_vat", name="TVA", percentage=D(20), country="FR")
    post = {
        "code": "fr_vat",
        "name": "TVA",
        "percentage": "20",
        "country": "FR",
        "vat_category": "Z",
        "exemption_reason": "",
        "active": "on",
    }

    response = admin_client.post(f"/admin/plans/taxrate/{rate.pk}/change/", post)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"vat_category": ["category Z charges 0 %"]}
    assert TaxRate.objects.get(pk=rate.pk).vat_category == "S"


METER = {"code": "hours", "name": "GPU hours", "event_name": "gpu.used", "aggregation": "count"}


def test_the_meters_api_refuses_a_unit_outside_rec_20(api):  # noqa: F811
    response = api.post("/api/v1/meters", METER | {"unit_code": "TOK"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["unit_code"] == [
        "'TOK' is not a UN/ECE Recommendation 20 unit code "
        "(e.g. C62 one, HUR hour, SEC second, MON month)"
    ]
    assert not Meter.objects.filter(code="hours").exists()
    created = api.post("/api/v1/meters", METER | {"unit_code": "HUR"}, format="json")
    assert created.json()["unit_code"] == "HUR"
    assert Meter.objects.get(code="hours").unit_code == "HUR"


def test_the_meter_admin_refuses_a_unit_outside_rec_20_on_its_field(admin_client):
    meter = meter_create(**METER)
    post = METER | {
        "value_property": "",
        "unique_property": "",
        "filters": "",
        "group_by": "",
        "invoice_breakdown": "",
        "unit_code": "TOK",
    }

    response = admin_client.post(f"/admin/plans/meter/{meter.pk}/change/", post)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["unit_code"]
    assert Meter.objects.get(pk=meter.pk).unit_code == "C62"


def test_a_versions_fee_unit_is_rec_20(api):  # noqa: F811
    prompts_meter()
    ai_assistant_plan()
    body = {"currency": "USD", "base_fee": "20.00", "fee_unit_code": "TOK"}

    refused = api.post("/api/v1/plans/ai_assistant/versions", body, format="json")
    taken = api.post(
        "/api/v1/plans/ai_assistant/versions", body | {"fee_unit_code": "MON"}, format="json"
    )

    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["fee_unit_code"]
    assert taken.status_code == 201, taken.content
    assert taken.json()["fee_unit_code"] == "MON"
    assert list(PlanVersion.objects.values_list("fee_unit_code", flat=True).order_by("pk")) == [
        "C62",
        "MON",
    ]


def test_a_customer_factory_is_untouched_by_the_rules():
    assert CustomerFactory().e_invoice_format == ""
