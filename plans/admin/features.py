"""The feature catalog (entitlements) in the admin, beside meters and plans.
Created and changed through plans.features: a feature's code never changes,
its kind not once a plan version grants it, and a feature a version grants or
a subscription's deal names is never deleted."""

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from billing.subscriptions.deals import features_named_by_deals
from common.admin_deletion import RefusedDeletionMixin
from common.admin_forms import ServiceValidatedForm, adopt
from common.admin_history import AuditHistoryAdmin
from plans import features
from plans.models import Feature

CHANGEABLE = ("name", "kind", "description")


class FeatureForm(ServiceValidatedForm):
    class Meta:
        model = Feature
        fields = ["code", "name", "kind", "description"]
        help_texts = {
            "code": _("What the product checks (sso, max_projects); it never changes."),
            "kind": _("Fixed once a plan version grants the feature."),
        }

    def validate_domain(self, cleaned):
        if self.instance.pk is None:
            features.validate_feature(
                code=cleaned.get("code"), name=cleaned.get("name"), kind=cleaned.get("kind")
            )
            return
        # The code (and, once granted, the kind) is read-only: not in `cleaned`.
        kind = cleaned.get("kind", self.instance.kind)
        features.validate_feature(code=self.instance.code, name=cleaned.get("name"), kind=kind)
        features.feature_kind_check(
            feature=self.instance,
            kind=kind,
            named_by_deals=bool(features_named_by_deals([self.instance.code])),
        )


def is_granted(feature: Feature) -> bool:
    """Whether a plan version grants the feature (then its kind is fixed)."""
    return feature.grants.exists()


def deletion_refusal(feature: Feature) -> str | None:
    """Why a feature may not be deleted, by name: the plan versions that grant
    it, a subscription's deal that names it; None when nothing does."""
    if feature.pk is None:
        return None
    name = feature.name or feature.code
    versions = [grant.version for grant in feature.grants.select_related("version__plan")]
    reasons = []
    if versions:
        names = ", ".join(sorted(str(version) for version in versions))
        reasons.append(f"{name} is granted by {names}")
    if features_named_by_deals([feature.code]):
        reasons.append(f"{name} is named by a subscription's deal")
    if not reasons:
        return None
    return f"{' and '.join(reasons)}: it stays while they grant it."


@admin.register(Feature)
class FeatureAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = FeatureForm
    fields = ["code", "name", "kind", "description"]
    list_display = ["code", "name", "kind", "version_count"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("grants"))

    @admin.display(description=_("versions granting it"), ordering="version_total")
    def version_count(self, feature: Feature) -> int:
        return feature.version_total

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["code", "kind"] if is_granted(obj) else ["code"]

    def deletion_refusal(self, obj):
        return deletion_refusal(obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in CHANGEABLE if name in data}
            dealt = bool(features_named_by_deals([obj.code]))
            adopt(obj, features.feature_update(feature=obj, named_by_deals=dealt, **changes))
        else:
            adopt(
                obj,
                features.feature_create(
                    code=data["code"],
                    name=data["name"],
                    kind=data["kind"],
                    description=data.get("description") or "",
                ),
            )
