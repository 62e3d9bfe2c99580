"""The billing entities' admin (the sellers on invoices), edited by Finance with
their history. Saving goes through customers.billing_entities, which keeps one
default."""

from django import forms
from django.contrib import admin, messages
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.journal.models import JournalEntry
from common.admin_deletion import RefusedDeletionMixin
from common.admin_fields import country_choices
from common.admin_forms import ServiceValidatedForm
from common.admin_history import AuditHistoryAdmin
from common.errors import Conflict
from customers.admin.vat_checks import may_check_vat, vat_check_html, vat_check_view
from customers.billing_entities import (
    billing_entity_save,
    customers_waiting_for_vat_number,
    waiting_for_vat_number_words,
)
from customers.models import BillingEntity

WIDE = forms.TextInput(attrs={"class": "vTextField"})
LINES = forms.Textarea(attrs={"rows": 4, "cols": 60})


class BillingEntityForm(ServiceValidatedForm):
    country = forms.ChoiceField(
        choices=[],
        help_text=_(
            "Where it is established: a customer in another country gets its country "
            "printed, and EU VAT rules compare the two."
        ),
        error_messages={"invalid_choice": _("Pick a country from the list.")},
        label=_("Country"),
    )

    class Meta:
        model = BillingEntity
        fields = [
            "code",
            "legal_name",
            "address_lines",
            "country",
            "tax_id",
            "registration_id",
            "bank_name",
            "iban",
            "bic",
            "logo",
            "email",
            "sender_email",
            "payment_instructions",
            "invoice_footer",
            "invoice_prefix",
            "credit_note_prefix",
            "functional_currency",
            "timezone",
            "is_default",
            "e_invoicing",
            "street",
            "postal_code",
            "city",
            "peppol_id",
            "contact_name",
            "contact_phone",
            "payment_means",
            "sepa_creditor_id",
        ]
        widgets = {
            "legal_name": WIDE,
            "address_lines": LINES,
            "payment_instructions": LINES,
            "invoice_footer": LINES,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = [
            ("", _("Pick a country")),
            *country_choices(current=self.instance.country or ""),
        ]
        self.fields["payment_means"].required = False

    def clean_payment_means(self):
        # Left out of a post, it keeps what it was (credit transfer by default).
        return self.cleaned_data.get("payment_means") or self.instance.payment_means

    def clean_invoice_prefix(self):
        return (self.cleaned_data.get("invoice_prefix") or "").strip().upper()

    def clean_credit_note_prefix(self):
        return (self.cleaned_data.get("credit_note_prefix") or "").strip().upper()

    def clean_functional_currency(self):
        return (self.cleaned_data.get("functional_currency") or "").strip().upper()

    def clean_timezone(self):
        return (self.cleaned_data.get("timezone") or "").strip()

    def clean_iban(self):
        return "".join((self.cleaned_data.get("iban") or "").split()).upper()

    def clean_bic(self):
        return (self.cleaned_data.get("bic") or "").strip().upper()

    def _get_validation_exclusions(self):
        # Made the default, it takes over (billing_entity_save): the one-default
        # constraint is kept there, not refused here.
        return {*super()._get_validation_exclusions(), "is_default"}

    def validate_domain(self, cleaned):
        # The rest (prefixes, country) is the model's clean(), run by the form.
        if self.instance.pk and self.instance.is_default and not cleaned.get("is_default"):
            raise Conflict(
                f"{self.instance} is the default billing entity: to change that, make "
                "another entity the default",
                fields={"is_default": ["one billing entity is always the default"]},
            )


VAT_CHECK = "vat_check_display"


@admin.register(BillingEntity)
class BillingEntityAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = BillingEntityForm
    list_display = [
        "legal_name",
        "code",
        "country",
        "tax_id",
        "invoice_prefix",
        "credit_note_prefix",
        "functional_currency",
        "is_default",
        "customer_count",
    ]
    search_fields = ["legal_name", "code", "tax_id"]
    fieldsets = [
        (None, {"fields": ["legal_name", "code", "is_default"]}),
        (_("Address"), {"fields": ["address_lines", "country"]}),
        (_("Tax and registration"), {"fields": ["tax_id", "vat_check_display", "registration_id"]}),
        (_("Bank details"), {"fields": ["bank_name", "iban", "bic", "payment_instructions"]}),
        (
            _("E-invoicing"),
            {
                "fields": [
                    "e_invoicing",
                    "street",
                    "postal_code",
                    "city",
                    "peppol_id",
                    "contact_name",
                    "contact_phone",
                    "payment_means",
                    "sepa_creditor_id",
                ],
                "description": _(
                    "What its EN 16931 e-invoices carry: the address in parts, its Peppol "
                    "endpoint, a contact (its email is the contact email) and how to pay."
                ),
            },
        ),
        (
            _("Books"),
            {
                "fields": ["functional_currency", "timezone"],
                "description": _(
                    "The currency its journal is kept in (fixed once it has journal "
                    "entries) and the zone its reports' days begin in."
                ),
            },
        ),
        (
            _("Documents"),
            {
                "fields": [
                    "logo",
                    "invoice_prefix",
                    "credit_note_prefix",
                    "invoice_footer",
                    "email",
                    "sender_email",
                ],
                "description": _(
                    "A change shows on the documents issued from now on; those "
                    "already issued keep the seller they were issued with."
                ),
            },
        ),
    ]

    @admin.display(description=_("customers"))
    def customer_count(self, entity: BillingEntity) -> str:
        count = entity.customers.count()
        if entity.is_default:
            return gettext("{count} (and every customer naming none)").format(count=count)
        return str(count)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        entity = self.get_object(request, object_id) if request.method == "GET" else None
        waiting = customers_waiting_for_vat_number(entity) if entity is not None else []
        if waiting:
            messages.warning(request, waiting_for_vat_number_words(entity, waiting))
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fieldsets(self, request, obj=None):
        # An entity not saved yet has no check to show.
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != VAT_CHECK]})
            for name, options in fieldsets
        ]

    @admin.display(description=_("VAT number check"))
    def vat_check_display(self, entity: BillingEntity) -> str:
        return vat_check_html(entity)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            obj.may_check_vat = may_check_vat(request.user)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        vat_check = path(
            "<path:object_id>/vat-check/",
            self.admin_site.admin_view(lambda r, object_id: vat_check_view(self, r, object_id)),
            name="customers_billingentity_vat_check",
        )
        return [vat_check, *super().get_urls()]

    def get_readonly_fields(self, request, obj=None):
        # A prefix names a sequence its documents were numbered in: fixed once used;
        # the functional currency is what its journal's amounts are in: fixed once
        # one is written (a change would leave the books in two currencies).
        fixed = ["vat_check_display"]
        if obj is not None and (obj.invoices.exists() or obj.credit_notes.exists()):
            fixed += ["invoice_prefix", "credit_note_prefix"]
        if obj is not None and JournalEntry.objects.filter(billing_entity=obj.code).exists():
            fixed.append("functional_currency")
        return fixed

    def deletion_refusal(self, obj):
        """The default is never deleted (another is made default first); one that
        bills customers or issued documents stays, for them."""
        if obj.pk is None:
            return None
        if obj.is_default:
            return f"{obj} is the default billing entity: make another one the default first."
        counts = {
            "customer": obj.customers.count(),
            "invoice": obj.invoices.count(),
            "credit note": obj.credit_notes.count(),
        }
        kept = [f"{n} {what}{'' if n == 1 else 's'}" for what, n in counts.items() if n]
        if not kept:
            return None
        return (
            f"{obj} has {' and '.join(kept)}: it stays, for them; move its customers "
            "to another billing entity to stop billing from it."
        )

    def save_model(self, request, obj, form, change):
        billing_entity_save(entity=obj)
