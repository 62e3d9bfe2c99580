"""A subscription's discount in the admin: the running one in words, and the
fields finance redeems a coupon or ends the discount with (through
billing.subscriptions.discounts, as the API does)."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.coupon_rule import running_discount
from billing.models import Subscription
from billing.subscriptions import discounts
from plans.admin.coupons import coupon_off
from plans.models import Coupon


def discount_summary(subscription: Subscription) -> str:
    """'Launch 20% (LAUNCH20): 20 % off, 2 period invoices left', or 'none'."""
    discount = running_discount(subscription) if subscription.pk else None
    if discount is None:
        return gettext("none")
    coupon = discount.coupon
    periods = discount.periods_left
    if periods is None:
        left = gettext("every period invoice")
    else:
        left = ngettext(
            "{count} period invoice left", "{count} period invoices left", periods
        ).format(count=periods)
    return gettext("{coupon} ({code}): {off} off, {left}").format(
        coupon=coupon.name, code=coupon.code, off=coupon_off(coupon), left=left
    )


class DiscountFields(forms.Form):
    """End the running discount, redeem a coupon, or both (the end first)."""

    end_discount = forms.BooleanField(
        required=False,
        label=_("End the running discount now"),
        help_text=_("Period invoices written from now on are not discounted."),
    )
    coupon = forms.ModelChoiceField(
        queryset=Coupon.objects.filter(active=True).order_by("code"),
        to_field_name="code",
        required=False,
        label=_("Redeem a coupon"),
        help_text=_("A discount on the next period invoices the close writes, before tax."),
    )

    FIELDS = ["end_discount", "coupon"]

    def discount_check(self, subscription: Subscription, cleaned: dict) -> None:
        """What discount_apply would refuse (BillingError), found without writing."""
        if cleaned.get("end_discount") and running_discount(subscription) is None:
            self.add_error("end_discount", gettext("The subscription has no discount running."))
            return
        if cleaned.get("coupon"):
            discounts.redeem_check(
                subscription=subscription,
                coupon=cleaned["coupon"],
                now=timezone.now(),
                replacing=bool(cleaned.get("end_discount")),
            )

    def discount_apply(self, subscription: Subscription, cleaned: dict) -> None:
        """End, then redeem (the admin's save is one transaction: both or neither)."""
        now = timezone.now()
        if cleaned.get("end_discount"):
            discounts.discount_end(subscription=subscription, at=now)
        if cleaned.get("coupon"):
            discounts.discount_redeem(subscription=subscription, coupon=cleaned["coupon"], now=now)
