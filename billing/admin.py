"""Subscriptions in the admin. Created through billing.services and changed by
the actions, which call billing.cycle, so every change leaves a history row.
Alerts and webhook deliveries are read-only records; endpoints are edited here."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from billing import cycle, services, webhooks
from billing.errors import BillingError
from billing.forms import add_billing_error
from billing.models import (
    WEBHOOK_EVENT_TYPES,
    Alert,
    Subscription,
    SubscriptionChange,
    WebhookDelivery,
    WebhookEndpoint,
)
from plans.models import Plan, PlanVersion


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
                # The service is the validator: run it, then undo it. save_model
                # creates the subscription once the whole page is valid.
                with transaction.atomic():
                    self.create(cleaned)
                    raise _DryRun
            except _DryRun:
                pass
            except BillingError as error:
                add_billing_error(self, error)
        return cleaned

    def create(self, cleaned) -> Subscription:
        return services.subscription_create(
            customer=cleaned["customer"],
            plan=cleaned["plan"],
            start=cleaned["start"],
            seats=cleaned["seats"],
            billing_anchor=cleaned["billing_anchor"],
        )


class SubscriptionChangeForm(forms.ModelForm):
    """The changes ops make to a live subscription: another version (now,
    prorated, or at period end) and the seat count. Saved through billing.cycle."""

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
                with transaction.atomic():
                    self.apply(cleaned)
                    raise _DryRun
            except _DryRun:
                pass
            except BillingError as error:
                add_billing_error(self, error)
        return cleaned

    def apply(self, cleaned) -> None:
        at = cleaned.get("at") or timezone.now()
        if cleaned.get("new_seats") and cleaned["new_seats"] != self.instance.seats:
            cycle.subscription_set_seats(
                subscription=self.instance, seats=cleaned["new_seats"], at=at
            )
        if cleaned.get("new_version"):
            cycle.subscription_change_plan(
                subscription=self.instance,
                version=cleaned["new_version"],
                effective=cleaned["effective"],
                at=at,
            )


class _DryRun(Exception):
    """Rolls back a service call made only to validate."""


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
    actions = ["cancel_at_period_end"]
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
                cycle.subscription_cancel(
                    subscription=subscription, effective="period_end", at=timezone.now()
                )
            except BillingError as error:
                self.message_user(request, f"#{subscription.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{subscription.pk} ends with its current period")


# Alerts and webhooks


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="http:// or https://")
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


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record written by the services: viewed, never edited here. (Change
    permission on the list only, for the actions.)"""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


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
