"""The features a plan version grants, as an inline of its admin page beside its
charges: a feature from the catalog and its value, typed as text
(plans.feature_text) and checked by the feature's kind. Saved as the charges
are, with the whole version through plans.services.plan_version_update; read-
only once the version is published."""

import nested_admin
from django import forms
from django.contrib import admin
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from common.vocabulary import FeatureKind
from plans import selectors
from plans.admin.version_inline_rules import FrozenWhenPublishedMixin, is_frozen, kept_forms
from plans.feature_grants import (
    MAX_FEATURES,
    MAX_LIST,
    MAX_TEXT,
    BadValue,
    FeatureGrant,
    feature_value,
)
from plans.feature_text import VALUE_HELP, value_from_text, value_input, value_text
from plans.models import Feature, PlanVersion, VersionFeature


class FeatureChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, feature: Feature) -> str:
        if feature.kind == FeatureKind.BOOLEAN:
            takes = pgettext("what a boolean feature takes", "yes / no")
        else:
            takes = pgettext("what a config feature takes", "a value")
        return f"{feature.name} ({feature.code}: {takes})"


class VersionFeatureForm(forms.ModelForm):
    """One feature the version grants; `value` is cleaned to the normalized value."""

    feature = FeatureChoiceField(queryset=Feature.objects.order_by("name"), label=_("Feature"))
    value = forms.CharField(
        max_length=MAX_LIST * (MAX_TEXT + 2) + 2,
        help_text=VALUE_HELP,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": _("yes · 50 · gpt-4o, o1")}),
        label=_("Value"),
    )

    class Meta:
        model = VersionFeature
        fields = ["feature", "value"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["value"] = value_input(self.instance.value)

    def clean(self):
        cleaned = super().clean()
        feature, text = cleaned.get("feature"), cleaned.get("value")
        if feature is None or text is None:
            return cleaned
        try:
            if self._unchanged(feature, text):
                # As stored: a value the text box cannot say exactly (a text
                # holding a comma) survives a save of the page.
                cleaned["value"] = feature_value(feature.kind, self.instance.value)
            else:
                cleaned["value"] = value_from_text(feature.kind, text)
        except BadValue as bad:
            self.add_error("value", str(bad))
        return cleaned

    def _unchanged(self, feature: Feature, text: str) -> bool:
        return (
            self.instance.pk is not None
            and feature.pk == self.instance.feature_id
            and text == value_input(self.instance.value).strip()
        )

    def validate_unique(self):
        # A feature granted twice is reported by the formset, in words; the
        # save replaces every row of the version anyway.
        pass

    def grant(self) -> FeatureGrant:
        return FeatureGrant(self.cleaned_data["feature"].code, self.cleaned_data["value"])


class VersionFeatureFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Checks the version's grants as a whole: one row per feature, at most
    MAX_FEATURES of them."""

    # Set by FeatureInline.get_formset: whether the user may change the grants.
    editable = True

    def validate_unique(self):
        pass

    def clean(self):
        super().clean()
        if is_frozen(self.instance) or not self.editable or any(self.errors):
            return
        forms_kept = kept_forms(self)
        if len(forms_kept) > MAX_FEATURES:
            raise forms.ValidationError(
                gettext("A version grants at most {count} features.").format(count=MAX_FEATURES)
            )
        seen: set[int] = set()
        for form in forms_kept:
            feature = form.cleaned_data["feature"]
            if feature.pk in seen:
                form.add_error(
                    "feature",
                    gettext("{feature} is granted above already: one row per feature.").format(
                        feature=feature.name
                    ),
                )
            seen.add(feature.pk)


class FeatureInline(FrozenWhenPublishedMixin, nested_admin.NestedTabularInline):
    model = VersionFeature
    form = VersionFeatureForm
    formset = VersionFeatureFormSet
    extra = 0
    verbose_name = _("feature")
    verbose_name_plural = _("features (what the version grants)")
    readonly_fields = ["feature_name", "granted_value"]

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return ["feature", "value"]
        return ["feature_name", "granted_value"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.editable = self.has_change_permission(request, obj)
        return formset

    @admin.display(description=_("feature"))
    def feature_name(self, grant: VersionFeature) -> str:
        return f"{grant.feature.name} ({grant.feature.code})"

    @admin.display(description=_("value"))
    def granted_value(self, grant: VersionFeature) -> str:
        return value_text(grant.value)


def version_grants(version: PlanVersion, formsets) -> tuple[FeatureGrant, ...]:
    """What the saved page grants: the features inline's rows, or the version's
    grants as stored when the user may not change them (the inline is read-only
    or not on the page)."""
    formset = next((f for f in formsets if f.model is VersionFeature), None)
    if formset is not None and formset.editable:
        return tuple(form.grant() for form in kept_forms(formset))
    return selectors.version_spec(version=version).features
