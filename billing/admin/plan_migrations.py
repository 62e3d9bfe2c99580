"""Bulk migrations in the admin: the migration form and its confirmation, and the
page of a PlanMigration run by a task, which shows its progress."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import timezone

from billing.core.admin_forms import RecordAdmin
from billing.core.money import format_money
from billing.models import (
    PlanMigration,
    PlanMigrationItem,
    Subscription,
)
from billing.subscriptions import bulk_migration
from plans.models import PlanVersion

MIGRATE_PERMISSION = "billing.migrate_subscription"


class PlanVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.plan.code} v{obj.number}: {obj.plan.name} ({obj.currency})"


class MigrationForm(forms.Form):
    """Where to and when. The selected subscriptions travel as one hidden list
    of ids: a thousand checkboxes would pass Django's limit on fields."""

    subscriptions = forms.CharField(widget=forms.HiddenInput)
    to_version = PlanVersionChoiceField(
        queryset=PlanVersion.objects.filter(status=PlanVersion.PUBLISHED)
        .select_related("plan")
        .order_by("plan__code", "number"),
        label="Target version",
        help_text="A published version, of the same plan or another.",
    )
    effective = forms.ChoiceField(
        choices=PlanMigration.EFFECTIVE,
        initial=PlanMigration.IMMEDIATE,
        widget=forms.RadioSelect,
    )
    at = forms.DateTimeField(
        required=False,
        label="At (UTC)",
        help_text="For a change now: the moment it applies, within each subscription's "
        "period. Empty: now, fixed when you preview.",
    )

    def clean_subscriptions(self) -> list[int]:
        try:
            ids = [int(part) for part in self.cleaned_data["subscriptions"].split(",") if part]
        except ValueError:
            raise ValidationError("not a list of subscription ids") from None
        if not ids:
            raise ValidationError("select at least one subscription")
        return list(dict.fromkeys(ids))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("effective") == PlanMigration.PERIOD_END:
            cleaned["at"] = None
        elif "at" in cleaned and cleaned["at"] is None:
            cleaned["at"] = timezone.now().replace(microsecond=0)
        return cleaned


class MigrationConfirmForm(MigrationForm):
    """The preview's hidden form: the same choices with the moment fixed, the
    preview's fingerprint, and the token that makes a second submission of the
    same preview the same migration."""

    token = forms.UUIDField()
    digest = forms.CharField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget = forms.HiddenInput()


def migration_count_ids(form: MigrationForm) -> int:
    raw = form.data.get("subscriptions") if form.is_bound else form.initial.get("subscriptions")
    return len([part for part in (raw or "").split(",") if part])


def migration_preview(cleaned: dict) -> bulk_migration.MigrationPreview:
    subscriptions = list(
        Subscription.objects.filter(pk__in=cleaned["subscriptions"])
        .select_related("customer", "version__plan")
        .order_by("id")
    )
    return bulk_migration.plan_migration_preview(
        subscriptions=subscriptions,
        version=cleaned["to_version"],
        effective=cleaned["effective"],
        at=cleaned["at"],
    )


class PlanMigrationItemRow:
    """One item as the migration's page shows it."""

    def __init__(self, item: PlanMigrationItem, currency: str):
        self.item = item
        self.invoice_total = (
            format_money(item.invoice.total, item.invoice.currency) if item.invoice else ""
        )
        self.previewed = {
            name: format_money(value, currency)
            for name in ("usage", "credit", "charge", "next_fees", "total")
            if (value := getattr(item, f"preview_{name}")) is not None
        }


@admin.register(PlanMigration)
class PlanMigrationAdmin(RecordAdmin):
    """A bulk migration's progress and per-subscription results. Read-only; seen
    by whoever may migrate subscriptions."""

    fields = [
        "to_version",
        "effective",
        "at",
        "status",
        "progress",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_display = ["id", *fields]
    list_filter = ["status", "effective"]
    list_select_related = ["to_version__plan", "created_by"]
    readonly_fields = fields
    change_form_template = "admin/billing/planmigration/change_form.html"
    actions = ["run_again"]

    @admin.display(description="items finished")
    def progress(self, obj):
        return f"{obj.done_count} of {obj.total}"

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(MIGRATE_PERMISSION)

    def has_migrate_permission(self, request) -> bool:
        return request.user.has_perm(MIGRATE_PERMISSION)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        migration = get_object_or_404(
            PlanMigration.objects.select_related("to_version__plan"), pk=object_id
        )
        items = migration.items.select_related(
            "subscription__customer", "from_version__plan", "invoice"
        ).order_by("id")
        counts = dict(
            migration.items.order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        currency = migration.to_version.currency
        context = {
            "migration": migration,
            "refreshing": migration.status in (PlanMigration.PENDING, PlanMigration.RUNNING),
            "percent": 100 * migration.done_count // migration.total if migration.total else 100,
            "counts": [
                (label, counts.get(status, 0)) for status, label in PlanMigrationItem.STATUSES
            ],
            "items": [PlanMigrationItemRow(item, currency) for item in items],
            "immediate": migration.effective == PlanMigration.IMMEDIATE,
            "currency": currency,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.action(description="Run again (items done are left alone)", permissions=["migrate"])
    def run_again(self, request, queryset):
        for migration in queryset:
            bulk_migration.plan_migration_rerun(migration=migration)
        self.message_user(request, f"{len(queryset)} migration(s) sent to run again.")
