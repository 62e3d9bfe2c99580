"""Subscriptions in the admin. Created through billing.subscriptions.lifecycle and changed by
the actions, which call billing.invoicing.close, so every change leaves a history row.
Bulk migration between versions: an action, a form, a preview, then a
PlanMigration run by a task, whose page shows its progress. Alerts and webhook
deliveries are read-only records; endpoints are edited here."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from billing.core.admin_forms import RecordAdmin, add_billing_error
from billing.core.errors import BillingError
from billing.core.money import format_money
from billing.models import (
    WEBHOOK_EVENT_TYPES,
    Alert,
    PlanMigration,
    PlanMigrationItem,
    Subscription,
    SubscriptionChange,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.notifications import webhooks
from billing.subscriptions import bulk_migration, lifecycle
from plans.models import Plan, PlanVersion

MIGRATE_PERMISSION = "billing.migrate_subscription"


class SubscriptionCreateForm(forms.ModelForm):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.all(), help_text="Its latest published version."
    )
    start = forms.DateTimeField(help_text="May be in the past; UTC.")

    class Meta:
        model = Subscription
        fields = ["customer", "seats", "billing_anchor"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                # Checked only: save_model creates the subscription once the
                # whole page is valid.
                lifecycle.subscription_create_check(
                    customer=cleaned["customer"],
                    plan=cleaned["plan"],
                    seats=cleaned["seats"],
                    billing_anchor=cleaned["billing_anchor"],
                )
            except BillingError as error:
                add_billing_error(self, error)
        return cleaned

    def create(self, cleaned) -> Subscription:
        return lifecycle.subscription_create(
            customer=cleaned["customer"],
            plan=cleaned["plan"],
            start=cleaned["start"],
            seats=cleaned["seats"],
            billing_anchor=cleaned["billing_anchor"],
        )


class SubscriptionChangeForm(forms.ModelForm):
    """The changes ops make to a live subscription: another version (now,
    prorated, or at period end) and the seat count. Saved through billing.invoicing.close."""

    new_version = forms.ModelChoiceField(
        queryset=PlanVersion.objects.filter(status=PlanVersion.PUBLISHED).select_related("plan"),
        required=False,
        help_text="A published version to move to; empty keeps the current one.",
    )
    effective = forms.ChoiceField(
        choices=[
            ("period_end", "At the end of the current period"),
            ("immediate", "Now, prorated"),
        ],
        initial="period_end",
    )
    new_seats = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    at = forms.DateTimeField(
        required=False, help_text="When an immediate change applies; empty: now."
    )

    class Meta:
        model = Subscription
        fields = []

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.check(cleaned)
            except BillingError as error:
                add_billing_error(self, error)
        return cleaned

    def check(self, cleaned) -> None:
        """What apply() would refuse, found without writing anything."""
        at = cleaned.get("at") or timezone.now()
        if cleaned.get("new_seats") and cleaned["new_seats"] != self.instance.seats:
            lifecycle.seats_change_check(
                subscription=self.instance, seats=cleaned["new_seats"], at=at
            )
        if cleaned.get("new_version"):
            lifecycle.plan_change_check(
                subscription=self.instance,
                version=cleaned["new_version"],
                effective=cleaned["effective"],
                at=at,
            )

    def apply(self, cleaned) -> None:
        at = cleaned.get("at") or timezone.now()
        if cleaned.get("new_seats") and cleaned["new_seats"] != self.instance.seats:
            lifecycle.subscription_set_seats(
                subscription=self.instance, seats=cleaned["new_seats"], at=at
            )
        if cleaned.get("new_version"):
            lifecycle.subscription_change_plan(
                subscription=self.instance,
                version=cleaned["new_version"],
                effective=cleaned["effective"],
                at=at,
            )


class SubscriptionChangeInline(admin.TabularInline):
    model = SubscriptionChange
    fields = ["kind", "from_version", "to_version", "effective_at", "how", "details", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "customer",
        "version",
        "status",
        "seats",
        "current_period_start",
        "current_period_end",
    ]
    list_filter = ["status", "billing_anchor", "version__plan"]
    search_fields = ["customer__external_id", "customer__name", "version__plan__code"]
    list_select_related = ["customer", "version__plan"]
    inlines = [SubscriptionChangeInline]
    actions = ["cancel_at_period_end", "migrate_to_version"]
    readonly_fields = [
        "customer",
        "version",
        "status",
        "billing_anchor",
        "started_at",
        "anchor_at",
        "trial_end",
        "current_period_start",
        "current_period_end",
        "seats",
        "usage_from",
        "scheduled_version",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = SubscriptionCreateForm if obj is None else SubscriptionChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "plan", "start", "seats", "billing_anchor"]
        changes = ["new_version", "effective", "new_seats", "at"]
        return [*self.readonly_fields, *(changes if obj.status in Subscription.LIVE else [])]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            form.apply(form.cleaned_data)
            obj.refresh_from_db()
        else:
            obj.__dict__.update(form.create(form.cleaned_data).__dict__)

    def save_related(self, request, form, formsets, change):
        # The history inline is read-only: its rows come from the services.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel at the end of the current period", permissions=["change"])
    def cancel_at_period_end(self, request, queryset):
        for subscription in queryset:
            try:
                lifecycle.subscription_cancel(
                    subscription=subscription, effective="period_end", at=timezone.now()
                )
            except BillingError as error:
                self.message_user(request, f"#{subscription.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{subscription.pk} ends with its current period")

    # Bulk migration: action -> form -> preview -> confirm -> the migration's page.

    def has_migrate_permission(self, request) -> bool:
        return request.user.has_perm(MIGRATE_PERMISSION)

    @admin.action(description="Migrate to another version…", permissions=["migrate"])
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
        """The form posts here for a preview; the preview posts here to confirm."""
        if not self.has_migrate_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return redirect(reverse("admin:billing_subscription_changelist"))
        if "confirm" not in request.POST:
            form = MigrationForm(request.POST)
            if not form.is_valid():
                return self._migration_form_page(request, form)
            return self._preview_page(request, _preview(form.cleaned_data), token=uuid.uuid4())
        form = MigrationConfirmForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The confirmation was incomplete; preview again.")
            return self._migration_form_page(request, MigrationForm(request.POST))
        token = form.cleaned_data["token"]
        confirmed = PlanMigration.objects.filter(token=token).first()
        if confirmed is None:
            preview = _preview(form.cleaned_data)
            if preview.digest != form.cleaned_data["digest"]:
                messages.warning(
                    request,
                    "The figures have changed since the preview (usage, seats or "
                    "subscriptions moved on): check them and confirm again.",
                )
                return self._preview_page(request, preview, token=token)
            confirmed, created = bulk_migration.plan_migration_create(
                token=token, preview=preview, created_by=request.user
            )
            if created:
                messages.success(
                    request, f"Migration #{confirmed.pk} of {confirmed.total} subscription(s) sent."
                )
        else:
            messages.info(
                request, f"This preview was confirmed already: migration #{confirmed.pk}."
            )
        return redirect(reverse("admin:billing_planmigration_change", args=[confirmed.pk]))

    def _migration_form_page(self, request, form):
        context = {
            **self.admin_site.each_context(request),
            "title": "Migrate subscriptions to another version",
            "form": form,
            "count": _count_ids(form),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/subscription/migrate_form.html", context)

    def _preview_page(self, request, preview, *, token):
        currency = preview.version.currency
        confirm = MigrationConfirmForm(
            initial={
                "subscriptions": ",".join(str(row.subscription.pk) for row in preview.rows),
                "to_version": preview.version.pk,
                "effective": preview.effective,
                "at": preview.at.isoformat() if preview.at else "",
                "token": token,
                "digest": preview.digest,
            }
        )
        immediate = preview.effective == PlanMigration.IMMEDIATE
        names = ("usage", "credit", "charge", "total") if immediate else ("next_fees", "total")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: migrate to {preview.version.plan.code} v{preview.version.number}",
            "preview": preview,
            "immediate": immediate,
            "currency": currency,
            "rows": [
                {
                    "subscription": row.subscription,
                    **{name: format_money(getattr(row, name), currency) for name in names},
                }
                for row in preview.moving
            ],
            "sums": {name: format_money(preview.sum(name), currency) for name in names},
            "skipped": preview.skipped,
            "confirm": confirm,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/subscription/migrate_preview.html", context)


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


def _count_ids(form: MigrationForm) -> int:
    raw = form.data.get("subscriptions") if form.is_bound else form.initial.get("subscriptions")
    return len([part for part in (raw or "").split(",") if part])


def _preview(cleaned: dict) -> bulk_migration.MigrationPreview:
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

    list_display = [
        "id",
        "to_version",
        "effective",
        "at",
        "status",
        "progress",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "effective"]
    list_select_related = ["to_version__plan", "created_by"]
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


# Alerts and webhooks


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        help_text="https:// on a public address; checked again before every send.",
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event type, including ones added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "enabled", "event_types"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "enabled", "event_types_display", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]

    @admin.display(description="event types")
    def event_types_display(self, obj):
        return ", ".join(obj.event_types) or "all"

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "enabled", "event_types"]
        # The secret exists once the endpoint is saved; the receiver needs it to verify.
        return [*fields, "secret", "created_at"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        return ["secret", "created_at"] if obj else []


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["endpoint", "status", "attempts", "last_status_code", "last_error", "delivered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(RecordAdmin):
    """A record written by the services, with actions on the list: change
    permission on the list only, for the actions."""

    def has_change_permission(self, request, obj=None):
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "customer", "kind", "key", "period_start", "emailed_at"]
    list_filter = ["kind", ("customer", admin.RelatedOnlyFieldListFilter), "period_start"]
    search_fields = ["customer__external_id", "customer__name", "key"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    fields = ["customer", "kind", "key", "period_start", "payload", "created_at", "emailed_at"]
    readonly_fields = fields
    inlines = [WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["event_id", "alert__customer__external_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    fields = [
        "endpoint",
        "alert",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    ]
    readonly_fields = fields
    actions = ["retry_now"]

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error if len(obj.last_error) <= 80 else obj.last_error[:79] + "…"

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        now = timezone.now()
        retried = sum(
            webhooks.webhook_delivery_retry(delivery=delivery, now=now) for delivery in queryset
        )
        skipped = len(queryset) - retried
        self.message_user(
            request,
            f"{retried} delivery(ies) sent again"
            + (f"; {skipped} already succeeded, left alone" if skipped else ""),
        )
