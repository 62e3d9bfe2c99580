"""Payments through Stripe (invoices.collection): purchases of credits or prepaid
money, the payments collecting invoices and purchases, and Stripe's webhook
events. Without STRIPE_API_KEY these stay empty: payments are recorded by hand on
the invoice (payment_reference). Part of the invoices app's models (imported by
invoices.models)."""

from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from common.money import AMOUNT, format_money


class Purchase(models.Model):
    """Credits or prepaid money bought through Stripe. Nothing is granted while it
    is pending: the block and its (paid) purchase invoice are written when the
    payment succeeds, at the price recorded here when it was ordered."""

    CREDIT_PACK = "credit_pack"
    TOP_UP = "top_up"
    KINDS = [(CREDIT_PACK, _("Credit pack")), (TOP_UP, _("Money top-up"))]

    CHECKOUT = "checkout"
    CHARGE = "charge"
    AUTO_TOP_UP = "auto_top_up"
    CHANNELS = [
        (CHECKOUT, _("Stripe Checkout link")),
        (CHARGE, _("Saved payment method, charged at once")),
        (AUTO_TOP_UP, _("Auto top-up, saved payment method")),
    ]

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"
    STATUSES = [
        (PENDING, _("Pending payment")),
        (PAID, _("Paid and granted")),
        (FAILED, _("Payment failed")),
        (CANCELED, pgettext_lazy("payment", "Canceled")),
    ]

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="purchases",
        verbose_name=_("customer"),
    )
    kind = models.CharField(max_length=16, choices=KINDS, verbose_name=_("kind"))
    channel = models.CharField(max_length=16, choices=CHANNELS, verbose_name=_("channel"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, db_index=True, verbose_name=_("status")
    )
    pack = models.ForeignKey(
        "plans.CreditPack",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("pack"),
    )
    # What a pack grants, as sold (a later change of the pack does not apply).
    credits = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("credits"))
    # The meters what it grants pays for, as sold (empty: every meter).
    applies_to = models.JSONField(default=list, blank=True, verbose_name=_("applies to"))
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    # The tax charged on it with its amount (Stripe collects amount + tax), at the
    # customer's rates when it was ordered; its invoice is taxed at those rates.
    tax = models.DecimalField(**AMOUNT, default=0, verbose_name=_("tax"))
    tax_rate_codes = models.JSONField(default=list, blank=True, verbose_name=_("tax rate codes"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    # Written when the payment succeeds.
    block = models.OneToOneField(
        "wallets.CreditBlock",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchase",
        verbose_name=_("block"),
    )
    invoice = models.OneToOneField(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchase",
        verbose_name=_("invoice"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    closed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When it failed or was canceled."),
        verbose_name=_("closed at"),
    )

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="purchase_amount"),
            # Auto top-up asks for one pack at a time: the next waits for its outcome.
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(channel="auto_top_up", status="pending"),
                name="purchase_one_pending_auto_top_up",
            ),
        ]

    def __str__(self) -> str:
        return gettext("purchase #{number} ({kind}, {status})").format(
            number=self.pk, kind=self.get_kind_display(), status=self.get_status_display().lower()
        )


class Payment(models.Model):
    """Money collected through Stripe for one finalized invoice or one purchase:
    Stripe's ids, the attempts made and the last error, so that every failure
    shows in the admin.

    `pending` waits for its next attempt (at next_attempt_at); `attempting` has an
    attempt under way (next_attempt_at is then its lease: an attempt whose worker
    died is made again, with the same idempotency key); `processing` waits for
    Stripe's webhook (a Checkout link, or a payment Stripe has not settled yet)."""

    PENDING = "pending"
    ATTEMPTING = "attempting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    STATUSES = [
        (PENDING, _("Pending")),
        (ATTEMPTING, _("Attempt under way")),
        (PROCESSING, _("Processing at Stripe")),
        (SUCCEEDED, _("Succeeded")),
        (FAILED, _("Failed")),
        (CANCELED, pgettext_lazy("payment", "Canceled")),
    ]
    OPEN = (PENDING, ATTEMPTING, PROCESSING)

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("customer"),
    )
    invoice = models.OneToOneField(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment",
        verbose_name=_("invoice"),
    )
    purchase = models.OneToOneField(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment",
        verbose_name=_("purchase"),
    )
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, db_index=True, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    max_attempts = models.PositiveIntegerField(default=1, verbose_name=_("max attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))
    # Stripe's decline code of the last declined attempt; a hard decline
    # (HARD_DECLINES) is not tried again (invoices.collection).
    decline_code = models.CharField(
        max_length=64, blank=True, default="", db_default="", verbose_name=_("decline code")
    )
    stripe_customer_id = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("stripe customer id")
    )
    stripe_payment_intent_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        verbose_name=_("stripe payment intent id"),
    )
    stripe_checkout_session_id = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("stripe checkout session id")
    )
    checkout_url = models.URLField(
        max_length=2000, blank=True, default="", verbose_name=_("checkout url")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("succeeded at"))

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(invoice__isnull=False, purchase__isnull=True)
                | models.Q(invoice__isnull=True, purchase__isnull=False),
                name="payment_for_invoice_or_purchase",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "attempting"]),
                name="payment_due",
            )
        ]

    def __str__(self) -> str:
        if self.invoice_id:
            target = gettext("invoice {number}").format(number=self.invoice)
        else:
            target = gettext("purchase #{number}").format(number=self.purchase_id)
        return gettext("payment #{number} for {target} ({status})").format(
            number=self.pk, target=target, status=self.get_status_display().lower()
        )


class ReceivedPayment(models.Model):
    """Money received for one invoice, as recorded: by hand (a bank transfer, a
    cheque, cash, a card charged outside Stripe: the API's POST
    /invoices/{id}/payments and /pay, the admin's invoice page and Mark paid), or
    through Stripe (invoices.collection). Append-only: the invoice's amount_paid
    is their sum, kept under the invoice's row lock (invoices.settlement). An
    invoice its customer's credit balance paid whole has none."""

    BANK_TRANSFER = "bank_transfer"
    CHECK = "check"
    CASH = "cash"
    CARD_OUTSIDE_STRIPE = "card_outside_stripe"
    OTHER = "other"
    STRIPE = "stripe"
    METHODS = [
        (BANK_TRANSFER, _("Bank transfer")),
        (CHECK, _("Cheque")),
        (CASH, _("Cash")),
        (CARD_OUTSIDE_STRIPE, _("Card, outside Stripe")),
        (OTHER, _("Other")),
        (STRIPE, _("Stripe")),
    ]
    # What a person records (the API, the admin); a Stripe payment only comes
    # from Stripe.
    RECORDED_BY_HAND = (BANK_TRANSFER, CHECK, CASH, CARD_OUTSIDE_STRIPE, OTHER)

    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        related_name="received_payments",
        verbose_name=_("invoice"),
    )
    amount = models.DecimalField(**AMOUNT, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    method = models.CharField(max_length=32, choices=METHODS, verbose_name=_("method"))
    reference = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("reference")
    )
    # When the money arrived (the journal's date for it); recorded_at: when we
    # were told.
    received_at = models.DateTimeField(verbose_name=_("received at"))
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))
    # Whether it left nothing to pay: the invoice became paid with it.
    completed_invoice = models.BooleanField(default=False, verbose_name=_("completed the invoice"))

    class Meta:
        verbose_name = _("received payment")
        verbose_name_plural = _("received payments")
        ordering = ["invoice", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="received_payment_amount"
            ),
        ]

    def __str__(self) -> str:
        return gettext("{amount} {currency} received ({method})").format(
            amount=format_money(self.amount, self.currency),
            currency=self.currency,
            method=self.get_method_display(),
        )


class StripeEvent(models.Model):
    """A Stripe webhook event, stored by its id before it is processed: however
    often Stripe delivers it, and in whatever order, it is processed once."""

    id = models.CharField(max_length=255, primary_key=True, verbose_name=_("id"))
    type = models.CharField(max_length=100, db_index=True, verbose_name=_("type"))
    # When Stripe created the event.
    created = models.DateTimeField(verbose_name=_("created"))
    livemode = models.BooleanField(default=False, verbose_name=_("livemode"))
    payload = models.JSONField(verbose_name=_("payload"))
    received_at = models.DateTimeField(verbose_name=_("received at"))
    deliveries = models.PositiveIntegerField(
        default=1, help_text=_("How often Stripe sent it."), verbose_name=_("deliveries")
    )
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))
    outcome = models.CharField(max_length=500, blank=True, default="", verbose_name=_("outcome"))
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
