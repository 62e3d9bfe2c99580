"""Purchases in the admin: the purchases waiting for their payment, and a form
that sells a pack or a money top-up through a Checkout link or a charge of the
saved payment method. Changes go through wallets.purchases and
invoices.collection."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_forms import ActionsRecordAdmin, ExactDecimalField
from common.errors import BillingError
from invoices import collection
from invoices.admin.payments import amount_text
from invoices.models import Payment, Purchase
from plans.models import CreditPack
from wallets import purchases


class PurchaseOrderForm(forms.ModelForm):
    """Sell a pack or a money top-up through Stripe: a Checkout link to send the
    customer, or a charge of its saved payment method. Nothing is granted until
    the payment succeeds."""

    CHANNELS = [
        (Purchase.CHECKOUT, "Stripe Checkout link (to send the customer)"),
        (Purchase.CHARGE, "Charge the saved payment method now"),
    ]

    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(active=True),
        required=False,
        help_text=_("A credit pack; or leave empty and give an amount for a money top-up."),
        label=_("Pack"),
    )
    top_up = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        label=_("Money top-up"),
        help_text=_("In the customer's currency."),
    )
    pay_by = forms.ChoiceField(choices=CHANNELS, initial=Purchase.CHECKOUT, label=_("Pay by"))
    success_url = forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text=_("Where Checkout sends the buyer back; empty: STRIPE_CHECKOUT_SUCCESS_URL."),
        label=_("Success url"),
    )

    class Meta:
        model = Purchase
        fields = ["customer"]

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("pack") is None) == (cleaned.get("top_up") in (None, "")):
            raise forms.ValidationError(gettext("Choose a pack, or give a money top-up amount."))
        customer = cleaned.get("customer")
        if customer is not None and not self.errors:
            checkout = cleaned["pay_by"] == Purchase.CHECKOUT
            now = timezone.now()
            try:
                if cleaned.get("pack") is not None:
                    cleaned["result"] = purchases.credit_pack_order(
                        customer=customer,
                        pack=cleaned["pack"],
                        checkout=checkout,
                        success_url=cleaned.get("success_url") or "",
                        now=now,
                    )
                else:
                    cleaned["result"] = purchases.money_top_up_order(
                        customer=customer,
                        amount=cleaned["top_up"],
                        currency=customer.currency,
                        checkout=checkout,
                        success_url=cleaned.get("success_url") or "",
                        now=now,
                    )
            except BillingError as error:
                target = next((f for f in error.fields if f in self.fields), None)
                self.add_error(target, error.words)
        return cleaned


@admin.register(Purchase)
class PurchaseAdmin(ActionsRecordAdmin):
    list_display = [
        "id",
        "customer",
        "kind",
        "channel",
        "status",
        "amount_display",
        "pack",
        "created_at",
        "paid_at",
        "checkout_link",
    ]
    list_filter = ["status", "kind", "channel", "created_at"]
    search_fields = ["customer__external_id", "customer__name", "invoice__number"]
    list_select_related = ["customer", "pack", "payment"]
    readonly_fields = [
        "customer",
        "kind",
        "channel",
        "status",
        "pack",
        "credits",
        "amount",
        "currency",
        "block",
        "invoice",
        "created_at",
        "paid_at",
        "closed_at",
        "checkout_link",
        "payment_link",
    ]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, purchase):
        return amount_text(purchase)

    @admin.display(description=_("Checkout link"))
    def checkout_link(self, purchase):
        payment = getattr(purchase, "payment", None)
        if payment is None or not payment.checkout_url or purchase.status != Purchase.PENDING:
            return "-"
        return format_html('<a href="{0}">{0}</a>', payment.checkout_url)

    @admin.display(description=_("payment"))
    def payment_link(self, purchase):
        payment = getattr(purchase, "payment", None)
        if payment is None:
            return "-"
        url = reverse("admin:invoices_payment_change", args=[payment.pk])
        return format_html('<a href="{}">{}</a>', url, payment)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PurchaseOrderForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "pack", "top_up", "pay_by", "success_url"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def has_add_permission(self, request):
        # Purchases are paid through Stripe; without it a sale is invoiced at once
        # (the wallet's page, "Add credits or money").
        return collection.enabled() and admin.ModelAdmin.has_add_permission(self, request)

    def save_model(self, request, obj, form, change):
        # The service wrote the purchase when the form was validated.
        purchase = form.cleaned_data["result"]
        obj.__dict__.update(Purchase.objects.get(pk=purchase.pk).__dict__)

    def save_related(self, request, form, formsets, change):
        pass

    def response_add(self, request, obj, post_url_continue=None):
        payment = Payment.objects.get(purchase=obj)
        if payment.checkout_url:
            self.message_user(
                request,
                format_html(
                    'Purchase #{} waits for its payment: send the customer <a href="{}">{}</a>',
                    obj.pk,
                    payment.checkout_url,
                    payment.checkout_url,
                ),
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                gettext("Purchase #{id}: the saved payment method is charged ({status}).").format(
                    id=obj.pk, status=payment.get_status_display().lower()
                ),
                messages.SUCCESS,
            )
        return super().response_post_save_add(request, obj)
