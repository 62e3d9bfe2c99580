"""Shows a domain refusal (BillingError) as form errors in the admin."""

from decimal import Decimal
from operator import attrgetter

from django import forms
from django.contrib import admin
from django.db import models

from billing.core import customer_text
from billing.core.errors import BillingError
from billing.core.money import format_decimal


def add_billing_error(
    form: forms.BaseForm, error: BillingError, field_map: dict[str, str] | None = None
) -> None:
    """Put each of the error's field messages on the matching form field, the rest on top."""
    field_map = field_map or {}
    if not error.fields:
        form.add_error(None, error.words)
        return
    for path, messages in error.fields.items():
        if error.words != error.message and len(error.fields) == 1:
            messages = [error.words]  # written for the admin: names, not codes
        name = field_map.get(path, path)
        if name not in form.fields:
            # 'filters.model' belongs to the field 'filters'.
            name = field_map.get(path.split(".")[0], path.split(".")[0])
        for message in messages:
            if name in form.fields and not form.fields[name].disabled:
                form.add_error(name, message)
            else:
                form.add_error(None, f"{path_words(path, form)}: {message}")


def path_words(path: str, form: forms.BaseForm | None = None) -> str:
    """A field path of a refusal as finance reads it, never dotted:
    'charges.1.pricing.tiers.0.up_to' -> 'Charge 2, pricing, tier 1, up to';
    a form field by its label ('base_fee' -> 'Base fee')."""
    words: list[str] = []
    for part in path.split("."):
        if part.isdigit() and words:
            words[-1] = f"{words[-1].removesuffix('s')} {int(part) + 1}"
        elif form is not None and part in form.fields and form.fields[part].label:
            words.append(str(form.fields[part].label).lower())
        else:
            words.append(part.replace("_", " "))
    text = ", ".join(words)
    return text[:1].upper() + text[1:]


class ServiceValidatedForm(forms.ModelForm):
    """A model form whose clean() runs a domain validator and shows its refusals."""

    field_map: dict[str, str] = {}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.validate_domain(cleaned)
            except BillingError as error:
                add_billing_error(self, error, self.field_map)
        return cleaned

    def validate_domain(self, cleaned: dict) -> None:
        raise NotImplementedError


class ExactDecimalField(forms.DecimalField):
    """Shows a stored 19.9900000000 as 19.99: the value is exact, the trailing zeros are noise."""

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return format_decimal(value)
        return super().prepare_value(value)


# For ModelAdmin.formfield_overrides: every DecimalField of an admin form.
EXACT_DECIMALS = {models.DecimalField: {"form_class": ExactDecimalField}}


# The admin is written in English: its numbers are grouped the English way.
ADMIN_LOCALE = "en"


def money_text(amount: Decimal | None, currency: str) -> str:
    """An amount as finance reads it in the admin: '1,234.50 USD', '0.0000025 USD'
    (a price keeps its own precision), '—' for none."""
    if amount is None:
        return "—"
    return f"{amount_text(amount, currency)} {currency}"


def amount_text(amount: Decimal, currency: str) -> str:
    """An amount without its currency, for a table whose heading names it: '1,234.50'."""
    with customer_text.speaking(ADMIN_LOCALE):
        return customer_text.money(amount, currency)


def quantity_text(value: Decimal | int | None) -> str:
    """A quantity as finance reads it in the admin: '1,250,000', '0.5', '—' for none."""
    if value is None:
        return "—"
    with customer_text.speaking(ADMIN_LOCALE):
        return customer_text.quantity(Decimal(value))


def money_column(field: str, description: str, currency: str = "currency"):
    """An admin list column showing an amount with its currency: '1,219.99 USD'
    (the currency read from `currency`, a dotted path from the row)."""
    currency_of = attrgetter(currency)

    def show(admin_self, obj):
        return money_text(getattr(obj, field), currency_of(obj))

    show.short_description = description
    show.admin_order_field = field
    return show


def quantity_column(field: str, description: str):
    """A column of quantities grouped by thousands: '1,250,000'."""

    def show(admin_self, obj):
        return quantity_text(getattr(obj, field))

    show.short_description = description
    return show


class RecordAdmin(admin.ModelAdmin):
    """A record the services write (a ledger entry, a delivery, a Stripe event):
    viewed in the admin, never added, edited or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecordInline:
    """Mixed into an inline of records the services write: shown on the page,
    never added, changed or deleted there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ActionsRecordAdmin(RecordAdmin):
    """A record the services write, with actions on its list: change permission
    on the list only, for the actions (its page is a view page: a saved form
    would write back what a worker changed meanwhile)."""

    def has_change_permission(self, request, obj=None):
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)


def short_text(text: str, length: int = 80) -> str:
    """A long text (an error) cut to fit a list column."""
    return text if len(text) <= length else text[: length - 1] + "…"


def adopt(obj, created) -> None:
    """Make the admin's unsaved object the row a service just created."""
    obj.__dict__.update(created.__dict__)
