"""The records of what was billed for a period's usage (re-exported by
billing.models): each closed part of a period (BilledPeriod: for late usage)
and each threshold invoice (ThresholdBilling: progressive billing)."""

from django.db import models

from common.money import AMOUNT


class BilledPeriod(models.Model):
    """What a closed period billed for usage, per meter, so that usage arriving
    late can be billed as the difference on a later invoice."""

    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.PROTECT, related_name="billed"
    )
    version = models.ForeignKey("plans.PlanVersion", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The part of the period whose usage was billed: all of it, or the part
    # before or after an immediate plan change.
    usage_from = models.DateTimeField()
    usage_to = models.DateTimeField()
    # meter code (or "minimum_commitment") -> {"quantity": "...", "amount": "..."}
    billed = models.JSONField(default=dict)
    # The subscription's overrides of the version's terms then (plans.overrides).
    overrides = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["subscription", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "usage_from", "usage_to"], name="billed_period_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.usage_from:%Y-%m-%d}..{self.usage_to:%Y-%m-%d}"


class ThresholdBilling(models.Model):
    """A threshold invoice (progressive billing) and the usage of a part of a
    period [usage_from, ...) that it billed, so that the next threshold invoice
    and the invoice that closes the part bill only the rest (unless it is voided:
    billing.usage.billed_parts). Written under the subscription's row lock."""

    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.PROTECT, related_name="threshold_billings"
    )
    invoice = models.OneToOneField(
        "invoices.Invoice", on_delete=models.PROTECT, related_name="threshold_billing"
    )
    period_start = models.DateTimeField()
    # Where the part of the period starts: its start, or an immediate plan change.
    usage_from = models.DateTimeField()
    # The usage this invoice billed: in all (its subtotal), and by meter code.
    amount = models.DecimalField(**AMOUNT)
    billed = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["subscription", "id"]
        indexes = [
            models.Index(
                fields=["subscription", "period_start", "usage_from"],
                name="threshold_billing_part",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} threshold {self.amount}"
