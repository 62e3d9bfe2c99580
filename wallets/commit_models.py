"""Commits: an amount a customer signs for over a term of whole periods.

A prepaid commit is invoiced in full when it starts; its access is blocks of
the customer's commit wallet (CreditBlock, kind `commit`: one per period, or
one up front, and their rollovers), drawn down at each close (wallets.commits).
A postpaid commit counts the usage billed along the way and bills what is
missing at the term's end: those movements are its CommitEntry rows."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common import customer_text
from common.money import AMOUNT, format_decimal


class Commit(models.Model):
    PREPAID = "prepaid"
    POSTPAID = "postpaid"
    BILLINGS = [(PREPAID, _("Prepaid")), (POSTPAID, _("Postpaid"))]

    PER_PERIOD = "per_period"
    UPFRONT = "upfront"
    ACCESSES = [(PER_PERIOD, _("Per period")), (UPFRONT, _("Up front"))]

    ACTIVE = "active"
    ENDED = "ended"
    CANCELED = "canceled"
    STATUSES = [
        (ACTIVE, pgettext_lazy("status", "Active")),
        (ENDED, _("Ended")),
        (CANCELED, _("Canceled")),
    ]

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="commits",
        verbose_name=_("customer"),
    )
    # The subscription whose periods the term covers; a plan change or a migration
    # keeps it (the same subscription on another version).
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="commits",
        verbose_name=_("subscription"),
    )
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    ends_at = models.DateTimeField(verbose_name=_("ends at"))
    periods = models.PositiveIntegerField(verbose_name=_("periods"))
    billing = models.CharField(max_length=8, choices=BILLINGS, verbose_name=_("billing"))
    access = models.CharField(
        max_length=12, choices=ACCESSES, blank=True, default="", verbose_name=_("access")
    )
    # Meter codes whose usage the commit pays for; empty: all usage.
    applies_to = models.JSONField(default=list, blank=True, verbose_name=_("applies to"))
    overage_multiplier = models.DecimalField(
        **AMOUNT, default=1, verbose_name=_("overage multiplier")
    )
    rollover_percent = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("rollover percent")
    )
    rollover_periods = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("rollover expires after periods")
    )
    # Postpaid: the usage of its meters billed so far in its term.
    counted = models.DecimalField(**AMOUNT, default=0, verbose_name=_("counted"))
    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    true_up_invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("true-up invoice"),
    )
    status = models.CharField(
        max_length=8, choices=STATUSES, default=ACTIVE, verbose_name=_("status")
    )
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("commit")
        verbose_name_plural = _("commits")
        ordering = ["customer_id", "starts_at", "id"]
        indexes = [models.Index(fields=["customer", "status"], name="commit_customer_status")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="commit_amount_positive"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="commit_term"),
            models.CheckConstraint(
                condition=Q(overage_multiplier__gte=1), name="commit_overage_multiplier"
            ),
        ]

    def __str__(self) -> str:
        # Written as every page writes the amount ("Prepaid 12,000.00 USD"), in the
        # active language.
        return (
            f"{self.get_billing_display()} {customer_text.money_text(self.amount, self.currency)}"
        )

    @property
    def prepaid(self) -> bool:
        return self.billing == self.PREPAID


class CommitEntry(models.Model):
    """One movement of a postpaid commit: usage counted, or the true-up. (A
    prepaid commit's are ledger entries of its blocks.) Append-only."""

    COUNTED = "counted"
    TRUE_UP = "true_up"
    KINDS = [(COUNTED, _("Usage counted")), (TRUE_UP, _("True-up"))]

    commit = models.ForeignKey(
        Commit, on_delete=models.PROTECT, related_name="entries", verbose_name=_("commit")
    )
    kind = models.CharField(max_length=8, choices=KINDS, verbose_name=_("kind"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    # The usage part it counted.
    period_start = models.DateTimeField(null=True, blank=True, verbose_name=_("period start"))
    period_end = models.DateTimeField(null=True, blank=True, verbose_name=_("period end"))
    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))

    class Meta:
        verbose_name = _("commit entry")
        verbose_name_plural = _("commit entries")
        ordering = ["commit_id", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_decimal(self.amount)}"
