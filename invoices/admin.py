"""Invoices in the admin: read-only once finalized (always, in fact: lines are
written by the billing cycle); actions finalize, void with a credit note, record
a payment and re-render the PDF, all through invoices.services. The change page
links to the PDF, served by an admin view. The list filters by status, period,
customer, plan and payments past due."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.core import wording
from billing.core.errors import BillingError
from billing.core.money import format_decimal, format_money
from customers.models import Customer
from invoices import credit_notes, rendering, selectors, services, settlement
from invoices.credit_notes_admin import CreditNoteAdminViews, void_with_confirmation
from invoices.emails_admin import DocumentEmailInline
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.payments_admin import PaymentInline, mark_paid_with_reference
from invoices.pdf import invoice_zone
from plans.models import Plan


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
    fields = ["note_link", "reason", "memo", "total", "created_at"]
    readonly_fields = fields

    @admin.display(description="credit note")
    def note_link(self, note):
        url = reverse("admin:invoices_creditnote_change", args=[note.pk])
        return format_html('<a href="{}">{}</a>', url, note.number)

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class CustomerFilter(admin.SimpleListFilter):
    """By customer external id (?customer=acme, as the customer's page links).
    The sidebar lists the first CHOICES customers with invoices by name, and the
    one chosen; the search box finds any other."""

    title = "customer"
    parameter_name = "customer"
    CHOICES = 50

    def lookups(self, request, model_admin):
        with_invoices = Customer.objects.filter(
            pk__in=Invoice.objects.values("customer_id")
        ).order_by("name", "external_id")
        choices = list(with_invoices.values_list("external_id", "name")[: self.CHOICES])
        chosen = self.value()
        if chosen and chosen not in {external_id for external_id, _ in choices}:
            choices += with_invoices.filter(external_id=chosen).values_list("external_id", "name")
        return [(external_id, f"{name} ({external_id})") for external_id, name in choices]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(customer__external_id=self.value())
        return queryset


class PlanFilter(admin.SimpleListFilter):
    """By the plan of the invoice's subscription, any version (?plan=<plan code>);
    purchase invoices belong to no plan."""

    title = "plan"
    parameter_name = "plan"

    def lookups(self, request, model_admin):
        return list(Plan.objects.order_by("code").values_list("code", "name"))

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(subscription__version__plan__code=self.value())
        return queryset


class DueFilter(admin.SimpleListFilter):
    """Finalized invoices past their due date and still unpaid (?due=past): the
    dashboard's failed payments link here."""

    title = "payment"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("past", "Past due, unpaid")]

    def queryset(self, request, queryset):
        if self.value() == "past":
            return selectors.past_due(queryset, now=timezone.now())
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(CreditNoteAdminViews, admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "reason",
        "status",
        "period_display",
        "total_display",
        "issued_display",
        "due_display",
    ]
    list_filter = [
        "status",
        DueFilter,
        "period_start",
        CustomerFilter,
        PlanFilter,
        "reason",
        "currency",
    ]
    search_fields = ["number", "customer__external_id", "customer__name"]
    list_select_related = ["customer"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, CreditNoteInline, PaymentInline, DocumentEmailInline]
    actions = [
        "finalize",
        "void",
        "mark_paid",
        mark_paid_with_reference,
        "mark_uncollectible",
        "rerender_pdf",
    ]
    readonly_fields = [
        "customer",
        "subscription",
        "reason",
        "status",
        "number",
        "currency",
        "period_display",
        "customer_snapshot",
        "subtotal",
        "discount",
        "tax_lines_display",
        "tax",
        "total",
        "credits_applied",
        "credited",
        "amount_due_display",
        "created_display",
        "issued_display",
        "due_display",
        "paid_display",
        "voided_display",
        "payment_reference",
        "pdf_download",
        "pdf_path",
        "pdf_sha256",
        "pdf_rendered_at",
    ]

    @admin.display(description="PDF")
    def pdf_download(self, invoice):
        if invoice.pk is None:
            return "-"
        url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])
        if invoice.status == Invoice.DRAFT:
            return format_html('<a href="{}">Download PDF</a> (draft, rendered now)', url)
        if not invoice.pdf_sha256:
            return format_html('<a href="{}">Download PDF</a> (not stored yet, rendered now)', url)
        return format_html('<a href="{}">Download PDF</a>', url)

    @admin.display(description="PDF file")
    def pdf_path(self, invoice):
        # The name in the storage only: nothing serves MEDIA_URL (invoices are private).
        return invoice.pdf_file.name or "-"

    def get_urls(self):
        pdf = path(
            "<path:object_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="invoices_invoice_pdf",
        )
        return [pdf, *self.credit_note_urls(), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            user = request.user
            context["may_void"] = obj.status in (
                Invoice.FINALIZED,
                Invoice.UNCOLLECTIBLE,
            ) and user.has_perm("invoices.void_invoice")
            context["may_credit"] = obj.status in credit_notes.CREDITABLE and user.has_perm(
                "invoices.issue_creditnote"
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def pdf_view(self, request, object_id):
        if not object_id.isdigit():
            raise Http404("no such invoice")
        invoice = get_object_or_404(Invoice, pk=object_id)
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return selectors.invoice_pdf_response(invoice=invoice)

    @admin.display(description="total", ordering="total")
    def total_display(self, invoice):
        return f"{format_money(invoice.total, invoice.currency)} {invoice.currency}"

    # Dates as the customer reads them (its PDF, its portal): in its time zone, named.

    @admin.display(description="period", ordering="period_start")
    def period_display(self, invoice):
        zone = invoice_zone(invoice)
        return wording.in_zone(
            wording.date_range(invoice.period_start, invoice.period_end, zone), zone
        )

    def _moment(self, invoice, moment):
        if moment is None:
            return "-"
        zone = invoice_zone(invoice)
        local = moment.astimezone(zone)
        return wording.in_zone(f"{wording.day(local.date())}, {local:%H:%M}", zone)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, invoice):
        return self._moment(invoice, invoice.created_at)

    @admin.display(description="issued", ordering="finalized_at")
    def issued_display(self, invoice):
        return self._moment(invoice, invoice.finalized_at)

    @admin.display(description="due", ordering="due_at")
    def due_display(self, invoice):
        return self._moment(invoice, invoice.due_at)

    @admin.display(description="paid", ordering="paid_at")
    def paid_display(self, invoice):
        return self._moment(invoice, invoice.paid_at)

    @admin.display(description="voided", ordering="voided_at")
    def voided_display(self, invoice):
        return self._moment(invoice, invoice.voided_at)

    @admin.display(description="tax lines")
    def tax_lines_display(self, invoice):
        lines = [
            f"{line.name} {format_decimal(line.percentage)} % on "
            f"{format_money(line.taxable_amount, invoice.currency)}: "
            f"{format_money(line.amount, invoice.currency)} {invoice.currency}"
            for line in invoice.tax_lines.all()
        ]
        if lines:
            return "; ".join(lines)
        exempt = (invoice.customer_snapshot or {}).get("tax_exempt")
        return {"reverse_charge": "none (reverse charge)", "exempt": "none (exempt)"}.get(
            exempt, "none"
        )

    @admin.display(description="amount due")
    def amount_due_display(self, invoice):
        return f"{format_money(invoice.amount_due, invoice.currency)} {invoice.currency}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Nothing on an invoice is edited in a form (the actions change it): its
        # page is a view page, and a posted change is refused.
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

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

    # Each action needs its own permission (Invoice.Meta.permissions; roles: setup_roles).
    def has_finalize_permission(self, request):
        return request.user.has_perm("invoices.finalize_invoice")

    def has_void_permission(self, request):
        return request.user.has_perm("invoices.void_invoice")

    def has_mark_paid_permission(self, request):
        return request.user.has_perm("invoices.mark_paid_invoice")

    def has_mark_uncollectible_permission(self, request):
        return request.user.has_perm("invoices.mark_uncollectible_invoice")

    def has_render_permission(self, request):
        return request.user.has_perm("invoices.render_invoice")

    @admin.action(description="Finalize (number and freeze)", permissions=["finalize"])
    def finalize(self, request, queryset):
        now = timezone.now()
        self._each(
            request, queryset, lambda i: services.invoice_finalize(invoice=i, now=now), "finalized"
        )

    @admin.action(description="Void, with a credit note…", permissions=["void"])
    def void(self, request, queryset):
        return void_with_confirmation(self, request, queryset)

    @admin.action(
        description="Mark paid (payment received outside Stripe)", permissions=["mark_paid"]
    )
    def mark_paid(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: settlement.invoice_mark_paid(invoice=i, reference="admin", now=now),
            "marked paid",
        )

    @admin.action(description="Mark uncollectible", permissions=["mark_uncollectible"])
    def mark_uncollectible(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: services.invoice_mark_uncollectible(invoice=i, now=now),
            "marked uncollectible",
        )

    @admin.action(description="Re-render PDF (repair)", permissions=["render"])
    def rerender_pdf(self, request, queryset):
        """Queues a forced render per invoice; a draft has no stored PDF to repair."""
        self._each(
            request,
            queryset,
            lambda i: rendering.invoice_schedule_pdf_render(invoice=i, force=True),
            "queued for a new PDF",
        )
