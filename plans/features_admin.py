"""The feature catalog (entitlements) in the admin, beside meters and plans.
Created and changed through plans.features: a feature's code never changes,
its kind not once a plan version grants it, and a feature a version grants or
a subscription's deal names is never deleted."""

from django.contrib import admin
from django.db.models import Count

from billing.core.admin_forms import ServiceValidatedForm, adopt
from billing.core.admin_history import AuditHistoryAdmin
from billing.subscriptions.deals import features_named_by_deals
from plans import features
from plans.models import Feature

CHANGEABLE = ("name", "kind", "description")


class FeatureForm(ServiceValidatedForm):
    class Meta:
        model = Feature
        fields = ["code", "name", "kind", "description"]
        help_texts = {
            "code": "What the product checks (sso, max_projects); it never changes.",
            "kind": "Fixed once a plan version grants the feature.",
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


def in_use(chosen) -> list[str]:
    """Why each of these features may not be deleted: 'sso: granted by 2 plan
    version(s)', 'audit_log: named by a subscription's deal'."""
    chosen = list(chosen)
    dealt = features_named_by_deals(feature.code for feature in chosen)
    reasons = []
    for feature in chosen:
        versions = feature.grants.count()
        if versions:
            reasons.append(f"{feature.code}: granted by {versions} plan version(s)")
        if feature.code in dealt:
            reasons.append(f"{feature.code}: named by a subscription's deal")
    return reasons


@admin.register(Feature)
class FeatureAdmin(AuditHistoryAdmin):
    form = FeatureForm
    fields = ["code", "name", "kind", "description"]
    list_display = ["code", "name", "kind", "version_count"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("grants"))

    @admin.display(description="versions granting it", ordering="version_total")
    def version_count(self, feature: Feature) -> int:
        return feature.version_total

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["code", "kind"] if is_granted(obj) else ["code"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and in_use([obj]):
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        """The list's delete action says why a feature in use stays, rather than
        calling it a permission the user lacks (has_delete_permission refuses it)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        reasons = in_use(objs)
        if reasons:
            perms_needed.discard(Feature._meta.verbose_name)
            protected = [*protected, *reasons]
        return deleted, counts, perms_needed, protected

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
