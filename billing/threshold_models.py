"""Progressive billing's record: what the threshold invoices of a part of a
period billed (re-exported by billing.models)."""

from django.db import models

from billing.core.money import AMOUNT


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
