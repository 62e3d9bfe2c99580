"""What the open periods bill and no invoice has yet, as of a moment
(re-exported by billing.models): each live subscription's period statement's
lines for the part under way, kept by billing.revenue.accruals so that earned
revenue over thousands of subscriptions reads rows instead of rating each."""

from django.db import models

from common.money import AMOUNT


class AccruedLine(models.Model):
    """One line the invoice ending a subscription's part under way would bill,
    as of `as_of`: the statement's (PeriodStatement.invoice_lines), stamped as
    an invoice line is. Rows of a part that is no longer under way (the period
    closed, the plan changed) are read as nothing and replaced at the next
    refresh."""

    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.CASCADE, related_name="accrued_lines"
    )
    customer_id = models.BigIntegerField(db_index=True)
    currency = models.CharField(max_length=3)
    # The part under way: the period's start, and its usage's (a plan change's).
    period_start = models.DateTimeField()
    usage_from = models.DateTimeField()
    kind = models.CharField(max_length=32)
    meter = models.CharField(max_length=64, blank=True, default="")
    plan = models.CharField(max_length=64, blank=True, default="")
    group = models.JSONField(null=True, blank=True)
    usage_groups = models.JSONField(default=list, blank=True)
    amount = models.DecimalField(**AMOUNT)
    # The line's service period.
    line_start = models.DateTimeField()
    line_end = models.DateTimeField()
    as_of = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["currency", "line_start"], name="accrued_line_window")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind} {self.amount}"
