"""Coupons: deals finance offers, redeemed on subscriptions (plans.coupons)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.history import audit_history
from common.money import AMOUNT
from common.vocabulary import CouponDuration
from plans.feature_models import CODE_MAX_LENGTH


class Coupon(models.Model):
    """A deal finance offers: percent or amount off a subscription's period
    invoices, for one, N or every period. Its terms never change once created
    (plans.coupons); it is archived (`active` off) to stop new redemptions, and
    the discounts already given keep running. `times_redeemed` is counted under
    the coupon's row lock, so `max_redemptions` holds under concurrency."""

    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(
        max_length=100, help_text=_("Printed on invoices."), verbose_name=_("name")
    )
    percent_off = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("e.g. 20 for 20 % off."),
        verbose_name=_("percent off"),
    )
    amount_off = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("amount off"))
    # The currency of amount_off; empty for a percent off.
    currency = models.CharField(max_length=3, blank=True, default="", verbose_name=_("currency"))
    duration = models.CharField(
        max_length=16, choices=CouponDuration.choices, verbose_name=_("duration")
    )
    duration_periods = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Repeating coupons: how many period invoices."),
        verbose_name=_("duration periods"),
    )
    max_redemptions = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("max redemptions")
    )
    redeem_by = models.DateTimeField(null=True, blank=True, verbose_name=_("redeem by"))
    active = models.BooleanField(
        default=True, help_text=_("Off: archived, redeemed no more."), verbose_name=_("active")
    )
    times_redeemed = models.PositiveIntegerField(default=0, verbose_name=_("times redeemed"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        percent_off__isnull=False,
                        amount_off__isnull=True,
                        percent_off__gt=0,
                        percent_off__lte=100,
                        currency="",
                    )
                    | models.Q(percent_off__isnull=True, amount_off__gt=0) & ~models.Q(currency="")
                ),
                name="coupon_percent_or_amount_off",
            ),
            models.CheckConstraint(
                condition=models.Q(duration="repeating", duration_periods__gt=0)
                | (~models.Q(duration="repeating") & models.Q(duration_periods__isnull=True)),
                name="coupon_duration_periods_iff_repeating",
            ),
            models.CheckConstraint(
                condition=models.Q(max_redemptions__isnull=True)
                | models.Q(max_redemptions__gt=0, times_redeemed__lte=models.F("max_redemptions")),
                name="coupon_redeemed_at_most_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_percent(self) -> bool:
        return self.percent_off is not None
