"""Progressive billing (SCENARIOS.md S20): a threshold invoice bills the usage
not yet invoiced once it reaches the version's threshold; tiers go on across
the threshold invoices, and the period's invoices together bill what one
closing invoice would have, to the cent. Events go through POST /api/v1/events
and what the commit enqueues runs as a worker would."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.close import periods_close
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_change_plan
from customers.portal import portal_session_create
from customers.services import customer_create
from invoices.models import Invoice
from invoices.services import invoice_void
from plans.coupons import coupon_create
from plans.pricing import PricingSpec, TierSpec
from plans.rating import usage_and_true_up
from plans.services import tax_rate_create
from plans.validation import ChargeSpec, VersionSpec
from tests.factories import MeterFactory, PlanVersionFactory, published_version, subscribe

pytestmark = pytest.mark.django_db


def total(lines) -> D:
    """What the lines bill together."""
    return sum((line.amount for line in lines), D(0))


NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)

# S20: the first 100 runs at 0.10, beyond at 0.05; threshold 5.00.
S20_TIERS = PricingSpec("graduated", tiers=(TierSpec(D(100), D("0.10")), TierSpec(None, D("0.05"))))


def runs_charge(pricing: PricingSpec = S20_TIERS) -> ChargeSpec:
    return ChargeSpec("runs", "overage", pricing=pricing)


@pytest.fixture
def runs_meter(db):
    return MeterFactory(code="runs", name="Agent runs", event_name="agent.run")


class Runs:
    """Posts agent runs through the API at a moment, running the work the commit
    enqueues (the usage check that writes threshold invoices)."""

    def __init__(self, api, capture):
        self.api, self.capture, self.sent = api, capture, 0

    def post(self, count: int, *, at: datetime) -> None:
        events = [
            {
                "id": f"run-{self.sent + i}",
                "customer": "acme",
                "event_name": "agent.run",
                "timestamp": (at - timedelta(seconds=1)).isoformat(),
            }
            for i in range(count)
        ]
        self.sent += count
        with time_machine.travel(at, tick=False), self.capture(execute=True):
            response = self.api.post("/api/v1/events", {"events": events}, format="json")
        assert response.status_code == 202, response.content

    def usage(self, at: datetime) -> dict:
        with time_machine.travel(at, tick=False):
            body = self.api.get("/api/v1/customers/acme/usage").json()
        (line,) = body["lines"]
        return {"invoiced": body["invoiced"], "amount": line["amount"], "used": line["quantity"]}


@pytest.fixture
def runs(api, django_capture_on_commit_callbacks):
    return Runs(api, django_capture_on_commit_callbacks)


def threshold_invoices() -> list[Invoice]:
    return list(Invoice.objects.filter(reason=Invoice.THRESHOLD).order_by("id"))


def line_rows(invoice: Invoice) -> list[tuple]:
    return [
        (x.kind, x.description, x.quantity, x.unit_price, x.amount) for x in invoice.lines.all()
    ]


def test_s20_threshold_invoices_continue_the_tiers_and_add_up_to_one_invoice(
    api, client, acme, runs_meter, runs
):
    # given: S20's tiers and a threshold of 5.00, VAT 20%
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscribe(acme, "agents")

    # when: 40 runs (4.00): nothing invoiced yet
    runs.post(40, at=NOV_10)
    assert threshold_invoices() == []
    assert runs.usage(NOV_10) == {"invoiced": "0.00", "amount": "4.00", "used": "40"}

    # 60 more: one threshold invoice of 10.00 (the 100 runs), taxed and finalized
    runs.post(60, at=NOV_10 + timedelta(hours=1))
    (first,) = threshold_invoices()
    assert line_rows(first) == [
        ("overage", "Agent runs over 0 included: tier up to 100", D(100), D("0.10"), D("10.00"))
    ]
    assert (first.subtotal, first.tax, first.total, first.status) == (
        D("10.00"),
        D("2.00"),
        D("12.00"),
        Invoice.FINALIZED,
    )
    assert runs.usage(NOV_10 + timedelta(hours=1)) == {
        "invoiced": "10.00",
        "amount": "0.00",
        "used": "100",
    }

    # 100 more: a threshold invoice of 5.00: 100 at the second tier, not 10.00
    runs.post(100, at=NOV_10 + timedelta(hours=2))
    first, second = threshold_invoices()
    assert line_rows(second) == [
        ("overage", "Agent runs over 0 included: tier up to 100", D(100), D("0.10"), D("10.00")),
        ("overage", "Agent runs over 0 included: tier above 100", D(100), D("0.05"), D("5.00")),
        ("usage_invoiced", f"Usage invoiced on {first.number}", D(1), D("-10.00"), D("-10.00")),
    ]
    assert (second.subtotal, second.tax, second.total) == (D("5.00"), D("1.00"), D("6.00"))

    # 30 more (1.50): under the threshold
    runs.post(30, at=NOV_10 + timedelta(hours=3))
    assert len(threshold_invoices()) == 2
    assert runs.usage(NOV_10 + timedelta(hours=3)) == {
        "invoiced": "15.00",
        "amount": "1.50",
        "used": "230",
    }

    # the portal shows the same figures, and the threshold invoices
    at = NOV_10 + timedelta(hours=3)
    token = portal_session_create(customer=acme, now=at).token
    with time_machine.travel(at, tick=False):
        page = client.get(f"/portal/{token}/")
    (feature,) = page.context["features"]
    assert (page.context["subtotal"], page.context["invoiced"], feature["amount"]) == (
        "16.50",
        "15.00",
        "1.50",
    )
    listed = [(i["number"], i["reason"], i["total"]) for i in page.context["invoices"]]
    assert listed == [
        (second.number, "Usage threshold reached", "6.00"),
        (first.number, "Usage threshold reached", "12.00"),
        # (the start invoice, of no base fee, still a draft: upcoming, not numbered)
        ("", "Subscription start", "0.00"),
    ]

    # then: the closing invoice bills 1.50 and shows what was billed already
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert line_rows(closing) == [
        ("overage", "Agent runs over 0 included: tier up to 100", D(100), D("0.10"), D("10.00")),
        ("overage", "Agent runs over 0 included: tier above 100", D(130), D("0.05"), D("6.50")),
        ("usage_invoiced", f"Usage invoiced on {first.number}", D(1), D("-10.00"), D("-10.00")),
        ("usage_invoiced", f"Usage invoiced on {second.number}", D(1), D("-5.00"), D("-5.00")),
    ]
    assert closing.subtotal == D("1.50")
    # 10.00 + 5.00 + 1.50 = 16.50, one invoice for 230 runs under those tiers
    single = total(
        usage_and_true_up(
            VersionSpec(currency="USD", charges=(runs_charge(),)), quantities={"runs": D(230)}
        )
    )
    assert first.subtotal + second.subtotal + closing.subtotal == single == D("16.50")


def test_the_threshold_invoice_says_the_customer_s_period_and_is_over_once_the_period_ended(
    api, acme, runs_meter, runs
):
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscribe(acme, "agents")
    runs.post(60, at=NOV_10)
    (invoice,) = threshold_invoices()
    # Its service period: from the period's start to the moment it was written.
    assert (invoice.period_start, invoice.period_end) == (datetime(2026, 11, 1, tzinfo=UTC), NOV_10)
    # Between the period's end and its close, the close bills what is left.
    runs.post(200, at=DEC_1 + timedelta(minutes=5))
    assert len(threshold_invoices()) == 1


def test_an_immediate_plan_change_bills_the_rest_and_starts_a_new_part(api, acme, runs_meter, runs):
    # given: a threshold invoice of 10.00 on v1, then 20 more runs (1.00)
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscription = subscribe(acme, "agents")
    runs.post(100, at=NOV_10)
    (first,) = threshold_invoices()
    runs.post(20, at=NOV_10 + timedelta(hours=1))

    # when: moved at once to v2 (a flat 0.20 a run, same threshold)
    v2 = PlanVersionFactory(
        plan=subscription.version.plan,
        progressive_billing_threshold=D("5.00"),
        charges=(runs_charge(PricingSpec("per_unit", unit_price=D("0.20"))),),
    )
    change_at = NOV_10 + timedelta(hours=2)
    with time_machine.travel(change_at, tick=False):
        subscription_change_plan(
            subscription=subscription, version=v2, effective="immediate", at=change_at
        )

    # then: the plan-change invoice bills v1's 120 runs less the threshold invoice
    change = Invoice.objects.get(reason=Invoice.PLAN_CHANGE)
    usage_lines = [row for row in line_rows(change) if row[0] in ("overage", "usage_invoiced")]
    assert usage_lines == [
        ("overage", "Agent runs over 0 included: tier up to 100", D(100), D("0.10"), D("10.00")),
        ("overage", "Agent runs over 0 included: tier above 100", D(20), D("0.05"), D("1.00")),
        ("usage_invoiced", f"Usage invoiced on {first.number}", D(1), D("-10.00"), D("-10.00")),
    ]
    # and v2's part starts from nothing: 30 runs at 0.20 = 6.00 is a new crossing
    runs.post(30, at=change_at + timedelta(hours=1))
    _first, second = threshold_invoices()
    assert line_rows(second) == [
        ("overage", "Agent runs over 0 included", D(30), D("0.20"), D("6.00"))
    ]


EXAMPLES = itertools.count()
TIER_TABLES = st.lists(
    st.tuples(st.integers(1, 60), st.decimals("0.001", "0.5", places=3)), min_size=1, max_size=4
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tiers=TIER_TABLES,
    scheme=st.sampled_from(["graduated", "volume"]),
    threshold=st.decimals("0.50", "6.00", places=2),
    batches=st.lists(st.integers(1, 80), min_size=1, max_size=8),
)
def test_the_period_s_invoices_add_up_to_one_closing_invoice(
    api, runs_meter, django_capture_on_commit_callbacks, settings, tiers, scheme, threshold, batches
):
    # given: a random tier table (bounds rising), threshold and usage; every
    # example has a customer and plan of its own (the database is shared); the
    # invoices' PDFs not rendered (amounts are the question: the renders took
    # half this test's time)
    settings.BILLING_INVOICE_PDFS = False
    code = f"p{next(EXAMPLES)}"
    bounds, table = 0, []
    for width, price in tiers[:-1]:
        bounds += width
        table.append(TierSpec(D(bounds), price))
    table.append(TierSpec(None, tiers[-1][1]))
    pricing = PricingSpec(scheme, tiers=tuple(table))
    published_version(
        code, progressive_billing_threshold=threshold, charges=(runs_charge(pricing),)
    )
    customer = customer_create(external_id=code, name=code, currency="USD")
    subscription = subscribe(customer, code)
    sent = 0
    for index, count in enumerate(batches):
        at = NOV_10 + timedelta(hours=index)
        events = [
            {
                "id": f"{code}-{sent + i}",
                "customer": code,
                "event_name": "agent.run",
                "timestamp": (at - timedelta(seconds=1)).isoformat(),
            }
            for i in range(count)
        ]
        sent += count
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 202

    periods_close(as_of=DEC_1)

    invoices = Invoice.objects.filter(subscription=subscription).exclude(reason=Invoice.START)
    single = total(
        usage_and_true_up(
            VersionSpec(currency="USD", charges=(runs_charge(pricing),)),
            quantities={"runs": D(sent)},
        )
    )
    assert sum((invoice.subtotal for invoice in invoices), D(0)) == single
    # each threshold invoice billed at least the threshold
    for invoice in invoices.filter(reason=Invoice.THRESHOLD):
        assert invoice.subtotal >= threshold


def test_a_voided_threshold_invoice_bills_nothing_so_the_close_bills_its_usage(
    api, acme, runs_meter, runs
):
    # given: a threshold invoice of 10.00 for 100 runs, voided by finance
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscribe(acme, "agents")
    runs.post(100, at=NOV_10)
    (first,) = threshold_invoices()
    invoice_void(invoice=first, reason="other", now=NOV_10 + timedelta(minutes=5))

    # then: /usage counts those runs as not invoiced again, and the close bills them
    assert runs.usage(NOV_10 + timedelta(minutes=10)) == {
        "invoiced": "0.00",
        "amount": "10.00",
        "used": "100",
    }
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert line_rows(closing) == [
        ("overage", "Agent runs over 0 included: tier up to 100", D(100), D("0.10"), D("10.00"))
    ]


def test_the_admin_customer_page_shows_the_usage_invoiced_on_threshold_invoices(
    admin_client, acme, runs_meter, runs
):
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscribe(acme, "agents")
    runs.post(120, at=NOV_10)

    with time_machine.travel(NOV_10 + timedelta(minutes=1), tick=False):
        page = admin_client.get(f"/admin/customers/customer/{acme.pk}/change/")

    usage = page.context["billing"]["usage"]
    assert (usage["invoiced"], usage["lines"][0]["amount"], usage["subtotal"]) == (
        "11.00 USD",
        "0.00 USD",
        "11.00 USD",
    )
    assert 'id="usage-invoiced">11.00 USD<' in page.content.decode()


def test_usage_that_rates_lower_than_its_threshold_invoices_goes_to_the_credit_balance(
    api, acme, runs_meter, runs
):
    # given: volume tiers (every run at 0.10 up to 100, every run at 0.05 beyond)
    volume = PricingSpec("volume", tiers=(TierSpec(D(100), D("0.10")), TierSpec(None, D("0.05"))))
    published_version(
        "agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(volume),)
    )
    subscribe(acme, "agents")
    runs.post(60, at=NOV_10)
    (first,) = threshold_invoices()
    assert first.subtotal == D("6.00")

    # when: 41 more runs: 101 runs rate at 5.05, less than the 6.00 billed
    runs.post(41, at=NOV_10 + timedelta(hours=1))
    periods_close(as_of=DEC_1)

    # then: the closing invoice is -0.95, and that goes to the credit balance
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert line_rows(closing) == [
        ("overage", "Agent runs over 0 included", D(101), D("0.05"), D("5.05")),
        ("usage_invoiced", f"Usage invoiced on {first.number}", D(1), D("-6.00"), D("-6.00")),
    ]
    assert (closing.total, closing.amount_due) == (D("-0.95"), D(0))
    assert api.get("/api/v1/customers/acme").json()["credit_balance"] == "0.95"


def test_an_immediate_change_before_a_threshold_invoice_s_usage_is_refused(
    api, acme, runs_meter, runs
):
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscription = subscribe(acme, "agents")
    runs.post(60, at=NOV_10)
    (first,) = threshold_invoices()

    with time_machine.travel(NOV_10 + timedelta(hours=1), tick=False):
        response = api.post(
            f"/api/v1/subscriptions/{subscription.pk}/cancel",
            {"effective": "immediate", "at": "2026-11-05T00:00:00Z"},
            format="json",
        )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == (
        "'at' must not come before 2026-11-10T12:00:00+00:00: the usage up to then is billed "
        f"on threshold invoice {first.number}"
    )
    subscription.refresh_from_db()
    assert subscription.status == "active"


def test_a_threshold_invoice_cannot_be_voided_once_the_close_deducted_it(
    api, acme, runs_meter, runs
):
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(runs_charge(),))
    subscribe(acme, "agents")
    runs.post(100, at=NOV_10)
    (first,) = threshold_invoices()
    periods_close(as_of=DEC_1)

    with time_machine.travel(DEC_1 + timedelta(hours=1), tick=False):
        response = api.post(f"/api/v1/invoices/{first.pk}/void", {}, format="json")

    assert response.status_code == 409, response.content
    assert "issue a credit note instead" in response.json()["error"]["message"]
    first.refresh_from_db()
    assert first.status == Invoice.FINALIZED


def test_a_coupon_discounts_the_period_s_invoices_together_as_one_closing_invoice(
    api, acme, runs_meter, runs
):
    # given: 1.00 a run, a threshold of 50.00, and a 20% coupon for ever
    published_version(
        "agents",
        progressive_billing_threshold=D("50.00"),
        charges=(runs_charge(PricingSpec("per_unit", unit_price=D("1.00"))),),
    )
    subscription = subscribe(acme, "agents")
    coupon = coupon_create(
        code="LOYAL20", name="Loyal 20%", percent_off=D("20"), duration="forever"
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_10)

    # when: 60 runs (a threshold invoice of 60.00, not discounted), 10 more, the close
    runs.post(60, at=NOV_10)
    runs.post(10, at=NOV_10 + timedelta(hours=1))
    periods_close(as_of=DEC_1)

    # then: 20% of the period's 70.00 is taken off the closing invoice: 10.00 - 14.00,
    # and the 4.00 below zero goes to the credit balance; together 56.00 = 70.00 - 14.00
    (first,) = threshold_invoices()
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert (first.total, closing.subtotal, closing.discount, closing.total) == (
        D("60.00"),
        D("10.00"),
        D("14.00"),
        D("-4.00"),
    )
    assert first.total + closing.total == D("56.00")
    assert api.get("/api/v1/customers/acme").json()["credit_balance"] == "4.00"


def test_a_deal_s_own_threshold_bills_progressively_on_a_version_without_one(
    api, acme, runs_meter, runs
):
    # given: a version without a threshold, and a deal with one of 5.00
    published_version("agents", charges=(runs_charge(),))
    response = api.post(
        "/api/v1/subscriptions",
        {
            "customer": "acme",
            "plan": "agents",
            "start": "2026-11-01T00:00:00Z",
            "overrides": {"progressive_billing_threshold": "5.00"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content

    # when: 60 runs (6.00)
    runs.post(60, at=NOV_10)

    # then: a threshold invoice bills them
    (invoice,) = threshold_invoices()
    assert invoice.subtotal == D("6.00")


def test_a_threshold_invoice_bills_usage_only_and_the_close_settles_the_commitment(
    api, acme, runs_meter, runs
):
    """Rule: a threshold invoice bills the usage, never the minimum commitment's
    true-up (the close settles that for the whole period): on a version with both,
    60 runs at 0.10 on Nov 10 12:00 bill 6.00, not 6.00 and the 89.00 that would
    bring them to 9.5 / 30 of the 300.00 commitment."""
    # given: a commitment of 300.00 a month and a threshold of 5.00
    published_version(
        "agents",
        minimum_commitment=D("300.00"),
        progressive_billing_threshold=D("5.00"),
        charges=(runs_charge(PricingSpec("per_unit", unit_price=D("0.10"))),),
    )
    subscribe(acme, "agents")

    # when: 60 runs (6.00)
    runs.post(60, at=NOV_10)

    # then: the threshold invoice bills them alone
    (invoice,) = threshold_invoices()
    assert line_rows(invoice) == [
        ("overage", "Agent runs over 0 included", D(60), D("0.10"), D("6.00"))
    ]
    assert invoice.subtotal == D("6.00")

    # and the close bills the true-up of the month: 300.00 - 6.00
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(
        reason=Invoice.PERIOD, period_start=datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert [(row[0], row[4]) for row in line_rows(closing)] == [
        ("overage", D("6.00")),
        ("minimum_commitment", D("294.00")),
        ("usage_invoiced", D("-6.00")),
    ]
