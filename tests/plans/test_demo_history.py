"""load_demo's history (plans.management.demo_history): acme and globex subscribed
since the start of last month, their daily usage sent through ingestion, their
periods closed by the real close, so that last month has real usage and real
(finalized, numbered, paid or open) invoices, and "Simulate prices" on last month
finds it. Run again: nothing twice; run a month later: the month since, closed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from pypdf import PdfReader

from billing.admin.simulations import last_month
from billing.models import Subscription
from billing.simulation.engine import simulation_check, simulation_rate_customer
from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.statement import usage_by_meter
from billing.usage_models import UsageEvent
from customers.models import Customer
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from plans.management.demo_history import DEMO_SUBSCRIPTIONS, day_events
from plans.models import PlanVersion

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10_NOON = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)
# Globex Corporation's months start at midnight in New York.
OCT_1_NY = datetime(2026, 10, 1, 4, tzinfo=UTC)
NOV_1_NY = datetime(2026, 11, 1, 4, tzinfo=UTC)


def load_demo(at: datetime, *args: str) -> str:
    out = StringIO()
    with time_machine.travel(at, tick=False):
        call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def demo_sent(customer: str, start: datetime, end: datetime) -> list[dict]:
    """The demo's events of `customer` in [start, end), from the days they fall on."""
    demo = next(d for d in DEMO_SUBSCRIPTIONS if d.customer == customer)
    day, events = start.replace(hour=0), []
    while day < end:
        events += day_events(demo, day)
        day += timedelta(days=1)
    return [e for e in events if start <= datetime.fromisoformat(e["timestamp"]) < end]


def ids(events: list[dict]) -> set[str]:
    return {event["id"] for event in events}


def invoices() -> list[tuple]:
    return list(
        Invoice.objects.order_by("number").values_list(
            "number", "customer__external_id", "reason", "status", "total", "finalized_at"
        )
    )


@pytest.mark.django_db(transaction=True)
def test_load_demo_subscribes_two_customers_since_last_month_and_closes_it():
    # when: the demo is loaded on 10 November
    output = load_demo(NOV_10_NOON)

    # then: acme on Team (hybrid) with 3 seats and globex on AI Assistant, calendar
    # months from the start of October in their zones, in November now
    subscriptions = {
        s.customer.external_id: s for s in Subscription.objects.select_related("customer")
    }
    assert set(subscriptions) == {"acme", "globex"}
    acme, globex = subscriptions["acme"], subscriptions["globex"]
    assert (str(acme), acme.seats, acme.started_at, acme.current_period_start) == (
        "Acme Inc — Team (hybrid) v1 (active)",
        3,
        OCT_1,
        NOV_1,
    )
    assert (str(globex), globex.started_at, globex.current_period_start) == (
        "Globex Corporation — AI Assistant v1 (active)",
        OCT_1_NY,
        NOV_1_NY,
    )
    assert not Subscription.objects.filter(customer__external_id="initech").exists()

    # and every demo event of October and of November so far was stored, once
    sent = [
        event
        for customer in ("acme", "globex")
        for event in demo_sent(customer, OCT_1, NOV_10_NOON)
    ]
    assert UsageEvent.objects.count() == len(sent) > 800
    assert f"{len(sent)} usage events" in output

    # and October's invoices were issued as the beat would have: the start invoices on
    # 1 October (paid ten days later), October's closing invoices on 1 November (open)
    assert invoices() == [
        ("INV-2026-000001", "acme", "start", "paid", D("79.00"), OCT_1_NY),
        ("INV-2026-000002", "globex", "start", "paid", D("19.99"), OCT_1_NY),
        ("INV-2026-000003", "acme", "period", "finalized", D("123.60"), NOV_1),
        ("INV-2026-000004", "globex", "period", "finalized", D("30.44"), NOV_1_NY),
    ]
    assert output.endswith(
        "subscription acme to Team (hybrid) v1, subscription globex to AI Assistant v1, "
        f"{len(sent)} usage events, 2 periods closed, 4 invoices finalized, "
        "2 invoices paid)\n"
    )

    # and October's closing invoices bill October's usage: acme's tokens past the
    # 1,000,000 included on two tiers, globex's prompts past 200
    october_tokens = sum(e["properties"]["total_tokens"] for e in demo_sent("acme", OCT_1, NOV_1))
    acme_lines = Invoice.objects.get(customer__external_id="acme", reason="period").lines
    assert list(acme_lines.order_by("position").values_list("quantity", "amount")) == [
        (D(4_000_000), D("32.00")),
        (D(october_tokens - 5_000_000), D("12.60")),
        (D(1), D("49.00")),
        (D(3), D("30.00")),
    ]
    october_prompts = len(demo_sent("globex", OCT_1_NY, NOV_1_NY))
    globex_lines = Invoice.objects.get(customer__external_id="globex", reason="period").lines
    assert list(globex_lines.order_by("position").values_list("quantity", "amount")) == [
        (D(october_prompts - 200), D("10.45")),
        (D(1), D("19.99")),
    ]


@pytest.mark.django_db(transaction=True)
def test_simulate_prices_finds_last_months_real_usage():
    # given: the demo loaded on 10 November
    load_demo(NOV_10_NOON)
    acme = Customer.objects.get(external_id="acme")
    team = PlanVersion.objects.get(plan__code="team_hybrid")

    # when: a simulation of last month (the Simulate page's default period) is asked for
    start, end = last_month(NOV_10_NOON)
    simulation_check(
        version=team, period_start=start, period_end=end, customers=[acme], now=NOV_10_NOON
    )
    rated = simulation_rate_customer(
        customer=acme, version=team, period_start=start, period_end=end
    )

    # then: it is October, with October's tokens, rated at what acme paid for it
    assert (start, end) == (OCT_1, NOV_1)
    tokens = usage_by_meter(customer_id=acme.pk, meter_codes=["llm_tokens"], start=start, end=end)
    assert tokens["llm_tokens"] == sum(
        e["properties"]["total_tokens"] for e in demo_sent("acme", OCT_1, NOV_1)
    )
    assert (rated.current_version_label, rated.current_total, rated.simulated_total) == (
        "Team (hybrid) v1",
        D("123.60"),  # 49.00 + 3 seats at 10.00 + 32.00 + 12.60
        D("123.60"),
    )


@pytest.mark.django_db(transaction=True)
def test_load_demo_again_changes_nothing_and_a_month_later_closes_the_month_since(row_counts):
    # given: the demo loaded on 10 November
    load_demo(NOV_10_NOON)
    counts, events, issued = row_counts(), UsageEvent.objects.count(), invoices()

    # when: it is loaded again the same day
    output = load_demo(NOV_10_NOON)

    # then: nothing new
    assert output.strip() == "demo loaded: 0 created"
    assert (row_counts(), UsageEvent.objects.count(), invoices()) == (counts, events, issued)

    # when: it is loaded again on 3 December, the server not having run since
    output = load_demo(DEC_3)

    # then: the days since were sent, and November closed on 1 December (open invoices)
    sent = [event for customer in ("acme", "globex") for event in demo_sent(customer, OCT_1, DEC_3)]
    assert UsageEvent.objects.count() == len(sent)
    assert invoices()[:4] == issued
    assert [row[1:4] for row in invoices()[4:]] == [
        ("acme", "period", "finalized"),
        ("globex", "period", "finalized"),
    ]
    assert output.strip().endswith("2 periods closed, 2 invoices finalized)")
    assert Subscription.objects.filter(current_period_start__month=12).count() == 2


@pytest.mark.django_db(transaction=True)
def test_after_a_plan_change_the_demo_sends_only_the_usage_after_it():
    # given: the demo loaded on 10 November, then globex moved to Pro on 15 November
    # (its usage so far billed by the change)
    load_demo(NOV_10_NOON)
    nov_15 = datetime(2026, 11, 15, tzinfo=UTC)
    globex = Subscription.objects.get(customer__external_id="globex")
    with time_machine.travel(nov_15, tick=False):
        subscription_change_plan(
            subscription=globex,
            version=PlanVersion.objects.get(plan__code="pro"),
            effective="immediate",
            at=nov_15,
        )
    stored = set(UsageEvent.objects.values_list("event_id", flat=True))

    # when: the demo is loaded again on 20 November
    load_demo(datetime(2026, 11, 20, tzinfo=UTC))

    # then: globex's events from 15 November on were sent, none of the days before it
    # (they would be late usage on a period part already billed)
    now_stored = set(UsageEvent.objects.values_list("event_id", flat=True))
    nov_20 = datetime(2026, 11, 20, tzinfo=UTC)
    skipped = ids(demo_sent("globex", NOV_10_NOON, nov_15)) - stored
    assert skipped and not skipped & now_stored
    assert now_stored - stored == (
        ids(demo_sent("globex", nov_15, nov_20)) | (ids(demo_sent("acme", OCT_1, nov_20)) - stored)
    )


@pytest.mark.django_db(transaction=True)
def test_the_demos_invoices_render_as_pdf_with_the_usage_by_model(tmp_path):
    load_demo(NOV_10_NOON)
    invoice = Invoice.objects.get(customer__external_id="acme", reason="period")

    pdf = tmp_path / "acme.pdf"
    pdf.write_bytes(render_invoice_pdf(invoice))
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)

    assert "INV-2026-000003" in text
    assert "Acme Inc" in text
    for model in ("gpt-4o-mini", "gpt-4o", "o3-mini"):
        assert model in text


def test_catalog_only_subscribes_nobody(db):
    output = load_demo(NOV_10_NOON, "--catalog-only")

    assert output.startswith("demo loaded: 28 created")
    assert not Subscription.objects.exists()
    assert not UsageEvent.objects.exists()
    assert not Invoice.objects.exists()
