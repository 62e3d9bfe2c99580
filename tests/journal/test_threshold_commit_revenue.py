"""Progressive billing in the journal, continued (test_threshold_revenue): a void
of the closing invoice reverses per meter what it booked per meter, and a
threshold invoice's commit drawdown is taken from deferred revenue once (the
closing invoice draws the part's whole access again, and takes off what the
threshold invoice booked, deferred revenue included)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db.models import Sum

from billing.invoicing.close import periods_close
from billing.invoicing.progressive import threshold_invoices_write
from billing.journal.models import AccountKind, JournalEntry
from invoices.services import invoice_void
from tests.journal.test_threshold_revenue import billed_progressively, revenue  # noqa: F401
from tests.wallets.test_commits import (  # noqa: F401
    DEC_1,
    NOV_12,
    catalog,
    period_invoice,
    post_usage,
    progressive_commit_customer,
)
from wallets.commit_models import Commit

pytestmark = pytest.mark.django_db


def balance(kind) -> D:
    row = JournalEntry.objects.filter(kind=kind).aggregate(d=Sum("debit"), c=Sum("credit"))
    return (row["c"] or D(0)) - (row["d"] or D(0))


def test_void_of_the_closing_invoice_reverses_per_meter_what_it_booked_per_meter(
    billed_progressively,  # noqa: F811
):
    _first, _second, closing = billed_progressively
    # The fees (November's, December's) are deferred when billed in advance of
    # their invoice's issue (billing.journal.deferral), revenue when not.
    booked = revenue()
    fees = booked.pop("plan:metered", D(0)) + balance(AccountKind.DEFERRED_REVENUE)
    assert (booked, fees) == ({"runs": D("10.00"), "prompts": D("7.00")}, D("40.00"))
    invoice_void(invoice=closing, reason="", now=datetime(2026, 12, 2, tzinfo=UTC))
    # The two threshold invoices stand: their usage stays booked per meter; the
    # closing invoice (December's fee, nothing net of usage) is all reversed.
    booked = revenue()
    fees = booked.pop("plan:metered", D(0)) + balance(AccountKind.DEFERRED_REVENUE)
    assert (booked, fees) == ({"runs": D("10.00"), "prompts": D("7.00")}, D("20.00"))


def test_threshold_invoice_with_a_commit_drawdown_books_deferred_revenue_once(
    catalog,  # noqa: F811
):
    customer = progressive_commit_customer()
    post_usage("acme", datetime(2026, 11, 11, tzinfo=UTC), tokens=1_200_000)
    (threshold,) = threshold_invoices_write(customer_ids=[customer.pk], now=NOV_12)
    assert threshold.total == D("220.00")
    periods_close(as_of=DEC_1)
    assert period_invoice(customer, datetime(2026, 11, 1, tzinfo=UTC)).total == D("0.00")
    commit = Commit.objects.get(customer=customer)
    # 12,000 sold, 1,000 drawn once (the commit's own entries say so).
    # The meter's revenue is its usage (1,200); the plan's the uplift (20).
    assert (balance(AccountKind.DEFERRED_REVENUE), revenue()) == (
        D("11000.00"),
        {"llm_tokens": D("1200.00"), "plan:aip": D("20.00")},
    ), commit
