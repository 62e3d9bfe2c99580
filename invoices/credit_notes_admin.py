"""Credit notes in the admin: voiding invoices and issuing a credit note for
part of one, each through a page that says what will happen before anything
does (the credit note, its tax, where its money goes), and the credit notes
themselves, read-only, with their PDFs."""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.core.errors import BillingError
from billing.core.money import format_money
from invoices import credit_notes, refunds, selectors, services
from invoices.models import CreditNote, CreditNoteLine, Invoice
from invoices.taxes import tax_label, tax_lines_read

VOID_TEMPLATE = "admin/invoices/invoice/void_confirm.html"
CREDIT_NOTE_TEMPLATE = "admin/invoices/invoice/credit_note_form.html"


def money(amount: Decimal, currency: str) -> str:
    return f"{format_money(amount, currency)} {currency}"


class VoidForm(forms.Form):
    memo = forms.CharField(
        max_length=500,
        required=False,
        label="Reason",
        help_text="Printed on the credit note, e.g. 'billed twice'.",
    )


def _preview_rows(invoices) -> list[dict]:
    rows = []
    for invoice in invoices:
        row = {"invoice": invoice, "total": money(invoice.total, invoice.currency)}
        if invoice.status not in (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE):
            row["refusal"] = f"is {invoice.get_status_display().lower()}: it cannot be voided"
        else:
            preview = credit_notes.void_preview(invoice)
            row["credit"] = money(preview.total, invoice.currency)
            row["to_amount_due"] = money(preview.to_amount_due, invoice.currency)
            row["to_credit_balance"] = (
                money(preview.to_credit_balance, invoice.currency)
                if preview.to_credit_balance > 0
                else ""
            )
            row["takes_back"] = invoice.reason == Invoice.PURCHASE
        rows.append(row)
    return rows


def void_with_confirmation(modeladmin, request, queryset, *, single: Invoice | None = None):
    """The void action and the invoice page's "Void…" button: a page listing each
    invoice, the credit note it will get and where its money goes; only "Yes,
    void" does it."""
    invoices = [single] if single is not None else list(queryset.select_related("customer"))
    form = VoidForm(request.POST if "confirm" in request.POST else None)
    if form.is_bound and form.is_valid():
        now, memo = timezone.now(), form.cleaned_data["memo"]
        notes = []
        for invoice in invoices:
            try:
                note = services.invoice_void(invoice=invoice, reason=memo, now=now)
            except BillingError as error:
                modeladmin.message_user(request, f"{invoice}: {error.message}", messages.ERROR)
            else:
                notes.append(note)
                modeladmin.message_user(
                    request,
                    f"{invoice} voided; credit note {note.number} of "
                    f"{money(note.total, note.currency)} issued",
                )
        if single is not None and len(notes) == 1:
            return redirect("admin:invoices_creditnote_change", notes[0].pk)
        return None if single is None else redirect("admin:invoices_invoice_change", single.pk)
    rows = _preview_rows(invoices)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Void invoices" if single is None else f"Void {single}",
        "opts": Invoice._meta,
        "rows": rows,
        "voidable": sum(1 for row in rows if "refusal" not in row),
        "customers": len({row["invoice"].customer_id for row in rows if "refusal" not in row}),
        "form": form,
        "single": single,
        "action_name": "void",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, VOID_TEMPLATE, context)


class CreditNoteForm(forms.Form):
    reason = forms.ChoiceField(choices=CreditNote.REASONS)
    memo = forms.CharField(max_length=500, required=False, help_text="Printed on the credit note.")
    refund = forms.BooleanField(
        required=False,
        label="Refund to the card",
        help_text=(
            "For an invoice Stripe collected: what was paid goes back to the card through "
            "Stripe instead of the customer's credit balance."
        ),
    )

    def __init__(self, *args, refundable: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not refundable:
            del self.fields["refund"]


def _line_rows(invoice: Invoice, data) -> tuple[list[dict], list[credit_notes.CreditLineInput]]:
    """Each invoice line with what is left to credit on it and the amount typed
    for it; the lines with an amount, as credit_notes takes them."""
    credited = credit_notes.credited_by_line(invoice)
    rows, chosen = [], []
    for line in invoice.lines.all():
        name = f"line_{line.pk}"
        typed = (data.get(name) or "").strip() if data is not None else ""
        left = line.amount - credited.get(line.pk, Decimal(0))
        rows.append(
            {
                "line": line,
                "name": name,
                "amount": money(line.amount, invoice.currency),
                "left": money(max(left, Decimal(0)), invoice.currency),
                "creditable": left > 0,
                "typed": typed,
            }
        )
        if typed:
            try:
                amount = Decimal(typed.replace(",", ""))
            except InvalidOperation:
                amount = Decimal("NaN")
            chosen.append(credit_notes.CreditLineInput(line.pk, amount))
    return rows, chosen


def credit_note_view(modeladmin, request, invoice: Invoice):
    """Issue a credit note for part of an invoice: the amounts per line, then a
    page with the credit note as it will be (tax, total, where its money goes),
    then "Issue credit note"."""
    data = request.POST if request.method == "POST" else None
    refundable = invoice.status == Invoice.PAID and refunds.stripe_payment(invoice) is not None
    form = CreditNoteForm(data, refundable=refundable)
    rows, chosen = _line_rows(invoice, data)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Credit note for {invoice}",
        "opts": Invoice._meta,
        "original": invoice,
        "invoice": invoice,
        "form": form,
        "rows": rows,
        "currency": invoice.currency,
        "amount_due": money(invoice.amount_due, invoice.currency),
        "total": money(invoice.total, invoice.currency),
        "credited": str(invoice.credited),
    }
    if form.is_bound and form.is_valid():
        try:
            preview = credit_notes.credit_note_preview(invoice=invoice, lines=chosen)
        except BillingError as error:
            context["error"] = error.message
        else:
            if "confirm" in request.POST and request.POST.get("credited") != str(invoice.credited):
                # The invoice was credited since the preview (another note, a double
                # submit): the preview no longer says what would happen.
                context["error"] = (
                    f"{invoice} was credited since this preview: check the amounts again"
                )
            elif "confirm" in request.POST:
                try:
                    note = credit_notes.credit_note_issue(
                        invoice=invoice,
                        lines=chosen,
                        reason=form.cleaned_data["reason"],
                        memo=form.cleaned_data["memo"],
                        refund=form.cleaned_data.get("refund", False),
                        now=timezone.now(),
                    )
                except BillingError as error:
                    context["error"] = error.message
                else:
                    modeladmin.message_user(
                        request,
                        f"Credit note {note.number} of {money(note.total, note.currency)} "
                        f"issued for {invoice}",
                    )
                    return redirect("admin:invoices_creditnote_change", note.pk)
            else:
                context["preview"] = {
                    "lines": [
                        (line.description, money(amount, invoice.currency))
                        for line, amount in preview.lines
                    ],
                    "subtotal": money(preview.subtotal, invoice.currency),
                    "tax_lines": [
                        (tax_label(tax), money(tax.amount, invoice.currency))
                        for tax in preview.tax_lines
                    ],
                    "total": money(preview.total, invoice.currency),
                    "to_amount_due": money(preview.to_amount_due, invoice.currency),
                    "to_credit_balance": money(preview.to_credit_balance, invoice.currency),
                    "has_balance_part": preview.to_credit_balance > 0,
                    "refunded": bool(form.cleaned_data.get("refund")),
                }
    return TemplateResponse(request, CREDIT_NOTE_TEMPLATE, context)


class CreditNoteAdminViews:
    """The invoice page's "Void…" and "Issue credit note…" views (InvoiceAdmin)."""

    def credit_note_urls(self):
        return [
            path(
                "<path:object_id>/void/",
                self.admin_site.admin_view(self.void_view),
                name="invoices_invoice_void",
            ),
            path(
                "<path:object_id>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="invoices_invoice_credit_note",
            ),
        ]

    def _invoice(self, request, object_id: str) -> Invoice:
        if not object_id.isdigit():
            raise Http404("no such invoice")
        invoice = get_object_or_404(Invoice.objects.select_related("customer"), pk=object_id)
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return invoice

    def void_view(self, request, object_id):
        if not request.user.has_perm("invoices.void_invoice"):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        return void_with_confirmation(self, request, None, single=invoice)

    def credit_note_view(self, request, object_id):
        if not request.user.has_perm("invoices.issue_creditnote"):
            raise PermissionDenied
        return credit_note_view(self, request, self._invoice(request, object_id))


class CreditNoteLineInline(admin.TabularInline):
    model = CreditNoteLine
    fields = ["invoice_line", "description", "amount_display"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="amount")
    def amount_display(self, line):
        return money(line.amount, line.credit_note.currency)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "invoice",
        "customer",
        "reason",
        "total_display",
        "paid_back_to",
        "created_at",
    ]
    list_filter = ["reason", "paid_back_to", "voids_invoice", "created_at"]
    search_fields = ["number", "invoice__number", "customer__external_id", "customer__name"]
    list_select_related = ["invoice", "customer"]
    inlines = [CreditNoteLineInline]
    fields = [
        "number",
        "invoice",
        "customer",
        "reason",
        "memo",
        "voids_invoice",
        "subtotal_display",
        "tax_display",
        "total_display",
        "destination",
        "stripe_refund_id",
        "created_at",
        "pdf_download",
    ]
    readonly_fields = fields

    @admin.display(description="subtotal")
    def subtotal_display(self, note):
        return money(note.subtotal, note.currency)

    @admin.display(description="tax")
    def tax_display(self, note):
        parts = [
            f"{tax_label(tax)}: {money(tax.amount, note.currency)}"
            for tax in tax_lines_read(note.tax_lines)
        ]
        return "; ".join(parts) or money(note.tax, note.currency)

    @admin.display(description="total", ordering="total")
    def total_display(self, note):
        return money(note.total, note.currency)

    @admin.display(description="where the money went")
    def destination(self, note):
        parts = []
        if note.to_amount_due:
            parts.append(f"{money(note.to_amount_due, note.currency)} off the amount due")
        if note.paid_back and note.paid_back_to == CreditNote.TO_REFUND:
            parts.append(
                f"{money(note.paid_back, note.currency)} refunded to the card through Stripe "
                f"({note.get_refund_status_display().lower()})"
            )
        elif note.paid_back:
            parts.append(f"{money(note.paid_back, note.currency)} to the customer's credit balance")
            if note.refund_status == CreditNote.REFUND_FAILED:
                parts.append(f"Stripe refused the refund: {note.refund_error}")
        return "; ".join(parts) or "-"

    @admin.display(description="PDF")
    def pdf_download(self, note):
        url = reverse("admin:invoices_creditnote_pdf", args=[note.pk])
        return format_html('<a href="{}">Download PDF</a>', url)

    def get_urls(self):
        pdf = path(
            "<path:object_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="invoices_creditnote_pdf",
        )
        return [pdf, *super().get_urls()]

    def pdf_view(self, request, object_id):
        if not object_id.isdigit():
            raise Http404("no such credit note")
        note = get_object_or_404(CreditNote.objects.select_related("invoice"), pk=object_id)
        if not self.has_view_permission(request, note):
            raise PermissionDenied
        return selectors.credit_note_pdf_response(credit_note=note)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
