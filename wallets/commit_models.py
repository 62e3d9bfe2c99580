"""Commits: an amount a customer signs for over a term of whole periods.

A prepaid commit is invoiced in full when it starts and drawn down by usage at
each close, from its access rows (CommitAccess): one per period (or one for the
whole term, up front), and the rollover rows unused access becomes. A postpaid
commit counts the usage billed along the way and bills what is missing at the
term's end. Every movement is a CommitEntry, append-only; an access row's
`remaining` is the running result, so that for a commit at any moment
drawn + expired + remaining = amount (wallets.commits)."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from billing.core.money import AMOUNT, format_decimal
from billing.rating.commits import ROLLOVER as ROLLOVER_KIND


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
        return f"{self.get_billing_display()} {format_decimal(self.amount)} {self.currency}"

    @property
    def prepaid(self) -> bool:
        return self.billing == self.PREPAID


class CommitAccess(models.Model):
    """What a prepaid commit makes available for [available_from, expires_at):
    a period's access, the whole term's (up front), or a rollover of unused
    access. Drawn by rollover first (soonest expiry), then the rest."""

    PERIOD = "period"
    UPFRONT = "upfront"
    ROLLOVER = ROLLOVER_KIND
    KINDS = [
        (PERIOD, _("Period access")),
        (UPFRONT, _("Up-front access")),
        (ROLLOVER, _("Rollover")),
    ]

    commit = models.ForeignKey(
        Commit, on_delete=models.PROTECT, related_name="accesses", verbose_name=_("commit")
    )
    kind = models.CharField(max_length=8, choices=KINDS, verbose_name=_("kind"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    remaining = models.DecimalField(**AMOUNT, verbose_name=_("remaining"))
    available_from = models.DateTimeField(verbose_name=_("available from"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    expired_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expired at"))
    # A rollover's: the access whose unused part it is.
    rolled_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rolled_into",
        verbose_name=_("rolled over from"),
    )

    class Meta:
        verbose_name = _("commit access")
        verbose_name_plural = _("commit access")
        ordering = ["commit_id", "available_from", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="commit_access_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")),
                name="commit_access_remaining_within",
            ),
        ]

    def __str__(self) -> str:
        left, of = format_decimal(self.remaining), format_decimal(self.amount)
        return gettext("{kind}: {left} of {amount}").format(
            kind=self.get_kind_display(), left=left, amount=of
        )


class CommitEntry(models.Model):
    """One movement of a commit: drawn by a period's usage, rolled over, expired
    (breakage), credited at a cancel, counted (postpaid), trued up. Append-only."""

    DRAWDOWN = "drawdown"
    ROLLOVER = "rollover"
    EXPIRY = "expiry"
    CREDITED = "credited"
    COUNTED = "counted"
    TRUE_UP = "true_up"
    KINDS = [
        (DRAWDOWN, _("Drawdown")),
        (ROLLOVER, _("Rollover")),
        (EXPIRY, _("Expiry")),
        (CREDITED, _("Credited at cancel")),
        (COUNTED, _("Usage counted")),
        (TRUE_UP, _("True-up")),
    ]

    commit = models.ForeignKey(
        Commit, on_delete=models.PROTECT, related_name="entries", verbose_name=_("commit")
    )
    access = models.ForeignKey(
        CommitAccess,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("access"),
    )
    kind = models.CharField(max_length=8, choices=KINDS, verbose_name=_("kind"))
    # Negative for what leaves an access (drawn, rolled over, expired, credited).
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    # The usage part it was drawn or counted for.
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
        indexes = [models.Index(fields=["kind", "occurred_at"], name="commit_entry_kind_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_decimal(self.amount)}"
