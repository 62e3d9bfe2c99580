"""The catalog in the admin. Forms validate with plans.validation (the same rules
as the API); saves and actions go through plans.services. A version that is
not a draft is read-only here: its change page is a view page.

Meters are in plans.meters_admin, a version's charges and tiers in
plans.charges_admin, its Publish / Archive / New draft in
plans.version_lifecycle_admin."""

from decimal import Decimal
from types import SimpleNamespace

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timezone import get_current_timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from billing.core.admin_deletion import RefusedDeletionMixin
from billing.core.admin_fields import CurrencyFilter, currency_choices
from billing.core.admin_forms import (
    EXACT_DECIMALS,
    ExactDecimalField,
    ServiceValidatedForm,
    adopt,
    money_column,
    money_text,
    percent_text,
    quantity_column,
    quantity_text,
    typed_money_field,
)
from billing.core.admin_history import AuditHistoryAdmin
from billing.core.customer_text import day
from billing.core.money import format_money
from billing.simulation.admin import RUN_SIMULATIONS
from billing.subscriptions.selectors import with_live_subscription_count
from config.history import one_change
from plans import services
from plans.charge_fields import field_table
from plans.charges_admin import ChargeInline, version_spec
from plans.credits_rollover import ADMIN_FIELDS as ROLLOVER_ADMIN_FIELDS
from plans.deletion_admin import plan_deletion_refusal, version_deletion_refusal
from plans.models import Charge, CreditPack, Meter, Plan, PlanVersion
from plans.validation import (
    VERSION_TERMS,
    FieldErrors,
    check_code,
    validate_credit_pack,
    validate_version,
    version_terms_spec,
)
from plans.version_features_admin import FeatureInline, version_grants
from plans.version_inline_rules import is_frozen
from plans.version_lifecycle_admin import VersionLifecycleMixin
from plans.version_price_pages_admin import VersionPricePagesMixin


class PlanForm(ServiceValidatedForm):
    class Meta:
        model = Plan
        fields = ["code", "name", "description"]

    def validate_domain(self, cleaned):
        errors = FieldErrors()
        check_code(errors, "code", cleaned.get("code"))
        errors.raise_if_any("invalid plan")


def add_version_url(plan: Plan) -> str:
    return reverse("admin:plans_planversion_add") + f"?plan={plan.pk}"


class VersionLinkInline(admin.TabularInline):
    """The plan's versions, each a link to its page, with its customers."""

    model = PlanVersion
    fields = [
        "version",
        "status",
        "currency",
        "interval",
        "base_fee_text",
        "subscribers",
        "published_on",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("versions")

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        versions = super().get_queryset(request).select_related("plan").order_by("number")
        return with_live_subscription_count(versions)

    @admin.display(description=_("version"))
    def version(self, version: PlanVersion):
        url = reverse("admin:plans_planversion_change", args=[version.pk])
        return format_html('<a href="{}">v{}</a>', url, version.number)

    base_fee_text = money_column("base_fee", _("base fee"))

    @admin.display(description=_("customers"))
    def subscribers(self, version: PlanVersion) -> int:
        return version.live_subscription_count

    @admin.display(description=_("published"))
    def published_on(self, version: PlanVersion) -> str:
        if version.published_at is None:
            return "—"
        return day(version.published_at, get_current_timezone())


@admin.register(Plan)
class PlanAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = PlanForm
    list_display = ["code", "name", "version_count", "latest_published", "add_version_link"]
    search_fields = ["code", "name"]
    inlines = [VersionLinkInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("versions"))

    @admin.display(description=_("versions"), ordering="version_total")
    def version_count(self, plan):
        return plan.version_total

    @admin.display(description=_("latest published"))
    def latest_published(self, plan):
        version = plan.versions.filter(status=PlanVersion.PUBLISHED).order_by("-number").first()
        return f"v{version.number}" if version else "—"

    @admin.display(description="")
    def add_version_link(self, plan):
        return format_html('<a href="{}">{}</a>', add_version_url(plan), _("Add a draft version"))

    def deletion_refusal(self, obj):
        return plan_deletion_refusal(obj)

    def get_readonly_fields(self, request, obj=None):
        # Subscriptions and invoices name plans by code: it never changes.
        return ["code"] if obj else []

    def get_inlines(self, request, obj):
        # A new plan has no versions yet: its first is added once it is saved.
        return self.inlines if obj else []

    def response_add(self, request, obj, post_url_continue=None):
        # A plan is sold through its versions: its page offers to add the first one.
        if any(name in request.POST for name in ("_addanother", "_continue", IS_POPUP_VAR)):
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            format_html(
                '{} created. It has no version yet: <a href="{}">add a draft version</a> '
                "to set its currency and prices.",
                obj.name,
                add_version_url(obj),
            ),
            messages.SUCCESS,
        )
        return redirect(reverse("admin:plans_plan_change", args=[obj.pk]))


def rollover_words(percent: Decimal | None, periods: int | None) -> str:
    """'50% of the unused credits roll over, for 2 periods', in the admin user's
    language; 'None: all expire at the period's end'."""
    if percent is None or periods is None:
        return gettext("None: all expire at the period's end")
    return ngettext(
        "{percent} of the unused credits roll over, for {periods} period",
        "{percent} of the unused credits roll over, for {periods} periods",
        periods,
    ).format(percent=percent_text(percent), periods=periods)


class CurrencyField(forms.ChoiceField):
    """A select of currencies, "USD — US Dollar"; a stored currency the list
    lacks is offered too, so an old version still shows its own."""

    def __init__(self, **kwargs):
        super().__init__(choices=currency_choices(), label=_("Currency"), **kwargs)

    def offer(self, code: str | None) -> None:
        self.choices = currency_choices(current=code or "")


class PlanVersionForm(ServiceValidatedForm):
    currency = CurrencyField()
    # The rollover's refusals name the API's object (plans.credits_rollover).
    field_map = ROLLOVER_ADMIN_FIELDS

    class Meta:
        model = PlanVersion
        fields = ["plan", *VERSION_TERMS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "plan" in self.fields:
            self.fields["plan"].label_from_instance = lambda plan: f"{plan.name} ({plan.code})"
        if "currency" in self.fields:  # not on a published version's view page
            self.fields["currency"].offer(self.instance.currency or self.initial.get("currency"))

    def validate_domain(self, cleaned):
        terms = version_terms_spec(SimpleNamespace(**cleaned))
        validate_version(terms, known_meters=())
        plan = cleaned.get("plan") or self.instance.plan
        services.plan_version_check_currency(
            plan=plan,
            currency=terms.currency,
            excluding=self.instance if self.instance.pk else None,
        )


@admin.register(PlanVersion)
class PlanVersionAdmin(
    RefusedDeletionMixin,
    VersionPricePagesMixin,
    VersionLifecycleMixin,
    AuditHistoryAdmin,
    nested_admin.NestedModelAdmin,
):
    formfield_overrides = EXACT_DECIMALS
    form = PlanVersionForm
    inlines = [ChargeInline, FeatureInline]
    list_display = [
        "plan",
        "number",
        "status",
        "currency",
        "interval",
        "base_fee_display",
        "seat_price_display",
        "minimum_commitment_display",
        "charge_count",
        "subscribers",
        "published_at",
    ]
    list_filter = ["status", "currency", "interval", "plan"]
    search_fields = ["plan__code", "plan__name"]
    list_select_related = ["plan"]
    actions = ["publish", "copy_as_draft", "archive", "simulate"]
    readonly_fields = ["number", "status", "published_at", "archived_at"]

    # A published or archived version is shown, not edited: its amounts as finance reads them.
    frozen_fields = [
        "plan",
        "number",
        "status",
        "currency",
        "interval",
        "base_fee_display",
        "seat_price_display",
        "minimum_commitment_display",
        "trial_days",
        "credits_per_period_text",
        "credits_rollover_text",
        "progressive_billing_threshold_display",
        "published_at",
        "archived_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is not None and is_frozen(obj):
            return self.frozen_fields
        fields = super().get_fields(request, obj)
        # Number and status come from the service once the version exists.
        return fields if obj else [f for f in fields if f not in self.readonly_fields]

    base_fee_display = money_column("base_fee", _("base fee"))
    seat_price_display = money_column("seat_price", _("seat price"))
    minimum_commitment_display = money_column("minimum_commitment", _("minimum commitment"))
    progressive_billing_threshold_display = money_column(
        "progressive_billing_threshold", "progressive billing threshold"
    )

    credits_per_period_text = quantity_column("credits_per_period", _("credits per period"))

    @admin.display(description=_("credits rollover"))
    def credits_rollover_text(self, version):
        return rollover_words(version.credits_rollover_percent, version.credits_rollover_periods)

    def get_queryset(self, request):
        versions = (
            super().get_queryset(request).annotate(charge_total=Count("charges", distinct=True))
        )
        return with_live_subscription_count(versions)

    def get_changeform_initial_data(self, request):
        # A new version of a plan is in the plan's currency.
        initial = super().get_changeform_initial_data(request)
        plan = Plan.objects.filter(pk=initial.get("plan")).first() if initial.get("plan") else None
        latest = plan.versions.order_by("-number").first() if plan else None
        if latest is not None:
            initial.setdefault("currency", latest.currency)
            initial.setdefault("interval", latest.interval)
        return initial

    @admin.display(description=_("charges"), ordering="charge_total")
    def charge_count(self, version):
        return version.charge_total

    @admin.display(description=_("customers"), ordering="live_subscription_count")
    def subscribers(self, version):
        return version.live_subscription_count

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and is_frozen(obj):
            return [*self.frozen_fields, *VERSION_TERMS]
        return ["plan", *self.readonly_fields] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Published and archived versions are view-only, for everyone.
        return super().has_change_permission(request, obj) and not is_frozen(obj)

    def deletion_refusal(self, obj):
        # A published or archived version stays (is_frozen): its page says why.
        return version_deletion_refusal(obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The version's form, then its charges and features (save_model, save_related):
        # one save, one change in its price history.
        # The charge forms' script shows each charge's fields as plans.charge_fields says.
        extra_context = {**(extra_context or {}), "charge_fields": field_table()}
        with one_change():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        # Charges and features arrive in save_related; a new version is numbered now.
        if not change:
            terms = version_terms_spec(obj)
            adopt(obj, services.plan_version_create(plan=obj.plan, version=terms))

    def save_related(self, request, form, formsets, change):
        charge_formset = next(f for f in formsets if f.model is Charge)
        grants = version_grants(form.instance, formsets)
        spec = version_spec(form.instance, charge_formset, grants)
        services.plan_version_update(version=form.instance, spec=spec)
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_simulate_permission(self, request):
        return request.user.has_perm(RUN_SIMULATIONS)

    @admin.action(description=_("Simulate prices on past usage"), permissions=["simulate"])
    def simulate(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, gettext("Choose one version to simulate."), messages.ERROR)
            return None
        url = reverse("admin:plans_pricesimulation_simulate")
        return redirect(f"{url}?version={versions[0].pk}")


class CreditPackForm(ServiceValidatedForm):
    # Not formfield_overrides: the price is a MoneyField, a DecimalField of its own kind.
    credits = ExactDecimalField(max_digits=28, decimal_places=10, label=_("Credits"))
    # Picked by name, stored as codes (the model's JSON list: not a model form field).
    meters = forms.ModelMultipleChoiceField(
        queryset=Meter.objects.order_by("name", "code"),
        to_field_name="code",
        required=False,
        help_text=_("The meters its credits pay for; none chosen: every meter."),
        label=_("Meters"),
    )
    field_map = {"applies_to": "meters"}

    class Meta:
        model = CreditPack
        fields = ["code", "name", "credits", "price", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["meters"] = list(self.instance.applies_to)
        typed_money_field(self.fields["price"])
        price = self.initial.get("price")
        # The currencies in use, named in the user's language (not django-money's
        # every historic currency in English).
        currencies = currency_choices(
            current=str(price.currency) if isinstance(price, Money) else ""
        )
        self.fields["price"].fields[1].choices = currencies
        self.fields["price"].widget.widgets[1].choices = currencies
        if isinstance(price, Money):
            # '50.00' in the amount box, not the stored 50.0000000000.
            amount = Decimal(format_money(price.amount, str(price.currency)))
            self.initial["price"] = Money(amount, price.currency)

    def validate_domain(self, cleaned):
        price = cleaned.get("price")
        validate_credit_pack(
            code=cleaned.get("code"),
            credits=cleaned.get("credits"),
            price=price.amount if isinstance(price, Money) else price,
            currency=str(price.currency) if isinstance(price, Money) else "",
            applies_to=[meter.code for meter in cleaned.get("meters") or ()],
        )


@admin.register(CreditPack)
class CreditPackAdmin(AuditHistoryAdmin):
    form = CreditPackForm
    list_display = ["code", "name", "credits_display", "price_display", "meters_display", "active"]
    list_filter = ["active", ("price_currency", CurrencyFilter)]
    search_fields = ["code", "name"]

    @admin.display(description=_("credits"), ordering="credits")
    def credits_display(self, pack: CreditPack) -> str:
        return quantity_text(pack.credits)

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, pack: CreditPack) -> str:
        return money_text(pack.price.amount, str(pack.price.currency))

    @admin.display(description=_("applies to"))
    def meters_display(self, pack: CreditPack) -> str:
        return ", ".join(pack.applies_to) if pack.applies_to else gettext("all meters")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {
            "code": data["code"],
            "name": data.get("name") or "",
            "credits": data["credits"],
            "price": data["price"].amount,
            "currency": str(data["price"].currency),
            "applies_to": [meter.code for meter in data.get("meters") or ()],
        }
        if change:
            adopt(obj, services.credit_pack_update(pack=obj, active=data["active"], **values))
        else:
            adopt(obj, services.credit_pack_create(**values))


# Registered with the admin site by being imported.
from plans import (  # noqa: E402, F401
    cost_rates_admin,
    coupons_admin,
    features_admin,
    meters_admin,
    tax_rates_admin,
)
