"""A window's total without a row a customer (report.window_total: the margins
page's chart months and the dashboard's tile) is every customer's row added up
(report.margins_total of margins() by customer): the same lines net of the
discount, less credit notes and without void invoices, the credits consumed,
and the usage's cost across a cost-rate change, with what no rate costs."""

from datetime import UTC, datetime
from decimal import Decimal as D

import time_machine

from billing.margins import report
from billing.usage.ingestion import events_ingest
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_void
from tests.margins.test_margins_api import post_cost, tokens_event
from tests.margins.test_margins_reconcile import DEC_1, NOV_1, month  # noqa: F401

JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


def figures(margin: report.Margin) -> tuple:
    return (
        margin.exact_revenue,
        margin.exact_cost,
        margin.revenue,
        margin.cost,
        margin.uncosted_quantity,
    )


def customers_added_up(start: datetime, end: datetime) -> report.Margin:
    rows = report.margins(start=start, end=end, group_by="customer", currency="USD")
    return report.margins_total(rows, key={}, currency="USD")


def test_a_windows_total_is_its_customers_rows_added_up(month):  # noqa: F811
    # given: November of the reconciliation (a 10 % discount on acme's period
    # invoice, globex's credits), then a price cut on input from the 20th at
    # noon with input used on both sides of it, tokens no cost rate matches, a
    # credit note on acme's input line and acme's start invoice (November's
    # fee) voided in December
    acme, _ = month
    post_cost("input", "1.00", "2026-11-20T12:00:00Z")
    late = [
        tokens_event("in2", "2026-11-20T15:00:00Z", 2_000_000, "input"),
        tokens_event("cached", "2026-11-20T15:00:00Z", 700_000, "cached"),
    ]
    result = events_ingest(events=late, now=datetime(2026, 11, 30, tzinfo=UTC))
    assert (result.rejected, result.duplicates) == ([], 0)
    period = Invoice.objects.get(customer=acme, reason="period")
    (input_line,) = period.lines.filter(meter="llm_tokens", group__token_type="input")
    december = datetime(2026, 12, 3, 9, tzinfo=UTC)
    # issued on 3 Dec (a document is dated when issued: the clock moved there)
    with time_machine.travel(december, tick=False):
        credit_note_issue(
            invoice=period,
            lines=[CreditLineInput(invoice_line=input_line.pk, amount=D("1.00"))],
            reason=CreditNote.PRODUCT_UNSATISFACTORY,
            now=december,
        )
        invoice_void(
            invoice=Invoice.objects.get(customer=acme, reason="start"),
            reason="duplicate",
            now=december,
        )

    # when
    november = report.window_total(start=NOV_1, end=DEC_1, currency="USD", key={})

    # then: the customers' rows added up, to the last digit
    assert figures(november) == figures(customers_added_up(NOV_1, DEC_1))
    # acme: 4.05 of usage net of the discount (its fee voided; the 1.00 credited
    # counts at the note's date, in December); globex: 30.00 of credits: 34.05.
    # Cost: 2.25 before the cut, 2M input at 1.00 per 1M after it, 30 calls at
    # 0.10; 700,000 cached tokens uncosted.
    assert (november.revenue, november.cost, november.uncosted_quantity) == (
        D("34.05"),
        D("7.25"),
        D(700_000),
    )
    december_total = report.window_total(start=DEC_1, end=JAN_1, currency="USD", key={})
    assert figures(december_total) == figures(customers_added_up(DEC_1, JAN_1))
    # December's fee, billed ahead, 10 % off (27.00), less the note's 1.00
    assert december_total.revenue == D("26.00")


def test_the_chart_adds_up_the_known_month_and_reads_the_others_as_totals(month):  # noqa: F811
    months = [(NOV_1, DEC_1), (DEC_1, JAN_1)]
    by_customer = report.margins(start=NOV_1, end=DEC_1, group_by="customer", currency="USD")

    read = report.month_margins(months=months, currency="USD")
    reused = report.month_margins(
        months=months, currency="USD", known={(NOV_1, DEC_1): by_customer}
    )

    assert [(m.key, *figures(m)) for m in read] == [(m.key, *figures(m)) for m in reused]
    assert [(m.key["month"], m.revenue, m.cost) for m in read] == [
        (NOV_1, D("64.05"), D("5.25")),
        (DEC_1, D("27.00"), D("0.00")),
    ]


def test_windows_read_in_one_pass_are_each_their_own(month):  # noqa: F811
    # given: usage on both sides of a price cut in November, the windows
    # October and December with November between them (the page's window,
    # known), then each month after the other
    post_cost("input", "1.00", "2026-11-20T12:00:00Z")
    late = [tokens_event("in2", "2026-11-20T15:00:00Z", 2_000_000, "input")]
    assert events_ingest(events=late, now=datetime(2026, 11, 30, tzinfo=UTC)).rejected == []
    october = (datetime(2026, 10, 1, tzinfo=UTC), NOV_1)
    months = [october, (NOV_1, DEC_1), (DEC_1, JAN_1)]

    # when
    around = report.window_totals(
        windows=[october, (DEC_1, JAN_1)], currency="USD", keys=[{"m": 10}, {"m": 12}]
    )
    together = report.window_totals(windows=months, currency="USD", keys=[{}] * 3)

    # then: November's lines and usage counted in November only
    assert [(m.key, m.revenue, m.cost) for m in around] == [
        ({"m": 10}, D("0.00"), D("0.00")),
        ({"m": 12}, D("27.00"), D("0.00")),
    ]
    alone = [report.window_total(start=s, end=e, currency="USD", key={}) for s, e in months]
    assert [figures(m) for m in together] == [figures(m) for m in alone]
    assert [figures(m) for m in alone[1:2]] == [figures(customers_added_up(NOV_1, DEC_1))]
    assert (together[1].revenue, together[1].cost) == (D("64.05"), D("7.25"))
