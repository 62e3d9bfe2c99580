"""Holds (re-exported by billing.models): a quantity of a meter reserved before
an expensive action, counted as used by every later check and hold until it is
settled (the usage really used billed, as an event), released (nothing billed)
or expired (billing.usage.holds)."""

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.money import AMOUNT as MONEY
from customers.models import Customer


def hold_public_id() -> str:
    return f"hold_{secrets.token_hex(12)}"


class Hold(models.Model):
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"
    STATUSES = [
        (OPEN, _("Open")),
        (SETTLED, _("Settled")),
        (RELEASED, _("Released")),
        (EXPIRED, _("Expired")),
    ]
    FAILED = "failed"
    CANCELLED = "cancelled"
    REASONS = [(FAILED, _("Failed")), (CANCELLED, _("Cancelled"))]

    public_id = models.CharField(
        max_length=40, unique=True, default=hold_public_id, verbose_name=_("id")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="holds", verbose_name=_("customer")
    )
    # The caller's idempotency key: the same key gives the same hold.
    key = models.CharField(max_length=255, verbose_name=_("key"))
    meter = models.CharField(max_length=64, verbose_name=_("meter"))
    quantity = models.DecimalField(**MONEY, verbose_name=_("quantity"))
    properties = models.JSONField(default=dict, blank=True, verbose_name=_("properties"))
    # What the reserved quantity would take out of a wallet while open: credits, or
    # money in `currency` (0 when the charge draws no wallet: a cap counts the quantity).
    held_credits = models.DecimalField(**MONEY, default=0, verbose_name=_("credits held"))
    held_money = models.DecimalField(**MONEY, default=0, verbose_name=_("money held"))
    # Of a credit wallet that bills what it cannot pay: the units its credits did not
    # cover when it was held, which a spend limit counts as billed.
    uncovered_units = models.DecimalField(
        **MONEY, default=0, verbose_name=_("units not covered by credits")
    )
    # The quantity priced as the charge prices it (null: the charge prices no money).
    amount = models.DecimalField(**MONEY, null=True, blank=True, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=OPEN, verbose_name=_("status")
    )
    reason = models.CharField(
        max_length=16, choices=REASONS, blank=True, default="", verbose_name=_("reason")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    # What settle billed: the quantity of the event it wrote (id "hold:<public id>").
    settled_quantity = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("settled quantity")
    )

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "key"], name="hold_customer_key"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="hold_quantity_pos"),
        ]
        indexes = [
            # What a check counts: a customer's open holds.
            models.Index(
                fields=["customer", "expires_at"],
                condition=models.Q(status="open"),
                name="hold_open_customer",
            ),
            # The sweep's expired holds, and a period's closed ones.
            models.Index(
                fields=["expires_at"], condition=models.Q(status="open"), name="hold_open_expiry"
            ),
            models.Index(fields=["customer", "closed_at"], name="hold_customer_closed"),
        ]

    def __str__(self) -> str:
        return self.public_id
