"""Tax rates in the admin. A rate that taxed an invoice keeps its terms: only
archiving it (active off) or its default flag may change, and it is never
deleted; a rate customers hold is archived with the rate they move to, chosen
on the same form, or without one (they hold it no more, and the default rates
apply to them: the message says how many) (plans.services.tax_rate_update)."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from common.admin_deletion import RefusedDeletionMixin
from common.admin_fields import CountryFilter
from common.admin_forms import EXACT_DECIMALS, ServiceValidatedForm, adopt
from common.admin_history import AuditHistoryAdmin
from common.money import format_decimal
from plans import services
from plans.models import TaxRate
from plans.tax_rates import TAX_RATE_CLASSIFICATION
from plans.validation import validate_tax_rate


class TaxRateForm(ServiceValidatedForm):
    field_map = {"default": "is_default"}
    replaced_by = forms.ModelChoiceField(
        queryset=TaxRate.objects.filter(active=True),
        to_field_name="code",
        required=False,
        label=_("Customers move to"),
        help_text=(
            _(
                "When archiving a rate customers hold as their own: the rate they hold "
                "instead, given to them when this is saved. Empty: they hold it no more, "
                "and are charged the default rates unless they hold another."
            )
        ),
    )

    class Meta:
        model = TaxRate
        fields = [
            "code",
            "name",
            "percentage",
            "country",
            "vat_category",
            "exemption_reason",
            "is_default",
            "active",
        ]
        help_texts = {"percentage": _("e.g. 20 for 20 %; frozen once an invoice is taxed at it.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vat_category"].required = False
        if self.instance.pk:
            field = self.fields["replaced_by"]
            field.queryset = field.queryset.exclude(pk=self.instance.pk)

    def clean_vat_category(self):
        # Left out of a post, it stays as it is (S for a new rate).
        return self.cleaned_data.get("vat_category") or self.instance.vat_category

    def validate_domain(self, cleaned):
        if self.instance.pk:
            services.tax_rate_archive_check(
                rate=self.instance,
                active=cleaned.get("active"),
                replaced_by=replaced_by_code(cleaned),
            )
        rate = self.instance
        terms = {
            name: cleaned.get(name, getattr(rate, name))
            for name in ("code", "name", "percentage", "country", *TAX_RATE_CLASSIFICATION)
        }
        classified = ("percentage", *TAX_RATE_CLASSIFICATION)
        validate_tax_rate(
            code=terms["code"],
            name=terms["name"] or "",
            percentage=terms["percentage"],
            country=terms["country"] or "",
            vat_category=terms["vat_category"],
            exemption_reason=terms["exemption_reason"] or "",
            check_category=rate.pk is None
            or any(terms[name] != getattr(rate, name) for name in classified),
        )
        services.default_rate_check(
            pk=rate.pk,
            country=terms["country"] or "",
            is_default=bool(cleaned.get("is_default", rate.is_default)),
            active=bool(cleaned.get("active", rate.active)),
        )


def rate_words(rate: TaxRate) -> str:
    """'MwSt. 19 %': a rate as finance names it (names repeat; the percentage tells them apart)."""
    return services.rate_name(rate)


def replaced_by_code(cleaned: dict) -> str | None:
    replacement = cleaned.get("replaced_by")
    return replacement.code if replacement is not None else None


@admin.register(TaxRate)
class TaxRateAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    """Tax rates. A rate that taxed an invoice keeps its terms: only archiving it
    (active off) or its default flag may change; it is never deleted."""

    form = TaxRateForm
    formfield_overrides = EXACT_DECIMALS
    list_display = ["code", "name", "percentage_display", "country", "is_default", "active"]
    list_filter = ["active", "is_default", ("country", CountryFilter)]
    search_fields = ["code", "name"]

    @admin.display(description=_("percentage"), ordering="percentage")
    def percentage_display(self, rate: TaxRate) -> str:
        return f"{format_decimal(rate.percentage)} %"

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None or not obj.active:
            fields.remove("replaced_by")  # only an active rate is archived
        if obj is not None and services.tax_rate_in_use(obj):
            # Frozen terms are shown, not edited: the percentage as finance writes it.
            fields = ["percentage_display" if f == "percentage" else f for f in fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and services.tax_rate_in_use(obj):
            return ["code", "name", "percentage_display", "country"]
        return []

    def deletion_refusal(self, obj):
        if obj.pk is None or not services.tax_rate_in_use(obj):
            return None
        return (
            f"{obj.name} taxed invoices: untick Active to archive it instead "
            "(the invoices keep naming it)."
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        flags = {"is_default": data["is_default"], "active": data["active"]}
        described = ("code", "name", "percentage", "country", *TAX_RATE_CLASSIFICATION)
        terms = {name: data[name] for name in described if name in data}
        if change:
            replaced_by = replaced_by_code(data)
            updated = services.tax_rate_update(rate=obj, replaced_by=replaced_by, **terms, **flags)
            adopt(obj, updated)
            if updated.released and not replaced_by:
                messages.warning(
                    request,
                    ngettext(
                        "{count} customer held {rate} as their own: they hold it no more and "
                        "are charged the default rates unless they hold another.",
                        "{count} customers held {rate} as their own: they hold it no more and "
                        "are charged the default rates unless they hold another.",
                        updated.released,
                    ).format(count=updated.released, rate=rate_words(obj)),
                )
            if replaced_by:
                messages.info(
                    request,
                    gettext(
                        "The customers who held {rate} as their own hold {replacement} now."
                    ).format(rate=rate_words(obj), replacement=rate_words(data["replaced_by"])),
                )
        else:
            adopt(obj, services.tax_rate_create(**terms, **flags))

    def delete_model(self, request, obj):
        services.tax_rate_delete(rate=obj)
