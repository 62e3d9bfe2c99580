"""The billing cycle end to end, with time set explicitly: the worked scenarios of
SCENARIOS.md (S1, S2, S4, S5, S8, S9, S10, S11, S13, S16) through the services and
the API, and the close's safety (reruns, failures part way)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.ingestion import events_ingest
from invoices.models import CreditNote, Invoice
from plans.models import Plan
from plans.pricing import PricingSpec, TierSpec
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    ai_assistant_plan,
    hard_cap,
    overage,
    per_unit,
    prompts_meter,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def usage(event_name: str, count: int, *, day: datetime, prefix: str, now: datetime, **props):
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": event_name,
            "timestamp": day.isoformat(),
            "properties": props,
        }
        for i in range(count)
    ]
    for start in range(0, len(events), 1000):
        result = events_ingest(events=events[start : start + 1000], now=now)
        assert not result.rejected, result.rejected[:1]


def lines(invoice: Invoice) -> list[tuple[str, D]]:
    return [(line.kind, line.amount) for line in invoice.lines.all()]


def invoice(reason: str, **filters) -> Invoice:
    return Invoice.objects.get(reason=reason, **filters)


# S1


@pytest.fixture
def ai_assistant(db):
    prompts_meter()
    return ai_assistant_plan(name="Ai Assistant")


@pytest.mark.parametrize(
    ("prompts", "overage_lines", "november"),
    [(180, [], D("19.99")), (400, [("overage", D("10.00"))], D("29.99"))],
)
def test_s1_soft_cap_with_overage(acme, ai_assistant, prompts, overage_lines, november):
    # given: a subscription from November 1st, billed 19.99 in advance
    subscribe(acme, "ai_assistant")
    usage("prompt", prompts, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p", now=DEC_1)

    # when
    result = periods_close(as_of=DEC_1)

    # then: the close bills November's usage and December's base fee
    start = invoice("start")
    close = invoice("period", period_start=NOV_1)
    assert lines(start) == [("base_fee", D("19.99"))]
    assert lines(close) == [*overage_lines, ("base_fee", D("19.99"))]
    november_cost = start.total + sum((amount for _, amount in overage_lines), D(0))
    assert november_cost == november
    assert (result.periods_closed, result.invoices_finalized) == (1, 2)
    assert {i.status for i in Invoice.objects.all()} == {"finalized"}


def test_closing_twice_writes_the_same_invoices(acme, ai_assistant):
    subscribe(acme, "ai_assistant")
    usage("prompt", 400, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p", now=DEC_1)
    periods_close(as_of=DEC_1)
    before = [(i.number, i.total, lines(i)) for i in Invoice.objects.order_by("id")]

    again = periods_close(as_of=DEC_1)

    assert (again.periods_closed, again.invoices_finalized) == (0, 0)
    assert [(i.number, i.total, lines(i)) for i in Invoice.objects.order_by("id")] == before


def test_a_close_that_fails_part_way_and_runs_again_bills_each_period_once(ai_assistant):
    # given: five customers, the close failing after the third subscription
    for n in range(5):
        subscribe(CustomerFactory(external_id=f"c{n}", name=f"C{n}"), "ai_assistant")
    with pytest.raises(RuntimeError, match="injected"):
        periods_close(as_of=DEC_1, fail_at=3)
    assert Invoice.objects.filter(reason="period").count() == 3

    # when
    periods_close(as_of=DEC_1)

    # then
    assert Invoice.objects.filter(reason="period").count() == 5
    assert (
        Invoice.objects.filter(reason="period", period_start=NOV_1)
        .values("subscription")
        .distinct()
        .count()
        == 5
    )
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 11)]


def test_a_close_months_late_catches_up_period_by_period(acme, ai_assistant):
    subscribe(acme, "ai_assistant", start=datetime(2026, 8, 1, tzinfo=UTC))

    with time_machine.travel(DEC_1, tick=False):
        periods_close(as_of=DEC_1)

    starts = list(
        Invoice.objects.filter(reason="period")
        .order_by("period_start")
        .values_list("period_start", flat=True)
    )
    assert [s.month for s in starts] == [8, 9, 10, 11]
    assert Subscription.objects.get().current_period_start == DEC_1


# S2


def test_s2_hard_cap_bills_the_fee_whatever_the_count(acme):
    MeterFactory(code="sms", name="sms", event_name="sms.sent")
    published_version("sms_starter", base_fee=D("9.99"), charges=(hard_cap("sms", 500),))
    subscribe(acme, "sms_starter")
    usage("sms.sent", 650, day=datetime(2026, 11, 12, tzinfo=UTC), prefix="s", now=DEC_1)

    periods_close(as_of=DEC_1)

    close = invoice("period")
    assert [(line.kind, line.quantity, line.amount) for line in close.lines.all()] == [
        ("usage", D(650), D("0.00")),
        ("base_fee", D(1), D("9.99")),
    ]
    assert close.total == D("9.99")


# S4, S5, S8, S9: a month's usage on the invoice that closes it


@pytest.mark.parametrize(
    ("terms", "tokens", "seats", "usage_lines", "month_total"),
    [
        pytest.param(
            {
                "base_fee": D("29.00"),
                "charges": (
                    ChargeSpec("tokens", "overage", D(50_000), pricing=per_unit("0.00003")),
                ),
            },
            120_500,
            1,
            [("overage", D("2.12"))],
            D("31.12"),
            id="S4-per-unit",
        ),
        pytest.param(
            {
                "base_fee": D("29.00"),
                "charges": (
                    ChargeSpec(
                        "tokens",
                        "overage",
                        D(50_000),
                        pricing=PricingSpec(
                            "package", package_size=D(1000), package_price=D("0.03")
                        ),
                    ),
                ),
            },
            120_500,
            1,
            [("overage", D("2.13"))],
            D("31.13"),
            id="S4-package",
        ),
        pytest.param(
            {
                "base_fee": D("19.00"),
                "charges": (
                    ChargeSpec("tokens", "overage", D(100_000), pricing=per_unit("0.00002")),
                ),
            },
            250_000,
            1,
            [("overage", D("3.00"))],
            D("22.00"),
            id="S5",
        ),
        pytest.param(
            {
                "base_fee": D("49.00"),
                "seat_price": D("10.00"),
                "charges": (
                    ChargeSpec(
                        "tokens",
                        "overage",
                        D(1_000_000),
                        pricing=PricingSpec(
                            "graduated",
                            tiers=(
                                TierSpec(D(4_000_000), D("0.000008")),
                                TierSpec(None, D("0.000006")),
                            ),
                        ),
                    ),
                ),
            },
            6_000_000,
            5,
            [("overage", D("32.00")), ("overage", D("6.00"))],
            D("137.00"),
            id="S8-graduated",
        ),
        pytest.param(
            {
                "base_fee": D("49.00"),
                "seat_price": D("10.00"),
                "charges": (
                    ChargeSpec(
                        "tokens",
                        "overage",
                        D(1_000_000),
                        pricing=PricingSpec(
                            "volume",
                            tiers=(
                                TierSpec(D(4_000_000), D("0.000008")),
                                TierSpec(None, D("0.000006")),
                            ),
                        ),
                    ),
                ),
            },
            6_000_000,
            5,
            [("overage", D("30.00"))],
            D("129.00"),
            id="S8-volume",
        ),
    ],
)
def test_usage_scenarios_on_the_closing_invoice(
    acme, terms, tokens, seats, usage_lines, month_total
):
    MeterFactory(
        code="tokens", name="tokens", event_name="llm", aggregation="sum", value_property="tokens"
    )
    published_version("tokens_plan", **terms)
    subscribe(acme, "tokens_plan", seats=seats)
    usage("llm", 1, day=datetime(2026, 11, 20, tzinfo=UTC), prefix="t", now=DEC_1, tokens=tokens)

    periods_close(as_of=DEC_1)

    start = invoice("start")
    close = invoice("period")
    november_usage = [(k, a) for k, a in lines(close) if k == "overage"]
    assert november_usage == usage_lines
    # A month's cost: its fees in advance plus its usage.
    assert start.total + sum((a for _, a in november_usage), D(0)) == month_total


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (300_000, [("overage", D("300.00")), ("minimum_commitment", D("200.00"))]),
        (700_000, [("overage", D("700.00"))]),
    ],
)
def test_s9_minimum_commitment(acme, calls, expected):
    MeterFactory(
        code="api_calls",
        name="api_calls",
        event_name="api.call",
        aggregation="sum",
        value_property="n",
    )
    published_version(
        "api_commit",
        minimum_commitment=D("500.00"),
        charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
    )
    subscribe(acme, "api_commit")
    usage("api.call", 1, day=datetime(2026, 11, 5, tzinfo=UTC), prefix="a", now=DEC_1, n=calls)

    periods_close(as_of=DEC_1)

    assert lines(invoice("period")) == expected
    assert not Invoice.objects.get(reason="start").lines.exists()


# S10


@pytest.fixture
def starter_pro(db):
    MeterFactory(code="prompts", name="prompts", event_name="prompt")
    published_version(
        "starter",
        base_fee=D("20.00"),
        charges=(overage("prompts", 0, "0.01"),),
    )
    published_version(
        "pro",
        base_fee=D("50.00"),
        charges=(overage("prompts", 0, "0.005"),),
    )


def test_s10_upgrade_mid_period_prorated(acme, starter_pro):
    # given: starter from November 1st (an invoice of 20.00), 100 prompts by the 10th
    subscription = subscribe(acme, "starter")
    assert invoice("start").total == D("20.00")
    usage("prompt", 100, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="a", now=DEC_1)

    # when: an immediate change to pro on the 16th (15 of 30 days left)
    pro = Plan.objects.get(code="pro").versions.get()
    change_at = datetime(2026, 11, 16, tzinfo=UTC)
    _, change = subscription_change_plan(
        subscription=subscription, version=pro, effective="immediate", at=change_at
    )

    # then: charge for pro, starter usage at starter prices; the credit for unused
    # starter, 10.00, a credit note against the start invoice: 15.00 plus the 1.00
    # of usage in all (billing.invoicing.unused_time)
    assert lines(change) == [
        ("overage", D("1.00")),
        ("proration_charge", D("25.00")),
    ]
    assert change.total == D("26.00")
    note = CreditNote.objects.get(invoice=invoice("start"))
    assert note.total == D("10.00")
    assert change.total - note.total == D("16.00")

    # and the close bills pro usage from the 16th and December's 50.00
    usage("prompt", 200, day=datetime(2026, 11, 20, tzinfo=UTC), prefix="b", now=DEC_1)
    periods_close(as_of=DEC_1)
    assert lines(invoice("period")) == [("overage", D("1.00")), ("base_fee", D("50.00"))]


def test_s10_change_at_period_end_changes_nothing_now(acme, starter_pro):
    subscription = subscribe(acme, "pro")
    starter = Plan.objects.get(code="starter").versions.get()

    _, now_invoice = subscription_change_plan(
        subscription=subscription, version=starter, effective="period_end", at=NOV_1
    )

    assert now_invoice is None
    subscription.refresh_from_db()
    assert subscription.version.plan.code == "pro"
    periods_close(as_of=DEC_1)
    assert lines(invoice("period")) == [("base_fee", D("20.00"))]
    subscription.refresh_from_db()
    assert (subscription.version.plan.code, subscription.scheduled_version) == ("starter", None)


# S11


def test_s11_grandfathering_and_migration_at_period_end(ai_assistant):
    # given: two subscribers on v1 at 19.99; v2 at 24.99 published
    old_a = subscribe(CustomerFactory(external_id="a", name="A"), "ai_assistant")
    subscribe(CustomerFactory(external_id="b", name="B"), "ai_assistant")
    plan_ = Plan.objects.get(code="ai_assistant")
    v2 = PlanVersionFactory(plan=plan_, base_fee=D("24.99"))

    # when: a new subscriber, and one old one migrated at period end
    new = subscribe(CustomerFactory(external_id="c", name="C"), "ai_assistant")
    subscription_change_plan(subscription=old_a, version=v2, effective="period_end", at=NOV_1)
    periods_close(as_of=DEC_1)

    # then
    assert invoice("start", subscription=new).total == D("24.99")
    december = {
        i.customer.external_id: i.lines.get(kind="base_fee").amount
        for i in Invoice.objects.filter(reason="period", period_start=NOV_1)
    }
    assert december == {"a": D("24.99"), "b": D("19.99"), "c": D("24.99")}


# S13


def test_s13_late_usage_is_billed_on_the_next_invoice(acme, ai_assistant):
    # given: 250 prompts in October; the close on November 1st bills 50 over = 2.50
    october = datetime(2026, 10, 1, tzinfo=UTC)
    subscribe(acme, "ai_assistant", start=october)
    usage("prompt", 250, day=datetime(2026, 10, 20, tzinfo=UTC), prefix="o", now=NOV_1)
    periods_close(as_of=NOV_1)
    october_invoice = invoice("period", period_start=october)
    assert (october_invoice.status, lines(october_invoice)) == (
        "finalized",
        [("overage", D("2.50")), ("base_fee", D("19.99"))],
    )

    # when: on November 3rd, 10 more prompts stamped in October arrive
    late = datetime(2026, 11, 3, tzinfo=UTC)
    usage("prompt", 10, day=datetime(2026, 10, 28, tzinfo=UTC), prefix="late", now=late)
    periods_close(as_of=DEC_1)

    # then: November's invoice has a late-usage line for October; October's is unchanged
    late_line = invoice("period", period_start=NOV_1).lines.get(kind="late_usage")
    assert (late_line.quantity, late_line.unit_price, late_line.amount) == (
        D(10),
        D("0.05"),
        D("0.50"),
    )
    assert "Oct 2026" in late_line.description
    october_invoice.refresh_from_db()
    assert lines(october_invoice) == [("overage", D("2.50")), ("base_fee", D("19.99"))]
    assert october_invoice.total == D("22.49")

    # and a further close bills it no second time
    periods_close(as_of=datetime(2027, 1, 1, tzinfo=UTC))
    assert Invoice.objects.filter(lines__kind="late_usage").count() == 1


# S16


def test_s16_void_and_credit(acme, ai_assistant, api):
    # given: a finalized invoice of 29.99
    subscribe(acme, "ai_assistant")
    usage("prompt", 400, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p", now=DEC_1)
    periods_close(as_of=DEC_1)
    close = invoice("period")
    assert close.total == D("29.99")
    number = close.number

    # when
    response = api.post(f"/api/v1/invoices/{close.pk}/void", {}, format="json")

    # then
    body = response.json()
    assert (response.status_code, body["status"], body["number"]) == (200, "void", number)
    note = api.get(f"/api/v1/credit-notes/{body['credit_notes'][0]}").json()
    assert note["total"] == "29.99"
    assert body["lines"][0]["amount"] == "10.00"
    # the next invoice takes the next number of the year's sequence
    other = CustomerFactory(external_id="other", name="Other")
    december_2 = datetime(2026, 12, 2, tzinfo=UTC)
    subscribe(other, "ai_assistant", start=december_2)
    periods_close(as_of=december_2)
    newest = invoice("start", customer=other)
    assert newest.number == f"INV-2026-{int(number.rsplit('-', 1)[1]) + 1:06d}"
    # a credit note has a sequence of its own, and voiding twice is refused
    assert note["number"] == "CN-2026-000001"
    assert api.post(f"/api/v1/invoices/{close.pk}/void", {}, format="json").status_code == 409
