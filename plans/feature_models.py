"""Features a plan grants (entitlements): catalog rows finance edits, and the
value each plan version grants of them. A published version's grants are
frozen with the rest of its terms (plans.services refuses every write)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.history import audit_history
from common.vocabulary import FeatureKind
from plans.feature_text import value_text

CODE_MAX_LENGTH = 64


class Feature(models.Model):
    """A capability the product gates by plan: `boolean` (SSO: on or off) or
    `config` (a value: a projects limit, the models one may call)."""

    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    kind = models.CharField(max_length=16, choices=FeatureKind.choices, verbose_name=_("kind"))
    description = models.TextField(blank=True, default="", verbose_name=_("description"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("feature")
        verbose_name_plural = _("features")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class VersionFeature(models.Model):
    """A feature a plan version grants, with its value: true or false for a
    boolean feature; a number, a text or a list of texts for a config one."""

    version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.CASCADE,
        related_name="features",
        verbose_name=_("version"),
    )
    feature = models.ForeignKey(
        Feature, on_delete=models.PROTECT, related_name="grants", verbose_name=_("feature")
    )
    value = models.JSONField(verbose_name=_("value"))

    history = audit_history()

    class Meta:
        verbose_name = _("version feature")
        verbose_name_plural = _("version features")
        ordering = ["version", "feature__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "feature"], name="version_feature_one_per_feature"
            ),
        ]

    def __str__(self) -> str:
        # As the admin shows it (above an inline row, in a history): 'models: gpt-4o, o1'.
        return f"{self.feature.code}: {value_text(self.value)}"
