"""The journal's tables: its entries (append-only), finance's account mapping
and the months it locked. Re-exported by billing.models so Django finds them."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import Customer

MONEY = {"max_digits": 28, "decimal_places": 10}


class AccountKind(models.TextChoices):
    """Our accounts; finance maps each to one of its own (JournalAccount)."""

    RECEIVABLE = "receivable", _("Accounts receivable")
    REVENUE = "revenue", _("Revenue")
    DISCOUNTS = "discounts", _("Discounts")
    TAX_PAYABLE = "tax_payable", _("Tax payable")
    DEFERRED_REVENUE = "deferred_revenue", _("Deferred revenue")
    CREDIT_BALANCE = "credit_balance", _("Customer credit balance")
    BREAKAGE = "breakage", _("Breakage")
    PAYMENTS_CLEARING = "payments_clearing", _("Payments clearing")
    # A functional amount only: what settling a receivable at another rate than it
    # was booked at gains (a credit) or loses (a debit), billing.journal.functional.
    EXCHANGE_DIFFERENCES = "exchange_differences", _("Exchange differences")


class DocumentType(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_APPLIED = "credit_applied", _("Credit balance applied")
    PAYMENT = "payment", _("Payment")
    CREDIT_NOTE = "credit_note", _("Credit note")
    REFUND = "refund", _("Refund")
    CONSUMPTION = "consumption", _("Credits consumed")
    EXPIRY = "expiry", _("Credits expired")
    COMMIT_EXPIRY = "commit_expiry", _("Commit expired")
    # Deferred revenue recognized as earned (billing.revenue.recognition).
    RECOGNITION = "recognition", _("Revenue recognized")


class JournalAccount(models.Model):
    """Finance's account for one of our kinds; with a meter, plan or tax rate
    code, for that one only (revenue per meter or plan, tax per rate). The
    account is resolved when an entry is written and stored on it: a change
    applies to entries written after it."""

    kind = models.CharField(max_length=24, choices=AccountKind.choices, verbose_name=_("kind"))
    meter = models.CharField(max_length=64, blank=True, default="", verbose_name=_("meter"))
    plan = models.CharField(max_length=64, blank=True, default="", verbose_name=_("plan"))
    tax_rate = models.CharField(max_length=64, blank=True, default="", verbose_name=_("tax rate"))
    code = models.CharField(max_length=32, verbose_name=_("account code"))
    name = models.CharField(max_length=150, verbose_name=_("account name"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["kind", "meter", "plan", "tax_rate"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "meter", "plan", "tax_rate"], name="journal_account_once"
            ),
            # A meter or plan is for revenue only, a tax rate for tax only, one at a time.
            models.CheckConstraint(
                condition=(
                    models.Q(meter="", plan="", tax_rate="")
                    | models.Q(kind="revenue", plan="", tax_rate="")
                    | models.Q(kind="revenue", meter="", tax_rate="")
                    | models.Q(kind="tax_payable", meter="", plan="")
                ),
                name="journal_account_detail_fits_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class JournalEntry(models.Model):
    """One line of a document's journal: a debit or a credit on an account.
    Never edited: a correction is a reversing document. The lines of one
    document (`document_key`) balance per currency (billing.journal.writer),
    in the transaction currency and in the seller's functional currency.

    The functional amounts and the rate are null while the exchange rate of the
    document's day is missing; journal_functional_fill sets them (and nothing
    else) once finance has entered it (billing.journal.functional)."""

    date = models.DateField(db_index=True, verbose_name=_("date"))
    # The document's own day; `date` is the next open month's first day when
    # the document's month was locked.
    document_date = models.DateField(verbose_name=_("document date"))
    document_type = models.CharField(
        max_length=16, choices=DocumentType.choices, verbose_name=_("document type")
    )
    document = models.CharField(max_length=64, verbose_name=_("document"))
    # What makes the document's entries written once: "invoice:42", "payment:42".
    document_key = models.CharField(max_length=80, verbose_name=_("document key"))
    line = models.PositiveSmallIntegerField(verbose_name=_("line"))
    # No database constraint: checking one at commit takes a key-share lock on the
    # customer's row, which a credit note held FOR UPDATE (customer_lock) while it
    # waited for the wallet an ingest held: the two waited on each other. The lock
    # is FOR NO KEY UPDATE since, which no key share waits for: a constraint could
    # come back (a migration). Customers are never deleted (PROTECT everywhere else).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="journal_entries",
        verbose_name=_("customer"),
    )
    kind = models.CharField(max_length=24, choices=AccountKind.choices, verbose_name=_("kind"))
    meter = models.CharField(max_length=64, blank=True, default="", verbose_name=_("meter"))
    plan = models.CharField(max_length=64, blank=True, default="", verbose_name=_("plan"))
    tax_rate = models.CharField(max_length=64, blank=True, default="", verbose_name=_("tax rate"))
    account = models.CharField(max_length=32, verbose_name=_("account code"))
    account_name = models.CharField(max_length=150, verbose_name=_("account name"))
    debit = models.DecimalField(**MONEY, default=0, verbose_name=_("debit"))
    credit = models.DecimalField(**MONEY, default=0, verbose_name=_("credit"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    memo = models.CharField(max_length=255, blank=True, default="", verbose_name=_("memo"))
    written_at = models.DateTimeField(verbose_name=_("written at"))
    # The seller whose books the entry is in (its code, as when written), and its
    # functional currency then.
    billing_entity = models.CharField(max_length=64, default="", verbose_name=_("billing entity"))
    functional_currency = models.CharField(
        max_length=3, default="", verbose_name=_("functional currency")
    )
    functional_debit = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("functional debit")
    )
    functional_credit = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("functional credit")
    )
    # 1 `currency` in `functional_currency` on the document's day.
    rate = models.DecimalField(**MONEY, null=True, blank=True, verbose_name=_("rate"))
    # The document whose receivable this entry settles ("invoice:42"): credited at
    # what that document booked it at, not at this document's rate.
    settles = models.CharField(max_length=80, blank=True, default="", verbose_name=_("settles"))

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["date", "id"]
        indexes = [
            models.Index(fields=["date", "id"], name="journal_entry_date_id"),
            models.Index(fields=["billing_entity", "date", "id"], name="journal_entry_entity_date"),
            # The entries waiting for a rate (journal_functional_fill), few.
            models.Index(
                fields=["document_date"],
                condition=models.Q(rate__isnull=True),
                name="journal_entry_rate_missing",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["document_key", "line"], name="journal_entry_once_per_document_line"
            ),
            models.CheckConstraint(
                condition=(models.Q(debit__gte=0, credit=0) | models.Q(debit=0, credit__gte=0)),
                name="journal_entry_debit_or_credit",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        rate__isnull=True,
                        functional_debit__isnull=True,
                        functional_credit__isnull=True,
                    )
                    | models.Q(rate__gt=0, functional_debit__gte=0, functional_credit=0)
                    | models.Q(rate__gt=0, functional_debit=0, functional_credit__gte=0)
                ),
                name="journal_entry_functional_debit_or_credit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document} {self.account}"


class JournalPeriodLock(models.Model):
    """A month finance closed: documents dated in it are journaled on the first
    day of the next open month. A lock is lifted, never deleted: the row keeps who
    lifted it, when and why, and a new lock of the month is a new row, so the
    rows of a month are its history."""

    month = models.DateField(verbose_name=_("month"))
    locked_at = models.DateTimeField(verbose_name=_("locked at"))
    # Who: the admin user's name, or the API key's ("API key <name> (<prefix>…)").
    locked_by = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("locked by")
    )
    lifted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("lifted at"))
    lifted_by = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("lifted by")
    )
    lift_reason = models.CharField(
        max_length=500, blank=True, default="", verbose_name=_("reason lifted")
    )

    class Meta:
        verbose_name = _("locked month")
        verbose_name_plural = _("locked months")
        ordering = ["month", "locked_at", "id"]
        permissions = [("lift_journalperiodlock", "Can lift the lock of a month")]
        constraints = [
            # One lock in force a month; lifted ones stay as its history.
            models.UniqueConstraint(
                fields=["month"],
                condition=models.Q(lifted_at__isnull=True),
                name="journal_period_lock_once_in_force",
            ),
            models.CheckConstraint(
                condition=models.Q(lifted_at__isnull=True, lift_reason="")
                | (models.Q(lifted_at__isnull=False) & ~models.Q(lift_reason="")),
                name="journal_period_lock_lifted_with_a_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.month.strftime("%Y-%m")


class DeferralStart(models.Model):
    """When the journal began deferring fees billed in advance (billing.journal.
    deferral): the moment a database with issued invoices was upgraded to it
    (billing 0046). Invoices issued before booked their fees to revenue at issue
    and keep doing so (their entries, a backfill, a credit note on them), and no
    recognition document recognizes them again. No row: a database that had
    issued nothing then, every fee deferred. One row at most."""

    since = models.DateTimeField(verbose_name=_("deferring since"))

    class Meta:
        verbose_name = _("start of deferred fees")
        verbose_name_plural = _("start of deferred fees")

    def __str__(self) -> str:
        return self.since.isoformat()


class TrialBalance(JournalEntry):
    """Not a record: the admin's trial balance page (billing.admin.journal) hangs here."""

    class Meta:
        proxy = True
        verbose_name = _("trial balance")
        verbose_name_plural = _("trial balance")
        default_permissions = ()
