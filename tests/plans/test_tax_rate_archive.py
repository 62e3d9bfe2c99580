"""A tax rate customers hold is archived with or without a replacement (issue 73,
API.md "Tax rates": a rate used by an invoice can be archived, active false).
Without one, its holders hold it no more and are charged the default rates
unless they hold another; with one, they hold the replacement. The API and the
admin alike; a rate that taxed an invoice is archived the same way."""

from decimal import Decimal as D

import pytest

from customers.models import Customer
from plans.models import TaxRate
from plans.services import tax_rate_create, tax_rate_update
from tests.factories import CustomerFactory
from tests.invoices.test_taxes import (  # noqa: F401 (api, german_customers: fixtures)
    BEFORE,
    api,
    customer_rates,
    german_customers,
    invoice_for,
    rate_flags,
)
from tests.plans.test_tax_rates_admin import archive_post, held

pytestmark = pytest.mark.django_db


def test_a_rate_held_and_used_is_archived_without_a_replacement(api, german_customers):  # noqa: F811
    # given: berlin was taxed at MwSt. 19 %, and the flat rate is a default one
    berlin = Customer.objects.get(external_id="berlin")
    assert [(t.code, t.amount) for t in invoice_for(berlin, "100.00").tax_lines.all()] == [
        ("de_vat", D("19.00"))
    ]
    tax_rate_update(rate=TaxRate.objects.get(code="eu_flat"), is_default=True)
    assert customer_rates(api) == BEFORE

    # when: MwSt. 19 % is archived plainly
    response = api.patch("/api/v1/tax-rates/de_vat", {"active": False}, format="json")

    # then: archived, its terms kept, and its three holders hold it no more
    assert response.status_code == 200, response.content
    assert (response.json()["active"], response.json()["percentage"]) == (False, "19.00")
    assert rate_flags(api)["de_vat"] is False
    assert customer_rates(api) == {
        "berlin": [],
        "hamburg": ["de_vat_2027"],
        "munich": ["de_reduced"],
        "paris": ["fr_vat"],
        "seattle": [],
    }
    # berlin, left without a rate of its own, is taxed at the default rate
    invoice = invoice_for(berlin, "100.00")
    assert [(t.code, t.amount) for t in invoice.tax_lines.all()] == [("eu_flat", D("10.00"))]
    assert invoice.total == D("110.00")
    # hamburg at the rate it still holds
    hamburg = Customer.objects.get(external_id="hamburg")
    assert [(t.code, t.amount) for t in invoice_for(hamburg, "100.00").tax_lines.all()] == [
        ("de_vat_2027", D("20.00"))
    ]
    # and the rate that taxed berlin's first invoice is kept, never deleted
    assert TaxRate.objects.filter(code="de_vat").exists()


def test_a_rate_held_and_used_is_archived_with_a_replacement(api, german_customers):  # noqa: F811
    berlin = Customer.objects.get(external_id="berlin")
    invoice_for(berlin, "100.00")  # taxed at de_vat: the rate is in use

    response = api.patch(
        "/api/v1/tax-rates/de_vat", {"active": False, "replaced_by": "de_vat_2027"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert customer_rates(api)["berlin"] == ["de_vat_2027"]
    assert customer_rates(api)["munich"] == ["de_reduced", "de_vat_2027"]


def test_finance_archives_a_held_rate_without_a_replacement_and_is_told_who_held_it(
    finance_client,
):
    mwst = tax_rate_create(code="de_vat", name="MwSt.", percentage=D("19"), country="DE")
    for name in ("berlin", "hamburg"):
        CustomerFactory(external_id=name, currency="EUR", tax_rates=["de_vat"])

    response = finance_client.post(
        f"/admin/plans/taxrate/{mwst.pk}/change/", archive_post(mwst), follow=True
    )

    assert response.redirect_chain[-1][0] == "/admin/plans/taxrate/"
    assert TaxRate.objects.get(pk=mwst.pk).active is False
    assert held("de_vat") == []
    assert (
        "2 customers held MwSt. 19 % as their own: they hold it no more and are charged the "
        "default rates unless they hold another."
    ) in [str(m) for m in response.context["messages"]]
