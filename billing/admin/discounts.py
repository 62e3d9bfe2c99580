"""A subscription's running discount, in words, for its admin page (redeemed
through the API, billing.subscriptions.discounts, and used by the close)."""

from billing.invoicing.discounts import running_discount
from billing.models import Subscription
from plans.coupons_admin import coupon_off


def discount_summary(subscription: Subscription) -> str:
    """'Launch 20% (LAUNCH20): 20 % off, 2 period invoices left', or 'none'."""
    discount = running_discount(subscription) if subscription.pk else None
    if discount is None:
        return "none"
    coupon = discount.coupon
    periods = discount.periods_left
    if periods is None:
        left = "every period invoice"
    else:
        left = f"{periods} period invoice{'' if periods == 1 else 's'} left"
    return f"{coupon.name} ({coupon.code}): {coupon_off(coupon)} off, {left}"
