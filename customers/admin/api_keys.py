"""API keys in the admin: a key is created with its scopes and its secret shown
once (only its hash is stored), and revoked; through customers.api_keys."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_forms import adopt
from common.admin_history import AuditHistoryAdmin
from customers import api_keys
from customers.models import CUSTOMER_DETAILS, ApiKey

CUSTOMER_FIELDS = list(CUSTOMER_DETAILS)

# Subscriptions listed on a customer's page; the subscription list has them all.
SUBSCRIPTIONS_SHOWN = 20
# Wallet-drawn charges have no amount on the invoice: the wallet paid as usage happened.
DRAWN_FROM_WALLET = {"credits": _("drawn from credits"), "balance": _("drawn from balance")}


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ApiKey.SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(ApiKey.SCOPES),
        help_text=_(
            "events:write posts usage and asks check; read reads (and asks check) all but "
            "finance data; finance:read reads margins, cost rates and the journal; admin "
            "writes (not events). No scope implies another: tick each the key needs."
        ),
        label=_("Scopes"),
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditHistoryAdmin):
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
        key, secret = api_keys.api_key_create(
            name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        adopt(obj, key)
        self.message_user(
            request,
            gettext(
                "Secret of {name!r}, shown this once (only its hash is stored): {secret}"
            ).format(name=key.name, secret=secret),
            messages.WARNING,
        )

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            api_keys.api_key_revoke(key=key)
        self.message_user(request, gettext("{count} key(s) revoked").format(count=queryset.count()))
