"""Invoices. A draft can be recomputed; a finalized invoice never changes: it is
paid, voided with a credit note, or marked uncollectible, and corrections go on
the next invoice (late usage) or a credit note."""

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.customer_text import CustomerText, money_text, percent
from common.groups import OTHER_VALUE, TOP_GROUPS, top_and_rest
from common.money import AMOUNT
from common.periods import lines_span
from common.vocabulary import LineKind
from plans.models import Meter


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
        (DRAFT, _("Draft")),
        (FINALIZED, _("Finalized")),
        (PAID, _("Paid")),
        (VOID, _("Void")),
        (UNCOLLECTIBLE, _("Uncollectible")),
    ]

    # Why the invoice exists; with the subscription and period it makes a close idempotent.
    START = "start"
    PERIOD = "period"
    PLAN_CHANGE = "plan_change"
    CANCEL = "cancel"
    PURCHASE = "purchase"
    THRESHOLD = "threshold"
    COMMIT = "commit"
    COMMIT_TRUE_UP = "commit_true_up"
    # What a period billed too little, found by re-rating it (billing.invoicing.rerating).
    CORRECTION = "correction"
    REASONS = [
        (START, _("Subscription start")),
        (PERIOD, _("Period close")),
        (PLAN_CHANGE, _("Plan change")),
        (CANCEL, _("Cancellation")),
        (PURCHASE, _("Credit or balance purchase")),
        (THRESHOLD, _("Usage threshold reached (progressive billing)")),
        (COMMIT, _("Commit")),
        (COMMIT_TRUE_UP, _("Commit true-up")),
        (CORRECTION, _("Correction of an earlier invoice (re-rating)")),
    ]

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("customer"),
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("subscription"),
    )
    reason = models.CharField(_("reason"), max_length=16, choices=REASONS)
    # A correction's invoice: the one whose period it bills the difference of.
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("corrects"),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=STATUSES,
        default=DRAFT,
        db_index=True,
    )
    number = models.CharField(
        max_length=32, null=True, blank=True, unique=True, verbose_name=_("number")
    )
    currency = models.CharField(_("currency"), max_length=3)
    # The period the invoice bills as of: the close's (with subscription and
    # reason, its unique key: a rerun writes it once), a change's moment to the
    # period's end. What a reader shows is document_period, not these.
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(verbose_name=_("period end"))
    # The span its lines bill (from the first line's period start to the last
    # line's period end), stamped when it is written (invoices.services.
    # lines_span): a closing invoice's usage and the next period's fees billed in
    # advance, a cancellation's usage up to its moment. Null when no line names a
    # period (a purchase): the document then bills period_start/period_end.
    service_start = models.DateTimeField(null=True, blank=True, verbose_name=_("service start"))
    service_end = models.DateTimeField(null=True, blank=True, verbose_name=_("service end"))
    # The customer's billing details when the invoice was written.
    customer_snapshot = models.JSONField(default=dict, verbose_name=_("customer snapshot"))
    # The seller (its billing entity) as it was when the invoice was finalized
    # (invoices.sellers); {} on a draft, which shows its customer's entity now.
    billing_entity = models.ForeignKey(
        "customers.BillingEntity",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("billing entity"),
    )
    seller_snapshot = models.JSONField(default=dict, blank=True, verbose_name=_("seller snapshot"))
    subtotal = models.DecimalField(**AMOUNT, default=0, verbose_name=_("subtotal"))
    # Discounts (coupons) taken off the subtotal before tax; total = subtotal - discount + tax.
    discount = models.DecimalField(**AMOUNT, default=0, verbose_name=_("discount"))
    tax = models.DecimalField(**AMOUNT, default=0, verbose_name=_("tax"))
    total = models.DecimalField(**AMOUNT, default=0, verbose_name=_("total"))
    # The customer's credit balance spent on the invoice when it was finalized.
    credits_applied = models.DecimalField(**AMOUNT, default=0, verbose_name=_("credits applied"))
    # The sum of its credit notes' totals.
    credited = models.DecimalField(**AMOUNT, default=0, verbose_name=_("credited"))
    # The money received for it: the sum of its received payments (ReceivedPayment),
    # kept under its row lock (invoices.settlement), so that a list reads what is
    # due from the row alone.
    amount_paid = models.DecimalField(
        **AMOUNT, default=0, db_default=0, verbose_name=_("amount paid")
    )
    # The moment the invoice bills as of: a period's end, a change's moment, a
    # subscription's start. What decides when a draft is due; never printed as
    # its issue date (finalized_at is: invoices.issue_dates).
    created_at = models.DateTimeField(verbose_name=_("bills as of"))
    # When the draft was really written (invoices.issue_dates.issue_moment; those
    # written before invoices 0031 were taken as written at their created_at).
    written_at = models.DateTimeField(default=timezone.now, verbose_name=_("written at"))
    # When it was issued (numbered): the real moment, whatever the close's --as-of.
    finalized_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finalized at"))
    due_at = models.DateTimeField(null=True, blank=True, verbose_name=_("due at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    voided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("voided at"))
    payment_reference = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("payment reference")
    )
    # The PDF as issued, in the default storage; written once after finalization
    # (again only by a forced repair). A draft has none: it is rendered on request.
    pdf_file = models.FileField(max_length=255, blank=True, default="", verbose_name=_("pdf file"))
    pdf_sha256 = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("pdf sha256")
    )
    pdf_rendered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("pdf rendered at"))
    # Its EN 16931 e-invoice (invoices.e_invoices): the profile it was issued in
    # (facturx, xrechnung, peppol; '' for none), the XML as validated and issued,
    # and, on a draft its validation refused, the failed rules
    # ([{rule, message, field, location}]; [] once it passes).
    e_invoice_format = models.CharField(
        max_length=16, blank=True, default="", verbose_name=_("e-invoice format")
    )
    e_invoice_xml = models.TextField(blank=True, default="", verbose_name=_("e-invoice XML"))
    e_invoice_errors = models.JSONField(
        default=list, blank=True, verbose_name=_("e-invoice errors")
    )
    # What the refused check depended on (invoices.e_invoices.issuing.check_fingerprint):
    # the close checks the draft again only once it differs.
    e_invoice_refused_for = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        verbose_name=_("e-invoice refused for"),
    )
    # When the Peppol access point took it (invoices.e_invoices.access_points).
    e_invoice_sent_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("e-invoice sent at")
    )

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-id"]
        # The admin's actions on an invoice, each a role's decision of its own.
        permissions = [
            ("finalize_invoice", "Can finalize invoices"),
            ("void_invoice", "Can void invoices (with a credit note)"),
            ("mark_paid_invoice", "Can mark invoices paid"),
            ("mark_uncollectible_invoice", "Can mark invoices uncollectible"),
            ("render_invoice", "Can re-render invoice PDFs"),
            ("rerate_invoice", "Can re-rate the usage invoices billed, and correct them"),
        ]
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
            # The last line of defence under the settlement's own check: never
            # more received than the invoice asked for.
            models.CheckConstraint(
                condition=models.Q(amount_paid=0)
                | models.Q(
                    amount_paid__gt=0,
                    amount_paid__lte=models.F("total") - models.F("credits_applied"),
                ),
                name="invoice_amount_paid_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number or gettext("draft #{number}").format(number=self.pk)

    @property
    def text(self) -> CustomerText:
        """The writer of what this invoice (and its credit notes) print, wherever
        they are shown: its PDF, emails, the portal, the admin. In the customer's
        language and time zone as invoiced (its snapshot), so all print the same."""
        return CustomerText.of_snapshot(self.customer_snapshot, self.currency)

    @property
    def period_anchor(self) -> datetime:
        """A boundary of the schedule the invoice bills by (the end of the period
        it is keyed by): every period it shows is read with it, so that a line cut
        during a day and one ending where the next period begins read alike on
        its PDF, its pages and its e-invoice (customer_text.last_day)."""
        return self.period_end

    def document_dates(self, write: CustomerText | None = None) -> str:
        """Its document_period's days as `write` writes them (its own text unless
        given), read with its schedule's anchor: '1 Nov - 28 Nov 2026'."""
        return (write or self.text).dates(*self.document_period, anchor=self.period_anchor)

    @property
    def document_period(self) -> tuple[datetime, datetime]:
        """The [start, end) the document says it bills, wherever it is shown (the
        API's period_start/period_end, its PDF, the portal, the admin, its email
        and its e-invoice's invoice period BG-14): the span its lines bill, so
        that every line's own period lies inside it."""
        return (
            self.service_start or self.period_start,
            self.service_end or self.period_end,
        )

    @property
    def amount_due(self) -> Decimal:
        """What is left to pay: the total less credits applied, credit notes and
        the payments received so far (amount_paid); nothing once paid or void. A
        draft's is its total."""
        if self.status in (self.PAID, self.VOID):
            return Decimal(0)
        return max(Decimal(0), self.total - self.credits_applied - self.credited - self.amount_paid)

    @property
    def taxable_amount(self) -> Decimal:
        return self.subtotal - self.discount


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="lines", verbose_name=_("invoice")
    )
    position = models.PositiveIntegerField(verbose_name=_("position"))
    kind = models.CharField(max_length=32, choices=LineKind.choices, verbose_name=_("kind"))
    description = models.CharField(max_length=500, verbose_name=_("description"))
    meter = models.CharField(max_length=64, blank=True, default="", verbose_name=_("meter"))
    quantity = models.DecimalField(**AMOUNT, verbose_name=_("quantity"))
    unit_price = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("unit price"))
    # How many units unit_price is for: 2.50 per 1,000,000 tokens.
    per = models.DecimalField(**AMOUNT, default=Decimal(1), verbose_name=_("per"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    period_start = models.DateTimeField(null=True, blank=True, verbose_name=_("period start"))
    period_end = models.DateTimeField(null=True, blank=True, verbose_name=_("period end"))
    # A usage line of a meter with an invoice breakdown: the meter's quantity
    # split by the property's values, {"by": "model", "groups": [{"value":
    # "gpt-4o" | null, "quantity": "1500"}]}, the rest last as {"value": null,
    # "other": true, "quantity": ...}; {} without one.
    breakdown = models.JSONField(default=dict, blank=True, verbose_name=_("breakdown"))
    # A line of a rate card's row: the row's `when`, {"model": "gpt-4o",
    # "token_type": "input"}, {} for its default row; null for no card.
    group = models.JSONField(null=True, blank=True, verbose_name=_("group"))
    # The plan version whose terms priced the line, stamped by the invoice writer
    # (invoices.services.invoice_write_draft: the version its caller passes, or the
    # line's own, LineInput.version). Per kind: fixed fees, seats, usage, overage,
    # uncovered usage, the minimum-commitment true-up, seat changes, and a commit's
    # drawdown and uplift: the version whose terms rated them (the next period's
    # fees: the version of that period; late usage: the billed period's). A plan
    # change's credit: the version left; its charge: the version taken. "Usage
    # invoiced earlier" and a period invoice's discount: the version of the part of
    # the period they close. A postpaid commit's true-up: the version the
    # subscription is on when the term ends. Null for a line no plan prices: credit
    # packs, credits and top-ups bought, a prepaid commit's invoice, a line written
    # by hand. Lines written before invoices 0042 were filled by it.
    plan_version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("plan version"),
    )
    # The code of plan_version's plan, written with it by the invoice writer (what
    # the journal's accounts and revenue by plan are keyed by); "" without one.
    # Lines written before invoices 0026 were filled by 0029.
    plan = models.CharField(
        max_length=64, blank=True, default="", db_default="", verbose_name=_("plan")
    )
    # The part of its invoice's discount taken from this line (positive, in the
    # currency's minor unit): the discount shared among the lines it was taken from
    # (all but the discount lines and the lines taking off a threshold invoice) in
    # proportion to their amounts, the shares adding up to the discount exactly
    # (common.money.split_money). Written with the discount line; 0 for a
    # line of an invoice without a discount and for the lines it was not taken
    # from. Earned revenue reads the line net of it.
    discount_share = models.DecimalField(
        **AMOUNT,
        default=Decimal(0),
        db_default=Decimal(0),
        verbose_name=_("share of the discount"),
    )
    # A line taking off what a threshold invoice billed (kind usage_invoiced): that
    # invoice (billing.usage.billed_parts.ThresholdBilled.lines); null for any
    # other line. The journal reverses what that invoice booked.
    takes_off = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="taken_off_by",
        verbose_name=_("takes off"),
    )
    # A prorated fee's share of a whole period (LineInput.share), printed as it
    # bills: '3 seats x 0.2333' (customer_text.shown_share). Null for any other line.
    share = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("share"))
    # The usage the line priced per combination of its meter's group_by values
    # (LineInput.usage_groups): [{"values": {"model": "gpt-4o", "token_type":
    # null}, "quantity": "1500"}]; [] for a line of no grouping meter and the lines
    # written before invoices 0030. Earned revenue splits the line by it.
    usage_groups = models.JSONField(default=list, blank=True, verbose_name=_("usage groups"))

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position")
        ]

    def __str__(self) -> str:
        # "Chat Growth (Nov 2026): 89.00 USD", as the invoice reads it.
        return f"{self.description}: {money_text(self.amount, self.invoice.currency)}"

    @property
    def breakdown_rows(self) -> list[tuple[str | None, bool, Decimal]]:
        """The breakdown as shown: (value, whether it is the rest, quantity) of the
        largest groups then the rest (common.groups.top_and_rest), so that a
        breakdown stored whole, before that rule, prints a bounded table too: its rest
        summed only for a meter whose groups add up (a count or a sum), as the close
        would have stored it."""
        parts = [
            (OTHER_VALUE if group.get("other") else group["value"], Decimal(group["quantity"]))
            for group in (self.breakdown or {}).get("groups") or ()
        ]
        # A breakdown written under the rule has no more groups than it shows (a
        # rest row only where it adds up): the meter is read only for an older one.
        additive = sum(value != OTHER_VALUE for value, _ in parts) <= TOP_GROUPS or (
            Meter.objects.filter(code=self.meter).values_list("aggregation", flat=True).first()
            in (Meter.COUNT, Meter.SUM)
        )
        shown, rest = top_and_rest(parts, additive=additive)
        rows = [(value, False, quantity) for value, quantity in shown]
        return rows + ([(None, True, rest)] if rest is not None else [])


class InvoiceTaxLine(models.Model):
    """The tax at one rate on an invoice, as charged: the rate's terms are copied,
    and the rate itself can never change or go once it taxed an invoice."""

    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="tax_lines", verbose_name=_("invoice")
    )
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    tax_rate = models.ForeignKey(
        "plans.TaxRate",
        on_delete=models.PROTECT,
        related_name="invoice_tax_lines",
        verbose_name=_("tax rate"),
    )
    code = models.CharField(max_length=64, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    percentage = models.DecimalField(max_digits=7, decimal_places=4, verbose_name=_("percentage"))
    taxable_amount = models.DecimalField(**AMOUNT, verbose_name=_("taxable amount"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))

    class Meta:
        verbose_name = _("invoice tax line")
        verbose_name_plural = _("invoice tax lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="invoice_tax_line_position"
            )
        ]

    def __str__(self) -> str:
        amount = money_text(self.amount, self.invoice.currency)
        return f"{self.name} {percent(self.percentage)}: {amount}"


class CreditNote(models.Model):
    """Money given back against a finalized invoice: for some of its lines, or for
    all of it when the invoice is voided. Numbered in its own gap-free sequence
    (CN-2026-000001). On an unpaid invoice it lowers what is due; on a paid one its
    total goes to the customer's credit balance (or back to the card)."""

    DUPLICATE = "duplicate"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory"
    ORDER_CHANGE = "order_change"
    OTHER = "other"
    REASONS = [
        (DUPLICATE, _("Duplicate charge")),
        (PRODUCT_UNSATISFACTORY, _("Product unsatisfactory")),
        (ORDER_CHANGE, _("Order change")),
        (OTHER, _("Other")),
    ]

    # Where its total went.
    TO_AMOUNT_DUE = "amount_due"
    TO_CREDIT_BALANCE = "credit_balance"
    TO_REFUND = "refund"
    DESTINATIONS = [
        (TO_AMOUNT_DUE, _("Lowered the invoice's amount due")),
        (TO_CREDIT_BALANCE, _("Added to the customer's credit balance")),
        (TO_REFUND, _("Refunded")),
    ]

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="credit_notes", verbose_name=_("invoice")
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="credit_notes",
        verbose_name=_("customer"),
    )
    number = models.CharField(max_length=32, unique=True, verbose_name=_("number"))
    reason = models.CharField(
        max_length=32, choices=REASONS, default=OTHER, verbose_name=_("reason")
    )
    memo = models.CharField(max_length=500, blank=True, default="", verbose_name=_("memo"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    # The seller as it was when the note was issued: its invoice's billing entity.
    billing_entity = models.ForeignKey(
        "customers.BillingEntity",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        verbose_name=_("billing entity"),
    )
    seller_snapshot = models.JSONField(default=dict, blank=True, verbose_name=_("seller snapshot"))
    subtotal = models.DecimalField(**AMOUNT, default=0, verbose_name=_("subtotal"))
    tax = models.DecimalField(**AMOUNT, default=0, verbose_name=_("tax"))
    total = models.DecimalField(**AMOUNT, verbose_name=_("total"))
    # The tax credited per rate: [{code, name, percentage, taxable_amount, amount}].
    tax_lines = models.JSONField(default=list, blank=True, verbose_name=_("tax lines"))
    # Of its total: what lowered the invoice's amount due, and what went to the
    # credit balance or back to the card (paid_back).
    to_amount_due = models.DecimalField(**AMOUNT, default=0, verbose_name=_("to amount due"))
    paid_back = models.DecimalField(**AMOUNT, default=0, verbose_name=_("paid back"))
    paid_back_to = models.CharField(
        max_length=16, choices=DESTINATIONS, blank=True, default="", verbose_name=_("paid back to")
    )
    voids_invoice = models.BooleanField(default=False, verbose_name=_("voids invoice"))
    # A refund to the card through Stripe (paid_back_to "refund"): pending until
    # Stripe answers; a refund Stripe refuses goes to the credit balance instead.
    REFUND_PENDING = "pending"
    REFUND_SUCCEEDED = "succeeded"
    REFUND_FAILED = "failed"
    REFUND_STATUSES = [
        (REFUND_PENDING, _("Pending at Stripe")),
        (REFUND_SUCCEEDED, _("Refunded")),
        (REFUND_FAILED, _("Refused by Stripe: credited to the balance instead")),
    ]
    refund_status = models.CharField(
        max_length=16,
        choices=REFUND_STATUSES,
        blank=True,
        default="",
        verbose_name=_("refund status"),
    )
    stripe_refund_id = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("stripe refund id")
    )
    refund_error = models.TextField(blank=True, default="", verbose_name=_("refund error"))
    created_at = models.DateTimeField(
        help_text=_("When it was issued."), verbose_name=_("created at")
    )
    pdf_file = models.FileField(max_length=255, blank=True, default="", verbose_name=_("pdf file"))
    pdf_sha256 = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("pdf sha256")
    )
    pdf_rendered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("pdf rendered at"))
    # Its EN 16931 e-invoice (invoices.e_invoices), for a note crediting an
    # e-invoiced invoice: the profile and the XML as validated and issued (a note
    # whose e-invoice fails validation is not issued at all).
    e_invoice_format = models.CharField(
        max_length=16, blank=True, default="", verbose_name=_("e-invoice format")
    )
    e_invoice_xml = models.TextField(blank=True, default="", verbose_name=_("e-invoice XML"))
    # When the Peppol access point took it (invoices.e_invoices.access_points).
    e_invoice_sent_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("e-invoice sent at")
    )

    class Meta:
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")
        ordering = ["-id"]
        permissions = [("issue_creditnote", "Can issue credit notes")]

    def __str__(self) -> str:
        return self.number

    @property
    def document_period(self) -> tuple[datetime | None, datetime | None]:
        """The [start, end) the note says it credits (the API's period_start/
        period_end, its e-invoice's invoice period BG-14): the span of what its
        lines credit (lines_span, the invoices' rule), each line's own period
        (the unused time a cancel or plan change gives back: 28 Nov - 1 Dec),
        else the period of the invoice line it credits; (None, None) when none
        names one."""
        return lines_span(
            line if line.period_start is not None else line.invoice_line
            for line in self.lines.all()
        )


class CreditNoteLine(models.Model):
    """The part of one invoice line a credit note gives back (before tax)."""

    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.CASCADE, related_name="lines", verbose_name=_("credit note")
    )
    position = models.PositiveIntegerField(verbose_name=_("position"))
    invoice_line = models.ForeignKey(
        InvoiceLine,
        on_delete=models.PROTECT,
        related_name="credit_note_lines",
        verbose_name=_("invoice line"),
    )
    description = models.CharField(max_length=500, verbose_name=_("description"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    # The share of a whole period the line credits (unused time of a prorated
    # fee: billing.invoicing.unused_time), as an invoice line's share; null else.
    share = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("share"))
    # The service it credits, for unused time: earned revenue takes it off over
    # that time, as the fee it credits would have earned it (billing.revenue.earned);
    # null for any other line, taken off at the note's date.
    period_start = models.DateTimeField(null=True, blank=True, verbose_name=_("period start"))
    period_end = models.DateTimeField(null=True, blank=True, verbose_name=_("period end"))

    class Meta:
        verbose_name = _("credit note line")
        verbose_name_plural = _("credit note lines")
        ordering = ["credit_note", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "position"], name="credit_note_line_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description}: {money_text(self.amount, self.credit_note.currency)}"


class CreditBalanceEntry(models.Model):
    """A movement of a customer's credit balance (money it is owed, in its
    currency): a credit note on a paid invoice, or an invoice finalized with a
    total below zero, adds to it; an invoice finalized spends it
    (credits_applied). The balance is the sum of its entries."""

    CREDIT_NOTE = "credit_note"
    APPLIED = "applied"
    NEGATIVE_INVOICE = "negative_invoice"
    KINDS = [
        (CREDIT_NOTE, _("Credit note on a paid invoice")),
        (APPLIED, _("Applied to an invoice")),
        (NEGATIVE_INVOICE, _("Invoice whose total is below zero")),
    ]

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="credit_balance_entries",
        verbose_name=_("customer"),
    )
    kind = models.CharField(max_length=16, choices=KINDS, verbose_name=_("kind"))
    amount = models.DecimalField(
        **AMOUNT, help_text=_("Positive: added; negative: spent."), verbose_name=_("amount")
    )
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    credit_note = models.OneToOneField(
        CreditNote,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="balance_entry",
        verbose_name=_("credit note"),
    )
    invoice = models.OneToOneField(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="balance_entry",
        verbose_name=_("invoice"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("credit balance entry")
        verbose_name_plural = _("credit balance entries")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {money_text(self.amount, self.currency)}"


# Payments through Stripe: their models live in invoices.payment_models.
# Each document emailed to its customer: invoices.email_models.
from invoices.dunning_models import DunningPolicy, DunningRun, DunningStep  # noqa: E402
from invoices.email_models import DocumentEmail  # noqa: E402
from invoices.payment_models import (  # noqa: E402
    Payment,
    Purchase,
    ReceivedPayment,
    StripeEvent,
)
from invoices.render_models import PdfRender  # noqa: E402

__all__ = [
    "AMOUNT",
    "CreditBalanceEntry",
    "CreditNote",
    "CreditNoteLine",
    "DocumentEmail",
    "DunningPolicy",
    "DunningRun",
    "DunningStep",
    "Invoice",
    "InvoiceLine",
    "InvoiceSequence",
    "InvoiceTaxLine",
    "Payment",
    "PdfRender",
    "Purchase",
    "ReceivedPayment",
    "StripeEvent",
]
