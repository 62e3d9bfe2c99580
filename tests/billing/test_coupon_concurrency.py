"""A coupon's redemption limit under concurrency, for real, on PostgreSQL: four
subscriptions redeem a coupon of two redemptions at the same moment, each thread
on its own connection; the coupon's row lock lets exactly two through."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import Discount
from billing.subscriptions.discounts import discount_redeem
from common.errors import Conflict
from plans.coupons import coupon_create
from plans.models import Coupon
from tests.factories import CustomerFactory, published_version, subscribe
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)


def test_four_concurrent_redemptions_of_a_coupon_of_two_give_exactly_two_discounts(
    transactional_db,
):
    # given: four subscriptions and a coupon of at most two redemptions
    published_version("pro", base_fee=D("50.00"))
    subscriptions = [
        subscribe(CustomerFactory(external_id=f"customer_{n}"), "pro") for n in range(4)
    ]
    coupon = coupon_create(
        code="FIRST2", name="First two", percent_off=D("20"), duration="once", max_redemptions=2
    )

    def work(index: int) -> str:
        try:
            discount_redeem(subscription=subscriptions[index], coupon=coupon, now=NOV_15)
        except Conflict:
            return "refused"
        return "redeemed"

    # when
    outcomes = run_at_once(work)

    # then
    assert sorted(outcomes) == ["redeemed", "redeemed", "refused", "refused"]
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 2
    assert Discount.objects.filter(coupon=coupon).count() == 2
