"""Invoices. A draft can be recomputed; a finalized invoice never changes: it is
paid, voided with a credit note, or marked uncollectible, and corrections go on
the next invoice (late usage) or a credit note."""

from django.db import models

AMOUNT = {"max_digits": 28, "decimal_places": 10}


class InvoiceSequence(models.Model):
    """The next number of a gap-free sequence (e.g. INV-2026), taken under a row
    lock when an invoice is finalized."""

    name = models.CharField(max_length=32, unique=True)
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.name} (next {self.next_number})"


class Invoice(models.Model):
    DRAFT = "draft"
    FINALIZED = "finalized"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    STATUSES = [
        (DRAFT, "Draft"),
        (FINALIZED, "Finalized"),
        (PAID, "Paid"),
        (VOID, "Void"),
        (UNCOLLECTIBLE, "Uncollectible"),
    ]

    # Why the invoice exists; with the subscription and period it makes a close idempotent.
    START = "start"
    PERIOD = "period"
    PLAN_CHANGE = "plan_change"
    CANCEL = "cancel"
    PURCHASE = "purchase"
    REASONS = [
        (START, "Subscription start"),
        (PERIOD, "Period close"),
        (PLAN_CHANGE, "Plan change"),
        (CANCEL, "Cancellation"),
        (PURCHASE, "Credit or balance purchase"),
    ]

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="invoices"
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
    )
    reason = models.CharField(max_length=16, choices=REASONS)
    status = models.CharField(max_length=16, choices=STATUSES, default=DRAFT, db_index=True)
    number = models.CharField(max_length=32, null=True, blank=True, unique=True)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The customer's billing details when the invoice was written.
    customer_snapshot = models.JSONField(default=dict)
    subtotal = models.DecimalField(**AMOUNT, default=0)
    credits_applied = models.DecimalField(**AMOUNT, default=0)
    tax = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT, default=0)
    created_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=255, blank=True, default="")
    # The PDF as issued, in the default storage; written once after finalization
    # (again only by a forced repair). A draft has none: it is rendered on request.
    pdf_file = models.FileField(max_length=255, blank=True, default="")
    pdf_sha256 = models.CharField(max_length=64, blank=True, default="")
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A close run twice, or resumed after a crash, writes each invoice once.
            models.UniqueConstraint(
                fields=["subscription", "reason", "period_start", "period_end"],
                name="invoice_once_per_subscription_reason_period",
            ),
            models.CheckConstraint(
                condition=models.Q(number__isnull=True) | ~models.Q(status="draft"),
                name="invoice_draft_has_no_number",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"


class InvoiceLine(models.Model):
    KINDS = [
        ("base_fee", "Base fee"),
        ("seats", "Seats"),
        ("usage", "Usage"),
        ("overage", "Overage"),
        ("proration_credit", "Proration credit"),
        ("proration_charge", "Proration charge"),
        ("minimum_commitment", "Minimum commitment true-up"),
        ("late_usage", "Late usage"),
        ("credit_pack", "Credit pack purchase"),
        ("credits", "Credits purchase"),
        ("top_up", "Balance top-up"),
        ("credits_applied", "Credits applied"),
        ("tax", "Tax"),
    ]

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=32, choices=KINDS)
    description = models.CharField(max_length=500)
    meter = models.CharField(max_length=64, blank=True, default="")
    quantity = models.DecimalField(**AMOUNT)
    unit_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    amount = models.DecimalField(**AMOUNT)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position")
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.amount}"


class CreditNote(models.Model):
    """Money given back against a finalized invoice, e.g. when it is voided."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=32, unique=True)
    amount = models.DecimalField(**AMOUNT)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.number
