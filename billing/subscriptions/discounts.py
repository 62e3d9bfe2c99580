"""Coupons redeemed on subscriptions: a discount on the period invoices the
close writes (billing.invoicing.discounts applies it).

Locks: the subscription's row, then the coupon's (plans.locks), so that two
redemptions of one coupon count `times_redeemed` one after the other and its
`max_redemptions` holds, and a subscription gets one running discount."""

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from billing.coupon_rule import running_discount
from billing.locks import subscription_lock
from billing.models import Discount, Subscription
from common.customer_text import day
from common.errors import Conflict, InvalidRequest
from common.vocabulary import CouponDuration
from plans.locks import coupon_lock
from plans.models import Coupon


def coupon_or_400(code: object) -> Coupon:
    coupon = Coupon.objects.filter(code=code).first() if isinstance(code, str) else None
    if coupon is None:
        raise InvalidRequest(f"unknown coupon {code!r}", fields={"coupon": ["unknown coupon"]})
    return coupon


def _periods(coupon: Coupon) -> int | None:
    """The period invoices a new discount of the coupon covers; None: all of them."""
    if coupon.duration == CouponDuration.ONCE:
        return 1
    if coupon.duration == CouponDuration.REPEATING:
        return coupon.duration_periods
    return None


def _currencies(subscription: Subscription) -> set[str]:
    """The one currency the subscription bills in (its version's, its customer's);
    empty when they differ, which no amount off fits."""
    return {subscription.customer.currency} & {subscription.version.currency}


def redeem_check(
    *, subscription: Subscription, coupon: Coupon, now: datetime, replacing: bool = False
) -> None:
    """Raise the Conflict (409) redeeming the coupon on the subscription meets now.
    Reads only; discount_redeem calls it with both rows locked. `replacing`: the
    running discount is ended first (the admin's end-and-redeem)."""
    if subscription.status not in Subscription.LIVE:
        raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
    if not replacing and running_discount(subscription) is not None:
        raise Conflict(
            f"subscription {subscription.pk} already has a discount running; "
            "one discount at a time",
            fields={"coupon": ["the subscription already has a discount"]},
        )
    refusal = words = None
    name = coupon.name or coupon.code
    if not coupon.active:
        refusal = f"coupon {coupon.code} is archived"
        words = _("{coupon} is archived: choose an active coupon").format(coupon=name)
    elif coupon.redeem_by is not None and now > coupon.redeem_by:
        refusal = f"coupon {coupon.code} could be redeemed until {coupon.redeem_by.isoformat()}"
        words = _("{coupon} could be redeemed until {day}: choose another coupon").format(
            coupon=name, day=day(coupon.redeem_by)
        )
    elif coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        refusal = f"coupon {coupon.code} was redeemed {coupon.max_redemptions} time(s), its limit"
        words = _("{coupon} was redeemed {times} time(s), its limit: choose another coupon").format(
            coupon=name, times=coupon.max_redemptions
        )
    elif not coupon.is_percent and coupon.currency not in _currencies(subscription):
        refusal = (
            f"coupon {coupon.code} takes {coupon.currency} off; the subscription bills in "
            f"{subscription.customer.currency}"
        )
        words = _(
            "{coupon} takes {currency} off and the subscription bills in {billed_in}: "
            "choose a coupon in {billed_in} or a percentage"
        ).format(coupon=name, currency=coupon.currency, billed_in=subscription.customer.currency)
    if refusal:
        raise Conflict(refusal, fields={"coupon": [refusal]}, words=words)


def discount_redeem(*, subscription: Subscription, coupon: Coupon, now: datetime) -> Discount:
    """Redeem the coupon on the subscription: a running discount from its next
    period invoice, and one more `times_redeemed`. Under the subscription's and
    the coupon's row locks; 409 when the coupon is archived, past its redeem_by,
    at its redemption limit or off in another currency, or when the subscription
    is not live or has a discount running. Nothing changes when it is refused."""
    with transaction.atomic():
        subscription = subscription_lock(subscription.pk)
        coupon = coupon_lock(coupon.pk)
        redeem_check(subscription=subscription, coupon=coupon, now=now)
        coupon.times_redeemed += 1
        coupon.save(update_fields=["times_redeemed"])
        return Discount.objects.create(
            subscription=subscription, coupon=coupon, periods_left=_periods(coupon), created_at=now
        )


def discount_end(*, subscription: Subscription, at: datetime) -> Discount:
    """End the subscription's running discount at `at`: the period invoices the
    close writes from then on are not discounted (one written already keeps its
    discount). Under the subscription's row lock; 409 without a running one."""
    with transaction.atomic():
        subscription = subscription_lock(subscription.pk)
        discount = running_discount(subscription)
        if discount is None:
            raise Conflict(f"subscription {subscription.pk} has no discount running")
        discount.ended_at = at
        discount.save(update_fields=["ended_at"])
        return discount
