"""Dunning in the admin: policies with their steps, the steps run on invoices,
and a customer's dunning settings and standing (shown on the customer's page,
whose list filters by standing)."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import moment_text
from common.admin_forms import RecordAdmin
from common.admin_history import AuditHistoryAdmin
from common.errors import InvalidRequest
from customers.models import GOOD, Customer
from invoices.dunning_models import NO_DUNNING, DunningPolicy, DunningRun, DunningStep
from invoices.dunning_policies import (
    StepInput,
    customer_policy_set,
    dunning_pause,
    steps_check,
)


def dunning_fields(customer) -> list[str]:
    """The customer page's Dunning fields."""
    fields = ["dunning_policy", "dunning_off", "dunning_paused_until"]
    if customer is not None:
        fields = ["standing_display", *fields, "dunning_paused_by"]
    return fields


def standing_text(customer: Customer) -> str:
    """'Restricted since 8 Dec 2026, 00:00 UTC (INV-2026-000002)', or 'Good'."""
    label = customer.get_standing_display()
    if customer.standing == GOOD or customer.standing_since is None:
        return str(label)
    text = gettext("{standing} since {moment}").format(
        standing=label, moment=moment_text(customer.standing_since)
    )
    if customer.standing_invoice_id:
        text += f" ({customer.standing_invoice.number})"
    return text


def dunning_text(customer: Customer) -> str:
    """The customer list's Dunning column: 'Off', or 'Paused until ... by ...'."""
    if customer.dunning_off:
        return gettext("Off")
    until = customer.dunning_paused_until
    if until is not None and until > timezone.now():
        return gettext("Paused until {moment} by {who}").format(
            moment=moment_text(until), who=customer.dunning_paused_by or "?"
        )
    return ""


def dunning_settings_save(customer, *, choice, paused, paused_before, user) -> None:
    """Save the policy choice and the pause the customer's form set; a pause
    changed is recorded with who changed it."""
    if (customer.dunning_policy, customer.dunning_off) != choice:
        customer_policy_set(customer=customer, choice=choice)
    if paused != paused_before:
        dunning_pause(customer=customer, until=paused, by=user.get_username(), now=timezone.now())


class StepsFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        steps = [
            StepInput(form.cleaned_data["days_after_due"], form.cleaned_data["action"])
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("action")
            and form.cleaned_data.get("days_after_due") is not None
        ]
        try:
            steps_check(steps)
        except InvalidRequest as refused:
            errors = refused.fields.get("steps") or [str(refused)]
            raise forms.ValidationError(list(errors)) from None


class DunningStepInline(admin.TabularInline):
    model = DunningStep
    formset = StepsFormSet
    extra = 1
    fields = ["days_after_due", "action"]


class DunningPolicyForm(forms.ModelForm):
    class Meta:
        model = DunningPolicy
        fields = ["code", "name", "is_default"]

    def clean_code(self):
        code = self.cleaned_data["code"]
        if code == NO_DUNNING:
            raise forms.ValidationError(_('"none" means no dunning: choose another code.'))
        return code


@admin.register(DunningPolicy)
class DunningPolicyAdmin(AuditHistoryAdmin):
    form = DunningPolicyForm
    inlines = [DunningStepInline]
    list_display = ["name", "code", "is_default", "steps_display", "customers_display"]
    search_fields = ["code", "name"]

    @admin.display(description=_("Steps"))
    def steps_display(self, policy: DunningPolicy) -> str:
        return ", ".join(
            f"{step.get_action_display()} ({step.days_after_due:+d})" for step in policy.steps.all()
        )

    @admin.display(description=_("Customers on it"))
    def customers_display(self, policy: DunningPolicy) -> int:
        return policy.customers.count()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steps")

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if obj.is_default:
                # One policy is the default: marking this one takes the mark.
                DunningPolicy.objects.filter(is_default=True).exclude(pk=obj.pk).update(
                    is_default=False
                )
            super().save_model(request, obj, form, change)


@admin.register(DunningRun)
class DunningRunAdmin(RecordAdmin):
    """What dunning did, invoice by invoice: read only."""

    list_display = [
        "ran",
        "invoice",
        "customer",
        "action",
        "days_after_due",
        "outcome",
        "detail",
    ]
    list_filter = ["action", "outcome"]
    search_fields = ["invoice__number", "customer__external_id", "customer__name"]
    list_select_related = ["invoice", "customer"]

    @admin.display(description=_("ran at"), ordering="ran_at")
    def ran(self, run: DunningRun) -> str:
        return moment_text(run.ran_at)
