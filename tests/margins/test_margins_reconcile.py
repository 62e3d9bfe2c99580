"""Margins equal the invoices (issue 51): for a closed month, revenue by
customer is their invoices' lines of that month net of the discount (before
tax), plus the credits their usage drew, valued at what the credits were sold
for; a void invoice bills nothing, and a credit note takes off what it gave
back of a line at its own date (issue 75: revenue earned in the window)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.margins import report
from billing.revenue.earned import earned_revenue
from billing.subscriptions.discounts import discount_redeem
from billing.usage.ingestion import events_ingest
from common.vocabulary import CouponDuration
from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from plans.coupons import coupon_create
from plans.pricing import PricingSpec, TierSpec
from plans.services import credit_pack_create, meter_create
from plans.validation import ChargeSpec
from tests.factories import api_client, llm_tokens_meter, published_version, subscribe
from tests.margins.test_margins_api import post_cost, tokens_event
from wallets.purchases import credit_pack_purchase

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_2 = datetime(2027, 1, 2, tzinfo=UTC)
NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01"


@pytest.fixture
def month(db):
    """November of the reconciliation, read on 2 Jan 2027: the months read are
    over, so what they earned is not cut at the clock."""
    made = month_made()
    with time_machine.travel(JAN_2, tick=False):
        yield made


def month_made():
    llm_tokens_meter()
    meter_create(code="api_calls", name="API calls", event_name="api.call", aggregation="count")
    admin = api_client("admin")
    million = {"scheme": "per_unit", "per": "1000000"}
    card = {
        "meter": "llm_tokens",
        "model": "overage",
        "included_units": "0",
        "price_by": ["model", "token_type"],
        "rates": [
            {
                "when": {"model": "gpt-4o", "token_type": "input"},
                "pricing": million | {"unit_price": "2.50"},
            },
            {
                "when": {"model": "gpt-4o", "token_type": "output"},
                "pricing": million | {"unit_price": "10.00"},
            },
            {"when": {}, "pricing": million | {"unit_price": "4.00"}},
        ],
    }
    plan = {"code": "pro", "name": "Pro", "currency": "USD", "base_fee": "30.00"}
    response = admin.post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert response.status_code == 201, response.json()
    published_version(
        "calls",
        charges=(ChargeSpec("api_calls", "credits", credits_per_unit=D(2)),),
    )
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    pro = subscribe(acme, "pro")
    subscribe(globex, "calls")
    coupon_create(code="TENOFF", name="10% off", percent_off=D(10), duration=CouponDuration.FOREVER)
    with time_machine.travel(NOV_15, tick=False):
        assert (
            admin.post(
                f"/api/v1/subscriptions/{pro.pk}/discounts", {"coupon": "TENOFF"}, format="json"
            ).status_code
            == 201
        )
    pack = credit_pack_create(code="p100", credits=D(100), price=D("50.00"), currency="USD")
    credit_pack_purchase(customer=globex, pack=pack, now=NOV_1)
    post_cost("input", "1.25", "2026-11-01T00:00:00Z")
    post_cost("output", "5.00", "2026-11-01T00:00:00Z")
    response = admin.post(
        "/api/v1/cost-rates",
        {
            "meter": "api_calls",
            "unit_cost": "0.10",
            "currency": "USD",
            "effective_from": "2026-11-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    result = events_ingest(
        events=[
            tokens_event("in", "2026-11-20T10:00:00Z", 1_000_000, "input"),
            tokens_event("out", "2026-11-20T10:00:00Z", 200_000, "output"),
        ]
        + [
            {
                "id": f"c{i}",
                "customer": "globex",
                "event_name": "api.call",
                "timestamp": "2026-11-20T10:00:00Z",
                "properties": {},
            }
            for i in range(30)
        ],
        now=at,
    )
    assert (result.rejected, result.duplicates) == ([], 0)
    periods_close(as_of=DEC_1)
    return acme, globex


def margins(query: str) -> list[tuple]:
    response = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}&{query}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["currency"] == "USD"
    return [
        (r["key"], r["revenue"], r["cost"], r["margin"], r["margin_percent"])
        for r in body["results"]
    ]


def test_revenue_by_customer_is_their_invoices_net_of_discount_plus_credits_used(month):
    acme, _ = month
    start = Invoice.objects.get(customer=acme, reason="start")
    period = Invoice.objects.get(customer=acme, reason="period")
    usage = sum(line.amount for line in period.lines.filter(meter="llm_tokens"))
    assert (start.subtotal, usage, period.subtotal, period.discount) == (
        D("30.00"),
        D("4.50"),
        D("34.50"),  # with December's base fee, billed ahead: outside November
        D("3.45"),
    )
    # November's fee (on the start invoice, undiscounted), and the usage less its
    # share of the 10 % discount; 60 credits used of 100 sold for 50.00.
    acme_revenue = start.subtotal + usage - usage * period.discount / period.subtotal
    globex_revenue = D(30 * 2) * D("50.00") / D(100)
    assert (acme_revenue, globex_revenue) == (D("34.05"), D("30.00"))

    assert margins("group_by=customer") == [
        # cost: 1M input at 1.25, 200,000 output at 5.00 per 1M
        ({"customer": "acme"}, "34.05", "2.25", "31.80", "93.39"),
        # cost: 30 calls at 0.10
        ({"customer": "globex"}, "30.00", "3.00", "27.00", "90.00"),
    ]
    assert margins("group_by=plan&currency=USD") == [
        ({"plan": "pro"}, "34.05", "2.25", "31.80", "93.39"),
        ({"plan": "calls"}, "30.00", "3.00", "27.00", "90.00"),
    ]
    # By meter: the fixed fee (acme's 30.00) is no meter's: the row null, so the
    # view's total is the same 64.05.
    assert margins("group_by=meter") == [
        ({"meter": "api_calls"}, "30.00", "3.00", "27.00", "90.00"),
        ({"meter": None}, "30.00", "0.00", "30.00", "100.00"),
        ({"meter": "llm_tokens"}, "4.05", "2.25", "1.80", "44.44"),
    ]


def test_credits_drawn_are_earned_under_the_plan_whose_charge_drew_them(month):
    # globex's 60 credits used by calls' credits charge, sold at 0.50 each: 30.00
    # under calls (where their cost is), not under no plan.
    rows = earned_revenue(start=NOV_1, end=DEC_1, currency="USD", now=DEC_1, view="plan")
    assert [(row.key, row.earned) for row in rows] == [
        ({"plan": "pro"}, D("34.05")),
        ({"plan": "calls"}, D("30.00")),
    ]


def test_views_read_together_equal_each_view_read_alone(month):
    """The admin page by plan lists the customers of lowest margin too, from one
    read of the window (report.margins_by): the same rows as each view alone."""
    window = {"start": NOV_1, "end": DEC_1, "currency": "USD"}
    views = ("plan", "customer", "meter", "model")
    together = report.margins_by(**window, views=views)
    for view in views:
        alone = report.margins(**window, group_by=view)
        assert alone, view
        assert [(m.key, m.revenue, m.cost, m.uncosted_quantity) for m in together[view]] == [
            (m.key, m.revenue, m.cost, m.uncosted_quantity) for m in alone
        ], view
    # Revenue that is not usage of a meter grouping by model is the row null:
    # acme's November fee 30.00 and globex's credits drawn by api_calls 30.00.
    assert [(m.key, m.revenue) for m in together["model"]] == [
        ({"model": None}, D("60.00")),
        ({"model": "gpt-4o"}, D("4.05")),
    ]


def test_an_answer_in_another_currency_leaves_these_customers_out(month):
    response = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}&currency=EUR")
    assert response.json() == {"currency": "EUR", "results": []}


def test_threshold_invoices_are_counted_once_through_the_period_invoice(
    db, django_capture_on_commit_callbacks
):
    # S20's runs: the first 100 at 0.10, beyond at 0.05; a threshold of 5.00; 10 % off.
    meter_create(code="runs", name="Agent runs", event_name="agent.run", aggregation="count")
    tiers = PricingSpec("graduated", tiers=(TierSpec(D(100), D("0.10")), TierSpec(None, D("0.05"))))
    published_version(
        "agents",
        progressive_billing_threshold=D("5.00"),
        charges=(ChargeSpec("runs", "overage", pricing=tiers),),
    )
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "agents")
    coupon = coupon_create(
        code="TENOFF", name="10% off", percent_off=D(10), duration=CouponDuration.FOREVER
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_1)
    api = api_client("events:write")
    sent = 0
    for hour, count in ((10, 100), (11, 100), (12, 30)):
        at = datetime(2026, 11, 10, hour, 30, tzinfo=UTC)
        events = [
            {
                "id": f"run-{sent + i}",
                "customer": "acme",
                "event_name": "agent.run",
                "timestamp": at.isoformat(),
            }
            for i in range(count)
        ]
        sent += count
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 202
    assert Invoice.objects.filter(reason=Invoice.THRESHOLD).count() == 2
    periods_close(as_of=DEC_1)

    period = Invoice.objects.get(reason=Invoice.PERIOD)
    kinds = [(line.kind, line.amount) for line in period.lines.all()]
    assert kinds == [
        ("overage", D("10.00")),  # the first 100 runs
        ("overage", D("6.50")),  # 130 beyond
        ("usage_invoiced", D("-10.00")),
        ("usage_invoiced", D("-5.00")),
        ("discount", D("-1.65")),  # 10 % of the period's 16.50
    ]
    # 16.50 of usage less the 1.65 off; 230 runs cost 0.01 each.
    post_runs_cost = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "runs",
            "unit_cost": "0.01",
            "currency": "USD",
            "effective_from": "2026-11-01T00:00:00Z",
        },
        format="json",
    )
    assert post_runs_cost.status_code == 201
    assert margins("group_by=customer") == [
        ({"customer": "acme"}, "14.85", "2.30", "12.55", "84.51")
    ]
    # The month's total (the chart's) counts them once too.
    total = report.window_total(start=NOV_1, end=DEC_1, currency="USD", key={})
    assert (total.revenue, total.cost) == (D("14.85"), D("2.30"))


def test_a_report_of_some_customers_has_their_rows_of_the_whole_report(month):
    from billing.margins.report import margins as report

    acme, globex = month

    def rows(**only) -> list[tuple]:
        return [
            (m.key, m.revenue, m.cost, m.margin, m.margin_percent)
            for m in report(start=NOV_1, end=DEC_1, group_by="customer", currency="USD", **only)
        ]

    whole = rows()
    assert whole == [
        ({"customer": "acme"}, D("34.05"), D("2.25"), D("31.80"), D("93.39")),
        ({"customer": "globex"}, D("30.00"), D("3.00"), D("27.00"), D("90.00")),
    ]
    assert rows(customers=[acme.pk]) == whole[:1]
    assert rows(customers=[globex.pk]) == whole[1:]
    assert rows(customers=[]) == []


def test_a_credit_note_on_a_usage_line_takes_its_amount_off_at_its_own_date(month):
    acme, _ = month
    period = Invoice.objects.get(customer=acme, reason="period")
    (input_line,) = period.lines.filter(meter="llm_tokens", group__token_type="input")
    # The input line's 2.50 less its share of the discount: 2.25 may be credited.
    # when: 1.00 of it is credited in December (on the 3rd: the clock moved
    # there, a document is dated when issued), after the month closed
    december_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)
    with time_machine.travel(december_3, tick=False):
        credit_note_issue(
            invoice=period,
            lines=[CreditLineInput(invoice_line=input_line.pk, amount=D("1.00"))],
            reason=CreditNote.PRODUCT_UNSATISFACTORY,
            now=december_3,
        )
    # then: November is untouched (what it earned stays earned), as before the note
    assert margins("group_by=customer") == [
        ({"customer": "acme"}, "34.05", "2.25", "31.80", "93.39"),
        ({"customer": "globex"}, "30.00", "3.00", "27.00", "90.00"),
    ]
    assert margins("group_by=token_type") == [
        ({"token_type": None}, "60.00", "3.00", "57.00", "95.00"),
        ({"token_type": "input"}, "2.25", "1.25", "1.00", "44.44"),
        ({"token_type": "output"}, "1.80", "1.00", "0.80", "44.44"),
    ]

    # and December, when the note was issued, earns 1.00 less where the line was
    # (its customer, plan, meter, row): its base fee billed ahead, 30.00 less
    # 10 % = 27.00, less 1.00 = 26.00.
    def december(view: str) -> list[tuple]:
        response = api_client("finance:read").get(
            "/api/v1/margins?period_start=2026-12-01&period_end=2027-01-01&currency=USD"
            f"&group_by={view}"
        )
        return [(r["key"], r["revenue"]) for r in response.json()["results"]]

    assert december("customer") == [({"customer": "acme"}, "26.00")]
    assert december("plan") == [({"plan": "pro"}, "26.00")]
    assert december("meter") == [({"meter": None}, "27.00"), ({"meter": "llm_tokens"}, "-1.00")]
    assert december("token_type") == [
        ({"token_type": None}, "27.00"),
        ({"token_type": "input"}, "-1.00"),
    ]
