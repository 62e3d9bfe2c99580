"""Credit packs in the admin read as finance writes them: '500,000' credits and
'50.00 USD' in the list, '50.00' in the price box, never the stored 50.0000000000."""

from decimal import Decimal as D

import pytest

from plans import services


@pytest.mark.django_db
def test_the_list_and_the_form_show_credits_and_price_without_padding(admin_client):
    pack = services.credit_pack_create(
        code="credits_500k",
        name="500,000 credits",
        credits=D(500_000),
        price=D("50"),
        currency="USD",
    )

    listing = admin_client.get("/admin/plans/creditpack/").content.decode()
    form = admin_client.get(f"/admin/plans/creditpack/{pack.pk}/change/").content.decode()

    assert "500,000" in listing and "50.00 USD" in listing
    assert 'value="50.00"' in form and 'value="500000"' in form
    assert "0000000" not in listing and "0000000" not in form
