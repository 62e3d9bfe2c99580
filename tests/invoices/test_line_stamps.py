"""What a line earned is stamped on it when it is written (invoices.services.
invoice_write_draft): the plan version that priced it (InvoiceLine.plan_version,
the version the invoice's caller passes once unless the line names its own), its
share of its invoice's discount (InvoiceLine.discount_share: the shares add up to
the discount exactly) and, for a line taking off a threshold invoice, that invoice
(InvoiceLine.takes_off). Lines written before are filled by invoices 0042 from
what the readers reconstructed."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from billing.invoicing.close import periods_close
from billing.journal.models import AccountKind, JournalEntry
from billing.revenue.earned import earned_window
from billing.subscriptions.discounts import discount_redeem
from invoices.models import Invoice, InvoiceLine
from invoices.services import invoice_void, invoice_write_draft
from plans.coupons import coupon_create
from plans.rating import LineInput
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe
from tests.invoices.test_line_plan_stamp import (
    DEC_1,
    JAN_1,
    NOV_1,
    NOV_11,
    NOV_16,
    populated,
    prompts,
)

__all__ = ["populated"]

pytestmark = pytest.mark.django_db

line_stamps_fill = importlib.import_module("invoices.migrations.0042_line_stamps").line_stamps_fill


def stamps() -> dict[int, tuple]:
    return {
        pk: stamp
        for pk, *stamp in InvoiceLine.objects.values_list(
            "pk", "plan_version_id", "discount_share", "takes_off_id"
        )
    }


def lines_of(customer: str, reason: str, at: datetime | None = None) -> list[tuple]:
    invoices = Invoice.objects.filter(customer__external_id=customer, reason=reason)
    if at is not None:
        invoices = invoices.filter(created_at=at)
    return [
        (line.kind, line.amount, line.plan_version_id, line.discount_share, line.takes_off_id)
        for line in InvoiceLine.objects.filter(invoice__in=invoices).order_by("invoice", "position")
    ]


def test_a_close_stamps_each_line_with_the_version_that_priced_it(populated):
    starter, pro = populated["starter"].pk, populated["pro"].pk
    # beta: starter in November, moved to pro at its end; 300 prompts at 0.01;
    # December's fee, billed in advance by November's close, priced by pro.
    assert lines_of("beta", Invoice.PERIOD, DEC_1) == [
        ("overage", D("3.00"), starter, D(0), None),
        ("base_fee", D("100.00"), pro, D(0), None),
    ]
    # 100 prompts of November arriving on December 3rd: billed late at starter's
    # prices by December's close, when beta is on pro.
    assert lines_of("beta", Invoice.PERIOD, JAN_1) == [
        ("late_usage", D("1.00"), starter, D(0), None),
        ("base_fee", D("100.00"), pro, D(0), None),
    ]


def test_a_plan_change_stamps_the_usage_with_the_version_left_and_the_fees_with_the_one_taken(
    populated,
):
    starter, pro = populated["starter"].pk, populated["pro"].pk
    # acme: 1000 prompts at starter's 0.01, then pro's fee for [Nov 16, Dec 1):
    # 100.00 x 15 / 30; the unused starter fee is a credit note on its start invoice.
    assert lines_of("acme", Invoice.PLAN_CHANGE, NOV_16) == [
        ("overage", D("10.00"), starter, D(0), None),
        ("proration_charge", D("50.00"), pro, D(0), None),
    ]


def test_a_close_after_a_threshold_invoice_names_the_invoice_it_takes_off(populated):
    metered = populated["metered"].pk
    threshold = Invoice.objects.get(customer__external_id="delta", reason=Invoice.THRESHOLD)
    # 600 prompts at 0.01 by November 11th, billed then; 700 in all by the close.
    assert lines_of("delta", Invoice.THRESHOLD) == [("overage", D("6.00"), metered, D(0), None)]
    assert threshold.created_at == NOV_11
    assert lines_of("delta", Invoice.PERIOD, DEC_1) == [
        ("overage", D("7.00"), metered, D(0), None),
        ("usage_invoiced", D("-6.00"), metered, D(0), threshold.pk),
    ]


def test_a_coupon_s_discount_is_shared_among_the_lines_it_was_taken_from(populated):
    starter = populated["starter"].pk
    # gamma: 10 % off its November close: 200 prompts at 0.01, 2 seats more from
    # November 10th (2 x 5.00 x 21 / 30), December's fee and 3 seats: 5.40 off.
    assert lines_of("gamma", Invoice.PERIOD, DEC_1) == [
        ("overage", D("2.00"), starter, D("0.20"), None),
        ("proration_charge", D("7.00"), starter, D("0.70"), None),
        ("base_fee", D("30.00"), starter, D("3.00"), None),
        ("seats", D("15.00"), starter, D("1.50"), None),
        ("discount", D("-5.40"), starter, D(0), None),
    ]


def test_ten_off_three_lines_of_ten_is_3_34_3_33_3_33(db):
    # given a plan of a 10.00 fee, a 10.00 seat and prompts at 0.01, 10.00 off
    prompts_meter()
    version = published_version(
        "flat", base_fee=D("10.00"), seat_price=D("10.00"), charges=(overage("prompts", 0, "0.01"),)
    )
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "flat", start=NOV_1)
    coupon = coupon_create(
        code="ten_off", name="Ten off", amount_off=D("10.00"), currency="USD", duration="forever"
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_1)
    prompts(customer, 1000, at=datetime(2026, 11, 10, tzinfo=UTC))

    # when November closes: its usage, December's fee and seat
    periods_close(as_of=DEC_1)

    # then
    assert lines_of("acme", Invoice.PERIOD, DEC_1) == [
        ("overage", D("10.00"), version.pk, D("3.34"), None),
        ("base_fee", D("10.00"), version.pk, D("3.33"), None),
        ("seats", D("10.00"), version.pk, D("3.33"), None),
        ("discount", D("-10.00"), version.pk, D(0), None),
    ]
    # and earned revenue reads each line net of its share: December's fee and
    # seat earn 6.67 each in December, November's usage 6.66 in November.
    november = earned_window(start=NOV_1, end=DEC_1, currency="USD", now=JAN_1)
    december = earned_window(start=DEC_1, end=JAN_1, currency="USD", now=JAN_1)
    assert november.total.billed == D("20.00") + D("6.66")  # the start invoice's fee and seat
    assert december.total.billed == D("13.34")


def test_a_line_no_plan_priced_and_the_invoice_s_own_lines_without_a_discount(db):
    customer = CustomerFactory(external_id="acme")
    lines = [
        LineInput("credit_pack", "1,000 credits", None, D(1), D("10.00"), D("10.00")),
        LineInput("top_up", "Top-up", None, D(1), D("5.00"), D("5.00")),
    ]

    invoice = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PURCHASE,
        period_start=NOV_1,
        period_end=NOV_1,
        lines=lines,
        now=NOV_1,
    )

    assert list(invoice.lines.values_list("plan_version", "plan", "discount_share")) == [
        (None, "", D(0)),
        (None, "", D(0)),
    ]


def test_the_migration_fills_lines_without_stamps_as_their_writer_stamped_them(populated):
    written = stamps()
    assert sum(1 for s in written.values() if s[0] is None) == 0
    assert {s[2] for s in written.values()} - {None} == {
        Invoice.objects.get(reason=Invoice.THRESHOLD).pk
    }
    # as lines written before invoices 0042 read
    InvoiceLine.objects.update(plan_version=None, discount_share=0, takes_off=None)

    line_stamps_fill(apps, None)

    assert stamps() == written


def revenue_legs(document_key: str) -> dict[tuple, D]:
    """Revenue a journal document booked (credit less debit) per meter and plan."""
    rows = (
        JournalEntry.objects.filter(document_key=document_key, kind=AccountKind.REVENUE)
        .values_list("meter", "plan")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    return {(meter, plan): credit - debit for meter, plan, debit, credit in rows}


def test_earned_revenue_and_the_journal_read_old_lines_filled_as_new_ones(populated):
    def earned():
        window = earned_window(start=NOV_1, end=JAN_1, currency="USD", now=JAN_1)
        return {
            view: sorted((str(row.key[view]), row.billed) for row in window.rows_by(view))
            for view in ("plan", "customer", "meter")
        }

    before = earned()
    InvoiceLine.objects.update(plan_version=None, discount_share=0, takes_off=None)

    line_stamps_fill(apps, None)

    # gamma's discount, shared again from the stamps filled
    assert earned() == before
    # delta's close, voided: its credit note reverses what the invoice booked, the
    # line taking off the threshold invoice on the meter that invoice booked (not
    # on the plan), as the filled stamp names it
    closing = Invoice.objects.get(
        customer__external_id="delta", reason=Invoice.PERIOD, created_at=DEC_1
    )
    note = invoice_void(invoice=closing, reason="other", now=datetime(2026, 12, 12, tzinfo=UTC))
    booked = revenue_legs(f"invoice:{closing.pk}")
    assert booked == {("prompts", ""): D("1.00")}  # 7.00 of usage less the 6.00 billed before
    assert revenue_legs(f"credit_note:{note.pk}") == {("prompts", ""): D("-1.00")}


# PostgreSQL: it migrates back and forth inside the test's transaction, which SQLite's
# schema editor refuses (its foreign key checks cannot be turned off mid-transaction).
@pytest.mark.postgres
def test_migrating_through_invoices_0042_stamps_old_lines(populated):
    written = stamps()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    # Back to before the stamps: their columns go, and come back empty.
    executor.migrate([("invoices", "0041_invoice_corrections")])

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert stamps() == written
