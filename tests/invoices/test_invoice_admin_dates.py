"""The admin shows an invoice's dates as its PDF and portal do: in the customer's
time zone, named, the period as inclusive days."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_invoice_dates_are_in_the_customers_time_zone(admin_client, settings):
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="ny", timezone_name="America/New_York")
    # November in New York: 1 Nov 04:00 UTC to 1 Dec 05:00 UTC
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=datetime(2026, 11, 1, 4, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, 5, tzinfo=UTC),
        lines=[LineInput("base_fee", "Flat (Nov 2026)", None, D(1), D(10), D(10))],
        now=datetime(2026, 12, 1, 5, tzinfo=UTC),
    )
    # finalized at 03:30 UTC on 2 Dec: still 1 Dec, 22:30 in New York
    invoice = invoice_finalize(
        invoice=draft, now=datetime(2026, 12, 2, 3, 30, tzinfo=UTC), collect=False
    )

    listing = admin_client.get("/admin/invoices/invoice/").content.decode()
    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()

    assert "1 Nov \u2013 30 Nov 2026 (America/New_York)" in page
    assert "1 Dec 2026, 22:30 (America/New_York)" in page
    assert "31 Dec 2026, 22:30 (America/New_York)" in page
    # the list's narrow columns: the day, the zone it is read in under it
    assert '1 Dec 2026<br><span class="zone">America/New_York</span>' in listing
    assert '31 Dec 2026<br><span class="zone">America/New_York</span>' in listing
