"""The customer form of the admin, in the words ops use: the currency and the
address's country picked from lists, the address in its own fields, alert
thresholds and invoice recipients typed as comma-separated lists. It turns them
into the values customers.services takes, and shows the domain's refusals on
the field they concern."""

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common import customer_text
from common.admin_fields import country_choices, currency_choices
from common.admin_forms import ExactDecimalField, ServiceValidatedForm, admin_language
from common.money import DecimalRefused
from common.typed_numbers import convention, typed_number_read
from customers import services
from customers.e_invoice_details import E_INVOICE_DETAILS
from customers.models import Customer
from plans.models import TaxRate
from plans.validation import validate_customer

# The address's form fields, in the order of an envelope, by the key the API uses.
ADDRESS_FIELDS = {
    "line1": ("address_line1", _("Address line 1")),
    "line2": ("address_line2", _("Address line 2")),
    "city": ("address_city", _("City")),
    "postal_code": ("address_postal_code", _("Postal code")),
    "state": ("address_state", _("State / region")),
    "country": ("address_country", _("Country")),
}

# Commas separate the items; semicolons and line breaks are taken as well.
LIST_SEPARATORS = re.compile(r"[,;\n]")
THRESHOLDS_EXAMPLE = "Enter numbers separated by commas, e.g. 50, 80, 100"


def listed(text: str) -> list[str]:
    """'a, b;  c' -> ['a', 'b', 'c']."""
    return [item.strip() for item in LIST_SEPARATORS.split(text or "") if item.strip()]


# Where a comma is the decimal mark (French, German), semicolons and line breaks
# separate the thresholds: "50; 75,5; 100".
DECIMAL_COMMA_LIST = re.compile(r"[;\n]")
THRESHOLDS_EXAMPLE_DECIMAL_COMMA = "Enter numbers separated by semicolons, e.g. 50; 75,5; 100"


def _decimal_comma() -> bool:
    return convention(admin_language())[0] == ","


def _separated() -> str:
    if _decimal_comma():
        return gettext("separated by semicolons, e.g. 50; 75,5; 100")
    return gettext("separated by commas, e.g. 50, 80, 100")


def thresholds_text(values) -> str:
    """[50, 75.5, 100] -> '50, 75.5, 100' (en), '50; 75,5; 100' (fr, de)."""
    with customer_text.speaking(admin_language()):
        texts = [
            customer_text.typed_number(Decimal(str(value)).normalize()) for value in values or []
        ]
    return ("; " if _decimal_comma() else ", ").join(texts)


def thresholds_read(text: str) -> list[Decimal]:
    """The percentages typed, each read in the user's convention (typed_numbers)."""
    separators = DECIMAL_COMMA_LIST if _decimal_comma() else LIST_SEPARATORS
    example = THRESHOLDS_EXAMPLE_DECIMAL_COMMA if _decimal_comma() else THRESHOLDS_EXAMPLE
    percentages = []
    for item in (part.strip() for part in separators.split(text or "")):
        if not item:
            continue
        try:
            value = typed_number_read(item.removesuffix("%"), language=admin_language())
        except DecimalRefused as refused:
            message = example if refused.code == "invalid" else str(refused)
            raise forms.ValidationError(message) from None
        if value is None:
            raise forms.ValidationError(example)
        percentages.append(value)
    return percentages


def address_from(values: dict) -> dict:
    """The address the API stores, from the form's fields: the keys filled in,
    each trimmed; {} for none."""
    address = {}
    for key, (name, _label) in ADDRESS_FIELDS.items():
        value = (values.get(name) or "").strip()
        if value:
            address[key] = value
    return address


def _address_filled(address: object) -> dict:
    if not isinstance(address, dict):
        return {}
    return {key: value for key, value in address.items() if value not in (None, "")}


# The admin's width for a line of text.
WIDE = forms.TextInput(attrs={"class": "vTextField"})


class CustomerForm(ServiceValidatedForm):
    currency = forms.ChoiceField(
        choices=[],
        help_text=_("What its invoices, wallets and subscriptions are in; fixed once saved."),
        label=_("Currency"),
    )
    address_line1 = forms.CharField(required=False, label=_("Address line 1"), widget=WIDE)
    address_line2 = forms.CharField(required=False, label=_("Address line 2"), widget=WIDE)
    address_city = forms.CharField(required=False, label=_("City"), widget=WIDE)
    address_postal_code = forms.CharField(required=False, label=_("Postal code"))
    address_state = forms.CharField(required=False, label=_("State / region"))
    address_country = forms.ChoiceField(
        choices=[],
        required=False,
        label=_("Country"),
        help_text=_("Also picks the tax rates marked default for that country."),
        error_messages={"invalid_choice": _("Pick a country from the list.")},
    )
    spend_limit = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        help_text=_("Most the customer may spend in one period, in its currency. Empty: no limit."),
        label=_("Spend limit"),
    )
    alert_thresholds = forms.CharField(
        required=False,
        label=_("Usage alert thresholds (%)"),
        help_text="",
    )
    invoice_emails = forms.CharField(
        required=False,
        widget=WIDE,
        label=_("Invoice recipients"),
        help_text=(
            _(
                "Email addresses finalized invoices and credit notes are sent to, separated "
                "by commas, e.g. ap@acme.test, finance@acme.test."
            )
        ),
    )
    tax_rates = forms.ModelMultipleChoiceField(
        queryset=TaxRate.objects.filter(active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Charged on the customer's invoices. None: the rates marked default."),
        label=_("Tax rates"),
    )

    # The domain's paths to the form's fields.
    field_map = {f"address.{key}": name for key, (name, _label) in ADDRESS_FIELDS.items()}

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "name",
            "email",
            "currency",
            "timezone",
            "tax_id",
            "spend_limit",
            "spend_limit_mode",
            "alert_thresholds",
            "payment_terms_days",
            "locale",
            "tax_exempt",
            "invoice_emails",
            "tax_rates",
            "billing_entity",
            "dunning_policy",
            "dunning_off",
            "dunning_paused_until",
            *E_INVOICE_DETAILS,
        ]
        labels = {
            "billing_entity": _("Billed by"),
            "external_id": _("External ID"),
            "tax_id": _("Tax ID"),
            "timezone": _("Time zone"),
            "payment_terms_days": _("Payment terms (days)"),
            "locale": _("Invoice language"),
            "tax_exempt": _("Tax"),
        }
        help_texts = {
            "external_id": _("How the API and the usage events name this customer, e.g. acme."),
            "timezone": _("Its periods and invoice dates follow it, e.g. Europe/Paris."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        # Left out of a post, they keep their defaults (English, taxed).
        for name in ("locale", "tax_exempt"):
            if name in self.fields:
                self.fields[name].required = False
        if "currency" in self.fields:
            self.fields["currency"].choices = [("", _("Pick a currency")), *currency_choices()]
        address = instance.address if isinstance(instance.address, dict) else {}
        country = address.get("country") or ""
        self.fields["address_country"].choices = [
            ("", "—"),
            *country_choices(current=country if isinstance(country, str) else ""),
        ]
        for key, (name, _label) in ADDRESS_FIELDS.items():
            value = address.get(key)
            self.initial.setdefault(name, value if isinstance(value, str) else "")
        if "payment_terms_days" in self.fields:
            self.fields["payment_terms_days"].help_text = gettext(
                "Days from an invoice's finalization to its due date; 0: due at once. "
                "Empty: the default, {days} days."
            ).format(days=settings.BILLING_PAYMENT_TERMS_DAYS)
        defaults = thresholds_text(settings.BILLING_ALERT_THRESHOLDS)
        self.fields["alert_thresholds"].help_text = gettext(
            "Percentages of a plan's included units (its allowance of a meter) at which "
            "a usage alert is sent, {separated}. Empty: {defaults}."
        ).format(separated=_separated(), defaults=defaults)
        # Stored as lists, typed as text.
        for name, as_text in (("alert_thresholds", thresholds_text), ("invoice_emails", ", ".join)):
            if isinstance(self.initial.get(name), list):
                self.initial[name] = as_text(self.initial[name])

    def clean_locale(self):
        return self.cleaned_data.get("locale") or self.instance.locale or "en"

    def clean_tax_exempt(self):
        return self.cleaned_data.get("tax_exempt") or self.instance.tax_exempt or "none"

    def clean_invoice_emails(self):
        return listed(self.cleaned_data.get("invoice_emails"))

    def clean_dunning_paused_until(self):
        until = self.cleaned_data.get("dunning_paused_until")
        changed = until != getattr(self.instance, "dunning_paused_until", None)
        if until is not None and changed and until <= timezone.now():
            raise forms.ValidationError(
                _("A pause ends in the future; leave it empty to resume dunning now.")
            )
        return until

    def clean_alert_thresholds(self):
        # Left empty: the customer has no thresholds of its own and the default
        # setting applies.
        return thresholds_read(self.cleaned_data.get("alert_thresholds"))

    def _get_validation_exclusions(self):
        # Exact percentages (Decimals) are no JSON yet: customers.services checks
        # and stores them; the model's JSON check would refuse them.
        return {*super()._get_validation_exclusions(), "alert_thresholds"}

    def clean(self):
        address = address_from(self.cleaned_data)
        stored = self.instance.address
        # Unchanged: the stored address stays as the API wrote it (nulls included).
        self.cleaned_data["address"] = stored if address == _address_filled(stored) else address
        return super().clean()

    def validate_domain(self, cleaned):
        validate_customer(
            external_id=cleaned.get("external_id") or self.instance.external_id,
            currency=cleaned.get("currency") or self.instance.currency,
            timezone=cleaned.get("timezone") or "",
            spend_limit=cleaned.get("spend_limit"),
            address=cleaned["address"],
        )
        services.validate_customer_settings(
            alert_thresholds=cleaned.get("alert_thresholds") or [],
            spend_limit_mode=cleaned.get("spend_limit_mode"),
            payment_terms_days=cleaned.get("payment_terms_days"),
            locale=cleaned.get("locale"),
            tax_exempt=cleaned.get("tax_exempt"),
            invoice_emails=cleaned.get("invoice_emails") or [],
        )
        # The e-invoice details as the seller chosen here bills the customer.
        services.validate_customer_e_invoicing(
            {**cleaned, "tax_id": cleaned.get("tax_id") or ""}, cleaned.get("billing_entity")
        )
