"""A period's spend with a coupon is what its invoices bill for it, net of its
lines' share of the discount (issue 93): the spend a hard limit and a stop budget
count, the dashboard's projection and /usage's after-discount figure, the
discount on the next period's fees billed in advance left to the next period.

20% off forever from 1 Oct. Base fee 20.00 and seats at 10.00 in advance, 100
prompts included then 0.10 each. October closes with November's fees (20.00 +
1 seat 10.00) on its invoice: 6.00 off, stamped 4.00 and 2.00 on them. In
November 2 more seats from the 16th (2 x 10.00 x 15/30 = 10.00) and 130 prompts
(3.00): 43.00 in all. The invoice closing November bills 3.00, 10.00 and
December's fees (20.00 + 3 seats 30.00 = 50.00): 63.00, 12.60 off, of which
0.60 and 2.00 are November's and 10.00 December's. November bills 43.00 less
6.00 and 2.60: 34.40."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing import dashboard
from billing.invoicing.close import periods_close
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_set_seats
from billing.usage.ingestion import events_ingest
from billing.usage.priced import spend_statement
from billing.usage.reads import period_now
from billing.usage.statement import period_statement
from common.vocabulary import CouponDuration
from customers.models import Customer
from invoices.models import Invoice, InvoiceLine
from plans.coupons import coupon_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    api_client,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def acme(db):
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    version = published_version(
        "team",
        base_fee=D("20.00"),
        seat_price=D("10.00"),
        charges=(overage("prompts", 100, "0.10"),),
    )
    subscription = subscribe(CustomerFactory(external_id="acme"), version, OCT_1, seats=1)
    coupon = coupon_create(
        code="LAUNCH20", name="Launch", duration=CouponDuration.FOREVER, percent_off=D("20")
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=OCT_1)
    periods_close(as_of=NOV_1)
    events = [
        {"id": f"p-{i}", "customer": "acme", "event_name": "prompt"}
        | {"timestamp": NOV_10.isoformat()}
        for i in range(130)
    ]
    assert events_ingest(events=events, now=NOV_10).accepted == 130
    subscription.refresh_from_db()
    subscription_set_seats(subscription=subscription, seats=3, at=NOV_16)
    subscription.refresh_from_db()
    return subscription


def check(api, quantity: int) -> dict:
    with time_machine.travel(NOV_20, tick=False):
        return api.post(
            "/api/v1/customers/acme/check",
            {"meter": "prompts", "quantity": str(quantity)},
            format="json",
        ).json()


def test_the_fees_in_advance_carry_their_share_of_octobers_discount(acme):
    fees = InvoiceLine.objects.filter(
        invoice__subscription=acme, invoice__reason=Invoice.PERIOD, period_start=NOV_1
    )
    assert sorted(fees.values_list("amount", "discount_share")) == [
        (D("10.00"), D("2.00")),
        (D("20.00"), D("4.00")),
    ]


@pytest.mark.parametrize(
    ("limit", "allowed"), [(D("37.61"), True), (D("37.60"), True), (D("37.59"), False)]
)
def test_a_hard_spend_limit_counts_the_spend_net_of_the_discount(acme, limit, allowed):
    """40 prompts more (4.00): 7.00 of usage, the closing invoice 67.00 and 13.40
    off, 1.40 and 2.00 of it November's: 30.00 - 6.00 + 10.00 + 7.00 - 3.40 =
    37.60 spent with them, 34.40 before."""
    Customer.objects.filter(pk=acme.customer_id).update(spend_limit=limit, spend_limit_mode="hard")

    answer = check(api_client(), 40)

    assert answer["allowed"] is allowed, answer
    if not allowed:
        assert answer["reason"] == "spend_limit_reached"
        assert answer["spend_remaining"] == "3.19"


@pytest.mark.parametrize(("budget", "allowed"), [("37.61", True), ("37.59", False)])
def test_a_stop_budget_counts_the_spend_net_of_the_discount(acme, budget, allowed):
    api = api_client()
    with time_machine.travel(NOV_20, tick=False):
        put = api.put(
            "/api/v1/customers/acme/limits",
            {"budget": {"amount": budget, "action": "stop"}},
            format="json",
        )
        assert put.status_code == 200, put.content
        spent = api.get("/api/v1/customers/acme/limits").json()["budget"]["spent"]

    answer = check(api, 40)

    assert spent == "34.40"
    assert answer["allowed"] is allowed, answer
    if not allowed:
        assert (answer["reason"], answer["remaining"]) == ("customer_budget_reached", "3.19")


def test_the_dashboard_and_usage_say_what_the_invoices_bill_net_of_their_shares(acme):
    # given: read a second before the period's end (the usage projected by a
    # fraction of a cent)
    at = DEC_1 - timedelta(seconds=1)
    with time_machine.travel(at, tick=False):
        usage = api_client("read").get("/api/v1/customers/acme/usage").json()
    (projection,) = dashboard.projected_revenue(now=at)[0]

    # when
    periods_close(as_of=DEC_1)

    # then: November's lines on every invoice, net of their stamped shares
    lines = InvoiceLine.objects.filter(
        invoice__subscription=acme, period_start__gte=NOV_1, period_end__lte=DEC_1
    ).exclude(invoice__status=Invoice.VOID)
    billed = sum((line.amount - line.discount_share for line in lines), D(0))
    assert billed == D("34.40")
    assert projection.total == billed
    assert projection.discounts == D("8.60")
    assert (usage["projected_total"], usage["projected_after_discount"]) == ("43.00", "34.40")
    assert usage["projected_period_discount"] == "8.60"
    # the closing invoice's discount is still all of it, December's share included
    assert usage["projected_discount"] == "12.60"
    closing = Invoice.objects.get(subscription=acme, reason=Invoice.PERIOD, period_start=NOV_1)
    assert closing.discount == D("12.60")


def test_a_closed_period_counts_its_closing_invoices_shares(acme):
    """Once November is closed, its statement takes the shares stamped on its lines
    of both invoices (6.00 on its fees in advance, 2.60 on the closing invoice's):
    what /usage says of a past period."""
    periods_close(as_of=DEC_1)
    acme.refresh_from_db()

    statement = period_statement(acme, start=NOV_1, end=DEC_1, discounted=True)

    stamped = InvoiceLine.objects.filter(
        invoice__subscription=acme, period_start__gte=NOV_1, period_end__lte=DEC_1
    ).exclude(invoice__status=Invoice.VOID)
    assert statement.discount == sum(stamped.values_list("discount_share", flat=True)) == D("8.60")
    assert statement.net == D("34.40")


def test_between_a_periods_end_and_its_close_the_next_period_counts_its_fees_share(acme):
    """At 00:05 on 1 December, before the beat has closed November, a check counts
    December: its fees in advance (20.00 + 3 seats 30.00) less the 10.00 of the
    discount November's closing invoice will stamp on them: 40.00, the spend read
    once the close has run (was 50.00 until then)."""
    at = DEC_1 + timedelta(minutes=5)
    with time_machine.travel(at, tick=False):
        start, end = period_now(subscription=acme, now=at)
        before = spend_statement(subscription=acme, start=start, end=end)
    periods_close(as_of=DEC_1)
    acme.refresh_from_db()
    with time_machine.travel(at, tick=False):
        after = spend_statement(subscription=acme, start=start, end=end)

    assert start == DEC_1
    assert before.total == after.total == D("40.00")
