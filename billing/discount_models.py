"""A coupon redeemed on a subscription (re-exported by billing.models)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Discount(models.Model):
    """A coupon applied to a subscription's period invoices (billing.invoicing.
    discounts). `periods_left` counts the period invoices it still discounts:
    1 for a `once` coupon, N for `repeating` N, null for `forever`. Each period
    invoice the close writes uses one, under the subscription's row lock; one
    used up is ended (`ended_at`). A subscription has one discount running at
    most (a partial unique constraint backs it)."""

    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="discounts",
        verbose_name=_("subscription"),
    )
    coupon = models.ForeignKey(
        "plans.Coupon", on_delete=models.PROTECT, related_name="discounts", verbose_name=_("coupon")
    )
    periods_applied = models.PositiveIntegerField(default=0, verbose_name=_("periods applied"))
    periods_left = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("periods left")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))

    class Meta:
        verbose_name = _("discount")
        verbose_name_plural = _("discounts")
        ordering = ["subscription", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription"],
                condition=models.Q(ended_at__isnull=True),
                name="discount_one_running_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} on subscription {self.subscription_id}"
