"""Deals (SCENARIOS.md S21, the override half): a subscription's overrides of
its version's terms, from the API to the invoice, /usage, the check, a
simulation of a draft and a plan change. Exact amounts."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import Subscription
from billing.simulation.engine import simulation_rate_customer
from billing.usage.ingestion import events_ingest
from invoices.models import Invoice
from plans.models import PlanVersion
from tests.billing.test_admin import history_inline
from tests.factories import (
    MeterFactory,
    PlanVersionFactory,
    check_v1,
    credits,
    hard_cap,
    overage,
    overrides_plan,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
ENTERPRISE = {
    "base_fee": "99.00",
    "charges": [
        {
            "meter": "prompts",
            "included_units": "1000",
            "pricing": {"scheme": "per_unit", "unit_price": "0.02"},
        }
    ],
}


@pytest.fixture
def plan(db):
    """S21's plan: 19.99, 200 prompts included, 0.05 beyond."""
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    return overrides_plan(credits("agent_runs", 1))


def subscribe(api, **body) -> dict:
    response = api.post(
        "/api/v1/subscriptions",
        {"customer": "acme", "plan": "assistant", "start": NOV_1.isoformat(), **body},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def prompts(count: int, at: datetime = NOV_20, *, arrived: datetime | None = None) -> None:
    """`count` prompts stamped `at`, arriving then (or `arrived`: late)."""
    events = [
        {
            "id": f"p{at:%d}-{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": at.isoformat(),
        }
        for i in range(count)
    ]
    for first in range(0, count, 1000):
        batch = events[first : first + 1000]
        assert events_ingest(events=batch, now=arrived or at).rejected == []


def lines(invoice: Invoice) -> list[tuple]:
    return [
        (x.kind, x.description, x.quantity, x.unit_price, x.amount) for x in invoice.lines.all()
    ]


def test_s21_an_enterprise_override_is_billed_for_a_month(api, acme, plan):
    # given: base 99.00, 1,000 prompts included, 0.02 beyond, from the start
    body = subscribe(api, overrides=ENTERPRISE)
    assert body["overrides"] == ENTERPRISE | {
        "charges": [
            {
                "meter": "prompts",
                "included_units": "1000",
                "pricing": {
                    "scheme": "per_unit",
                    "unit_price": "0.02",
                    "per": "1",
                    "package_size": None,
                    "package_price": None,
                    "tiers": [],
                },
            }
        ]
    }

    # when: 1,500 prompts in November
    prompts(1500)

    # then: /usage and the check read the deal
    with time_machine.travel(NOV_20, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
        check = check_v1(
            api.post(
                "/api/v1/customers/acme/check", {"meter": "prompts", "quantity": 1}, format="json"
            ).json()
        )
    (line, _runs) = usage["lines"]
    assert (line["included"], line["billable"], line["amount"]) == ("1000", "500", "10.00")
    assert (usage["base_fee"], usage["subtotal"]) == ("99.00", "109.00")
    assert (check["included"], check["remaining"]) == ("1000", "0")

    # and the month costs 99.00 in advance and 500 x 0.02 = 10.00 at the close
    periods_close(as_of=DEC_1)
    start = Invoice.objects.get(reason=Invoice.START)
    assert lines(start) == [("base_fee", "Assistant (Nov 2026)", D(1), D("99.00"), D("99.00"))]
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert lines(closing)[0] == (
        "overage",
        "Prompts over 1,000 included",
        D(500),
        D("0.02"),
        D("10.00"),
    )
    assert start.subtotal + lines(closing)[0][4] == D("109.00")


def test_a_deal_may_price_per_a_thousand_units(api, acme, plan):
    # given: 1,000 prompts included, then 25.00 per 1,000
    per_thousand = {"scheme": "per_unit", "unit_price": "25.00", "per": "1000"}
    deal = {"charges": [{"meter": "prompts", "included_units": "1000", "pricing": per_thousand}]}
    body = subscribe(api, overrides=deal)
    assert body["overrides"]["charges"][0]["pricing"]["per"] == "1000"

    # when: 1,500 prompts in November
    prompts(1500)
    periods_close(as_of=DEC_1)

    # then: 500 x 25.00 / 1,000 = 12.50
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert lines(closing)[0] == (
        "overage",
        "Prompts over 1,000 included",
        D(500),
        D("25.00"),
        D("12.50"),
    )


def test_a_change_of_the_deal_applies_from_the_next_period(api, acme, plan):
    body = subscribe(api)
    with time_machine.travel(NOV_20, tick=False):
        response = api.patch(
            f"/api/v1/subscriptions/{body['id']}",
            {"overrides": {"base_fee": "79.00"}},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert (response.json()["overrides"], response.json()["overrides_next_period"]) == (
        {},
        {"base_fee": "79.00"},
    )

    periods_close(as_of=DEC_1)

    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert [(x.kind, x.amount) for x in closing.lines.all()] == [("base_fee", D("79.00"))]
    subscription = Subscription.objects.get()
    assert (subscription.overrides, subscription.next_overrides) == ({"base_fee": "79.00"}, None)
    # The history records the change.
    assert [h.next_overrides for h in subscription.history.order_by("history_id")][-2:] == [
        {"base_fee": "79.00"},
        None,
    ]


def test_a_plan_change_drops_the_deal_unless_it_repeats_it(api, acme, plan):
    body = subscribe(api, overrides=ENTERPRISE)
    PlanVersionFactory(
        plan=plan.plan, base_fee=D("29.99"), charges=(overage("prompts", 300, "0.04"),)
    )
    url = f"/api/v1/subscriptions/{body['id']}/change-plan"
    with time_machine.travel(NOV_20, tick=False):
        dropped = api.post(url, {"plan": "assistant", "effective": "period_end"}, format="json")
    assert dropped.json()["overrides_next_period"] == {}

    with time_machine.travel(NOV_20, tick=False):
        repeated = api.post(
            url,
            {
                "plan": "assistant",
                "effective": "period_end",
                "overrides": {"base_fee": "89.00"},
            },
            format="json",
        )
    assert repeated.json()["overrides_next_period"] == {"base_fee": "89.00"}
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    assert [(x.kind, x.amount) for x in closing.lines.all()][-1] == ("base_fee", D("89.00"))


def test_late_usage_is_re_rated_at_the_deal_it_was_billed_under(api, acme, plan):
    """Rule: late usage of a period is re-rated at that period's deal, not at the
    subscription's deal when it arrives. November's deal: 1,000 prompts included,
    0.02 beyond; December's: 0.03 beyond. 100 prompts of November arriving in
    December are billed 100 x 0.02 = 2.00 (December's deal would bill 600 x 0.03
    - 10.00 = 8.00)."""
    # given: November on the enterprise deal, 1,500 prompts, closed at 500 x 0.02
    body = subscribe(api, overrides=ENTERPRISE)
    prompts(1500)
    dearer = {
        "charges": [
            {
                "meter": "prompts",
                "included_units": "1000",
                "pricing": {"scheme": "per_unit", "unit_price": "0.03"},
            }
        ]
    }
    with time_machine.travel(NOV_20, tick=False):
        response = api.patch(
            f"/api/v1/subscriptions/{body['id']}", {"overrides": dearer}, format="json"
        )
    assert response.status_code == 200, response.content
    periods_close(as_of=DEC_1)
    november = Invoice.objects.get(reason=Invoice.PERIOD, period_start=NOV_1)
    assert lines(november)[0][2:] == (D(500), D("0.02"), D("10.00"))
    # December's deal is the subscription's now
    (charge,) = Subscription.objects.get().overrides["charges"]
    assert charge["pricing"]["unit_price"] == "0.03"

    # when: 100 prompts stamped Nov 28 arrive on Dec 3, and December closes
    prompts(100, datetime(2026, 11, 28, tzinfo=UTC), arrived=DEC_3)
    periods_close(as_of=JAN_1)

    # then: the late line is priced at November's deal
    december = Invoice.objects.get(reason=Invoice.PERIOD, period_start=DEC_1)
    assert [line for line in lines(december) if line[0] == "late_usage"] == [
        ("late_usage", "Late usage for Nov 2026: Prompts", D(100), D("0.02"), D("2.00"))
    ]


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        (
            {"charges": [{"meter": "sms", "included_units": "5"}]},
            "overrides.charges.0.meter",
            "the version has no charge for meter 'sms'",
        ),
        (
            {"charges": [{"meter": "agent_runs", "included_units": "5"}]},
            "overrides.charges.0.included_units",
            "credits charges have no included units to override",
        ),
        ({"base_fee": "-1"}, "overrides.base_fee", "Cannot be negative"),
        ({"base_fee": "1.001"}, "overrides.base_fee", None),
        (
            {"charges": [{"meter": "prompts", "pricing": {"scheme": "per_unit"}}]},
            "overrides.charges.0.pricing.unit_price",
            "A per unit price needs its unit price",
        ),
        ({"base_fee": "NaN"}, "overrides.base_fee", None),
        ({"charges": "prompts"}, "overrides.charges", None),
        ({"base_fees": "9.00"}, "overrides.base_fees", "unknown field"),
        (
            {
                "charges": [
                    {
                        "meter": "prompts",
                        "pricing": {
                            "scheme": "graduated",
                            "tiers": [
                                {"up_to": "1000", "unit_price": "0", "flat_fees": "500"},
                                {"up_to": None, "unit_price": "0.02"},
                            ],
                        },
                    }
                ]
            },
            "overrides.charges.0.pricing.tiers.0.flat_fees",
            "unknown field",
        ),
        (
            {
                "charges": [
                    {
                        "meter": "prompts",
                        "pricing": {"scheme": "per_unit", "unit_price": "1", "unit_prices": "2"},
                    }
                ]
            },
            "overrides.charges.0.pricing.unit_prices",
            "unknown field",
        ),
        (
            {"charges": [{"meter": "prompts", "included": "5"}]},
            "overrides.charges.0.included",
            "unknown field",
        ),
    ],
)
def test_bad_overrides_are_refused_and_change_nothing(api, acme, plan, overrides, path, message):
    response = api.post(
        "/api/v1/subscriptions",
        {
            "customer": "acme",
            "plan": "assistant",
            "start": NOV_1.isoformat(),
            "overrides": overrides,
        },
        format="json",
    )

    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert path in fields, fields
    if message is not None:
        assert fields[path] == [message]
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_a_draft_simulated_for_a_customer_with_a_deal_keeps_the_deal(api, acme, plan):
    # given: the enterprise deal and 1,500 prompts in November
    subscribe(api, overrides=ENTERPRISE)
    prompts(1500)
    draft = PlanVersionFactory(
        plan=plan.plan,
        status=PlanVersion.DRAFT,
        base_fee=D("24.99"),
        charges=(overage("prompts", 100, "0.04"),),
    )

    # when: the draft is simulated on November
    rated = simulation_rate_customer(
        customer=acme, version=draft, period_start=NOV_1, period_end=DEC_1
    )

    # then: the deal holds on both (base 99.00, 1,000 included at 0.02)
    assert (rated.current_total, rated.simulated_total) == (D("109.00"), D("109.00"))
    assert rated.current_version_label.endswith("with a deal")


def test_a_bulk_migration_preview_bills_the_deal_so_far_and_says_it_is_dropped(api, acme, plan):
    # given: the enterprise deal and 1,500 prompts by 20 Nov; v2 at 29.99, 300 included
    body = subscribe(api, overrides=ENTERPRISE)
    prompts(1500)
    PlanVersionFactory(
        plan=plan.plan, base_fee=D("29.99"), charges=(overage("prompts", 300, "0.04"),)
    )

    # when: a move to v2 on 21 Nov 00:00 is previewed (10 of 30 days left)
    with time_machine.travel(NOV_20, tick=False):
        response = api.post(
            "/api/v1/plan-migrations/preview",
            {
                "subscriptions": [body["id"]],
                "plan": "assistant",
                "version": 2,
                "effective": "immediate",
                "at": "2026-11-21T00:00:00Z",
            },
            format="json",
        )

    # then: the usage so far at the deal's prices (500 x 0.02), the deal's base fee
    # credited (99.00 x 10/30) and v2's charged without it (29.99 x 10/30)
    assert response.status_code == 200, response.content
    (row,) = response.json()["rows"]
    assert (row["drops_deal"], row["usage"], row["credit"], row["charge"]) == (
        True,
        "10.00",
        "-33.00",
        "10.00",
    )


def test_a_simulation_rates_a_past_period_on_its_deal_and_says_what_the_draft_drops(
    api, acme, plan
):
    # given: the enterprise deal in November, a cheaper deal from December
    body = subscribe(api, overrides=ENTERPRISE)
    prompts(1500)
    with time_machine.travel(NOV_20, tick=False):
        api.patch(
            f"/api/v1/subscriptions/{body['id']}",
            {"overrides": {"base_fee": "10.00"}},
            format="json",
        )
    periods_close(as_of=DEC_1)
    # and a draft that caps prompts (another model: the deal's prompts part cannot hold)
    draft = PlanVersionFactory(
        plan=plan.plan,
        status=PlanVersion.DRAFT,
        base_fee=D("24.99"),
        charges=(hard_cap("prompts", 1000),),
    )

    # when: November is simulated
    rated = simulation_rate_customer(
        customer=acme, version=draft, period_start=NOV_1, period_end=DEC_1
    )

    # then: November at its own deal (99.00 + 10.00), the draft with the deal's base fee
    assert (rated.current_total, rated.simulated_total) == (D("109.00"), D("99.00"))
    assert rated.current_version_label == "Assistant v1 with a deal (not on prompts)"


def test_an_immediate_cancel_ends_a_running_discount(api, acme, plan):
    body = subscribe(api)
    api.post(
        "/api/v1/coupons",
        {"code": "LAUNCH20", "name": "Launch 20%", "percent_off": "20", "duration": "forever"},
        format="json",
    )
    with time_machine.travel(NOV_20, tick=False):
        redeemed = api.post(
            f"/api/v1/subscriptions/{body['id']}/discounts", {"coupon": "LAUNCH20"}, format="json"
        )
        assert redeemed.status_code == 201, redeemed.content
        canceled = api.post(
            f"/api/v1/subscriptions/{body['id']}/cancel", {"effective": "immediate"}, format="json"
        )

    assert canceled.status_code == 200, canceled.content
    assert canceled.json()["discount"] is None


def test_the_admin_changes_one_field_of_a_deal_and_keeps_the_rest(admin_client, api, acme, plan):
    # given: a deal set through the API with a graduated price (the form shows per-unit only)
    graduated = {
        "scheme": "graduated",
        "tiers": [{"up_to": "5000", "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01"}],
    }
    deal = {
        "base_fee": "99.00",
        "charges": [{"meter": "prompts", "included_units": "1000", "pricing": graduated}],
    }
    body = subscribe(api, overrides=deal)
    url = f"/admin/billing/subscription/{body['id']}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data |= history_inline(Subscription.objects.get())

    # when: finance changes the base fee only
    data |= {"deal_base_fee": "89.00", "effective": "period_end"}
    response = admin_client.post(url, data)

    # then: the next period's deal has the new base fee and the same charge
    assert response.status_code == 302, response.context["errors"]
    subscription = Subscription.objects.get()
    assert subscription.next_overrides["base_fee"] == "89.00"
    assert subscription.next_overrides["charges"] == subscription.overrides["charges"]


def test_a_line_of_a_discounted_invoice_is_credited_at_most_its_share_after_the_discount(
    api, acme, plan
):
    # given: a period invoice of 19.99 + 15.00 of prompts with 50% off, once
    body = subscribe(api)
    api.post(
        "/api/v1/coupons",
        {"code": "HALF", "name": "Half", "percent_off": "50", "duration": "once"},
        format="json",
    )
    with time_machine.travel(NOV_20, tick=False):
        api.post(f"/api/v1/subscriptions/{body['id']}/discounts", {"coupon": "HALF"}, format="json")
    prompts(500)
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(reason=Invoice.PERIOD)
    usage = invoice.lines.get(kind="overage")
    assert (usage.amount, invoice.subtotal, invoice.discount, invoice.total) == (
        D("15.00"),
        D("34.99"),
        D("17.50"),
        D("17.49"),
    )

    def credit(amount: str):
        return api.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"reason": "other", "lines": [{"invoice_line": usage.pk, "amount": amount}]},
            format="json",
        )

    # then: the prompts' 15.00 were charged 7.50 after the discount: no more is credited
    refused = credit("15.00")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"]["lines.0.amount"] == [
        "at most 7.50 is left to credit on this line"
    ]
    assert credit("7.50").status_code == 201
