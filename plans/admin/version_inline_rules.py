"""What the inlines of a plan version's admin page share (charges and their
tiers, features): a published or archived version's rows are frozen, and which
of an inline's forms become rows when the page is saved."""

from django import forms

from plans.models import Charge, PlanVersion


def version_of(obj) -> PlanVersion | None:
    if isinstance(obj, PlanVersion):
        return obj
    if isinstance(obj, Charge) and obj.version_id is not None:
        return obj.version
    return None


def is_frozen(obj) -> bool:
    version = version_of(obj)
    return version is not None and version.pk is not None and version.status != PlanVersion.DRAFT


class FrozenWhenPublishedMixin:
    """Inline rows of a published or archived version can't be added, changed or deleted."""

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not is_frozen(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not is_frozen(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not is_frozen(obj)


def kept_forms(formset) -> list[forms.Form]:
    """The forms that will become rows: not deleted, and not blank extra forms."""
    return [
        form
        for form in formset.forms
        if not formset._should_delete_form(form) and (form.instance.pk or form.has_changed())
    ]
