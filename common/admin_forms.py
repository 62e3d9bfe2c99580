"""Shows a domain refusal (BillingError) as form errors in the admin."""

from decimal import Decimal
from operator import attrgetter

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import translation
from django.utils.translation import gettext as _

from common import customer_text
from common.errors import BillingError
from common.money import DecimalRefused
from common.typed_numbers import typed_number_read


def add_billing_error(
    form: forms.BaseForm, error: BillingError, field_map: dict[str, str] | None = None
) -> None:
    """Put each of the error's field messages on the matching form field, the rest on top."""
    field_map = field_map or {}
    if not any(error.fields.values()):
        # No field messages (or only empty ones): the refusal's words on top.
        form.add_error(None, error.words)
        return
    for path, messages in error.admin_fields.items():
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


def admin_language() -> str:
    """The language of the admin user this request is for (config.user_language
    activates it): how they type and read numbers."""
    return customer_text.language(translation.get_language())


def typed_value(value: object) -> Decimal | None:
    """What the admin user typed, read in their convention; a ValidationError
    saying what to type instead."""
    try:
        return typed_number_read(str(value), language=admin_language())
    except DecimalRefused as refused:
        raise ValidationError(str(refused), code=refused.code) from None


class TypedNumberInput(forms.TextInput):
    """A text box for a number, shown in the user's convention without trailing
    zeros ('19,99' in German for a stored 19.9900000000); an amount in a currency
    (`currency` set, amounts_in_currency) with its currency's digits at least
    ('39,90', as typed). Not <input type=number>: a browser reads that one in its
    own locale and drops what it cannot read."""

    def __init__(self, attrs=None, *, trim: bool = True):
        super().__init__({"inputmode": "decimal", "autocomplete": "off", **(attrs or {})})
        self.trim = trim
        self.currency: str | None = None

    def format_value(self, value):
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            with customer_text.speaking(admin_language()):
                if self.currency:
                    return customer_text.typed_money(Decimal(value), self.currency)
                value = Decimal(value).normalize() if self.trim else Decimal(value)
                return customer_text.typed_number(value)
        return super().format_value(value)


def amounts_in_currency(form: forms.BaseForm, currency: str | None, names) -> None:
    """Show the form's amount fields `names` (those it has) with `currency`'s
    digits at least: a base fee typed "39,90" shows back as "39,90", not "39,9"."""
    if not currency:
        return
    for name in names:
        field = form.fields.get(name)
        if field is not None and isinstance(field.widget, TypedNumberInput):
            field.widget.currency = currency


class ExactDecimalField(forms.DecimalField):
    """Every amount or quantity typed in the admin: read in the user's convention
    (common.typed_numbers: '1,50' is 1.50 in French and German and is asked
    about in English), then held to the field's digits as any DecimalField."""

    widget = TypedNumberInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, Decimal):
            return value
        return typed_value(value)


class ExactIntegerField(forms.IntegerField):
    """A count typed in the admin (seats, days): read as ExactDecimalField reads a
    number (a German "1.000" is 1000, not 1), then refused unless whole."""

    widget = TypedNumberInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int):
            return value
        number = typed_value(value)
        if number is None:
            return None
        if number != number.to_integral_value():
            raise ValidationError(_("Type a whole number."), code="invalid")
        return int(number)


def typed_money_field(field: forms.Field) -> forms.Field:
    """A django-money form field (an amount and a currency) whose amount is read as
    ExactDecimalField reads one."""
    amount = field.fields[0]
    field.fields = (
        ExactDecimalField(
            max_digits=amount.max_digits,
            decimal_places=amount.decimal_places,
            required=False,  # the MultiValueField says whether the pair is required
            disabled=amount.disabled,
        ),
        *field.fields[1:],
    )
    # Shown with the digits the form gives it: a price with its currency's ('50.00').
    field.widget.widgets[0] = TypedNumberInput(trim=False)
    return field


# For ModelAdmin.formfield_overrides: every DecimalField of an admin form.
EXACT_DECIMALS = {
    models.DecimalField: {"form_class": ExactDecimalField},
    # (and every count: the admin's own widget for one is an <input type=number>)
    models.IntegerField: {"form_class": ExactIntegerField, "widget": TypedNumberInput},
}


def money_text(amount: Decimal | None, currency: str) -> str:
    """An amount as finance reads it in the admin, in the user's convention:
    '1,234.50 USD', '1.234,50 EUR' (de), '0.0000025 USD' (a price keeps its own
    precision), '—' for none."""
    if amount is None:
        return "—"
    return f"{amount_text(amount, currency)} {currency}"


def unit_price_text(price: Decimal | None, per: Decimal | None, currency: str) -> str:
    """A unit price as finance reads it in the admin: money_text, then how many
    units it is for (customer_text.with_per, in the user's language): '0.05
    USD', '2.50 USD per 1M', '—' for none."""
    if price is None:
        return "—"
    text = money_text(price, currency)
    with customer_text.speaking(admin_language()):
        return customer_text.with_per(text, per)


def amount_text(amount: Decimal, currency: str) -> str:
    """An amount without its currency, for a table whose heading names it: '1,234.50'."""
    with customer_text.speaking(admin_language()):
        return customer_text.money(amount, currency)


def quantity_text(value: Decimal | int | None) -> str:
    """A quantity as finance reads it in the admin: '1,250,000', '0.5', '—' for none."""
    if value is None:
        return "—"
    with customer_text.speaking(admin_language()):
        return customer_text.quantity(Decimal(value))


def percent_text(value: Decimal | None) -> str:
    """A percentage as finance reads it in the admin: '53.57%', '53,57 %' (fr),
    '—' for none."""
    if value is None:
        return "—"
    with customer_text.speaking(admin_language()):
        return customer_text.percent(value)


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
