"""Prepaid value a customer holds: a credit wallet and money wallets.

A wallet's balance is the sum of its blocks' remaining amounts; the stored
balance is a cache of the append-only ledger, changed only under the wallet's row
lock (wallets.ledger), with a CHECK constraint as the last line of defence
against going below zero."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from common.history import audit_history
from common.money import AMOUNT, format_decimal


class Wallet(models.Model):
    CREDITS = "credits"
    MONEY = "money"
    # A prepaid commit's access, per currency: apart from the money wallet, which
    # usage draws at ingestion and spend checks read (a commit is drawn at a close).
    COMMIT = "commit"
    KINDS = [(CREDITS, _("Credits")), (MONEY, _("Money")), (COMMIT, _("Commit"))]

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="wallets",
        verbose_name=_("customer"),
    )
    kind = models.CharField(max_length=8, choices=KINDS, verbose_name=_("kind"))
    # Empty for the credit wallet; the ISO code of a money (or commit) wallet.
    currency = models.CharField(max_length=3, blank=True, default="", verbose_name=_("currency"))
    balance = models.DecimalField(**AMOUNT, default=0, verbose_name=_("balance"))
    low_balance_threshold = models.DecimalField(
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_("Alert (once a period) when the balance falls to or below this."),
        verbose_name=_("low balance threshold"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = audit_history(excluded_fields=["balance", "updated_at"])

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
        ordering = ["customer_id", "kind", "currency"]
        permissions = [("view_credit_revenue", "Can view the credit revenue report")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind", "currency"], name="wallet_one_per_kind_currency"
            ),
            models.CheckConstraint(
                condition=Q(balance__gte=0),
                name="wallet_balance_not_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind="credits") & Q(currency=""))
                | (Q(kind__in=("money", "commit")) & ~Q(currency="")),
                name="wallet_money_has_currency",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.CREDITS:
            return gettext("{customer}: credits").format(customer=self.customer.external_id)
        return f"{self.customer.external_id}: {self.currency}"


class CreditBlock(models.Model):
    """A lot of credits (or money) with its own price, priority and expiry.
    Consumption draws by priority (lowest first), then soonest expiry, then
    oldest, each block only for the meters it applies to (all when empty)."""

    PAID = "paid"
    PROMOTIONAL = "promotional"
    # A prepaid commit's access (a commit wallet's; wallets.commits).
    COMMIT = "commit"
    KINDS = [
        (PAID, pgettext_lazy("credits", "Paid")),
        (PROMOTIONAL, _("Promotional")),
        (COMMIT, _("Commit")),
    ]
    # The kinds credits are granted (or sold) as.
    GRANTED = [PAID, PROMOTIONAL]

    # Where the block came from.
    PACK = "pack"
    GRANT = "grant"
    PERIOD_GRANT = "period_grant"
    TOP_UP = "top_up"
    AUTO_TOP_UP = "auto_top_up"
    # What a period's plan credits left unused and rolled over (plans.credits_rollover).
    ROLLOVER = "rollover"
    COMMIT = "commit"
    SOURCES = [
        (PACK, _("Credit pack purchase")),
        (GRANT, _("Grant")),
        (PERIOD_GRANT, _("Plan credits for a period")),
        (TOP_UP, _("Money top-up")),
        (AUTO_TOP_UP, _("Auto top-up")),
        (ROLLOVER, _("Rolled-over plan credits")),
        (COMMIT, _("Commit access")),
    ]

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="blocks", verbose_name=_("wallet")
    )
    kind = models.CharField(max_length=12, choices=KINDS, verbose_name=_("kind"))
    source = models.CharField(max_length=16, choices=SOURCES, verbose_name=_("source"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    remaining = models.DecimalField(**AMOUNT, verbose_name=_("remaining"))
    # What the customer paid for the whole block (the cost basis for revenue
    # recognition); zero for promotional blocks.
    price_paid = models.DecimalField(**AMOUNT, default=0, verbose_name=_("price paid"))
    currency = models.CharField(max_length=3, blank=True, default="", verbose_name=_("currency"))
    priority = models.IntegerField(
        default=50, help_text=_("Lower is drawn first."), verbose_name=_("priority")
    )
    effective_at = models.DateTimeField(verbose_name=_("effective at"))
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    expired_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expired at"))
    pack = models.ForeignKey(
        "plans.CreditPack",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("pack"),
    )
    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("subscription"),
    )
    commit = models.ForeignKey(
        "wallets.Commit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="blocks",
        verbose_name=_("commit"),
    )
    # The meter codes the block pays for; empty: every meter (plans.meter_scope).
    applies_to = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The meters it pays for; empty: every meter."),
        verbose_name=_("applies to"),
    )
    # For a plan's credits: the period they were granted for (one grant a period).
    period_start = models.DateTimeField(null=True, blank=True, verbose_name=_("period start"))
    # A plan's credits for a period that roll over, as the version said when they
    # were granted (a later plan change does not alter a grant made): the percent
    # of what is left at their expiry that becomes a rollover block, and when that
    # block expires (the end of a later period of the subscription).
    rollover_percent = models.DecimalField(
        max_digits=14, decimal_places=10, null=True, blank=True, verbose_name=_("rollover percent")
    )
    rollover_expires_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("rollover expires at")
    )
    # A rollover block: the period's credits it rolled over from (one each).
    rolled_over_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rolled_over_to",
        verbose_name=_("rolled over from"),
    )
    note = models.CharField(max_length=255, blank=True, default="", verbose_name=_("note"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("credit block")
        verbose_name_plural = _("credit blocks")
        ordering = ["wallet_id", "priority", "expires_at", "created_at", "id"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(remaining__gt=0, expired_at__isnull=True),
                name="block_expiring",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="block_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")),
                name="block_remaining_within_amount",
            ),
            models.CheckConstraint(condition=Q(price_paid__gte=0), name="block_price_paid"),
            # A plan's credits are granted once per subscription period.
            models.UniqueConstraint(
                fields=["wallet", "subscription", "period_start"],
                condition=Q(source="period_grant"),
                name="block_one_period_grant",
            ),
            # Both rollover terms of a plan's credits, or neither.
            models.CheckConstraint(
                condition=Q(rollover_percent__isnull=True, rollover_expires_at__isnull=True)
                | Q(
                    rollover_percent__gt=0,
                    rollover_percent__lte=100,
                    rollover_expires_at__isnull=False,
                ),
                name="block_rollover_terms",
            ),
        ]

    def __str__(self) -> str:
        left, of = format_decimal(self.remaining), format_decimal(self.amount)
        return gettext("{source} #{number}: {left} of {amount}").format(
            source=self.get_source_display(), number=self.pk, left=left, amount=of
        )


class LedgerEntry(models.Model):
    """One change of a wallet's balance. Append-only: never updated or deleted."""

    PURCHASE = "purchase"
    GRANT = "grant"
    PERIOD_GRANT = "period_grant"
    TOP_UP = "top_up"
    AUTO_TOP_UP = "auto_top_up"
    USAGE = "usage"
    EXPIRY = "expiry"
    # What a voided purchase invoice had sold, taken back out of the wallet.
    VOID = "void"
    # The share of what a purchase invoice sold that a credit note on it credited,
    # taken back out of the wallet.
    CREDIT_NOTE = "credit_note"
    # Unused plan credits carried into a rollover block when their period ended.
    ROLLOVER = "rollover"
    # A prepaid commit's access, made available when it is signed.
    COMMIT = "commit"
    # What credit notes took back of a sold block.
    TAKEN_BACK = (CREDIT_NOTE, VOID)
    KINDS = [
        (PURCHASE, _("Purchase")),
        (GRANT, _("Grant")),
        (PERIOD_GRANT, _("Plan credits")),
        (TOP_UP, _("Top-up")),
        (AUTO_TOP_UP, _("Auto top-up")),
        (USAGE, _("Usage")),
        (EXPIRY, _("Expiry")),
        (VOID, _("Purchase voided")),
        (CREDIT_NOTE, _("Purchase credited")),
        (ROLLOVER, _("Rollover")),
        (COMMIT, _("Commit access")),
    ]

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("wallet")
    )
    block = models.ForeignKey(
        CreditBlock,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("block"),
    )
    kind = models.CharField(max_length=16, choices=KINDS, verbose_name=_("kind"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    balance_after = models.DecimalField(**AMOUNT, verbose_name=_("balance after"))
    # The credit note that took back what this entry takes out (`credit_note`, and
    # `void` since credit notes took back what they credit).
    credit_note = models.ForeignKey(
        "invoices.CreditNote",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("credit note"),
    )
    meter = models.CharField(max_length=255, blank=True, default="", verbose_name=_("meter"))
    # Units of the meter behind a usage entry (e.g. 80 runs for 80 credits).
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("quantity"))
    # A commit's drawdown: the usage it was drawn for and the invoice that billed it.
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
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["wallet", "-id"], name="ledger_wallet_newest"),
            # The money a balance paid for usage in a period (a spend-limit check):
            # one period's entries, not the wallet's whole history.
            models.Index(fields=["wallet", "kind", "occurred_at"], name="ledger_wallet_kind_time"),
        ]

    def __str__(self) -> str:
        amount, after = format_decimal(self.amount), format_decimal(self.balance_after)
        return f"{self.get_kind_display()} {amount} → {after}"


class UncoveredUsage(models.Model):
    """Usage a wallet could not pay for when it arrived: the events are stored and
    counted, the balance stopped at zero, and the shortfall is kept here for
    finance (one row per wallet, meter and ingest batch)."""

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="uncovered", verbose_name=_("wallet")
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    meter = models.CharField(max_length=255, verbose_name=_("meter"))
    quantity = models.DecimalField(
        **AMOUNT, help_text=_("Units not paid for."), verbose_name=_("quantity")
    )
    shortfall = models.DecimalField(
        **AMOUNT, help_text=_("Credits or money missing."), verbose_name=_("shortfall")
    )
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))

    class Meta:
        verbose_name = _("uncovered usage")
        verbose_name_plural = _("uncovered usage")
        ordering = ["-id"]
        indexes = [models.Index(fields=["customer", "occurred_at"], name="uncovered_by_customer")]

    def __str__(self) -> str:
        return f"{self.meter}: {format_decimal(self.quantity)} uncovered"


class AutoTopUp(models.Model):
    """Buy one pack when the credit balance falls to or below the threshold."""

    wallet = models.OneToOneField(
        Wallet, on_delete=models.CASCADE, related_name="auto_top_up", verbose_name=_("wallet")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    threshold = models.DecimalField(**AMOUNT, verbose_name=_("threshold"))
    pack = models.ForeignKey(
        "plans.CreditPack", on_delete=models.PROTECT, related_name="+", verbose_name=_("pack")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = audit_history()

    class Meta:
        verbose_name = _("auto top-up")
        verbose_name_plural = _("auto top-ups")
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0), name="auto_top_up_threshold"),
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.wallet}: {state}, at {format_decimal(self.threshold)} buy {self.pack.code}"


# Commits are prepaid (or postpaid) value too; their models live in a module of their own.
from wallets.commit_models import Commit, CommitEntry  # noqa: E402, F401
