"""What an invoice's page in the admin shows beyond its fields, as finance reads
it (imported by invoices.admin.invoices and invoices.admin.credit_notes): its lines as a
table, the credit notes issued on it and the payments recorded for it (through
Stripe, by hand, from the customer's credit balance), and its e-invoice (its
format, whether the access point took it; on a draft, the rules that refused it
and where to fix them). Every amount goes through money_text, every quantity
through quantity_text, and every date is read in the invoice's time zone (its
PDF's), which is named."""

import re
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common import admin_fields, customer_text
from common.admin_forms import money_text, quantity_text, unit_price_text
from customers.models import BillingEntity, Customer
from invoices import selectors
from invoices.e_invoices.access_points import (
    SENT_FORMATS,
    NotSendable,
    endpoints,
    peppol_unreachable,
)
from invoices.models import CreditNote, Invoice, Payment, ReceivedPayment
from invoices.pdf import credit_note_pdf_missing_scripts, invoice_pdf_missing_scripts
from invoices.pdf_fonts import missing_scripts_text
from invoices.sellers import invoice_billing_entity
from plans.models import Meter, TaxRate


def moment_text(invoice: Invoice, moment: datetime | None) -> str:
    """'2 Dec 2026, 09:00 (Europe/Paris)': in the invoice's time zone, named."""
    return admin_fields.moment_text(moment, invoice.text.zone)


def local_moment_text(invoice: Invoice, moment: datetime | None) -> str:
    """'2 Dec 2026, 09:00': in the invoice's time zone, for a table whose header names it."""
    return admin_fields.local_moment_text(moment, invoice.text.zone)


def day_text(invoice: Invoice, moment: datetime | None) -> str:
    """'2 Dec 2026': the day in the invoice's time zone (a table whose header names it)."""
    return "—" if moment is None else customer_text.day(moment, invoice.text.zone)


def list_day(invoice: Invoice, moment: datetime | None) -> str | None:
    """The day in the invoice's time zone, the zone under it: a list of invoices
    or credit notes mixes customers' zones."""
    if moment is None:
        return None
    return format_html(
        '{}<br><span class="zone">{}</span>', day_text(invoice, moment), invoice.text.zone
    )


def period_text(invoice: Invoice, start: datetime | None, end: datetime | None) -> str:
    """'1 Nov - 30 Nov 2026 (Europe/Paris)': the days of [start, end) in the
    invoice's zone, read with its schedule's anchor."""
    return admin_fields.period_text(start, end, invoice.text.zone, invoice.period_anchor)


def pdf_link(url: str, document: Invoice | CreditNote, invoice: Invoice) -> str:
    """A numbered invoice's or credit note's Download PDF link, with when its PDF
    was stored (in `invoice`'s time zone), or that its first download stores it."""
    given_up = selectors.pdf_render_given_up(document) if not document.pdf_file else ""
    if given_up:
        return format_html(
            '<a href="{}">{}</a> <strong>{}</strong>',
            url,
            _("Download PDF"),
            _("(its render was given up: {reason}; Re-render PDF tries again)").format(
                reason=given_up
            ),
        )
    if not document.pdf_file:
        return format_html(
            '<a href="{}">{}</a> {}',
            url,
            _("Download PDF"),
            _("(not stored yet: the first download renders and stores it)"),
        )
    stored = moment_text(invoice, document.pdf_rendered_at)
    return format_html(
        '<a href="{}">{}</a> {}',
        url,
        _("Download PDF"),
        _("(stored {moment})").format(moment=stored),
    )


def pdf_fonts_text(document: Invoice | CreditNote) -> str:
    """Whether every character of the document's PDF has a font on this server, or
    which scripts print as empty boxes and what to install; checked against the
    fonts of the server showing the page (a PDF rendered before they were installed
    is rendered again by the Re-render PDF action)."""
    if isinstance(document, Invoice):
        missing = invoice_pdf_missing_scripts(document)
    else:
        missing = credit_note_pdf_missing_scripts(document)
    if not missing:
        return _("Every character of this PDF has a font.")
    return format_html(
        '<strong class="pdf-fonts-missing">{}</strong> {}',
        _("This PDF lacks fonts for: {scripts}").format(scripts=missing_scripts_text(missing)),
        _(
            "(those characters print as empty boxes; install the fonts on the servers that "
            "render PDFs, then re-render it)."
        ),
    )


def line_rows(invoice: Invoice) -> list[dict]:
    """The invoice's lines as its table shows them (their periods in the invoice's
    time zone, which the table's header names); a line split by a property (its
    breakdown) lists each value's quantity under its description."""
    # In the admin user's language, in the invoice's zone.
    language = customer_text.language(translation.get_language())
    currency, write, rows = invoice.currency, replace(invoice.text, locale=language), []
    for line in invoice.lines.all():
        by = (line.breakdown or {}).get("by", "")
        rows.append(
            {
                "description": line.description,
                "kind": line.get_kind_display(),
                "breakdown": [
                    f"{by} {'Other' if rest else value or '(none)'}: {quantity_text(quantity)}"
                    for value, rest, quantity in line.breakdown_rows
                ],
                # A line without a period of its own bills the invoice's.
                "period": write.dates(
                    line.period_start or invoice.period_start,
                    line.period_end or invoice.period_end,
                    anchor=invoice.period_anchor,
                ),
                "quantity": write.quantity_of(line),
                "unit_price": unit_price_text(line.unit_price, line.per, currency),
                "amount": money_text(line.amount, currency),
            }
        )
    return rows


def credit_note_destination(note: CreditNote) -> str:
    """Where the credit note's money went, in words."""
    parts = []
    if note.to_amount_due:
        parts.append(
            _("{amount} off the amount due").format(
                amount=money_text(note.to_amount_due, note.currency)
            )
        )
    if note.paid_back and note.paid_back_to == CreditNote.TO_REFUND:
        parts.append(
            _("{amount} refunded to the card through Stripe ({status})").format(
                amount=money_text(note.paid_back, note.currency),
                status=note.get_refund_status_display(),
            )
        )
    elif note.paid_back:
        parts.append(
            _("{amount} to the customer's credit balance").format(
                amount=money_text(note.paid_back, note.currency)
            )
        )
        if note.refund_status == CreditNote.REFUND_FAILED:
            parts.append(_("Stripe refused the refund: {error}").format(error=note.refund_error))
    return "; ".join(parts) or "—"


def credit_note_rows(invoice: Invoice) -> list[dict]:
    rows = []
    for note in invoice.credit_notes.order_by("created_at", "pk"):
        rows.append(
            {
                "number": note.number,
                "url": reverse("admin:invoices_creditnote_change", args=[note.pk]),
                "pdf_url": reverse("admin:invoices_creditnote_pdf", args=[note.pk]),
                "issued": day_text(invoice, note.created_at),
                "reason": note.get_reason_display(),
                "memo": note.memo,
                "amount": money_text(note.total, note.currency),
                "status": _("Voids the invoice") if note.voids_invoice else _("Partial credit"),
                "destination": credit_note_destination(note),
            }
        )
    return rows


def received_row(invoice: Invoice, received: ReceivedPayment) -> dict:
    """A payment received, as the payments table shows it: its method (but
    "other") and reference as details."""
    details = [] if received.method == ReceivedPayment.OTHER else [received.get_method_display()]
    if received.reference:
        details.append(_("Reference: {reference}").format(reference=received.reference))
    return {
        "what": _("Paid through Stripe")
        if received.method == ReceivedPayment.STRIPE
        else _("Payment recorded by hand"),
        "amount": money_text(received.amount, received.currency),
        "status": _("Received"),
        "when": local_moment_text(invoice, received.received_at),
        "detail": "; ".join(str(detail) for detail in details),
        "url": "",
    }


def payment_rows(invoice: Invoice, *, may_view_payments: bool) -> list[dict]:
    """What paid the invoice, or tries to: the customer's credit balance spent when
    it was issued, its payment through Stripe (with its attempts), and each
    payment received (recorded by hand: its page, Mark paid, the API; or a
    purchase paid through Stripe), on the day it was received."""
    currency, rows = invoice.currency, []
    if invoice.credits_applied:
        rows.append(
            {
                "what": _("The customer's credit balance"),
                "amount": money_text(invoice.credits_applied, currency),
                "status": _("Applied when it was issued"),
                "when": local_moment_text(invoice, invoice.finalized_at),
                "detail": "",
                "url": "",
            }
        )
    stripe = Payment.objects.filter(invoice=invoice).first()
    if stripe is not None:
        attempts = _("{attempts} of {most} attempts").format(
            attempts=stripe.attempts, most=stripe.max_attempts
        )
        rows.append(
            {
                "what": _("Stripe payment #{number}").format(number=stripe.pk),
                "amount": money_text(stripe.amount, stripe.currency),
                "status": stripe.get_status_display(),
                "when": local_moment_text(invoice, stripe.succeeded_at or stripe.updated_at),
                "detail": f"{attempts}; {stripe.last_error}" if stripe.last_error else attempts,
                "url": (
                    reverse("admin:invoices_payment_change", args=[stripe.pk])
                    if may_view_payments
                    else ""
                ),
            }
        )
    for received in invoice.received_payments.all():
        if received.method == ReceivedPayment.STRIPE and stripe is not None:
            continue  # the Stripe payment's row says it
        rows.append(received_row(invoice, received))
    return rows


# E-invoices (invoices.e_invoices): the format a document was issued in, whether
# the access point took it, and on a draft its validation refused, what to fix.

E_INVOICE_FORMATS = {"facturx": "Factur-X", "xrechnung": "XRechnung", "peppol": "Peppol BIS 3"}
# A validation failure's field (validation.FIELDS) in finance's words: the object
# it is set on, and the field's name on that object's page.
_CUSTOMER, _ENTITY, _TAX_RATE = (
    gettext_lazy("Customer"),
    gettext_lazy("Billing entity"),
    gettext_lazy("Tax rate"),
)
FIELD_WORDS = {
    "customer.vat_id": (_CUSTOMER, gettext_lazy("VAT number")),
    "customer.peppol_id": (_CUSTOMER, gettext_lazy("Peppol ID")),
    "customer.buyer_reference": (_CUSTOMER, gettext_lazy("Buyer reference")),
    "billing_entity.vat_id": (_ENTITY, gettext_lazy("VAT number")),
    "billing_entity.peppol_id": (_ENTITY, gettext_lazy("Peppol ID")),
    "billing_entity.iban": (_ENTITY, gettext_lazy("IBAN")),
    "billing_entity.bic": (_ENTITY, gettext_lazy("BIC")),
    "tax_rate.vat_category": (_TAX_RATE, gettext_lazy("VAT category")),
    "tax_rate.exemption_reason": (_TAX_RATE, gettext_lazy("Exemption reason")),
}
_COMPUTED = re.compile(r"BT-\d+")


# The objects a field is set on, and an address's parts (customer.address.city).
_OWNERS = {
    "customer": (_CUSTOMER, Customer),
    "billing_entity": (_ENTITY, BillingEntity),
    "tax_rate": (_TAX_RATE, TaxRate),
    "meter": (gettext_lazy("Meter"), Meter),
}
_ADDRESS_PARTS = {
    "line1": gettext_lazy("Address line 1"),
    "line2": gettext_lazy("Address line 2"),
    "city": gettext_lazy("City"),
    "postal_code": gettext_lazy("Postal code"),
    "country": gettext_lazy("Country"),
}


def e_invoice_field_words(field: str) -> str:
    """'customer.vat_id' in words: the object, a right-pointing angle quote, the
    field ('Customer \u203a VAT number'), named as the object's page names it
    ('customer.address.city': 'Customer \u203a Address \u203a City'); a business
    term we compute ('BT-117') as 'BT-117 (computed)'; any other field as it is
    named."""
    if field in FIELD_WORDS:
        owner, name = FIELD_WORDS[field]
        return f"{owner} \u203a {name}"
    if _COMPUTED.fullmatch(field):
        return _("{term} (computed)").format(term=field)
    owner, _dot, rest = field.partition(".")
    name, _dot, part = rest.partition(".")
    if owner not in _OWNERS or not name:
        return field
    words, model = _OWNERS[owner]
    try:
        label = capfirst(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return field
    parts = [str(words), str(label)]
    if part:
        parts.append(str(_ADDRESS_PARTS.get(part, part)))
    return " \u203a ".join(parts)


def e_invoice_field_url(invoice: Invoice, field: str, user) -> str:
    """The admin page where `field` of the draft's e-invoice is set (its
    customer's, its seller's, its tax rate's), when the user may view it; else ''."""
    owner = field.split(".", 1)[0]
    if owner == "customer" and user.has_perm("customers.view_customer"):
        return reverse("admin:customers_customer_change", args=[invoice.customer_id])
    if owner == "billing_entity" and user.has_perm("customers.view_billingentity"):
        entity = invoice_billing_entity(invoice)
        return reverse("admin:customers_billingentity_change", args=[entity.pk])
    if owner == "tax_rate" and user.has_perm("plans.view_taxrate"):
        rate_id = invoice.tax_lines.values_list("tax_rate_id", flat=True).first()
        if rate_id is not None:
            return reverse("admin:plans_taxrate_change", args=[rate_id])
    return ""


def e_invoice_refusal_rows(invoice: Invoice, user) -> list[dict]:
    """A draft's refused e-invoice (Invoice.e_invoice_errors), one row a failed
    rule: the rule, what it says, and the field to fix in words, linked."""
    if invoice.status != Invoice.DRAFT:
        return []
    rows = []
    for error in invoice.e_invoice_errors or []:
        field = error.get("field") or ""
        rows.append(
            {
                "rule": error.get("rule") or "",
                "message": error.get("message") or "",
                "field": e_invoice_field_words(field) if field else "—",
                "url": e_invoice_field_url(invoice, field, user) if field else "",
            }
        )
    return rows


def e_invoice_sent_text(document: Invoice | CreditNote, invoice: Invoice) -> str:
    """Whether the Peppol access point took the document, and when (in `invoice`'s
    time zone); a Factur-X document is not sent through one."""
    if document.e_invoice_format not in SENT_FORMATS:
        return _("Not sent through Peppol (Factur-X)")
    if document.e_invoice_sent_at is not None:
        return moment_text(invoice, document.e_invoice_sent_at)
    try:
        unreachable = peppol_unreachable(*endpoints(document.e_invoice_xml.encode("utf-8")))
    except NotSendable:
        unreachable = "no endpoint"
    if unreachable:
        return _("For upload or e-mail: no Peppol address")
    if not settings.BILLING_PEPPOL_ACCESS_POINT:
        return _("Not sent: no Peppol access point is set up (BILLING_PEPPOL_ACCESS_POINT)")
    return _("Not yet: waiting for the access point")


def e_invoice_facts(document: Invoice | CreditNote, invoice: Invoice, url: str) -> dict | None:
    """An issued document's e-invoice as its page shows it; None when it has none."""
    if not document.e_invoice_format or not document.e_invoice_xml:
        return None
    return {
        "format": E_INVOICE_FORMATS.get(document.e_invoice_format, document.e_invoice_format),
        "status": _("Validated against EN 16931 and issued"),
        "sent": e_invoice_sent_text(document, invoice),
        "url": url,
        "file_name": f"{document.number}.xml",
    }


def e_invoice_response(document: Invoice | CreditNote) -> HttpResponse:
    """The document's e-invoice XML as issued, as a download named <number>.xml."""
    if not document.e_invoice_format or not document.e_invoice_xml or not document.number:
        raise Http404("no e-invoice")
    response = HttpResponse(document.e_invoice_xml.encode("utf-8"), content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{document.number}.xml"'
    return response
