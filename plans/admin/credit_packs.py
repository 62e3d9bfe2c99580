"""Credit packs in the admin: what a pack sells (credits for some meters, or
every meter) and at what price; saves go through plans.services."""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from common.admin_fields import CurrencyFilter, currency_choices
from common.admin_forms import (
    ExactDecimalField,
    ServiceValidatedForm,
    adopt,
    money_text,
    quantity_text,
    typed_money_field,
)
from common.admin_history import AuditHistoryAdmin
from common.money import format_money
from plans import services
from plans.models import CreditPack, Meter
from plans.validation import validate_credit_pack


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
