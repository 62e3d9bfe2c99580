"""Tax rates in the admin read as finance writes them: "19" in the form, "19 %"
in the list and on a rate frozen by use, never the stored "19.0000"."""

from decimal import Decimal as D

import pytest

from plans import services, tax_rates_admin


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
