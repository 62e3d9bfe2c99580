"""Margins by plan when a customer moves between plans: the revenue of each line
is under the plan that priced it (InvoiceLine.plan, as the journal books it),
and the cost of the usage under the plan in effect when it was used
(billing.revenue.plans_in_effect), so each plan's margin is its own."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.margins import report
from billing.revenue.plans_in_effect import plans_in_effect
from billing.subscriptions.lifecycle import subscription_cancel, subscription_change_plan
from billing.usage.ingestion import events_ingest
from invoices.models import CreditNoteLine, InvoiceLine
from plans.cost_rules import cost_rate_create
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    """Prompts cost the seller 0.004 each; starter sells them at 0.01 on a 30.00
    base fee, pro at 0.02 on 100.00 (both billed in advance)."""
    prompts_meter()
    cost_rate_create(meter="prompts", unit_cost=D("0.004"), currency="USD", effective_from=NOV_1)
    return {
        "starter": published_version(
            "starter", base_fee=D("30.00"), charges=(overage("prompts", 0, "0.01"),)
        ),
        "pro": published_version(
            "pro", base_fee=D("100.00"), charges=(overage("prompts", 0, "0.02"),)
        ),
    }


def prompts(customer, count: int, *, at: datetime, tag: str) -> None:
    events = [
        {
            "id": f"{tag}-{i}",
            "customer": customer.external_id,
            "event_name": "prompt",
            "timestamp": at.isoformat(),
        }
        for i in range(count)
    ]
    assert not events_ingest(events=events, now=at).rejected


def by_plan() -> dict:
    # As of November's end: what is not closed yet accrues in full.
    rows = report.margins(start=NOV_1, end=DEC_1, group_by="plan", currency="USD", now=DEC_1)
    return {row.key["plan"]: (row.revenue, row.cost) for row in rows}


def test_an_immediate_change_splits_revenue_and_cost_between_the_two_plans(catalog):
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)
    prompts(customer, 1000, at=NOV_10, tag="before")
    with time_machine.travel(NOV_16, tick=False):
        subscription_change_plan(
            subscription=subscription, version=catalog["pro"], effective="immediate", at=NOV_16
        )
    prompts(customer, 500, at=NOV_20, tag="after")
    periods_close(as_of=DEC_1)
    lines = InvoiceLine.objects.filter(period_start__gte=NOV_1, period_end__lte=DEC_1)
    assert sorted((x.kind, x.plan, x.amount) for x in lines) == [
        ("base_fee", "starter", D("30.00")),
        ("overage", "pro", D("10.00")),
        ("overage", "starter", D("10.00")),
        ("proration_charge", "pro", D("50.00")),
    ]
    # the unused half of starter's fee is a credit note on its base fee line
    # (billing.invoicing.unused_time)
    credited = CreditNoteLine.objects.select_related("invoice_line")
    assert [(x.invoice_line.kind, x.invoice_line.plan, x.amount) for x in credited] == [
        ("base_fee", "starter", D("15.00"))
    ]
    # Revenue earned under each plan: starter's November fee 30.00 less the
    # 15.00 its change credited back (its second half) = its first half, plus
    # its 1,000 prompts at 0.01 = 15.00 + 10.00 = 25.00; pro's prorated fee for
    # the second half 50.00 plus its 500 prompts at 0.02 = 60.00. Cost: 1,000
    # and 500 prompts at 0.004.
    assert by_plan() == {"starter": (D("25.00"), D("4.00")), "pro": (D("60.00"), D("2.00"))}


def test_a_change_at_period_end_leaves_the_month_on_the_plan_it_was_on(catalog):
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)
    prompts(customer, 1000, at=NOV_10, tag="november")
    subscription_change_plan(
        subscription=subscription, version=catalog["pro"], effective="period_end", at=NOV_16
    )
    periods_close(as_of=DEC_1)
    subscription.refresh_from_db()
    assert subscription.version == catalog["pro"]
    # November's fee and usage, and their cost, on starter; December's fee is
    # December's.
    assert by_plan() == {"starter": (D("40.00"), D("4.00"))}


def test_a_customer_who_never_moved_is_under_its_plan(catalog):
    customer = CustomerFactory(external_id="acme")
    subscribe(customer, "pro", start=NOV_1)
    prompts(customer, 500, at=NOV_20, tag="november")
    # November's fee (billed ahead) 100.00 and its 500 prompts at 0.02 = 10.00,
    # accruing before the close: 110.00. Cost: 500 prompts at 0.004.
    assert by_plan() == {"pro": (D("110.00"), D("2.00"))}


def test_a_change_in_a_window_s_first_partial_hour_costs_nothing_from_before_it(catalog):
    """A window starting mid-hour (midnight in a zone half an hour off UTC) with a
    change in that hour: the cost by plan adds up to the cost by customer."""
    start = datetime(2026, 11, 16, 10, 30, tzinfo=UTC)
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)
    prompts(customer, 1000, at=datetime(2026, 11, 16, 10, 10, tzinfo=UTC), tag="before")
    subscription_change_plan(
        subscription=subscription,
        version=catalog["pro"],
        effective="immediate",
        at=datetime(2026, 11, 16, 10, 45, tzinfo=UTC),
    )
    prompts(customer, 500, at=NOV_20, tag="after")
    periods_close(as_of=DEC_1)
    window = {"start": start, "end": DEC_1, "currency": "USD", "now": DEC_1}
    by_customer = report.margins(**window, group_by="customer")
    by_plan = report.margins(**window, group_by="plan")
    assert [r.cost for r in by_customer] == [D("2.00")]
    # Starter earned its fee's quarter hour [10:30, 10:45) in the window: the
    # fee's 30.00 earned by Dec 1 less by 10:30 Nov 16 (1,333,800 s of
    # 2,592,000: 15.4375, 15.44) = 14.56, less the change's credit for
    # [10:45, Dec 1) (30.00 x 1,257,300 / 2,592,000 = 14.552, 14.55) = 0.01;
    # no cost (its prompts came at 10:10, before the window). Pro: its prorated
    # fee for [10:45, Dec 1), 100.00 x 1,257,300 / 2,592,000 = 48.507, 48.51,
    # and 500 prompts at 0.02 = 10.00: 58.51.
    assert {r.key["plan"]: (r.revenue, r.cost) for r in by_plan} == {
        "pro": (D("58.51"), D("2.00")),
        "starter": (D("0.01"), D("0.00")),
    }
    assert sum(r.revenue for r in by_plan) == by_customer[0].revenue


def test_a_customer_with_two_subscriptions_is_under_the_plan_begun_last(catalog):
    """Issue 93, a rule no test guarded: a customer with several subscriptions
    in the window is under the plan of the one begun last, for all of its usage
    there (its usage is not told apart by subscription): Starter from the 1st,
    cancelled on the 10th, then Pro from the 16th."""
    customer = CustomerFactory(external_id="acme")
    starter = subscribe(customer, "starter", start=NOV_1)
    prompts(customer, 1000, at=NOV_1 + timedelta(days=4), tag="starter")
    with time_machine.travel(NOV_10, tick=False):
        subscription_cancel(subscription=starter, effective="immediate", at=NOV_10)
    subscribe(customer, "pro", start=NOV_16)
    prompts(customer, 500, at=NOV_20, tag="pro")

    in_effect = plans_in_effect(start=NOV_1, end=DEC_1)

    assert (in_effect.single, in_effect.split) == ({customer.pk: "pro"}, {})
    # the cost of its 1,500 prompts (6.00) is Pro's, none Starter's
    costs = {plan: cost for plan, (_revenue, cost) in by_plan().items()}
    assert costs == {"pro": D("6.00"), "starter": D("0.00")}
    # a window of Starter's days alone is Starter's
    assert plans_in_effect(start=NOV_1, end=NOV_10).single == {customer.pk: "starter"}
