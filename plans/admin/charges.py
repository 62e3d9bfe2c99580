"""A plan version's charges and their price tiers, as nested inlines of its
admin page. The formset checks the whole version with plans.validation and puts
each message on the field it concerns (a tier's 'Up to', a charge's scheme)."""

from decimal import Decimal

import nested_admin
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from common.admin_forms import (
    EXACT_DECIMALS,
    ExactDecimalField,
    admin_language,
    amounts_in_currency,
    money_column,
    money_text,
    quantity_column,
    quantity_text,
    unit_price_text,
)
from common.errors import BillingError
from common.vocabulary import ConsumptionModel
from plans.admin.charge_fields import (
    CREDITS_PER_UNIT,
    INCLUDED_UNITS,
    PACKAGE_PRICE,
    PACKAGE_SIZE,
    PRICING_SCHEME,
    RATE_CARD,
    UNIT_PRICE,
    WHEN_EXHAUSTED,
    charge_fields_of,
)
from plans.admin.rate_card_form import RateCardFormMixin
from plans.admin.rate_card_grid import GRID_STYLE, grid_table, stored_grid
from plans.admin.version_inline_rules import FrozenWhenPublishedMixin, is_frozen, kept_forms
from plans.feature_grants import FeatureGrant
from plans.field_checks import FieldErrors
from plans.models import PER_HELP, Charge, Meter, PlanVersion, PriceTier
from plans.pricing import PricingSpec, TierSpec
from plans.pricing_validation import check_per
from plans.selectors import meter_groups_in
from plans.validation import ChargeSpec, VersionSpec, validate_version, version_terms_spec

AMOUNT_DIGITS = {"max_digits": 28, "decimal_places": 10}
ONE = Decimal(1)


def per_field() -> ExactDecimalField:
    """How many units a unit price is for; empty is 1 (a price per unit)."""
    return ExactDecimalField(**AMOUNT_DIGITS, required=False, label=_("Per"), help_text=PER_HELP)


def cleaned_per(form) -> Decimal:
    per = form.cleaned_data.get("per")
    return ONE if per is None else per


def clean_per_field(form) -> Decimal:
    """The form's 'Per', refused on the field by the catalog's rule (check_per),
    before the table's constraint would refuse it in words finance cannot act on."""
    per = cleaned_per(form)
    errors = FieldErrors()
    check_per(errors, "per", per)
    if errors.errors:
        raise forms.ValidationError(errors.errors["per"])
    return per


class TierForm(forms.ModelForm):
    up_to = ExactDecimalField(
        **AMOUNT_DIGITS,
        required=False,
        label=_("Up to"),
        help_text=_(
            "Units up to and including this number. Empty means no limit: "
            "leave it empty on the last tier only."
        ),
    )
    unit_price = ExactDecimalField(**AMOUNT_DIGITS, label=_("Unit price"))
    per = per_field()
    flat_fee = ExactDecimalField(
        **AMOUNT_DIGITS,
        required=False,
        label=_("Flat fee"),
        help_text=_("Charged once when usage reaches this tier; empty for none."),
    )

    class Meta:
        model = PriceTier
        fields = ["up_to", "unit_price", "per", "flat_fee"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        charge = self.instance.charge if self.instance.charge_id else None
        amounts_in_currency(self, charge and charge.version.currency, ["unit_price", "flat_fee"])

    def clean_per(self) -> Decimal:
        return clean_per_field(self)


class TierInline(FrozenWhenPublishedMixin, nested_admin.NestedTabularInline):
    formfield_overrides = EXACT_DECIMALS
    model = PriceTier
    form = TierForm
    fields = ["up_to", "unit_price", "per", "flat_fee"]
    # A published version's tiers are shown, not edited: as finance reads amounts.
    frozen_fields = ["up_to_text", "unit_price_text", "per_text", "flat_fee_text"]
    extra = 0
    # One word in every language: nested_admin title-cases it in "Add another
    # %(verbose_name)s" ("Palier De Prix" from "palier de prix").
    verbose_name = _("tier")
    verbose_name_plural = _("price tiers (graduated and volume prices)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("charge__version")

    def get_fields(self, request, obj=None):
        return self.frozen_fields if is_frozen(obj) else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if is_frozen(obj):
            return [*self.frozen_fields, *self.fields]
        return super().get_readonly_fields(request, obj)

    @admin.display(description=_("Up to"))
    def up_to_text(self, tier: PriceTier) -> str:
        return _("No limit") if tier.up_to is None else quantity_text(tier.up_to)

    unit_price_text = money_column("unit_price", _("Unit price"), "charge.version.currency")
    per_text = quantity_column("per", _("Per"))
    flat_fee_text = money_column("flat_fee", _("Flat fee"), "charge.version.currency")


class ChargeForm(RateCardFormMixin, forms.ModelForm):
    pricing_scheme = forms.ChoiceField(
        choices=[("", _("No price")), *Charge.SCHEME_CHOICES],
        required=False,
        label=_("Pricing scheme"),
    )
    per = per_field()

    class Meta:
        model = Charge
        fields = [
            "meter",
            "model",
            "included_units",
            "credits_per_unit",
            "when_exhausted",
            "pricing_scheme",
            "unit_price",
            "per",
            "package_size",
            "package_price",
        ]
        labels = {"model": _("Consumption model")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        currency = self.instance.version.currency if self.instance.version_id else None
        amounts_in_currency(self, currency, ["unit_price", "package_price"])

    def clean_per(self) -> Decimal:
        return clean_per_field(self)


# Where a message about a charge's path goes on its form.
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
    "pricing.per": "per",
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
            per=cleaned_per(t),
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
            per=cleaned_per(charge_form),
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
        price_by=data.get("price_by_names", ()),
        rates=data.get("rate_specs", ()),
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
            spec = version_spec(self.instance, self)
            # As the service validates it: the rate cards against their meters' group_by.
            validate_version(
                spec,
                known_meters=dict(Meter.objects.values_list("code", "aggregation")),
                meter_groups=meter_groups_in(spec),
            )
        except BillingError as error:
            self._show(error, forms_kept)

    def _show(self, error: BillingError, forms_kept: list) -> None:
        """Each message on its field: charges.N.<path> on charge form N,
        charges.N.pricing.tiers.K.<field> on tier form K of it. The version's own
        fields are reported by its form."""
        for path, texts in error.admin_fields.items():
            parts = path.split(".")
            if parts[0] != "charges":
                continue
            form = forms_kept[int(parts[1])]
            rest = ".".join(parts[2:])
            if parts[2] in ("price_by", "rates"):
                for text in texts:
                    form.show_rate_error(rest, text)
                continue
            if rest.startswith("pricing.tiers.") and len(parts) == 6:
                tier_form = tier_forms(form)[int(parts[4])]
                for text in texts:
                    tier_form.add_error(parts[5], text)
                continue
            for text in texts:
                # A path without a field of its own (none today) goes on top of the charge.
                form.add_error(CHARGE_FIELD_FOR.get(rest), text)
        for form in forms_kept:
            form.show_refused_rows()


PRICING_TITLE = _("Pricing (overage and balance charges; credits charges that bill when exhausted)")
RATE_CARD_TITLE = _("Rate card: prices by event property (model, token type…)")

# A published version's charge: its meter and model, then only the terms that
# apply to it (charge_terms), as finance reads them; its tiers below, when tiered.
FROZEN_CHARGE_FIELDSETS = [(None, {"fields": [("meter", "model"), "charge_terms"]})]

TERM_STYLE = mark_safe(
    "<style>.charge-terms{display:flex;flex-wrap:wrap;gap:8px 32px}"
    ".charge-term{display:flex;flex-direction:column;gap:2px}"
    ".charge-term-label{font-weight:bold;color:var(--body-quiet-color)}"
    ".charge-term-rate-card{flex-basis:100%}</style>"
)


def term_html(name: str, label, value) -> str:
    return format_html(
        '<div class="charge-term field-{}"><span class="charge-term-label">{}</span>'
        '<span class="charge-term-value">{}</span></div>',
        name,
        label,
        value,
    )


class ChargeInline(FrozenWhenPublishedMixin, nested_admin.NestedStackedInline):
    formfield_overrides = EXACT_DECIMALS
    model = Charge
    form = ChargeForm
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
            PRICING_TITLE,
            {
                "fields": [
                    "pricing_scheme",
                    ("unit_price", "per", "package_size", "package_price"),
                ]
            },
        ),
        (RATE_CARD_TITLE, {"fields": ["price_by_text", "rate_card"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("meter", "version")
            .prefetch_related("rates")
        )

    def get_fieldsets(self, request, obj=None):
        if is_frozen(obj):
            return FROZEN_CHARGE_FIELDSETS
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if is_frozen(obj):
            return [*flatten_fieldsets(FROZEN_CHARGE_FIELDSETS), *ChargeForm.Meta.fields]
        return super().get_readonly_fields(request, obj)

    # A published version's card, shown (the grid, read-only).
    @admin.display(description=_("Price by"))
    def price_by_words(self, charge: Charge) -> str:
        return ", ".join(charge.price_by or ()) or "—"

    @admin.display(description=_("Rate card"))
    def rate_card_table(self, charge: Charge) -> str:
        rows = list(charge.rates.all())
        if not rows:
            return "—"
        credits = charge.model == ConsumptionModel.CREDITS
        table = grid_table(
            stored_grid(charge.price_by, rows), credits=credits, language=admin_language()
        )
        return format_html('{}<div class="rate-card-grid">{}</div>', GRID_STYLE, table)

    @admin.display(description=_("Terms"))
    def charge_terms(self, charge: Charge) -> str:
        """The terms that apply to this charge (plans.admin.charge_fields), each with its label."""
        shown = charge_fields_of(charge)
        currency = charge.version.currency
        terms = []
        if INCLUDED_UNITS in shown:
            included = quantity_text(charge.included_units)
            terms.append(term_html(INCLUDED_UNITS, _("Included units"), included))
        if CREDITS_PER_UNIT in shown:
            credits = quantity_text(charge.credits_per_unit)
            terms.append(term_html(CREDITS_PER_UNIT, _("Credits per unit"), credits))
        if WHEN_EXHAUSTED in shown:
            exhausted = charge.get_when_exhausted_display()
            terms.append(term_html(WHEN_EXHAUSTED, _("When exhausted"), exhausted))
        if PRICING_SCHEME in shown:
            scheme = charge.get_pricing_scheme_display() if charge.pricing_scheme else _("No price")
            terms.append(term_html(PRICING_SCHEME, _("Pricing scheme"), scheme))
        if UNIT_PRICE in shown:
            price = unit_price_text(charge.unit_price, charge.per, currency)
            terms.append(term_html(UNIT_PRICE, _("Unit price"), price))
        if PACKAGE_SIZE in shown:
            size = quantity_text(charge.package_size)
            terms.append(term_html(PACKAGE_SIZE, _("Package size"), size))
        if PACKAGE_PRICE in shown:
            price = money_text(charge.package_price, currency)
            terms.append(term_html(PACKAGE_PRICE, _("Package price"), price))
        if RATE_CARD in shown and (charge.price_by or charge.rates.all()):
            terms.append(term_html("price_by", _("Price by"), self.price_by_words(charge)))
            card = term_html("rate_card", _("Rate card"), self.rate_card_table(charge))
            terms.append(format_html('<div class="charge-term-rate-card">{}</div>', card))
        return format_html(
            '{}<div class="charge-terms">{}</div>',
            TERM_STYLE,
            format_html_join("", "{}", ((term,) for term in terms)),
        )
