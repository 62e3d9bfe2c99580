"""Wallets in the admin: balances with their blocks and ledger (read-only: every
change goes through wallets.ledger), a form to grant credits, sell a pack or
top up money, uncovered usage for finance, and the credit revenue report."""

from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common import customer_text
from common.admin_fields import ZonedDateTimeField
from common.admin_forms import (
    EXACT_DECIMALS,
    ExactDecimalField,
    ExactIntegerField,
    RecordAdmin,
    RecordInline,
    add_billing_error,
    money_text,
    quantity_column,
    quantity_text,
)
from common.admin_history import AuditHistoryAdmin
from common.errors import BillingError
from plans.models import CreditPack, Meter
from wallets import ledger, purchases, revenue
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, UncoveredUsage, Wallet


def amount_text(wallet: Wallet, value) -> str:
    """'20.00 USD' in a money wallet, '1,000 credits' in a credit wallet."""
    if value is None:
        return "—"
    if wallet.kind == Wallet.MONEY:
        return money_text(value, wallet.currency)
    return gettext("{credits} credits").format(credits=quantity_text(value))


def wallet_amount_column(field: str, description: str):
    """A column of a wallet's amounts in words: '1,000 credits', '20.00 USD'."""

    def show(admin_self, obj):
        return amount_text(obj.wallet, getattr(obj, field))

    show.short_description = description
    return show


def meters_text(applies_to: list[str]) -> str:
    """The meters a block or pack pays for, by code; 'all meters' when it is for all."""
    return ", ".join(applies_to) if applies_to else gettext("all meters")


def meters_field() -> forms.ModelMultipleChoiceField:
    """The meters credits or money pay for, picked by name; none: every meter."""
    return forms.ModelMultipleChoiceField(
        queryset=Meter.objects.order_by("name", "code"),
        to_field_name="code",
        required=False,
        help_text=_("The meters they pay for; none chosen: every meter."),
        label=_("Meters"),
    )


def chosen_codes(meters) -> list[str]:
    return [meter.code for meter in meters or ()]


class ReadOnlyInline(RecordInline, admin.TabularInline):
    # Read with each row: its wallet (its amounts are shown by the wallet's kind) and
    # what the row links to.
    related: tuple[str, ...] = ("wallet",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.related)


class BlockInline(ReadOnlyInline):
    model = CreditBlock
    related = ("wallet", "invoice")
    fields = [
        "kind",
        "source",
        "amount_text",
        "remaining_text",
        "price_paid_text",
        "priority",
        "effective_at",
        "expires_at",
        "expired_at",
        "meters_text",
        "invoice",
    ]
    readonly_fields = fields
    ordering = ["priority", "expires_at", "created_at", "id"]
    amount_text = wallet_amount_column("amount", _("amount"))
    remaining_text = wallet_amount_column("remaining", _("remaining"))

    @admin.display(description=_("applies to"))
    def meters_text(self, block: CreditBlock) -> str:
        return meters_text(block.applies_to)

    @admin.display(description=_("price paid"))
    def price_paid_text(self, block: CreditBlock) -> str:
        return money_text(block.price_paid, block.currency) if block.currency else "—"


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    related = ("wallet", "block")
    fields = [
        "occurred_at",
        "kind",
        "amount_text",
        "balance_after_text",
        "meter",
        "quantity_text",
        "block",
    ]
    readonly_fields = fields
    ordering = ["-id"]
    amount_text = wallet_amount_column("amount", _("amount"))
    balance_after_text = wallet_amount_column("balance_after", _("balance after"))
    quantity_text = quantity_column("quantity", _("quantity"))
    verbose_name_plural = _("ledger (newest first)")


class AutoTopUpInline(ReadOnlyInline):
    model = AutoTopUp
    related = ("wallet", "pack")
    fields = ["enabled", "threshold_text", "pack", "updated_at"]
    readonly_fields = fields
    threshold_text = quantity_column("threshold", _("below (credits)"))


class WalletCreateForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=Wallet.KINDS[:2], label=_("kind"))

    class Meta:
        model = Wallet
        fields = ["customer", "kind", "currency", "low_balance_threshold"]

    def clean(self):
        cleaned = super().clean()
        kind, currency = cleaned.get("kind"), (cleaned.get("currency") or "").upper()
        customer = cleaned.get("customer")
        if kind == Wallet.CREDITS and currency:
            self.add_error("currency", gettext("A credit wallet has no currency."))
        if kind == Wallet.MONEY and customer and currency != customer.currency:
            self.add_error(
                "currency",
                gettext("This customer pays in {currency}.").format(currency=customer.currency),
            )
        cleaned["currency"] = currency
        return cleaned


class WalletOperationForm(forms.Form):
    """One change of a wallet, made by a service."""

    GRANT = "grant"
    SELL_CREDITS = "sell_credits"
    PACK = "pack"
    TOP_UP = "top_up"

    operation = forms.ChoiceField(
        choices=[
            (GRANT, _("Grant promotional credits (free)")),
            (SELL_CREDITS, _("Sell credits at a price (invoiced now)")),
            (PACK, _("Sell a credit pack (invoiced now)")),
            (TOP_UP, _("Top up money (invoiced now)")),
        ],
        label=_("Operation"),
    )
    credits = ExactDecimalField(
        max_digits=28, decimal_places=10, required=False, label=_("Credits")
    )
    price = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        help_text=_("For sold credits."),
        label=_("Price"),
    )
    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(active=True), required=False, label=_("Pack")
    )
    amount = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        help_text=_("For a top-up."),
        label=_("Amount"),
    )
    priority = ExactIntegerField(
        initial=50, min_value=-1_000_000, max_value=1_000_000, label=_("Priority")
    )
    expires_at = ZonedDateTimeField(
        required=False,
        help_text=_("In the customer's time zone; empty: never."),
        label=_("Expires at"),
    )
    # A pack's credits pay for the pack's meters.
    applies_to = meters_field()

    def __init__(self, *args, wallet: Wallet, **kwargs):
        super().__init__(*args, **kwargs)
        self.wallet = wallet
        # Typed for the customer: read in their zone, as their invoices' days are.
        self.fields["expires_at"].read_in(customer_text.customer_zone(wallet.customer))

    def clean(self):
        cleaned = super().clean()
        operation = cleaned.get("operation")
        needs = {
            self.GRANT: ["credits"],
            self.SELL_CREDITS: ["credits", "price"],
            self.PACK: ["pack"],
            self.TOP_UP: ["amount"],
        }.get(operation, [])
        for name in needs:
            if cleaned.get(name) in (None, ""):
                self.add_error(name, gettext("Required for this operation."))
        if operation == self.PACK and cleaned.get("applies_to"):
            self.add_error(
                "applies_to", gettext("A pack's credits pay for the meters the pack applies to.")
            )
        wanted_kind = Wallet.MONEY if operation == self.TOP_UP else Wallet.CREDITS
        if operation and self.wallet.kind != wanted_kind:
            self.add_error(
                "operation",
                gettext("Not for a {kind} wallet.").format(
                    kind=self.wallet.get_kind_display().lower()
                ),
            )
        if not self.errors:
            try:
                cleaned["result"] = self.apply(cleaned)
            except BillingError as error:
                add_billing_error(self, error)
        return cleaned

    def apply(self, cleaned):
        customer, now = self.wallet.customer, timezone.now()
        operation = cleaned["operation"]
        if operation == self.PACK:
            return purchases.credit_pack_purchase(customer=customer, pack=cleaned["pack"], now=now)
        if operation == self.TOP_UP:
            return purchases.money_top_up(
                customer=customer,
                amount=cleaned["amount"],
                currency=self.wallet.currency,
                applies_to=chosen_codes(cleaned.get("applies_to")),
                now=now,
            )
        return ledger.credits_grant(
            customer=customer,
            credits=cleaned["credits"],
            kind=CreditBlock.PAID if operation == self.SELL_CREDITS else CreditBlock.PROMOTIONAL,
            price=cleaned.get("price") if operation == self.SELL_CREDITS else None,
            priority=cleaned["priority"],
            expires_at=cleaned.get("expires_at"),
            note="admin",
            applies_to=chosen_codes(cleaned.get("applies_to")),
            now=now,
        )


@admin.register(Wallet)
class WalletAdmin(AuditHistoryAdmin):
    list_display = ["customer", "kind", "currency", "balance_display", "updated_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["customer__external_id", "customer__name"]
    list_select_related = ["customer"]
    inlines = [AutoTopUpInline, BlockInline, LedgerInline]
    change_list_template = "admin/wallets/wallet/change_list.html"
    change_form_template = "admin/wallets/wallet/change_form.html"
    formfield_overrides = EXACT_DECIMALS

    @admin.display(description=_("balance"), ordering="balance")
    def balance_display(self, wallet):
        return amount_text(wallet, wallet.balance)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = WalletCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "kind", "currency", "low_balance_threshold"]
        return ["customer", "kind", "currency", "balance_display", "low_balance_threshold"]

    def get_readonly_fields(self, request, obj=None):
        return ["customer", "kind", "currency", "balance_display"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            # Only the alert threshold is editable here.
            obj.save(update_fields=["low_balance_threshold"])
            return
        wallet = ledger.wallet_get_or_create(
            customer=obj.customer, kind=obj.kind, currency=obj.currency
        )
        wallet.low_balance_threshold = obj.low_balance_threshold
        wallet.save(update_fields=["low_balance_threshold"])
        obj.pk = wallet.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        own = [
            path(
                "<int:wallet_id>/operation/",
                self.admin_site.admin_view(self.operation_view),
                name="wallets_wallet_operation",
            ),
            path(
                "revenue/",
                self.admin_site.admin_view(self.revenue_view),
                name="wallets_wallet_revenue",
            ),
        ]
        return own + super().get_urls()

    def operation_view(self, request, wallet_id: int):
        wallet = get_object_or_404(Wallet.objects.select_related("customer"), pk=wallet_id)
        if not self.has_change_permission(request, wallet):
            messages.error(request, gettext("You may not change wallets."))
            return redirect(reverse("admin:wallets_wallet_changelist"))
        form = WalletOperationForm(request.POST or None, wallet=wallet)
        if request.method == "POST" and form.is_valid():
            block, invoice = form.cleaned_data["result"]
            done = f"Added {amount_text(wallet, block.amount)} to {wallet}"
            if invoice is not None:
                done += f", invoiced on {invoice.number}"
            messages.success(request, done + ".")
            return redirect(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Add to {wallet}").format(wallet=wallet),
            "wallet": wallet,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/wallets/wallet/operation.html", context)

    def revenue_view(self, request):
        # Finance's report, not every wallet viewer's: a permission of its own.
        if not request.user.has_perm("wallets.view_credit_revenue"):
            messages.error(request, gettext("You may not view the credit revenue report."))
            return redirect(reverse("admin:index"))
        rows = revenue.credit_revenue(until=datetime.now(UTC))
        if request.GET.get("format") == "csv":
            response = HttpResponse(revenue.credit_revenue_csv(rows), content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="credit-revenue.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Credit revenue: deferred, recognized, breakage"),
            "rows": [
                {
                    "month": r.month.strftime("%Y-%m"),
                    "currency": r.currency,
                    "values": r.figures(),
                }
                for r in rows
            ],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/wallets/revenue.html", context)


@admin.register(UncoveredUsage)
class UncoveredUsageAdmin(RecordAdmin):
    list_display = [
        "occurred_at",
        "customer",
        "meter",
        "quantity_text",
        "shortfall_text",
        "wallet",
    ]
    quantity_text = quantity_column("quantity", _("quantity"))
    shortfall_text = wallet_amount_column("shortfall", _("shortfall"))
    # The record's page: the same words as the list.
    fields = ["occurred_at", "customer", "wallet", "meter", "quantity_text", "shortfall_text"]
    readonly_fields = fields
    list_filter = ["meter", "occurred_at"]
    search_fields = ["customer__external_id"]
    list_select_related = ["customer", "wallet__customer"]
    date_hierarchy = "occurred_at"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(UncoveredUsageAdmin):
    list_display = [
        "occurred_at",
        "wallet",
        "kind",
        "amount_text",
        "balance_after_text",
        "meter",
        "block",
    ]
    amount_text = wallet_amount_column("amount", _("amount"))
    balance_after_text = wallet_amount_column("balance_after", _("balance after"))
    fields = [
        "occurred_at",
        "wallet",
        "kind",
        "amount_text",
        "balance_after_text",
        "meter",
        "quantity_text",
        "block",
    ]
    readonly_fields = fields
    list_filter = ["kind", "wallet__kind", "occurred_at"]
    search_fields = ["wallet__customer__external_id", "meter"]
    list_select_related = ["wallet__customer"]
