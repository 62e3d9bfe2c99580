"""Invoices in the admin: read-only once finalized (always, in fact: lines are
written by the billing cycle); actions finalize, void with a credit note, and
record a payment, all through invoices.services."""

from django.contrib import admin, messages
from django.utils import timezone

from billing.errors import BillingError
from billing.money import format_money
from invoices import services
from invoices.models import CreditNote, Invoice, InvoiceLine


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ["kind", "description", "meter", "quantity", "unit_price", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class CreditNoteInline(admin.TabularInline):
    model = CreditNote
    fields = ["number", "amount", "reason", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "reason",
        "status",
        "period_start",
        "period_end",
        "total_display",
        "finalized_at",
    ]
    list_filter = ["status", "reason", "currency", "period_start"]
    search_fields = ["number", "customer__external_id", "customer__name"]
    list_select_related = ["customer"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["finalize", "void", "mark_paid", "mark_uncollectible"]
    readonly_fields = [
        "customer",
        "subscription",
        "reason",
        "status",
        "number",
        "currency",
        "period_start",
        "period_end",
        "customer_snapshot",
        "subtotal",
        "credits_applied",
        "tax",
        "total",
        "created_at",
        "finalized_at",
        "due_at",
        "paid_at",
        "voided_at",
        "payment_reference",
    ]

    @admin.display(description="total", ordering="total")
    def total_display(self, invoice):
        return f"{format_money(invoice.total, invoice.currency)} {invoice.currency}"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, action, done: str):
        for invoice in queryset:
            try:
                action(invoice)
            except BillingError as error:
                self.message_user(request, f"{invoice}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{Invoice.objects.get(pk=invoice.pk)} {done}")

    @admin.action(description="Finalize (number and freeze)", permissions=["change"])
    def finalize(self, request, queryset):
        now = timezone.now()
        self._each(
            request, queryset, lambda i: services.invoice_finalize(invoice=i, now=now), "finalized"
        )

    @admin.action(description="Void, with a credit note", permissions=["change"])
    def void(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: services.invoice_void(invoice=i, reason="voided in the admin", now=now),
            "voided",
        )

    @admin.action(description="Mark paid (payment received outside Stripe)", permissions=["change"])
    def mark_paid(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: services.invoice_mark_paid(invoice=i, reference="admin", now=now),
            "marked paid",
        )

    @admin.action(description="Mark uncollectible", permissions=["change"])
    def mark_uncollectible(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: services.invoice_mark_uncollectible(invoice=i, now=now),
            "marked uncollectible",
        )
