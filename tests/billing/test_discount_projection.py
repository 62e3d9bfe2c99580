"""A running discount in the mid-period figures (issue 17): /usage states what the
close will take off the invoice closing the period, and the discount the close
then writes is the one projected; the portal's figure after the discount and the
dashboard's projected revenue are the period's own lines net of their share of
it (issue 93: the share of the next period's fees in advance is the next
period's); ending a discount early (DELETE /subscriptions/{id}/discounts) stops
both."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing import dashboard
from billing.invoicing.close import periods_close
from billing.models import Discount
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_cancel, subscription_change_plan
from billing.usage.ingestion import events_ingest
from common.vocabulary import CouponDuration
from customers.portal import portal_session_create
from invoices.models import Invoice
from plans.coupons import coupon_create
from plans.models import Coupon, Meter, PlanVersion
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    api_client,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


@pytest.fixture
def acme(db):
    """A 50.00 plan with prompts at 0.10 beyond 100 included; acme on it from
    November 1st, 400 prompts in the first half of the month (30 days)."""
    MeterFactory(code="prompts", aggregation=Meter.SUM, value_property="n")
    published_version(
        "pro",
        base_fee=D("50.00"),
        charges=(overage("prompts", 100, "0.10"),),
    )
    subscription = subscribe(CustomerFactory(external_id="acme"), "pro")
    result = events_ingest(
        events=[
            {
                "id": "e1",
                "customer": "acme",
                "event_name": "prompts",
                "timestamp": "2026-11-10T00:00:00Z",
                "properties": {"n": 400},
            }
        ],
        now=NOV_15,
    )
    assert not result.rejected
    return subscription


def coupon(code: str, **terms):
    defaults = {"name": code, "duration": CouponDuration.FOREVER}
    return coupon_create(code=code, **{**defaults, **terms})


def figures_on(api, client, customer, at: datetime) -> tuple[str, str, str | None, D]:
    """(projected_total, projected_discount) from /usage, the portal's figure
    after the discount (/usage's too), and the dashboard's projected USD revenue."""
    with time_machine.travel(at, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
        token = portal_session_create(customer=customer, now=at).token
        page = client.get(f"/portal/{token}/")
    projected, _ = dashboard.projected_revenue(now=at)
    (usd,) = projected
    assert page.context["projected_after_discount"] in (None, usage["projected_after_discount"])
    return (
        usage["projected_total"],
        usage["projected_discount"],
        page.context["projected_after_discount"],
        usd.total,
    )


def test_a_percent_discount_is_projected_as_the_close_then_writes_it(api, client, acme):
    """By 16 Nov, 400 prompts in 15 of 30 days project to 800: 700 beyond at 0.10
    = 70.00, with the 50.00 fee 120.00. The invoice closing November will carry
    that usage and December's 50.00 fee: 20% of 120.00 is 24.00 off, 96.00 after
    it, of which 14.00 is November's usage's share and 10.00 December's fee's:
    November bills 50.00 + 70.00 - 14.00 = 106.00 after it. The close then bills
    November's actual usage (300 beyond: 30.00) and December's fee: 80.00, of
    which 20% is 16.00 off: the projection's rule, on the amounts the close
    knows."""
    # given
    coupon("LAUNCH20", percent_off=D("20"))
    with time_machine.travel(NOV_15, tick=False):
        assert (
            api.post(
                f"/api/v1/subscriptions/{acme.pk}/discounts", {"coupon": "LAUNCH20"}, format="json"
            ).status_code
            == 201
        )

    # when
    seen = figures_on(api, client, acme.customer, NOV_16)

    # then
    assert seen == ("120.00", "24.00", "106.00", D("106.00"))
    (usd,) = dashboard.projected_revenue(now=NOV_16)[0]
    assert usd.discounts == D("14.00")

    # when: the close
    periods_close(as_of=DEC_1)

    # then
    invoice = Invoice.objects.get(subscription=acme, reason="period", period_start=NOV_1)
    assert (invoice.subtotal, invoice.discount, invoice.total) == (
        D("80.00"),
        D("16.00"),
        D("64.00"),
    )


def test_an_amount_off_larger_than_the_closing_invoice_takes_all_of_it(api, client, acme):
    # given
    coupon("BIG", amount_off=D("500.00"), currency="USD")
    with time_machine.travel(NOV_15, tick=False):
        api.post(f"/api/v1/subscriptions/{acme.pk}/discounts", {"coupon": "BIG"}, format="json")

    # when / then: never below zero: the closing invoice's 70.00 of usage and
    # December's 50.00 all taken off; November's fee, on its start invoice, stands
    assert figures_on(api, client, acme.customer, NOV_16) == (
        "120.00",
        "120.00",
        "50.00",
        D("50.00"),
    )


def test_without_a_discount_nothing_is_projected_off(api, client, acme):
    assert figures_on(api, client, acme.customer, NOV_16) == ("120.00", "0.00", None, D("120.00"))


def test_ending_a_discount_early_stops_it_from_now(api, client, acme):
    # given
    coupon("LAUNCH20", percent_off=D("20"))
    with time_machine.travel(NOV_15, tick=False):
        api.post(
            f"/api/v1/subscriptions/{acme.pk}/discounts", {"coupon": "LAUNCH20"}, format="json"
        )

    # when
    with time_machine.travel(NOV_16, tick=False):
        ended = api.delete(f"/api/v1/subscriptions/{acme.pk}/discounts")
        again = api.delete(f"/api/v1/subscriptions/{acme.pk}/discounts")
        shown = api.get(f"/api/v1/subscriptions/{acme.pk}").json()["discount"]

    # then: ended now, the figures without it, a second end refused
    assert ended.status_code == 200, ended.content
    assert (ended.json()["coupon"], ended.json()["ended_at"]) == (
        "LAUNCH20",
        "2026-11-16T00:00:00Z",
    )
    assert again.status_code == 409
    assert "no discount running" in again.json()["error"]["message"]
    assert shown is None
    assert figures_on(api, client, acme.customer, NOV_16) == ("120.00", "0.00", None, D("120.00"))
    # the coupon counts its redemption still; the close takes nothing off
    assert Coupon.objects.get(code="LAUNCH20").times_redeemed == 1
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=acme, reason="period", period_start=NOV_1)
    assert (invoice.subtotal, invoice.discount) == (D("80.00"), D("0.00"))
    assert Discount.objects.get(subscription=acme).periods_applied == 0


def test_ending_a_discount_of_an_unknown_subscription_is_404(api, db):
    assert api.delete("/api/v1/subscriptions/999999/discounts").status_code == 404


def close_discount(subscription) -> D:
    periods_close(as_of=DEC_1)
    return Invoice.objects.get(
        subscription=subscription, reason="period", period_start=NOV_1
    ).discount


@pytest.fixture
def flat(db):
    """A 50.00 plan without usage, a 100.00 one, and 20% off forever."""
    published_version("flat", base_fee=D("50.00"))
    published_version("big", base_fee=D("100.00"))
    published_version("trial", base_fee=D("50.00"), trial_days=30)
    coupon("LAUNCH20", percent_off=D("20"))


def redeem(subscription) -> None:
    discount_redeem(
        subscription=subscription, coupon=Coupon.objects.get(code="LAUNCH20"), now=NOV_15
    )


def projected(api) -> str:
    with time_machine.travel(NOV_16, tick=False):
        return api.get("/api/v1/customers/acme/usage").json()["projected_discount"]


def test_a_subscription_ending_with_its_period_projects_no_fees_to_discount(api, flat):
    subscription = subscribe(CustomerFactory(external_id="acme"), "flat")
    redeem(subscription)
    subscription_cancel(subscription=subscription, effective="period_end", at=NOV_15)

    assert projected(api) == "0.00"
    assert close_discount(subscription) == D("0.00")


def test_a_trial_projects_the_discount_of_the_next_periods_fees(api, flat):
    subscription = subscribe(CustomerFactory(external_id="acme"), "trial")
    redeem(subscription)

    assert projected(api) == "10.00"
    assert close_discount(subscription) == D("10.00")


def test_a_change_at_period_end_projects_the_new_versions_fees(api, flat):
    subscription = subscribe(CustomerFactory(external_id="acme"), "flat")
    redeem(subscription)
    subscription_change_plan(
        subscription=subscription,
        version=PlanVersion.objects.get(plan__code="big"),
        effective="period_end",
        at=NOV_15,
    )

    assert projected(api) == "20.00"
    assert close_discount(subscription) == D("20.00")


def test_after_an_immediate_change_the_projection_is_on_the_new_fees(api, flat):
    subscription = subscribe(CustomerFactory(external_id="acme"), "flat")
    redeem(subscription)
    subscription_change_plan(
        subscription=subscription,
        version=PlanVersion.objects.get(plan__code="big"),
        effective="immediate",
        at=NOV_15,
    )

    assert projected(api) == "20.00"
    assert close_discount(subscription) == D("20.00")
