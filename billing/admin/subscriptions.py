"""Subscriptions in the admin: created through billing.subscriptions.lifecycle
and changed from their page or by the actions, so every change leaves a history
row; the forms validate with the check-only functions and the save runs the
service once. The bulk migration action: billing.admin.plan_migrations."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from billing.admin.deals import DealFields, deal_from, deal_setup, deal_text, stored_deal
from billing.admin.discounts import DiscountFields, discount_summary
from billing.admin.entitlements import entitlements_text
from billing.admin.plan_migrations import MigrationActions
from billing.core.admin_forms import add_billing_error
from billing.core.errors import BillingError
from billing.models import (
    Subscription,
    SubscriptionChange,
)
from billing.subscriptions import deals, lifecycle
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


# Finance's permission for a subscription's deal and discount (ops change the
# plan and seats with change_subscription).
DEAL_PERMISSION = "billing.set_deal_subscription"
OPS_CHANGES = ["new_version", "effective", "new_seats", "at"]


class SubscriptionChangeForm(DealFields, DiscountFields, forms.ModelForm):
    """The changes ops make to a live subscription: another version (now,
    prorated, or at period end) and the seat count; and finance's: the deal from
    the next period, and the discount. Saved through billing.subscriptions
    (lifecycle, deals, discounts). The admin gives each user the fields of their
    permissions only."""

    # The fields the page shows (set by the admin per user); the others are dropped
    # so that one the user cannot see is never validated.
    shown: frozenset[str] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.shown is not None:
            for name in [name for name in self.fields if name not in self.shown]:
                del self.fields[name]
        if self.instance.pk is not None and "deal_meter" in self.fields:
            deal_setup(self, self.instance)

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
        self._each_change(
            cleaned, seats=lifecycle.seats_change_check, plan=lifecycle.plan_change_check
        )
        self.discount_check(self.instance, cleaned)

    def apply(self, cleaned) -> None:
        self._each_change(
            cleaned, seats=lifecycle.subscription_set_seats, plan=lifecycle.subscription_change_plan
        )
        self.discount_apply(self.instance, cleaned)
        if self.deal_changed():
            # As stored now: a plan change just made may have dropped the deal.
            fresh = Subscription.objects.get(pk=self.instance.pk)
            deal = deal_from(cleaned, stored=stored_deal(fresh), changed=self.changed_data)
            deals.subscription_set_overrides(subscription=fresh, overrides=deal)

    def deal_changed(self) -> bool:
        return any(name in self.changed_data for name in DealFields.FIELDS)

    def _each_change(self, cleaned, *, seats, plan) -> None:
        """Call `seats` for a new seat count and `plan` for a new version, in that
        order, with the same arguments whether checking or applying."""
        at = cleaned.get("at") or timezone.now()
        if self.deal_changed():
            version = cleaned.get("new_version") or self.instance.version
            # The deal is checked against the version it will apply to.
            deal = deal_from(cleaned, stored=stored_deal(self.instance), changed=self.changed_data)
            deals.overrides_check(version=version, overrides=deal)
        if cleaned.get("new_seats") and cleaned["new_seats"] != self.instance.seats:
            seats(subscription=self.instance, seats=cleaned["new_seats"], at=at)
        if cleaned.get("new_version"):
            plan(
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
class SubscriptionAdmin(MigrationActions, SimpleHistoryAdmin):
    list_display = [
        "id",
        "customer",
        "version",
        "deal_badge",
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
        "discount",
        "usage_from",
        "scheduled_version",
        "deal",
        "features",
        "deal_next_period",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
    ]

    @admin.display(description="deal")
    def deal_badge(self, obj: Subscription) -> str:
        return "deal" if obj.overrides else ""

    @admin.display(description="Deal (overrides of the plan)")
    def deal(self, obj: Subscription) -> str:
        return deal_text(obj.overrides, obj.version) or "-"

    @admin.display(description="Features")
    def features(self, obj: Subscription) -> str:
        """What the subscription is entitled to now, the deal's part marked."""
        return entitlements_text(obj) or "none"

    @admin.display(description="Deal from the next period")
    def deal_next_period(self, obj: Subscription) -> str:
        if obj.next_overrides is None:
            return "unchanged"
        version = obj.scheduled_version or obj.version
        return deal_text(obj.next_overrides, version) or "none"

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = SubscriptionCreateForm if obj is None else SubscriptionChangeForm
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.shown = frozenset(self.get_fields(request, obj))
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "plan", "start", "seats", "billing_anchor"]
        if obj.status not in Subscription.LIVE:
            return self.readonly_fields
        changes = []
        if super().has_change_permission(request, obj):
            changes += OPS_CHANGES
        if request.user.has_perm(DEAL_PERMISSION):
            changes += [*DealFields.FIELDS, *DiscountFields.FIELDS]
        return [*self.readonly_fields, *changes]

    def has_change_permission(self, request, obj=None):
        """Ops change the plan and seats; finance the deal and discount."""
        if super().has_change_permission(request, obj):
            return True
        return request.user.has_perm(DEAL_PERMISSION) and self.has_view_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            try:
                with transaction.atomic():
                    form.apply(form.cleaned_data)
            except BillingError as error:
                # Something moved on between the form's check and the save (the
                # close used up a discount, another user changed the plan): the
                # page says so, and nothing of this save is kept.
                request.billing_refused = error.message
                return
            obj.refresh_from_db()
        else:
            obj.__dict__.update(form.create(form.cleaned_data).__dict__)

    def log_change(self, request, obj, message):
        if getattr(request, "billing_refused", None) is None:  # nothing changed otherwise
            super().log_change(request, obj, message)

    def response_change(self, request, obj):
        refused = getattr(request, "billing_refused", None)
        if refused is not None:
            messages.error(request, f"Nothing was changed: {refused}")
            return redirect(reverse("admin:billing_subscription_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        # The history inline is read-only: its rows come from the services.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="discount (coupon)")
    def discount(self, subscription: Subscription) -> str:
        return discount_summary(subscription)

    def has_cancel_permission(self, request) -> bool:
        return super().has_change_permission(request)

    @admin.action(description="Cancel at the end of the current period", permissions=["cancel"])
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
