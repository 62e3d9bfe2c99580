"""Tax rates in the admin read as finance writes them: "19" in the form, "19 %"
in the list and on a rate frozen by use, never the stored "19.0000"; finance
archives a rate customers hold with the rate they move to."""

from decimal import Decimal as D

import pytest

from common.errors import InvalidRequest
from customers.models import Customer
from plans import services
from plans.admin import tax_rates as tax_rates_admin
from plans.models import TaxRate
from tests.factories import CustomerFactory


@pytest.fixture
def mwst():
    return services.tax_rate_create(code="de_vat", name="MwSt.", percentage=D("19"), country="DE")


@pytest.mark.django_db
def test_the_list_and_the_form_show_the_percentage_without_padding(admin_client, mwst):
    listing = admin_client.get("/admin/plans/taxrate/").content.decode()
    form = admin_client.get(f"/admin/plans/taxrate/{mwst.pk}/change/").content.decode()

    assert "19 %" in listing
    assert "19.0000" not in listing
    assert 'value="19"' in form
    assert "19.0000" not in form


@pytest.mark.django_db
def test_a_rate_in_use_shows_its_frozen_percentage_in_words(admin_client, mwst, monkeypatch):
    monkeypatch.setattr(tax_rates_admin.services, "tax_rate_in_use", lambda rate: True)

    page = admin_client.get(f"/admin/plans/taxrate/{mwst.pk}/change/").content.decode()

    assert "19 %" in page
    assert "19.0000" not in page
    assert 'name="percentage"' not in page


# Archiving a rate customers hold


def archive_post(rate: TaxRate, replaced_by: str = "") -> dict:
    return {
        "code": rate.code,
        "name": rate.name,
        "percentage": str(rate.percentage),
        "country": rate.country,
        "replaced_by": replaced_by,
        "_save": "Save",
    }  # `active` and `is_default` unchecked


def held(code: str) -> list[str]:
    return sorted(
        Customer.objects.filter(tax_rates__code=code).values_list("external_id", flat=True)
    )


@pytest.mark.django_db
def test_finance_archives_a_rate_customers_hold_with_the_rate_they_move_to(finance_client, mwst):
    # given: berlin and hamburg hold MwSt. 19 %; its successor of 20 %
    successor = services.tax_rate_create(
        code="de_vat_2027", name="MwSt.", percentage=D("20"), country="DE"
    )
    for name in ("berlin", "hamburg"):
        CustomerFactory(external_id=name, currency="EUR", tax_rates=["de_vat"])
    url = f"/admin/plans/taxrate/{mwst.pk}/change/"

    # the form offers the active rates but this one
    page = finance_client.get(url)
    assert 'name="replaced_by"' in page.content.decode()
    assert list(page.context["adminform"].form.fields["replaced_by"].queryset) == [successor]

    # when: archived with the successor chosen, they hold it (without one:
    # tests/plans/test_tax_rate_archive.py)
    response = finance_client.post(url, archive_post(mwst, "de_vat_2027"), follow=True)
    assert response.redirect_chain[-1][0] == "/admin/plans/taxrate/"
    assert TaxRate.objects.get(pk=mwst.pk).active is False
    assert (held("de_vat"), held("de_vat_2027")) == ([], ["berlin", "hamburg"])
    assert "The customers who held MwSt. 19 % as their own hold MwSt. 20 % now." in [
        str(m) for m in response.context["messages"]
    ]
    # an archived rate, or a new one, has no customers to move
    for page in (url, "/admin/plans/taxrate/add/"):
        assert 'name="replaced_by"' not in finance_client.get(page).content.decode()


@pytest.mark.django_db
def test_the_admin_refuses_a_replacement_of_another_country_on_its_field(finance_client, mwst):
    services.tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR")
    CustomerFactory(external_id="berlin", currency="EUR", tax_rates=["de_vat"])

    page = finance_client.post(
        f"/admin/plans/taxrate/{mwst.pk}/change/", archive_post(mwst, "fr_vat")
    )

    assert page.context["adminform"].form.errors == {
        "replaced_by": [
            "TVA 20 % applies in FR and MwSt. 19 % in DE: choose a rate of DE "
            "or one without a country."
        ]
    }
    assert "fr_vat" not in str(page.context["adminform"].form.errors)
    assert (TaxRate.objects.get(pk=mwst.pk).active, held("de_vat")) == (True, ["berlin"])


@pytest.mark.django_db
def test_the_api_keeps_naming_the_replacement_by_its_code(mwst):
    """The admin reads names; the API's message and fields are unchanged."""
    services.tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR")
    with pytest.raises(InvalidRequest) as refused:
        services.tax_rate_archive_check(rate=mwst, active=False, replaced_by="fr_vat")
    assert (
        refused.value.message
        == "invalid replaced_by: tax rate 'fr_vat' applies in FR, de_vat in DE"
    )
    assert refused.value.fields == {
        "replaced_by": ["tax rate 'fr_vat' applies in FR, de_vat in DE"]
    }


@pytest.mark.django_db
def test_an_archived_replacement_is_refused_by_name(mwst):
    old = services.tax_rate_create(
        code="de_old", name="MwSt. alt", percentage=D("16"), country="DE"
    )
    CustomerFactory(external_id="berlin", currency="EUR", tax_rates=["de_vat"])
    old.active = False
    old.save()
    with pytest.raises(InvalidRequest) as refused:
        services.tax_rate_archive_check(rate=mwst, active=False, replaced_by="de_old")
    assert refused.value.words == "MwSt. alt 16 % is archived too: choose an active rate."
    assert held("de_vat") == ["berlin"]
