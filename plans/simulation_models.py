"""Price simulations: a past period's usage rated at another version, and
their rows (billing.simulation.engine)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.money import AMOUNT


class PriceSimulation(models.Model):
    """A price simulation: customers' usage of a past period rated at their own
    version and at another (usually draft) one (billing.simulation.engine). It writes
    no invoice; its rows and sums are the answer."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUSES = [
        (PENDING, _("Pending")),
        (RUNNING, _("Running")),
        (DONE, _("Done")),
        (FAILED, _("Failed")),
    ]

    version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        related_name="simulations",
        verbose_name=_("version"),
    )
    period_start = models.DateTimeField(verbose_name=_("period start"))
    period_end = models.DateTimeField(verbose_name=_("period end"))
    selection = models.CharField(
        max_length=500, help_text=_("Whom it rates, in words."), verbose_name=_("selection")
    )
    # The customers to rate, fixed when the simulation is asked for.
    customer_ids = models.JSONField(default=list, verbose_name=_("customer ids"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, db_index=True, verbose_name=_("status")
    )
    total_customers = models.PositiveIntegerField(default=0, verbose_name=_("total customers"))
    done_count = models.PositiveIntegerField(default=0, verbose_name=_("done count"))
    current_sum = models.DecimalField(**AMOUNT, default=Decimal(0), verbose_name=_("current sum"))
    simulated_sum = models.DecimalField(
        **AMOUNT, default=Decimal(0), verbose_name=_("simulated sum")
    )
    difference_sum = models.DecimalField(
        **AMOUNT, default=Decimal(0), verbose_name=_("difference sum")
    )
    error = models.TextField(blank=True, default="", verbose_name=_("error"))
    # The error in the admin's other languages (common.stored_words).
    error_words = models.JSONField(
        blank=True, default=dict, verbose_name=_("error in other languages")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("price simulation")
        verbose_name_plural = _("price simulations")
        ordering = ["-id"]
        permissions = [("run_pricesimulation", "Can run price simulations")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(done_count__lte=models.F("total_customers")),
                name="price_simulation_done_lte_total",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="price_simulation_period_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"Simulation #{self.pk} of {self.version_id} ({self.status})"


class PriceSimulationRow(models.Model):
    """One customer's answer: the period at its own version and at the simulated one."""

    simulation = models.ForeignKey(
        PriceSimulation, on_delete=models.CASCADE, related_name="rows", verbose_name=_("simulation")
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    current_version_label = models.CharField(
        max_length=255, verbose_name=_("current version label")
    )
    current_total = models.DecimalField(**AMOUNT, verbose_name=_("current total"))
    simulated_total = models.DecimalField(**AMOUNT, verbose_name=_("simulated total"))
    difference = models.DecimalField(**AMOUNT, verbose_name=_("difference"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))

    class Meta:
        ordering = ["simulation", "id"]
        constraints = [
            # A simulation run twice (a task delivered again) rates each customer once.
            models.UniqueConstraint(
                fields=["simulation", "customer"], name="price_simulation_row_once_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.current_total} -> {self.simulated_total}"


# Features a plan grants (entitlements) and what usage costs, in modules of their own.
