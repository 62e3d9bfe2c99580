"""The catalog in the admin. Forms validate with plans.validation (the same rules
as the API); saves and actions go through plans.services. A version that is
not a draft is read-only here: its change page is a view page."""

from types import SimpleNamespace

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from djmoney.money import Money
from simple_history.admin import SimpleHistoryAdmin

from billing.core.admin_forms import (
    EXACT_DECIMALS,
    ExactDecimalField,
    ServiceValidatedForm,
    adopt,
    money_column,
)
from billing.core.errors import BillingError
from billing.rating.pricing import PricingSpec, TierSpec
from billing.simulation.admin import RUN_SIMULATIONS
from plans import services
from plans.feature_grants import FeatureGrant
from plans.models import (
    Charge,
    CreditPack,
    Meter,
    Plan,
    PlanVersion,
    PriceTier,
)
from plans.validation import (
    VERSION_TERMS,
    ChargeSpec,
    FieldErrors,
    VersionSpec,
    check_code,
    validate_credit_pack,
    validate_meter,
    validate_version,
    version_terms_spec,
)
from plans.version_features_admin import FeatureInline, version_grants
from plans.version_inline_rules import FrozenWhenPublishedMixin, is_frozen, kept_forms
from plans.version_price_pages_admin import VersionPricePagesMixin

METER_FIELDS = ("code", "name", "event_name", "aggregation", "value_property", "unique_property")


def meter_values(cleaned: dict) -> dict:
    """A meter form's values as the services take them."""
    values = {f: cleaned.get(f) or "" for f in METER_FIELDS}
    values["filters"] = cleaned.get("filters") or {}
    values["group_by"] = [
        p.strip() for p in (cleaned.get("group_by") or "").split(",") if p.strip()
    ]
    values["invoice_breakdown"] = cleaned.get("invoice_breakdown") or ""
    return values


class MeterForm(ServiceValidatedForm):
    group_by = forms.CharField(
        required=False,
        label="Break usage down by",
        help_text="Up to 3 event properties, separated by commas, e.g. model, api_key. "
        "Fixed, like the rest of what a meter counts, once a published version charges it.",
    )

    class Meta:
        model = Meter
        fields = [*METER_FIELDS, "filters", "group_by", "invoice_breakdown"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["group_by"] = ", ".join(self.instance.group_by or ())

    def validate_domain(self, cleaned):
        values = meter_values(cleaned)
        if self.instance.pk:
            original = Meter.objects.get(pk=self.instance.pk)
            services.meter_check_update(meter=original, values=values)
        else:
            validate_meter(**values)


@admin.register(Meter)
class MeterAdmin(SimpleHistoryAdmin):
    formfield_overrides = EXACT_DECIMALS
    form = MeterForm
    list_display = ["code", "name", "event_name", "aggregation", "value_property", "filters"]
    list_filter = ["aggregation"]
    search_fields = ["code", "name", "event_name"]

    def save_model(self, request, obj, form, change):
        values = meter_values(form.cleaned_data)
        if change:
            adopt(obj, services.meter_update(meter=obj, **values))
        else:
            adopt(obj, services.meter_create(**values))


class PlanForm(ServiceValidatedForm):
    class Meta:
        model = Plan
        fields = ["code", "name", "description"]

    def validate_domain(self, cleaned):
        errors = FieldErrors()
        check_code(errors, "code", cleaned.get("code"))
        errors.raise_if_any("invalid plan")


class VersionLinkInline(admin.TabularInline):
    model = PlanVersion
    fields = ["number", "status", "currency", "interval", "base_fee", "published_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(SimpleHistoryAdmin):
    form = PlanForm
    list_display = ["code", "name", "version_count", "latest_published", "add_version_link"]
    search_fields = ["code", "name"]
    inlines = [VersionLinkInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("versions"))

    @admin.display(description="versions", ordering="version_total")
    def version_count(self, plan):
        return plan.version_total

    @admin.display(description="latest published")
    def latest_published(self, plan):
        version = plan.versions.filter(status=PlanVersion.PUBLISHED).order_by("-number").first()
        return f"v{version.number}" if version else "—"

    @admin.display(description="")
    def add_version_link(self, plan):
        url = reverse("admin:plans_planversion_add") + f"?plan={plan.pk}"
        return format_html('<a href="{}">add a draft version</a>', url)

    def get_readonly_fields(self, request, obj=None):
        # Subscriptions and invoices name plans by code: it never changes.
        return ["code"] if obj else []


class TierForm(forms.ModelForm):
    flat_fee = forms.DecimalField(max_digits=28, decimal_places=10, required=False)

    class Meta:
        model = PriceTier
        fields = ["up_to", "unit_price", "flat_fee"]


class TierInline(FrozenWhenPublishedMixin, nested_admin.NestedTabularInline):
    formfield_overrides = EXACT_DECIMALS
    model = PriceTier
    form = TierForm
    fields = ["up_to", "unit_price", "flat_fee"]
    extra = 0
    verbose_name = "price tier (graduated / volume)"
    verbose_name_plural = "price tiers (graduated / volume); leave the last tier's up to empty"


CHARGE_FIELD_FOR = {
    "meter": "meter",
    "model": "model",
    "included_units": "included_units",
    "credits_per_unit": "credits_per_unit",
    "when_exhausted": "when_exhausted",
    "pricing": "pricing_scheme",
    "pricing.scheme": "pricing_scheme",
    "pricing.tiers": "pricing_scheme",
    "pricing.unit_price": "unit_price",
    "pricing.package_size": "package_size",
    "pricing.package_price": "package_price",
}


def tier_forms(charge_form) -> list[forms.Form]:
    nested = getattr(charge_form, "nested_formsets", [])
    return kept_forms(nested[0]) if nested else []


def charge_spec(charge_form) -> ChargeSpec:
    data = charge_form.cleaned_data
    tiers = tuple(
        TierSpec(
            up_to=t.cleaned_data.get("up_to"),
            unit_price=t.cleaned_data.get("unit_price"),
            flat_fee=t.cleaned_data.get("flat_fee") or 0,
        )
        for t in tier_forms(charge_form)
    )
    priced = any(data.get(f) is not None for f in ("unit_price", "package_size", "package_price"))
    scheme = data.get("pricing_scheme") or ""
    pricing = None
    if scheme or priced or tiers:
        pricing = PricingSpec(
            scheme=scheme,
            unit_price=data.get("unit_price"),
            package_size=data.get("package_size"),
            package_price=data.get("package_price"),
            tiers=tiers,
        )
    meter = data.get("meter")
    return ChargeSpec(
        meter=meter.code if meter else "",
        model=data.get("model") or "",
        included_units=data.get("included_units"),
        credits_per_unit=data.get("credits_per_unit"),
        when_exhausted=data.get("when_exhausted") or "block",
        pricing=pricing,
    )


def version_spec(
    version: PlanVersion, charge_formset, grants: tuple[FeatureGrant, ...] = ()
) -> VersionSpec:
    return version_terms_spec(version, (charge_spec(f) for f in kept_forms(charge_formset)), grants)


class ChargeFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Validates the whole version (terms, charges, tiers) with plans.validation."""

    def validate_unique(self):
        # One charge per meter is a catalog rule: validate_version reports it, in its words.
        pass

    def clean(self):
        super().clean()
        if is_frozen(self.instance) or any(self.errors):
            return
        forms_kept = kept_forms(self)
        for form in forms_kept:
            nested = getattr(form, "nested_formsets", [])
            if nested and not nested[0].is_valid():
                return
        try:
            validate_version(
                version_spec(self.instance, self),
                known_meters=dict(Meter.objects.values_list("code", "aggregation")),
            )
        except BillingError as error:
            self._show(error, forms_kept)

    def _show(self, error: BillingError, forms_kept: list) -> None:
        for path, texts in error.fields.items():
            parts = path.split(".")
            if parts[0] != "charges":
                continue  # the version's own fields are reported by its form
            form = forms_kept[int(parts[1])]
            rest = ".".join(parts[2:])
            if rest.startswith("pricing.tiers.") and len(parts) == 6:
                # charges.N.pricing.tiers.K.field -> field of tier form K of charge form N
                tier_form = tier_forms(form)[int(parts[4])]
                for text in texts:
                    tier_form.add_error(parts[5], text)
                continue
            field = CHARGE_FIELD_FOR.get(rest)
            for text in texts:
                form.add_error(field, text if field else f"{rest}: {text}")


class ChargeInline(FrozenWhenPublishedMixin, nested_admin.NestedStackedInline):
    formfield_overrides = EXACT_DECIMALS
    model = Charge
    formset = ChargeFormSet
    inlines = [TierInline]
    extra = 0
    autocomplete_fields = ["meter"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("meter", "model"),
                    ("included_units", "credits_per_unit", "when_exhausted"),
                ]
            },
        ),
        (
            "Pricing (overage and balance charges; credits charges that bill when exhausted)",
            {"fields": ["pricing_scheme", ("unit_price", "package_size", "package_price")]},
        ),
    ]


class PlanVersionForm(ServiceValidatedForm):
    class Meta:
        model = PlanVersion
        fields = ["plan", *VERSION_TERMS]

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
class PlanVersionAdmin(VersionPricePagesMixin, SimpleHistoryAdmin, nested_admin.NestedModelAdmin):
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
        "published_at",
    ]
    list_filter = ["status", "currency", "interval", "plan"]
    search_fields = ["plan__code", "plan__name"]
    list_select_related = ["plan"]
    actions = ["publish", "copy_as_draft", "archive", "simulate"]
    readonly_fields = ["number", "status", "published_at", "archived_at"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Number and status come from the service once the version exists.
        return fields if obj else [f for f in fields if f not in self.readonly_fields]

    base_fee_display = money_column("base_fee", "base fee")
    seat_price_display = money_column("seat_price", "seat price")
    minimum_commitment_display = money_column("minimum_commitment", "minimum commitment")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(charge_total=Count("charges"))

    def get_changeform_initial_data(self, request):
        # A new version of a plan is in the plan's currency.
        initial = super().get_changeform_initial_data(request)
        plan = Plan.objects.filter(pk=initial.get("plan")).first() if initial.get("plan") else None
        latest = plan.versions.order_by("-number").first() if plan else None
        if latest is not None:
            initial.setdefault("currency", latest.currency)
            initial.setdefault("interval", latest.interval)
        return initial

    @admin.display(description="charges", ordering="charge_total")
    def charge_count(self, version):
        return version.charge_total

    def get_readonly_fields(self, request, obj=None):
        return ["plan", *self.readonly_fields] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Published and archived versions are view-only, for everyone.
        return super().has_change_permission(request, obj) and not is_frozen(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not is_frozen(obj)

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

    def _run(self, request, queryset, service, done: str):
        for version in queryset:
            try:
                result = service(version=version)
            except BillingError as error:
                self.message_user(request, f"{version}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{result.plan.code} v{result.number} {done}")

    # Publishing and archiving are permissions of their own (roles: setup_roles).
    def has_publish_permission(self, request):
        return request.user.has_perm("plans.publish_planversion")

    def has_archive_permission(self, request):
        return request.user.has_perm("plans.archive_planversion")

    @admin.action(description="Publish (validate, then make read-only)", permissions=["publish"])
    def publish(self, request, queryset):
        self._run(request, queryset, services.plan_version_publish, "published")

    @admin.action(description="New draft from this version", permissions=["add"])
    def copy_as_draft(self, request, queryset):
        self._run(request, queryset, services.plan_version_copy_as_draft, "created as a draft")

    @admin.action(description="Archive (no new subscriptions)", permissions=["archive"])
    def archive(self, request, queryset):
        self._run(request, queryset, services.plan_version_archive, "archived")

    def has_simulate_permission(self, request):
        return request.user.has_perm(RUN_SIMULATIONS)

    @admin.action(description="Simulate prices on past usage", permissions=["simulate"])
    def simulate(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, "Choose one version to simulate.", messages.ERROR)
            return None
        url = reverse("admin:plans_pricesimulation_simulate")
        return redirect(f"{url}?version={versions[0].pk}")


class CreditPackForm(ServiceValidatedForm):
    # Not formfield_overrides: the price is a MoneyField, a DecimalField of its own kind.
    credits = ExactDecimalField(max_digits=28, decimal_places=10)

    class Meta:
        model = CreditPack
        fields = ["code", "name", "credits", "price", "active"]

    def validate_domain(self, cleaned):
        price = cleaned.get("price")
        validate_credit_pack(
            code=cleaned.get("code"),
            credits=cleaned.get("credits"),
            price=price.amount if isinstance(price, Money) else price,
            currency=str(price.currency) if isinstance(price, Money) else "",
        )


@admin.register(CreditPack)
class CreditPackAdmin(SimpleHistoryAdmin):
    form = CreditPackForm
    list_display = ["code", "name", "credits", "price", "active"]
    list_filter = ["active", "price_currency"]
    search_fields = ["code", "name"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {
            "code": data["code"],
            "name": data.get("name") or "",
            "credits": data["credits"],
            "price": data["price"].amount,
            "currency": str(data["price"].currency),
        }
        if change:
            adopt(obj, services.credit_pack_update(pack=obj, active=data["active"], **values))
        else:
            adopt(obj, services.credit_pack_create(**values))


# Registered with the admin site by being imported.
from plans import coupons_admin, features_admin, tax_rates_admin  # noqa: E402, F401
