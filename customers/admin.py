"""Customers and API keys in the admin; saves go through customers.services. A
customer's page also shows its subscriptions, the current period's usage priced
so far and projected, its wallets, and makes a fresh signed portal link."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from simple_history.admin import SimpleHistoryAdmin

from billing.core.admin_forms import ServiceValidatedForm, adopt, money_column
from billing.core.money import format_decimal, format_money
from billing.invoicing.discounts import usage_discounted
from billing.usage.breakdowns import meter_breakdown
from billing.usage.reads import subscription_live
from billing.usage.summary import period_usage, usage_body
from customers import api_keys, services
from customers.models import CUSTOMER_DETAILS, ApiKey, Customer
from customers.portal import portal_session_create
from plans.models import TaxRate
from plans.validation import validate_customer
from wallets.selectors import wallet_list

CUSTOMER_FIELDS = list(CUSTOMER_DETAILS)


class CustomerForm(ServiceValidatedForm):
    tax_rates = forms.ModelMultipleChoiceField(
        queryset=TaxRate.objects.filter(active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Charged on the customer's invoices. None: the rates marked default.",
    )

    class Meta:
        model = Customer
        fields = ["external_id", "currency", *CUSTOMER_FIELDS, "tax_rates"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left out of a post, they keep their defaults (English, taxed).
        for name in ("locale", "tax_exempt"):
            if name in self.fields:
                self.fields[name].required = False

    def clean_locale(self):
        return self.cleaned_data.get("locale") or self.instance.locale or "en"

    def clean_tax_exempt(self):
        return self.cleaned_data.get("tax_exempt") or self.instance.tax_exempt or "none"

    def clean_invoice_emails(self):
        return self.cleaned_data.get("invoice_emails") or []

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
        services.validate_customer_settings(
            alert_thresholds=cleaned.get("alert_thresholds") or [],
            spend_limit_mode=cleaned.get("spend_limit_mode"),
            payment_terms_days=cleaned.get("payment_terms_days"),
            locale=cleaned.get("locale"),
            tax_exempt=cleaned.get("tax_exempt"),
            invoice_emails=cleaned.get("invoice_emails") or [],
        )


# Subscriptions listed on a customer's page; the subscription list has them all.
SUBSCRIPTIONS_SHOWN = 20
# Wallet-drawn charges have no amount on the invoice: the wallet paid as usage happened.
DRAWN_FROM_WALLET = {"credits": "drawn from credits", "balance": "drawn from balance"}


def _may_view(user, model: str) -> bool:
    app_label, model_name = model.split(".")
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(
        f"{app_label}.change_{model_name}"
    )


def customer_billing(*, customer: Customer, user, now) -> dict:
    """What the customer's admin page shows besides its fields, as display values:
    subscriptions (newest first), the live one's current period priced so far and
    projected (billing.usage.summary: the API's usage body), and
    wallets. Each part only to a user who may view that model."""
    context: dict = {
        "invoices_url": reverse("admin:invoices_invoice_changelist")
        + "?"
        + urlencode({"customer": customer.external_id}),
        "may_view_invoices": _may_view(user, "invoices.invoice"),
    }
    if _may_view(user, "billing.subscription"):
        rows = customer.subscriptions.select_related("version__plan").order_by("-id")
        context["subscriptions"] = [
            {
                "url": reverse("admin:billing_subscription_change", args=[s.pk]),
                "id": s.pk,
                "plan": s.version.plan.name,
                "plan_code": s.version.plan.code,
                "version": s.version.number,
                "status": s.get_status_display(),
                "period_start": s.current_period_start,
                "period_end": s.current_period_end,
            }
            for s in rows[:SUBSCRIPTIONS_SHOWN]
        ]
        context["subscriptions_more"] = max(0, rows.count() - SUBSCRIPTIONS_SHOWN)
        context["subscriptions_url"] = (
            reverse("admin:billing_subscription_changelist")
            + "?"
            + urlencode({"q": customer.external_id})
        )
        live = subscription_live(customer_id=customer.pk)
        if live is not None:
            usage = usage_body(
                usage_discounted(
                    period_usage(
                        customer=customer,
                        subscription=live,
                        start=live.current_period_start,
                        end=live.current_period_end,
                        now=now,
                    )
                )
            )
            for line in usage["lines"]:
                prop, rows = meter_breakdown(
                    customer_id=customer.pk,
                    meter_code=line["meter"],
                    start=live.usage_from or live.current_period_start,
                    end=live.current_period_end,
                )
                if rows:
                    line["breakdown"] = f"By {prop}: " + "; ".join(
                        f"{label} {format_decimal(quantity)}" for _, label, quantity in rows
                    )
                if line["model"] in DRAWN_FROM_WALLET:
                    drawn = DRAWN_FROM_WALLET[line["model"]]
                    # A charge that bills when its wallet runs dry bills the uncovered units.
                    billed = line["amount"] and Decimal(line["amount"])
                    line["amount"] = (
                        f"{drawn}; {line['amount']} for {line['uncovered']} uncovered"
                        if billed
                        else drawn
                    )
            context["usage"] = usage | {
                "period_start": live.current_period_start,
                "period_end": live.current_period_end,
                "discounted": Decimal(usage["projected_discount"]) > 0,
            }
    if _may_view(user, "wallets.wallet"):
        context["wallets"] = [
            {
                "url": reverse("admin:wallets_wallet_change", args=[w.pk]),
                "kind": w.get_kind_display(),
                "balance": f"{format_money(w.balance, w.currency)} {w.currency}"
                if w.kind == "money"
                else f"{format_decimal(w.balance)} credits",
            }
            for w in wallet_list(customer_id=customer.pk)
        ]
    return context


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin):
    form = CustomerForm
    change_form_template = "admin/customers/customer/change_form.html"
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

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["billing"] = customer_billing(
                customer=obj, user=request.user, now=timezone.now()
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        portal_link = path(
            "<path:object_id>/portal-link/",
            self.admin_site.admin_view(self.portal_link_view),
            name="customers_customer_portal_link",
        )
        return [portal_link, *super().get_urls()]

    def portal_link_view(self, request, object_id):
        """A fresh signed link to the customer's portal, shown to copy and hand on
        (it opens without a login until it expires). For whoever may view or change
        customers."""
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("no such customer")
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        session = portal_session_create(customer=customer, now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": f"Portal link for {customer.name}",
            "opts": self.opts,
            "original": customer,
            "portal_url": request.build_absolute_uri(reverse("portal", args=[session.token])),
            "expires_at": session.expires_at,
        }
        response = TemplateResponse(request, "admin/customers/customer/portal_link.html", context)
        # The page holds a credential: never cached (admin_view), never a referrer.
        response["Referrer-Policy"] = "no-referrer"
        return response

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data.get(f) for f in CUSTOMER_FIELDS}
        values["address"] = values["address"] or {}
        values["tax_id"] = values["tax_id"] or ""
        values["email"] = values["email"] or ""
        values["alert_thresholds"] = values["alert_thresholds"] or []
        values["invoice_emails"] = values["invoice_emails"] or []
        values["tax_rates"] = [rate.code for rate in form.cleaned_data.get("tax_rates") or []]
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
        key, secret = api_keys.api_key_create(
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
            api_keys.api_key_revoke(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked")
