"""Dunning: what is done about an invoice left unpaid, and when.

A policy lists steps by days from the invoice's due date (negative: before it):
remind the customer, ask Stripe again, restrict the account (metered usage
refused), suspend it (features refused too). Each step runs once per invoice
(a DunningRun row, unique on the invoice and the step), on the beat
(invoices.dunning). What the steps did sets the customer's standing
(invoices.standing), which `check` reads with the customer."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.history import audit_history

# How far from the due date a step may be, in days.
MIN_DAYS_AFTER_DUE = -90
MAX_DAYS_AFTER_DUE = 365
MAX_STEPS = 20
# The code a customer's `dunning_policy` takes for no dunning at all.
NO_DUNNING = "none"


class DunningPolicy(models.Model):
    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    is_default = models.BooleanField(
        default=False,
        help_text=_("Followed for every customer that has no policy of its own."),
        verbose_name=_("default"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("dunning policy")
        verbose_name_plural = _("dunning policies")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_dunning"
            ),
            models.CheckConstraint(condition=~Q(code=NO_DUNNING), name="dunning_code_not_none"),
        ]

    def __str__(self) -> str:
        return self.name


class DunningStep(models.Model):
    REMIND = "remind"
    RETRY_PAYMENT = "retry_payment"
    RESTRICT = "restrict"
    SUSPEND = "suspend"
    ACTIONS = [
        (REMIND, _("Remind the customer")),
        (RETRY_PAYMENT, _("Retry the payment")),
        (RESTRICT, _("Restrict metered usage")),
        (SUSPEND, _("Suspend the account")),
    ]
    # Steps of the same day run in this order.
    ORDER = (REMIND, RETRY_PAYMENT, RESTRICT, SUSPEND)

    policy = models.ForeignKey(
        DunningPolicy, on_delete=models.CASCADE, related_name="steps", verbose_name=_("policy")
    )
    days_after_due = models.IntegerField(
        validators=[MinValueValidator(MIN_DAYS_AFTER_DUE), MaxValueValidator(MAX_DAYS_AFTER_DUE)],
        help_text=_("Days from the invoice's due date, in the customer's time zone; -3: before."),
        verbose_name=_("days after due"),
    )
    action = models.CharField(max_length=16, choices=ACTIONS, verbose_name=_("action"))

    class Meta:
        verbose_name = _("dunning step")
        verbose_name_plural = _("dunning steps")
        ordering = ["policy", "days_after_due", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "days_after_due", "action"], name="dunning_step_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.days_after_due:+d})"


class DunningRun(models.Model):
    """A step run (or passed over) for one invoice: written once, never again."""

    DONE = "done"
    SKIPPED = "skipped"
    OUTCOMES = [(DONE, _("Done")), (SKIPPED, _("Skipped"))]

    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        related_name="dunning_runs",
        verbose_name=_("invoice"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="dunning_runs",
        verbose_name=_("customer"),
    )
    policy = models.ForeignKey(
        DunningPolicy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
        verbose_name=_("policy"),
    )
    action = models.CharField(max_length=16, choices=DunningStep.ACTIONS, verbose_name=_("action"))
    days_after_due = models.IntegerField(verbose_name=_("days after due"))
    # When the step was due (the due date plus its days, in the customer's zone).
    due_at = models.DateTimeField(verbose_name=_("due at"))
    ran_at = models.DateTimeField(verbose_name=_("ran at"))
    outcome = models.CharField(max_length=8, choices=OUTCOMES, verbose_name=_("outcome"))
    detail = models.TextField(blank=True, default="", verbose_name=_("detail"))

    class Meta:
        verbose_name = _("dunning step run")
        verbose_name_plural = _("dunning step runs")
        ordering = ["-ran_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "action", "days_after_due"], name="dunning_run_once"
            ),
        ]
        indexes = [models.Index(fields=["customer", "action"], name="dunning_run_customer")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.days_after_due:+d}) on {self.invoice}"
