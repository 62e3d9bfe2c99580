"""Customers and API keys in the admin; saves go through customers.services."""

from django import forms
from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from billing.forms import ServiceValidatedForm, money_column
from customers import services
from customers.models import ApiKey, Customer
from plans.admin import adopt
from plans.validation import validate_customer

CUSTOMER_FIELDS = [
    "name",
    "email",
    "timezone",
    "address",
    "tax_id",
    "spend_limit",
    "spend_limit_mode",
    "alert_thresholds",
]


class CustomerForm(ServiceValidatedForm):
    class Meta:
        model = Customer
        fields = ["external_id", "currency", *CUSTOMER_FIELDS]

    def clean_alert_thresholds(self):
        # Left empty, the field reads as null: the customer then has no thresholds
        # of its own and the default setting applies.
        return self.cleaned_data.get("alert_thresholds") or []

    def validate_domain(self, cleaned):
        validate_customer(
            external_id=cleaned.get("external_id") or self.instance.external_id,
            currency=cleaned.get("currency") or self.instance.currency,
            timezone=cleaned.get("timezone") or "",
            spend_limit=cleaned.get("spend_limit"),
            address=cleaned.get("address") if cleaned.get("address") is not None else {},
        )


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin):
    form = CustomerForm
    list_display = [
        "external_id",
        "name",
        "email",
        "currency",
        "timezone",
        "spend_limit",
        "spend_limit_mode",
        "created_at",
    ]
    list_filter = ["currency", "spend_limit_mode"]
    search_fields = ["external_id", "name", "email"]
    date_hierarchy = "created_at"

    spend_limit_display = money_column("spend_limit", "spend limit")

    def get_readonly_fields(self, request, obj=None):
        # The API addresses a customer by external_id, and its money is in its currency.
        return ["external_id", "currency", "created_at"] if obj else []

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data.get(f) for f in CUSTOMER_FIELDS}
        values["address"] = values["address"] or {}
        values["tax_id"] = values["tax_id"] or ""
        values["email"] = values["email"] or ""
        values["alert_thresholds"] = values["alert_thresholds"] or []
        if change:
            adopt(obj, services.customer_update(customer=obj, **values))
        else:
            values["timezone_name"] = values.pop("timezone")
            adopt(
                obj,
                services.customer_create(
                    external_id=form.cleaned_data["external_id"],
                    currency=form.cleaned_data["currency"],
                    **values,
                ),
            )


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ApiKey.SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(ApiKey.SCOPES),
        help_text="events:write posts usage; read reads; admin may do everything.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(SimpleHistoryAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "scopes", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["scopes", "prefix", "created_at", "revoked_at"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        key, secret = services.api_key_create(
            name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        adopt(obj, key)
        self.message_user(
            request,
            f"Secret of {key.name!r}, shown this once (only its hash is stored): {secret}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked")
