"""Credit notes in the admin: issuing a credit note for part of an invoice,
through a page that says what will happen before anything does (the credit
note, its tax, where its money goes, what it takes back of what a purchase
sold; refused as the API refuses), and the credit notes themselves,
read-only, with their PDFs and e-invoices. (Voiding, which issues one for all of an invoice:
invoices.admin.void_uncollectible.)"""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_forms import admin_language, money_text, quantity_text
from common.errors import BillingError
from common.money import DecimalRefused
from common.typed_numbers import typed_number_read
from invoices import credit_notes, refunds, rendering, sellers
from invoices.admin.invoice_page import (
    credit_note_destination,
    e_invoice_facts,
    e_invoice_response,
    list_day,
    moment_text,
    pdf_fonts_text,
    pdf_link,
    period_text,
)
from invoices.models import CreditNote, CreditNoteLine, Invoice
from plans.taxes import tax_label, tax_lines_read
from wallets.models import Wallet

CREDIT_NOTE_TEMPLATE = "admin/invoices/invoice/credit_note_form.html"


class CreditNoteForm(forms.Form):
    reason = forms.ChoiceField(choices=CreditNote.REASONS, label=_("Reason"))
    memo = forms.CharField(
        max_length=500, required=False, help_text=_("Printed on the credit note."), label=_("Memo")
    )
    refund = forms.BooleanField(
        required=False,
        label=_("Refund to the card"),
        help_text=(
            _(
                "For an invoice Stripe collected: what was paid goes back to the card through "
                "Stripe instead of the customer's credit balance."
            )
        ),
    )

    def __init__(self, *args, refundable: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not refundable:
            del self.fields["refund"]


def taken_back_text(part) -> str:
    """What a credit note takes back of a purchase's wallet, in the user's convention:
    '1.234,50 EUR of the balance', '1.000 credits' (de)."""
    wallet = part.block.wallet
    if wallet.kind == Wallet.MONEY:
        return gettext("{amount} of the balance").format(
            amount=money_text(part.amount, wallet.currency)
        )
    return gettext("{credits} credits").format(credits=quantity_text(part.amount))


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
                "amount": money_text(line.amount, invoice.currency),
                "left": money_text(max(left, Decimal(0)), invoice.currency),
                "creditable": left > 0,
                "typed": typed,
            }
        )
        if typed:
            try:
                amount = typed_number_read(typed, language=admin_language())
            except DecimalRefused as refused:
                # Not guessed: the preview waits for an amount that reads one way.
                rows[-1]["refusal"] = str(refused)
                continue
            chosen.append(credit_notes.CreditLineInput(line.pk, amount))
    return rows, chosen


def error_words(error: BillingError, invoice: Invoice, chosen) -> str:
    """A refusal as finance reads it: each line named by its description, the
    amounts with their currency, what to do, and no field path ('lines.0.amount').
    (The API keeps its envelope: error.message and error.fields as they are.)"""
    if not error.fields:
        return error.message
    lines = {line.pk: line for line in invoice.lines.all()}
    names = {
        f"lines.{index}": lines[typed.invoice_line].description
        for index, typed in enumerate(chosen)
        if typed.invoice_line in lines
    }
    words = []
    for field, messages in error.fields.items():
        if field.count(".") != 2:  # about all the lines: the message says it
            words.append(_total_words(error.message, invoice))
            continue
        line = names.get(field.rsplit(".", 1)[0], gettext("A line"))
        words.extend(f"{line}: {_line_words(message, invoice)}" for message in messages)
    return "; ".join(dict.fromkeys(words))


def _amount_words(text: str, currency: str) -> tuple[str, str] | None:
    """'10.10 is left…' -> ('10.10 EUR', 'is left…'); None when it starts otherwise."""
    amount, _, rest = text.partition(" ")
    try:
        return money_text(Decimal(amount), currency), rest
    except InvalidOperation:
        return None


def _line_words(message: str, invoice: Invoice) -> str:
    """One refusal of a line, with the amount's currency and what to do."""
    rest = "is left to credit on this line"
    if message.startswith("at most ") and (
        words := _amount_words(message.removeprefix("at most "), invoice.currency)
    ):
        if words[1] == rest:
            return gettext(
                "at most {amount} is left to credit on this line: type that or less"
            ).format(amount=words[0])
        return f"at most {words[0]} {words[1]}: type that or less"
    if message == "must be greater than zero":
        return gettext("type an amount greater than zero, without its currency sign")
    return message


def _total_words(message: str, invoice: Invoice) -> str:
    """A refusal of the lines together ('the invoice has 30.12 left to credit in all')."""
    total = "invalid credit note: the invoice has "
    if message.startswith(total) and (
        words := _amount_words(message.removeprefix(total), invoice.currency)
    ):
        if words[1] == "left to credit in all (before tax)":
            return gettext(
                "The invoice has {amount} left to credit in all (before tax): "
                "type less on its lines"
            ).format(amount=words[0])
        return f"The invoice has {words[0]} {words[1]}: type less on its lines"
    return message[:1].upper() + message[1:]


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
        "title": gettext("Credit note for {invoice}").format(invoice=invoice),
        "opts": Invoice._meta,
        "original": invoice,
        "invoice": invoice,
        "form": form,
        "rows": rows,
        "currency": invoice.currency,
        "amount_due": money_text(invoice.amount_due, invoice.currency),
        "total": money_text(invoice.total, invoice.currency),
        "credited": str(invoice.credited),
    }
    refused = [row for row in rows if "refusal" in row]
    if refused:
        context["error"] = "; ".join(
            f"{row['line'].description}: {row['refusal']}" for row in refused
        )
    elif form.is_bound and form.is_valid():
        try:
            preview = credit_notes.credit_note_preview(invoice=invoice, lines=chosen)
        except BillingError as error:
            context["error"] = error_words(error, invoice, chosen)
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
                    context["error"] = error_words(error, invoice, chosen)
                else:
                    modeladmin.message_user(
                        request,
                        gettext("Credit note {number} of {amount} issued for {invoice}").format(
                            number=note.number,
                            amount=money_text(note.total, note.currency),
                            invoice=invoice,
                        ),
                    )
                    return redirect("admin:invoices_creditnote_change", note.pk)
            else:
                context["preview"] = {
                    "lines": [
                        (line.description, money_text(amount, invoice.currency))
                        for line, amount in preview.lines
                    ],
                    "subtotal": money_text(preview.subtotal, invoice.currency),
                    "tax_lines": [
                        (tax_label(tax), money_text(tax.amount, invoice.currency))
                        for tax in preview.tax_lines
                    ],
                    "total": money_text(preview.total, invoice.currency),
                    "to_amount_due": money_text(preview.to_amount_due, invoice.currency),
                    "to_credit_balance": money_text(preview.to_credit_balance, invoice.currency),
                    "has_balance_part": preview.to_credit_balance > 0,
                    # What it takes back of what the invoice sold (a purchase).
                    "taken_back": [taken_back_text(part) for part in preview.taken_back],
                    "refunded": bool(form.cleaned_data.get("refund")),
                }
    return TemplateResponse(request, CREDIT_NOTE_TEMPLATE, context)


def titled(filter_class, title: str):
    """A field's list filter under a title finance reads ("By issued", not "By created at")."""

    class Titled(filter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


class CreditNoteLineInline(admin.TabularInline):
    model = CreditNoteLine
    fields = ["invoice_line", "description", "amount_display"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("amount"))
    def amount_display(self, line):
        return money_text(line.amount, line.credit_note.currency)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    # Narrow columns, so that the total shows next to the filters in a 1280 px window.
    list_display = [
        "number",
        "invoice",
        "customer_name",
        "reason",
        "issued_day",
        "total_display",
    ]
    list_filter = [
        "reason",
        ("paid_back_to", titled(admin.ChoicesFieldListFilter, "where the money went")),
        ("voids_invoice", titled(admin.BooleanFieldListFilter, "voiding its invoice")),
        ("created_at", titled(admin.DateFieldListFilter, "issued")),
    ]
    search_fields = ["number", "invoice__number", "customer__external_id", "customer__name"]
    list_select_related = ["invoice", "customer"]
    inlines = [CreditNoteLineInline]
    fields = [
        "number",
        "invoice",
        "customer",
        "seller_display",
        "reason",
        "memo",
        "period_display",
        "voids_invoice",
        "subtotal_display",
        "tax_display",
        "total_display",
        "destination",
        "stripe_refund_id",
        "issued_display",
        "pdf_download",
        "pdf_fonts",
        "e_invoice_display",
    ]
    readonly_fields = fields

    def get_fields(self, request, obj=None):
        # The e-invoice's row only on a note that has one.
        fields = super().get_fields(request, obj)
        if obj is None or not obj.e_invoice_format:
            return [name for name in fields if name != "e_invoice_display"]
        return fields

    @admin.display(description=_("Customer"), ordering="customer__name")
    def customer_name(self, note):
        return note.customer.name

    @admin.display(description=_("Billing entity (seller)"))
    def seller_display(self, note):
        return sellers.seller_words(sellers.credit_note_seller(note), issued=True)

    @admin.display(description=_("Invoice's period"))
    def period_display(self, note):
        return period_text(note.invoice, *note.invoice.document_period)

    @admin.display(description=_("Issued"), ordering="created_at")
    def issued_day(self, note):
        return list_day(note.invoice, note.created_at)

    @admin.display(description=_("Issued"))
    def issued_display(self, note):
        return moment_text(note.invoice, note.created_at)

    @admin.display(description=_("subtotal"))
    def subtotal_display(self, note):
        return money_text(note.subtotal, note.currency)

    @admin.display(description=_("tax"))
    def tax_display(self, note):
        parts = [
            f"{tax_label(tax)}: {money_text(tax.amount, note.currency)}"
            for tax in tax_lines_read(note.tax_lines)
        ]
        return "; ".join(parts) or money_text(note.tax, note.currency)

    @admin.display(description=_("Total"), ordering="total")
    def total_display(self, note):
        return money_text(note.total, note.currency)

    @admin.display(description=_("Where the money went"))
    def destination(self, note):
        return credit_note_destination(note)

    @admin.display(description=_("PDF"))
    def pdf_download(self, note):
        url = reverse("admin:invoices_creditnote_pdf", args=[note.pk])
        return pdf_link(url, note, note.invoice)

    @admin.display(description=_("Fonts"))
    def pdf_fonts(self, note):
        return pdf_fonts_text(note)

    @admin.display(description=_("E-invoice"))
    def e_invoice_display(self, note):
        url = reverse("admin:invoices_creditnote_e_invoice", args=[note.pk])
        facts = e_invoice_facts(note, note.invoice, url)
        if facts is None:
            return "—"
        return format_html(
            '{} <span class="quiet">({})</span><br>{}: {}<br><a href="{}">{}</a>',
            facts["format"],
            facts["status"],
            gettext("Sent to the access point"),
            facts["sent"],
            facts["url"],
            facts["file_name"],
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/pdf/", view(self.pdf_view), name="invoices_creditnote_pdf"),
            path(
                "<path:object_id>/e-invoice/",
                view(self.e_invoice_view),
                name="invoices_creditnote_e_invoice",
            ),
            *super().get_urls(),
        ]

    def _note(self, request, object_id: str) -> CreditNote:
        if not object_id.isdigit():
            raise Http404("no such credit note")
        note = get_object_or_404(CreditNote.objects.select_related("invoice"), pk=object_id)
        if not self.has_view_permission(request, note):
            raise PermissionDenied
        return note

    def pdf_view(self, request, object_id):
        note = self._note(request, object_id)
        return rendering.credit_note_pdf_response(credit_note=note, now=timezone.now())

    def e_invoice_view(self, request, object_id):
        """The credit note's e-invoice as it was issued (<number>.xml)."""
        return e_invoice_response(self._note(request, object_id))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
