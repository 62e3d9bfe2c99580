"""Bulk migrations in the admin: the subscriptions' action (a form, a preview of
what each change invoices, then the shared confirmation page saying what will
happen and to how many customers; only its confirmed POST records the
migration), and the page of a PlanMigration run by a task, showing its progress."""

import uuid
from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.plan_migration_words import (
    feature_names,
    features_change_text,
    finalization_text,
    migration_consequences,
)
from billing.models import (
    PlanMigration,
    PlanMigrationItem,
    Subscription,
)
from billing.subscriptions import bulk_migration
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_fields import moment_text
from common.admin_forms import RecordAdmin, money_text, quantity_text
from common.stored_words import in_readers_language
from plans.models import PlanVersion
from plans.selectors import versions_by_plan_name

MIGRATE_PERMISSION = "billing.migrate_subscription"


class PlanVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj!s} ({obj.currency})"


class MigrationForm(forms.Form):
    """Where to and when. The selected subscriptions travel as one hidden list
    of ids: a thousand checkboxes would pass Django's limit on fields."""

    subscriptions = forms.CharField(widget=forms.HiddenInput)
    to_version = PlanVersionChoiceField(
        queryset=versions_by_plan_name(
            PlanVersion.objects.filter(status=PlanVersion.PUBLISHED).select_related("plan")
        ),
        label=_("Target version"),
        help_text=_("A published version, of the same plan or another."),
    )
    effective = forms.ChoiceField(
        choices=PlanMigration.EFFECTIVE,
        initial=PlanMigration.IMMEDIATE,
        widget=forms.RadioSelect,
        label=_("Effective"),
    )
    at = forms.DateTimeField(
        required=False,
        label=_("At (UTC)"),
        help_text=_(
            "For a change now: the moment it applies, within each subscription's "
            "period. Empty: now, fixed when you preview."
        ),
    )

    def clean_subscriptions(self) -> list[int]:
        try:
            ids = [int(part) for part in self.cleaned_data["subscriptions"].split(",") if part]
        except ValueError:
            raise ValidationError("Not a list of subscriptions: select them again.") from None
        if not ids:
            raise ValidationError("Select at least one subscription.")
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
        self.from_version = str(item.from_version)
        self.invoice_total = (
            money_text(item.invoice.total, item.invoice.currency) if item.invoice else ""
        )
        self.previewed_total = money_text(item.preview_total, currency)
        self.message = in_readers_language(item.message, item.message_words)


class MigrationActions:
    """The subscriptions admin's bulk migration, mixed into SubscriptionAdmin:
    action -> form -> preview -> confirmation page -> the migration's page. The
    preview's subscriptions and the fingerprint of its figures travel to the
    confirmation page and back; figures that moved on in between (a customer
    cancelled, usage came in) show the preview again, so what runs is always
    what was confirmed."""

    def has_migrate_permission(self, request) -> bool:
        return request.user.has_perm(MIGRATE_PERMISSION)

    @admin.action(description=_("Migrate to another version…"), permissions=["migrate"])
    def migrate_to_version(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.order_by("id").values_list("id", flat=True))
        form = MigrationForm(initial={"subscriptions": ids})
        return self._migration_form_page(request, form)

    def get_urls(self):
        own = [
            path(
                "migrate/",
                self.admin_site.admin_view(self.migrate_view),
                name="billing_subscription_migrate",
            )
        ]
        return own + super().get_urls()

    def migrate_view(self, request):
        """The form posts here for a preview, the preview for the confirmation page,
        and that page's button to start the migration."""
        if not self.has_migrate_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return redirect(reverse("admin:billing_subscription_changelist"))
        if "token" not in request.POST:
            form = MigrationForm(request.POST)
            if not form.is_valid():
                return self._migration_form_page(request, form)
            return self._preview_page(
                request, migration_preview(form.cleaned_data), token=uuid.uuid4()
            )
        form = MigrationConfirmForm(request.POST)
        if not form.is_valid():
            messages.error(request, gettext("The confirmation was incomplete: preview again."))
            return self._migration_form_page(request, MigrationForm(request.POST))
        token, digest = form.cleaned_data["token"], form.cleaned_data["digest"]
        if is_confirmed(request):
            return self._migration_start(request, form.cleaned_data)
        done = PlanMigration.objects.filter(token=token).first()
        if done is not None:
            messages.info(
                request,
                gettext("This preview was confirmed already: migration #%(pk)s.") % {"pk": done.pk},
            )
            return redirect(reverse("admin:billing_planmigration_change", args=[done.pk]))
        current = migration_preview(form.cleaned_data)
        if current.digest != digest:
            return self._preview_changed(request, current, token)
        if not current.moving:
            return self._preview_page(request, current, token=token)
        return self._confirmation_page(request, current, token)

    def _migration_start(self, request, cleaned: dict):
        try:
            confirmed, created = bulk_migration.plan_migration_confirm(
                token=cleaned["token"],
                digest=cleaned["digest"],
                preview=lambda: migration_preview(cleaned),
                created_by=request.user,
            )
        except bulk_migration.PreviewChanged as changed:
            return self._preview_changed(request, changed.preview, cleaned["token"])
        if created:
            messages.success(
                request,
                ngettext(
                    "Migration #%(pk)s of %(count)s subscription started.",
                    "Migration #%(pk)s of %(count)s subscriptions started.",
                    confirmed.total,
                )
                % {"pk": confirmed.pk, "count": quantity_text(confirmed.total)},
            )
        else:
            messages.info(
                request,
                gettext("This preview was confirmed already: migration #%(pk)s.")
                % {"pk": confirmed.pk},
            )
        return redirect(reverse("admin:billing_planmigration_change", args=[confirmed.pk]))

    def _preview_changed(self, request, preview, token):
        messages.warning(
            request,
            gettext(
                "The figures have changed since the preview (usage, seats or subscriptions "
                "moved on): nothing was migrated. Check the new preview and confirm again."
            ),
        )
        return self._preview_page(request, preview, token=token)

    def _confirmation_page(self, request, preview, token):
        moving = len(preview.moving)
        count = quantity_text(moving)
        confirmation = Confirmation(
            title=ngettext(
                "Migrate {count} subscription to {version}?",
                "Migrate {count} subscriptions to {version}?",
                moving,
            ).format(count=count, version=preview.version),
            consequences=migration_consequences(preview, now=datetime.now(UTC)),
            confirm_label=ngettext(
                "Yes, migrate {count} subscription", "Yes, migrate {count} subscriptions", moving
            ).format(count=count),
            cancel_url=reverse("admin:billing_subscription_changelist"),
            hidden=_confirm_values(preview, token),
        )
        return confirmation_page(request, self, confirmation)

    def _migration_form_page(self, request, form):
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Migrate subscriptions to another version"),
            "form": form,
            "count": migration_count_ids(form),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/planmigration/migrate_form.html", context)

    def _preview_page(self, request, preview, *, token):
        currency = preview.version.currency
        immediate = preview.effective == PlanMigration.IMMEDIATE
        names = ("usage", "credit", "charge", "total") if immediate else ("next_fees", "total")
        changes = {row.subscription.pk: preview.features_change(row) for row in preview.moving}
        codes = {code for change in changes.values() for codes in change.values() for code in codes}
        feature = feature_names(codes)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Preview: migrate to {version}").format(version=preview.version),
            "preview": preview,
            "to_version": str(preview.version),
            "immediate": immediate,
            "at_text": moment_text(preview.at),
            "finalization": finalization_text(preview, now=datetime.now(UTC)),
            "currency": currency,
            "rows": [
                {
                    "subscription": row.subscription,
                    "from_version": str(row.subscription.version),
                    "period_end": moment_text(row.subscription.current_period_end),
                    "drops_deal": row.drops_deal,
                    "features": features_change_text(changes[row.subscription.pk], feature),
                    **{name: money_text(getattr(row, name), currency) for name in names},
                }
                for row in preview.moving
            ],
            "count": quantity_text(len(preview.moving)),
            "sums": {name: money_text(preview.sum(name), currency) for name in names},
            "skipped": [
                {
                    "subscription": row.subscription,
                    "from_version": str(row.subscription.version),
                    "reason": row.skipped[:1].upper() + row.skipped[1:],
                }
                for row in preview.skipped
            ],
            "confirm": MigrationConfirmForm(initial=_confirm_values(preview, token)),
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/billing/planmigration/migrate_preview.html", context
        )


def _confirm_values(preview: bulk_migration.MigrationPreview, token: uuid.UUID) -> dict:
    """The choices a preview was made with, its moment fixed, and its fingerprint:
    what the preview page and the confirmation page post again."""
    return {
        "subscriptions": ",".join(str(row.subscription.pk) for row in preview.rows),
        "to_version": str(preview.version.pk),
        "effective": preview.effective,
        "at": preview.at.isoformat() if preview.at else "",
        "token": str(token),
        "digest": preview.digest,
    }


@admin.register(PlanMigration)
class PlanMigrationAdmin(RecordAdmin):
    """A bulk migration's progress and per-subscription results. Read-only; seen
    by whoever may migrate subscriptions."""

    fields = [
        "target",
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

    @admin.display(description=_("Target version"), ordering="to_version")
    def target(self, obj):
        return str(obj.to_version)

    @admin.display(description=_("Items finished"))
    def progress(self, obj):
        return f"{quantity_text(obj.done_count)} of {quantity_text(obj.total)}"

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
            "finished": self.progress(migration),
            "refreshing": migration.status in (PlanMigration.PENDING, PlanMigration.RUNNING),
            "percent": 100 * migration.done_count // migration.total if migration.total else 100,
            "counts": [
                (label, quantity_text(counts.get(status, 0)))
                for status, label in PlanMigrationItem.STATUSES
            ],
            "items": [PlanMigrationItemRow(item, currency) for item in items],
            "immediate": migration.effective == PlanMigration.IMMEDIATE,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.action(description=_("Run again (items done are left alone)"), permissions=["migrate"])
    def run_again(self, request, queryset):
        for migration in queryset:
            bulk_migration.plan_migration_rerun(migration=migration)
        self.message_user(
            request, gettext("%(count)s migration(s) sent to run again.") % {"count": len(queryset)}
        )
