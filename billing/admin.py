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
