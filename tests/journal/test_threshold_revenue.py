"""Revenue per meter in the journal when a period is billed progressively: a
threshold invoice books each meter's usage so far less what the part's earlier
threshold invoices billed of it, and the invoice that closes the part takes off
what each threshold invoice billed of each meter (ThresholdBilling.billed), not
its whole on the plan. So each meter's revenue over the period is what its usage
billed, and the plan's is its fees, as without progressive billing."""

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.db.models import Sum

from billing.invoicing.close import periods_close
from billing.invoicing.progressive import threshold_invoices_write
from billing.journal.models import AccountKind, JournalEntry
from billing.revenue.recognition import revenue_recognize_closed
from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    overage,
    prompts_meter,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def revenue() -> dict[str, D]:
    """Revenue booked so far (credit less debit), per meter, and per plan for the
    plan-level legs."""
    rows = (
        JournalEntry.objects.filter(kind=AccountKind.REVENUE)
        .values("meter", "plan")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    booked = {}
    for row in rows:
        key = row["meter"] or f"plan:{row['plan']}"
        booked[key] = booked.get(key, D(0)) + row["credit"] - row["debit"]
    return {key: amount for key, amount in booked.items() if amount}


def post(customer, event_name: str, count: int, *, at: datetime, tag: str) -> None:
    events = [
        {
            "id": f"{tag}-{i}",
            "customer": customer.external_id,
            "event_name": event_name,
            "timestamp": (at - timedelta(hours=1)).isoformat(),
        }
        for i in range(count)
    ]
    result = events_ingest(events=events, now=at)
    assert not result.rejected


@pytest.fixture
def billed_progressively(db):
    """Runs at 0.10 and prompts at 0.01 on a 20.00 base fee billed in advance
    (November's on the start invoice, December's on the closing one), invoiced
    each time the usage not yet invoiced reaches 5.00: on the 10th 60 runs
    (6.00), on the 20th 40 more runs and 700 prompts (4.00 + 7.00), then the
    close."""
    MeterFactory(code="runs", name="Runs", event_name="run")
    prompts_meter()
    published_version(
        "metered",
        base_fee=D("20.00"),
        progressive_billing_threshold=D("5.00"),
        charges=(overage("runs", 0, "0.10"), overage("prompts", 0, "0.01")),
    )
    customer = CustomerFactory(external_id="acme")
    subscribe(customer, "metered", start=NOV_1)
    post(customer, "run", 60, at=NOV_10, tag="r1")
    (first,) = threshold_invoices_write(customer_ids=[customer.pk], now=NOV_10)
    post(customer, "run", 40, at=NOV_20, tag="r2")
    post(customer, "prompt", 700, at=NOV_20, tag="p2")
    (second,) = threshold_invoices_write(customer_ids=[customer.pk], now=NOV_20)
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(customer=customer, reason=Invoice.PERIOD, period_start=NOV_1)
    return first, second, closing


def test_each_meter_s_revenue_is_what_its_usage_billed_over_the_period(billed_progressively):
    first, second, closing = billed_progressively
    assert (first.subtotal, second.subtotal) == (D("6.00"), D("11.00"))
    # The close bills the usage (17.00) and December's fee, and takes the two
    # threshold invoices off.
    assert closing.subtotal == D("20.00")
    # The fees billed in advance (November's, December's) are recognized as
    # earned (billing.revenue.recognition), once December has passed.
    revenue_recognize_closed(now=datetime(2027, 1, 2, tzinfo=UTC), since=date(2026, 11, 1))
    assert revenue() == {"runs": D("10.00"), "prompts": D("7.00"), "plan:metered": D("40.00")}


def test_the_second_threshold_invoice_books_only_what_it_billed_of_each_meter(
    billed_progressively,
):
    _first, second, _closing = billed_progressively
    rows = (
        JournalEntry.objects.filter(document_key=f"invoice:{second.pk}", kind=AccountKind.REVENUE)
        .values("meter", "plan")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    booked = {row["meter"] or row["plan"]: row["credit"] - row["debit"] for row in rows}
    assert {k: v for k, v in booked.items() if v} == {"runs": D("4.00"), "prompts": D("7.00")}


def test_a_replay_of_the_journal_books_the_same(billed_progressively):
    before = revenue()
    JournalEntry.objects.all().delete()
    call_command("journal_backfill", stdout=io.StringIO())
    assert revenue() == before
