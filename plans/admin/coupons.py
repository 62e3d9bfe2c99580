"""Coupons in the admin. A coupon's terms never change once created (a customer
redeemed it on them): on its page only its name and `active` (archive) change,
and one that was redeemed is never deleted."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from common.admin_deletion import RefusedDeletionMixin
from common.admin_forms import EXACT_DECIMALS, ServiceValidatedForm, adopt, money_text
from common.admin_history import AuditHistoryAdmin
from common.money import format_decimal
from common.vocabulary import CouponDuration
from plans import coupons
from plans.coupon_validation import validate_coupon
from plans.models import Coupon

TERMS = [
    "code",
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "duration_periods",
    "max_redemptions",
    "redeem_by",
]


class CouponForm(ServiceValidatedForm):
    class Meta:
        model = Coupon
        fields = ["code", "name", *TERMS[1:], "active"]
        help_texts = {
            "percent_off": _("e.g. 20 for 20 % off; or give an amount off and its currency."),
            "amount_off": _("Taken off each discounted invoice, at most its subtotal."),
        }

    def validate_domain(self, cleaned):
        if self.instance.pk:
            return
        validate_coupon(
            code=cleaned.get("code"),
            name=cleaned.get("name") or "",
            percent_off=cleaned.get("percent_off"),
            amount_off=cleaned.get("amount_off"),
            currency=cleaned.get("currency") or "",
            duration=cleaned.get("duration"),
            duration_periods=cleaned.get("duration_periods"),
            max_redemptions=cleaned.get("max_redemptions"),
            redeem_by=cleaned.get("redeem_by"),
        )


def coupon_off(coupon: Coupon) -> str:
    """'20 %' or '500.00 USD'."""
    if coupon.percent_off is not None:
        return f"{format_decimal(coupon.percent_off)} %"
    return money_text(coupon.amount_off, coupon.currency)


def coupon_duration(coupon: Coupon) -> str:
    if coupon.duration == CouponDuration.REPEATING:
        return ngettext(
            "repeating, {count} period", "repeating, {count} periods", coupon.duration_periods
        ).format(count=coupon.duration_periods)
    return coupon.get_duration_display()


@admin.register(Coupon)
class CouponAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = CouponForm
    formfield_overrides = EXACT_DECIMALS
    list_display = ["code", "name", "off", "duration_display", "redeemed", "redeem_by", "active"]
    list_filter = ["active", "duration"]
    search_fields = ["code", "name"]

    @admin.display(description=_("off"))
    def off(self, coupon: Coupon) -> str:
        return coupon_off(coupon)

    @admin.display(description=_("duration"), ordering="duration")
    def duration_display(self, coupon: Coupon) -> str:
        return coupon_duration(coupon)

    @admin.display(description=_("redeemed / max"), ordering="times_redeemed")
    def redeemed(self, coupon: Coupon) -> str:
        most = "∞" if coupon.max_redemptions is None else coupon.max_redemptions
        return f"{coupon.times_redeemed} / {most}"

    def get_readonly_fields(self, request, obj=None):
        return [*TERMS, "times_redeemed"] if obj is not None else []

    def deletion_refusal(self, obj):
        if obj.pk is None or not (obj.times_redeemed or obj.discounts.exists()):
            return None
        times = "once" if obj.times_redeemed == 1 else f"{obj.times_redeemed} times"
        return (
            f"{obj.name or obj.code} was redeemed {times}: untick Active to archive it "
            "instead (the discounts given keep naming it)."
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            adopt(obj, coupons.coupon_update(coupon=obj, name=data["name"], active=data["active"]))
        else:
            terms = {name: data.get(name) for name in TERMS}
            adopt(obj, coupons.coupon_create(name=data["name"], active=data["active"], **terms))
