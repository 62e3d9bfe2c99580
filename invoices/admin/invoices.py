"""Invoices in the admin: read-only (lines are written by the billing cycle);
actions finalize, void with a credit note, mark uncollectible, record a payment
(whole or a part, on its page: invoices.admin.record_payment) and re-render the
PDF, all through invoices.services (void and uncollectible after the shared
confirmation page: invoices.admin.void_uncollectible). The invoice's page reads
as finance reads an invoice: amounts with their currency, dates in the
customer's time zone, its lines, credit notes and payments as tables
(invoices.admin.invoice_page), one link to its PDF and one to its e-invoice
(or, on a draft whose e-invoice was refused, the rules to fix), each served by
an admin view.
The list filters by status, period, customer, plan and payments past due."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.invoicing.refused_drafts import invoice_discard
from common.admin_forms import money_column, money_text, percent_text
from common.customer_text import language as customer_language
from common.errors import BillingError
from customers.models import BillingEntity, Customer
from invoices import (
    credit_notes,
    refused_drafts,
    rendering,
    selectors,
    sellers,
    services,
    settlement,
)
from invoices.admin.credit_notes import credit_note_view as credit_note_page
from invoices.admin.emails import DocumentEmailInline
from invoices.admin.invoice_page import (
    E_INVOICE_FORMATS,
    credit_note_rows,
    e_invoice_facts,
    e_invoice_refusal_rows,
    e_invoice_response,
    line_rows,
    list_day,
    moment_text,
    payment_rows,
    pdf_fonts_text,
    pdf_link,
    period_text,
)
from invoices.admin.payments import mark_paid_with_reference
from invoices.admin.record_payment import record_payment_view as record_payment_page
from invoices.admin.rerating import rerate_with_preview
from invoices.admin.void_uncollectible import (
    mark_uncollectible_with_confirmation,
    void_with_confirmation,
)
from invoices.models import Invoice
from invoices.pdf_parties import postal_address
from plans.models import Plan

TAX_TREATMENTS = dict(Customer.TAX_EXEMPTIONS)


class CustomerFilter(admin.SimpleListFilter):
    """By customer external id (?customer=acme, as the customer's page links).
    The sidebar lists the first CHOICES customers with invoices by name, and the
    one chosen; the search box finds any other."""

    title = _("customer")
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


class BillingEntityFilter(admin.SimpleListFilter):
    """By the seller: the invoices a billing entity issued, and the drafts it will
    issue (sellers.invoices_of_entity)."""

    title = _("billing entity")
    parameter_name = "billing_entity"

    def lookups(self, request, model_admin):
        entities = BillingEntity.objects.order_by("legal_name", "code")
        return [(entity.code, entity.legal_name or entity.code) for entity in entities]

    def queryset(self, request, queryset):
        entity = BillingEntity.objects.filter(code=self.value()).first() if self.value() else None
        if entity is None:
            return queryset
        return sellers.invoices_of_entity(queryset, entity)


class PlanFilter(admin.SimpleListFilter):
    """By the plan of the invoice's subscription, any version (?plan=<plan code>);
    purchase invoices belong to no plan."""

    title = _("plan")
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

    title = _("payment")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("past", _("Past due, unpaid"))]

    def queryset(self, request, queryset):
        if self.value() == "past":
            return selectors.past_due(queryset, now=timezone.now())
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    # Narrow columns, so that the total shows next to the filters in a 1280 px
    # window: the period and reason are on the invoice's page (and filters).
    list_display = [
        "number_display",
        "customer_name",
        "status",
        "issued_day",
        "due_day",
        "total_display",
        "e_invoice_column",
    ]
    list_display_links = ["number_display"]
    empty_value_display = "—"
    list_filter = [
        "status",
        DueFilter,
        "period_start",
        CustomerFilter,
        BillingEntityFilter,
        PlanFilter,
        "reason",
        "currency",
    ]
    search_fields = ["number", "customer__external_id", "customer__name"]
    list_select_related = ["customer"]
    date_hierarchy = "period_start"
    # Lines, credit notes and payments are tables of the page (change_form.html).
    inlines = [DocumentEmailInline]
    actions = [
        "finalize",
        "rebuild_refused",
        "discard_refused",
        "void",
        "mark_paid",
        mark_paid_with_reference,
        "mark_uncollectible",
        "rerender_pdf",
        "rerate_usage",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number_display",
                    "status",
                    "customer",
                    "seller_display",
                    "subscription_display",
                    "reason",
                    "period_display",
                    "payment_reference",
                ]
            },
        ),
        (
            _("Amounts"),
            {
                # The template puts the credit notes and payments after it.
                "classes": ["invoice-amounts"],
                "fields": [
                    "subtotal_display",
                    "discount_display",
                    "tax_display",
                    "total_display",
                    "credits_applied_display",
                    "credited_display",
                    "amount_due_display",
                    "amount_paid_display",
                ],
            },
        ),
        (
            _("Dates"),
            {
                "fields": [
                    "created_display",
                    "written_display",
                    "issued_display",
                    "due_display",
                    "paid_display",
                    "voided_display",
                ]
            },
        ),
        ("PDF", {"fields": ["pdf_download", "pdf_fingerprint", "pdf_fonts"]}),
        (_("Billing details, as invoiced"), {"fields": ["billing_details"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    # The list and the page.

    @admin.display(description=_("Number"), ordering="number")
    def number_display(self, invoice):
        return str(invoice)

    @admin.display(description=_("Customer"), ordering="customer__name")
    def customer_name(self, invoice):
        return invoice.customer.name

    @admin.display(description=_("Billing entity (seller)"))
    def seller_display(self, invoice):
        return sellers.seller_words(
            sellers.invoice_seller(invoice), issued=bool(invoice.seller_snapshot)
        )

    @admin.display(description=_("Issued"), ordering="finalized_at")
    def issued_day(self, invoice):
        return list_day(invoice, invoice.finalized_at)

    @admin.display(description=_("Due"), ordering="due_at")
    def due_day(self, invoice):
        return list_day(invoice, invoice.due_at)

    total_display = money_column("total", _("Total"))

    @admin.display(description=_("E-invoice"), empty_value="")
    def e_invoice_column(self, invoice):
        """The format it was issued in, or "refused" for a draft whose e-invoice
        failed validation (read off the row: no query); empty for the invoices that
        are not e-invoiced (most), not a dash on each."""
        if invoice.status == Invoice.DRAFT and invoice.e_invoice_errors:
            return format_html(
                '<strong class="e-invoice-refused-tag" style="color: var(--error-fg)">{}</strong>',
                gettext("refused"),
            )
        return E_INVOICE_FORMATS.get(invoice.e_invoice_format, "")

    # The page: amounts in words and figures finance reads, dates in the customer's zone.

    @admin.display(description=_("Subscription"))
    def subscription_display(self, invoice):
        if invoice.subscription is None:
            return "None (a purchase)" if invoice.reason == Invoice.PURCHASE else "None"
        url = reverse("admin:billing_subscription_change", args=[invoice.subscription_id])
        return format_html('<a href="{}">{}</a>', url, str(invoice.subscription))

    @admin.display(description=_("Period"))
    def period_display(self, invoice):
        return period_text(invoice, *invoice.document_period)

    def _money(self, invoice, amount):
        return money_text(amount, invoice.currency)

    @admin.display(description=_("Subtotal"))
    def subtotal_display(self, invoice):
        return self._money(invoice, invoice.subtotal)

    @admin.display(description=_("Discount"))
    def discount_display(self, invoice):
        return self._money(invoice, invoice.discount)

    @admin.display(description=_("Tax"))
    def tax_display(self, invoice):
        # The invoice's own words for a tax line, in the admin user's language.
        lines = [
            gettext("%(name)s %(percentage)s on %(taxable_amount)s")
            % {
                "name": line.name,
                "percentage": percent_text(line.percentage),
                "taxable_amount": self._money(invoice, line.taxable_amount),
            }
            + f": {self._money(invoice, line.amount)}"
            for line in invoice.tax_lines.all()
        ]
        if lines:
            return f"{self._money(invoice, invoice.tax)} ({'; '.join(lines)})"
        exempt = (invoice.customer_snapshot or {}).get("tax_exempt")
        why = {"reverse_charge": _("reverse charge"), "exempt": _("exempt")}.get(exempt)
        return f"{self._money(invoice, invoice.tax)}" + (f" ({why})" if why else "")

    @admin.display(description=_("Paid from the credit balance"))
    def credits_applied_display(self, invoice):
        return self._money(invoice, invoice.credits_applied)

    @admin.display(description=_("Credited (credit notes)"))
    def credited_display(self, invoice):
        return self._money(invoice, invoice.credited)

    @admin.display(description=_("Amount due"))
    def amount_due_display(self, invoice):
        return self._money(invoice, invoice.amount_due)

    @admin.display(description=_("Amount paid"))
    def amount_paid_display(self, invoice):
        return self._money(invoice, invoice.amount_paid)

    @admin.display(description=_("Bills as of"))
    def created_display(self, invoice):
        return moment_text(invoice, invoice.created_at)

    @admin.display(description=_("Written"))
    def written_display(self, invoice):
        return moment_text(invoice, invoice.written_at)

    @admin.display(description=_("Issued"))
    def issued_display(self, invoice):
        return moment_text(invoice, invoice.finalized_at)

    @admin.display(description=_("Due"))
    def due_display(self, invoice):
        return moment_text(invoice, invoice.due_at)

    @admin.display(description=_("Paid"))
    def paid_display(self, invoice):
        return moment_text(invoice, invoice.paid_at)

    @admin.display(description=_("Voided"))
    def voided_display(self, invoice):
        return moment_text(invoice, invoice.voided_at)

    @admin.display(description=_("PDF"))
    def pdf_download(self, invoice):
        url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])
        if invoice.status == Invoice.DRAFT:
            return format_html(
                'No PDF yet: a draft gets its PDF when it is finalized. <a href="{}">'
                "Preview it (marked DRAFT)</a>",
                url,
            )
        return pdf_link(url, invoice, invoice)

    @admin.display(description=_("PDF fingerprint (SHA-256)"))
    def pdf_fingerprint(self, invoice):
        return invoice.pdf_sha256 or "—"

    @admin.display(description=_("Fonts"))
    def pdf_fonts(self, invoice):
        return pdf_fonts_text(invoice)

    @admin.display(description=_("Billing details"))
    def billing_details(self, invoice):
        snapshot = invoice.customer_snapshot or {}
        language = customer_language(translation.get_language())
        rows = [
            (_("Name"), snapshot.get("name")),
            (_("Email"), snapshot.get("email")),
            (_("Address"), ", ".join(postal_address(snapshot.get("address"), locale=language))),
            (_("Tax ID"), snapshot.get("tax_id")),
            (_("Tax"), TAX_TREATMENTS.get(snapshot.get("tax_exempt"), "")),
            (_("Time zone"), snapshot.get("timezone")),
        ]
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((label, value) for label, value in rows if value),
        )

    def get_urls(self):
        pdf = path(
            "<path:object_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="invoices_invoice_pdf",
        )
        view = self.admin_site.admin_view
        return [
            pdf,
            path(
                "<path:object_id>/credit-note/",
                view(self.credit_note_view),
                name="invoices_invoice_credit_note",
            ),
            path("<path:object_id>/void/", view(self.void_view), name="invoices_invoice_void"),
            path(
                "<path:object_id>/record-payment/",
                view(self.record_payment_view),
                name="invoices_invoice_record_payment",
            ),
            path(
                "<path:object_id>/mark-uncollectible/",
                view(self.mark_uncollectible_view),
                name="invoices_invoice_mark_uncollectible",
            ),
            path(
                "<path:object_id>/e-invoice/",
                view(self.e_invoice_view),
                name="invoices_invoice_e_invoice",
            ),
            path(
                "<path:object_id>/rebuild/",
                view(self.rebuild_view),
                name="invoices_invoice_rebuild",
            ),
            path(
                "<path:object_id>/discard/",
                view(self.discard_view),
                name="invoices_invoice_discard",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            user = request.user
            context.update(
                may_void=obj.status in services.VOIDABLE and user.has_perm("invoices.void_invoice"),
                may_mark_uncollectible=obj.status in services.UNCOLLECTIBLE_FROM
                and user.has_perm("invoices.mark_uncollectible_invoice"),
                may_record_payment=obj.status in settlement.PAYABLE
                and user.has_perm("invoices.mark_paid_invoice"),
                may_credit=obj.status in credit_notes.CREDITABLE
                and user.has_perm("invoices.issue_creditnote"),
                zone=obj.text.zone,
                line_rows=line_rows(obj),
                credit_note_rows=credit_note_rows(obj),
                payment_rows=payment_rows(
                    obj, may_view_payments=user.has_perm("invoices.view_payment")
                ),
                e_invoice_refusal_rows=e_invoice_refusal_rows(obj, user),
                may_resolve_refusal=bool(obj.e_invoice_errors)
                and obj.status == Invoice.DRAFT
                and self.has_finalize_permission(request),
                e_invoice=e_invoice_facts(
                    obj, obj, reverse("admin:invoices_invoice_e_invoice", args=[obj.pk])
                ),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # The invoice page's "Issue credit note…" page (invoices.admin.credit_notes).

    def _invoice(self, request, object_id: str) -> Invoice:
        if not object_id.isdigit():
            raise Http404("no such invoice")
        invoice = get_object_or_404(Invoice.objects.select_related("customer"), pk=object_id)
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return invoice

    def credit_note_view(self, request, object_id):
        if not request.user.has_perm("invoices.issue_creditnote"):
            raise PermissionDenied
        return credit_note_page(self, request, self._invoice(request, object_id))

    # The invoice page's "Record a payment…" (invoices.admin.record_payment).

    def record_payment_view(self, request, object_id):
        if not request.user.has_perm("invoices.mark_paid_invoice"):
            raise PermissionDenied
        return record_payment_page(self, request, self._invoice(request, object_id))

    # The invoice page's "Void…" and "Mark uncollectible…" buttons (after the shared
    # confirmation page: invoices.admin.void_uncollectible).

    def void_view(self, request, object_id):
        if not request.user.has_perm("invoices.void_invoice"):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        return void_with_confirmation(self, request, None, single=invoice)

    def mark_uncollectible_view(self, request, object_id):
        if not request.user.has_perm("invoices.mark_uncollectible_invoice"):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        return mark_uncollectible_with_confirmation(self, request, None, single=invoice)

    def pdf_view(self, request, object_id):
        """The invoice's PDF, as the API and the portal serve it (rendering)."""
        invoice = self._invoice(request, object_id)
        return rendering.invoice_pdf_response(invoice=invoice, now=timezone.now())

    def rebuild_view(self, request, object_id):
        """The refused draft's page's button: rebuild_refused for this one draft,
        back on its page (now issued, or refused again with the new rules)."""
        return self._refused_draft_button(request, object_id, self.rebuild_refused)

    def discard_view(self, request, object_id):
        """The refused draft's page's button: discard_refused for this one draft;
        back to the invoices once it is gone."""
        return self._refused_draft_button(request, object_id, self.discard_refused)

    def _refused_draft_button(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_finalize_permission(request):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        action(request, Invoice.objects.filter(pk=invoice.pk))
        if Invoice.objects.filter(pk=invoice.pk).exists():
            return HttpResponseRedirect(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
        return HttpResponseRedirect(reverse("admin:invoices_invoice_changelist"))

    def e_invoice_view(self, request, object_id):
        """The invoice's e-invoice as it was issued (<number>.xml), for whoever may
        view the invoice."""
        return e_invoice_response(self._invoice(request, object_id))

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

    def _each(self, request, queryset, action, done):
        """`done`: the message for each invoice done, a lazy translation with {invoice}."""
        for invoice in queryset:
            try:
                action(invoice)
            except BillingError as error:
                self.message_user(request, f"{invoice}: {error.words}", messages.ERROR)
            else:
                self.message_user(
                    request, str(done).format(invoice=Invoice.objects.get(pk=invoice.pk))
                )

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

    def has_rerate_permission(self, request):
        return request.user.has_perm("invoices.rerate_invoice")

    @admin.action(description=_("Finalize (number and freeze)"), permissions=["finalize"])
    def finalize(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: services.invoice_finalize(invoice=i, now=now),
            _("{invoice} finalized"),
        )

    @admin.action(
        description=_("Rebuild a refused e-invoice draft from current settings, and finalize"),
        permissions=["finalize"],
    )
    def rebuild_refused(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: refused_drafts.invoice_rebuild(invoice_id=i.pk, now=now),
            _("{invoice} rebuilt and finalized"),
        )

    @admin.action(
        description=_("Discard a refused e-invoice draft (the next close bills its period again)"),
        permissions=["finalize"],
    )
    def discard_refused(self, request, queryset):
        # Not _each: a discarded draft is gone, its message names it as it was.
        for invoice in queryset:
            try:
                invoice_discard(invoice_id=invoice.pk)
            except BillingError as error:
                self.message_user(request, f"{invoice}: {error.words}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("{invoice} discarded: the next close bills its period again").format(
                        invoice=invoice
                    ),
                )

    @admin.action(description=_("Void, with a credit note…"), permissions=["void"])
    def void(self, request, queryset):
        return void_with_confirmation(self, request, queryset)

    @admin.action(
        description=_("Mark paid (payment received outside Stripe)"), permissions=["mark_paid"]
    )
    def mark_paid(self, request, queryset):
        now = timezone.now()
        self._each(
            request,
            queryset,
            lambda i: settlement.invoice_mark_paid(invoice=i, reference="admin", now=now),
            _("{invoice} marked paid"),
        )

    @admin.action(description=_("Mark uncollectible…"), permissions=["mark_uncollectible"])
    def mark_uncollectible(self, request, queryset):
        return mark_uncollectible_with_confirmation(self, request, queryset)

    @admin.action(description=_("Re-rate usage at today's mappings…"), permissions=["rerate"])
    def rerate_usage(self, request, queryset):
        return rerate_with_preview(self, request, queryset)

    @admin.action(description=_("Re-render PDF (repair)"), permissions=["render"])
    def rerender_pdf(self, request, queryset):
        """Queues a forced render per invoice; a draft has no stored PDF to repair."""
        self._each(
            request,
            queryset,
            lambda i: rendering.invoice_schedule_pdf_render(invoice=i, force=True),
            _("{invoice} queued for a new PDF"),
        )
