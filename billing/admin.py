"""Subscriptions in the admin. Created through billing.services and changed by
the actions, which call billing.cycle, so every change leaves a history row."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from billing import cycle, services
from billing.errors import BillingError
from billing.forms import add_billing_error
from billing.models import Subscription, SubscriptionChange
from plans.models import Plan


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
class SubscriptionAdmin(admin.ModelAdmin):
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
        if obj is None:
            kwargs["form"] = SubscriptionCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "plan", "start", "seats", "billing_anchor"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        obj.__dict__.update(form.create(form.cleaned_data).__dict__)

    def save_related(self, request, form, formsets, change):
        pass

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
