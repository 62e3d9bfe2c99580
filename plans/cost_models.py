"""What usage costs the seller (re-exported by plans.models): per meter and
values of its group_by properties, a unit cost from a moment on. Rows are never
edited: a later row for the same meter and `when` takes over from its own
`effective_from` (a provider's price cut), so the history stays. A wrong row is
superseded by a correction from its own start (`supersedes`): the correction
costs the hours the wrong row covered, and the wrong row stays in the history. Its rules are
plans.cost_rules; billing.margins reads them."""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.money import AMOUNT


class CostRate(models.Model):
    meter = models.ForeignKey("plans.Meter", on_delete=models.PROTECT, related_name="cost_rates")
    # Values of some of the meter's group_by properties, {"model": "gpt-4o"};
    # {} the default. Matched as rate cards' rows (plans.rate_card_pricing).
    when = models.JSONField(default=dict, blank=True)
    unit_cost = models.DecimalField(**AMOUNT, help_text="What `per` units cost, e.g. 1.25.")
    per = models.DecimalField(
        **AMOUNT, default=Decimal(1), help_text="How many units unit_cost is for: 1000000."
    )
    currency = models.CharField(max_length=3)
    # On a UTC hour: costs are computed from the hourly rollups.
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    # The wrong row this one corrects, over all the hours it covered: it is
    # kept, and costs nothing any more (plans.cost_rules.cost_rate_supersede).
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        help_text="The wrong rate this one corrects from its start.",
    )

    class Meta:
        verbose_name = _("cost rate")
        verbose_name_plural = _("cost rates")
        ordering = ["meter_id", "effective_from", "id"]
        indexes = [models.Index(fields=["meter", "effective_from"], name="cost_rate_meter_from")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unit_cost__gte=0), name="cost_rate_unit_cost"
            ),
            models.CheckConstraint(condition=models.Q(per__gt=0), name="cost_rate_per_positive"),
        ]

    def __str__(self) -> str:
        values = ", ".join(f"{name} {value}" for name, value in sorted(self.when.items()))
        return f"{self.meter_id} {values or 'default'}: {self.unit_cost}/{self.per} {self.currency}"
