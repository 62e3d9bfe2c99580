"""Invoice and credit note PDFs: templates/invoices/invoice.html and
credit_note.html (both extend document.html), laid out by WeasyPrint, in the
customer's language (its snapshot's "locale": en, fr or de, through Django's
translation catalogs under locale/) with numbers and dates written the way that
language writes them (common.customer_text, through Invoice.text).

Names, addresses and descriptions print in any script the installed fonts have
(invoice.css names the Noto families); right-to-left and CJK text is marked with
its direction and language (invoices/templatetags/pdf_text.py). Text no installed
font has is logged when the document renders, with the scripts it is in
(invoices.pdf_fonts), and the document's admin page names them.

They are written to PDF by invoices.pdf_renderer (one renderer per process).
The same document in the same state renders to the same bytes on the same
system: the PDF's dates come from the document.
"""

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from common.customer_text import CustomerText
from common.vocabulary import LineKind
from invoices.e_invoices.facturx_pdf import (
    PDF_VARIANT,
    PdfMetadata,
    facturx_pdf_embed,
    is_facturx,
    without_producer,
)
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.pdf_fonts import MissingScript, installed_fonts, missing_scripts_text
from invoices.pdf_parties import document_parties
from invoices.pdf_renderer import renderer
from invoices.sellers import credit_note_seller, invoice_seller
from plans.taxes import tax_lines_read

INVOICE_TEMPLATE = "invoices/invoice.html"
CREDIT_NOTE_TEMPLATE = "invoices/credit_note.html"

# What a reader is told of the invoice's state: across the page, and in its facts.
WATERMARKS = {
    Invoice.DRAFT: pgettext_lazy("watermark", "DRAFT"),
    Invoice.PAID: pgettext_lazy("watermark", "PAID"),
    Invoice.VOID: pgettext_lazy("watermark", "VOID"),
}
STATUS_LABELS = {
    Invoice.DRAFT: pgettext_lazy("invoice status", "Draft"),
    Invoice.FINALIZED: pgettext_lazy("invoice status", "Finalized"),
    Invoice.PAID: pgettext_lazy("invoice status", "Paid"),
    Invoice.VOID: pgettext_lazy("invoice status", "Void"),
    Invoice.UNCOLLECTIBLE: pgettext_lazy("invoice status", "Uncollectible"),
}
REASON_LABELS = {
    CreditNote.DUPLICATE: gettext_lazy("Duplicate charge"),
    CreditNote.PRODUCT_UNSATISFACTORY: gettext_lazy("Product unsatisfactory"),
    CreditNote.ORDER_CHANGE: gettext_lazy("Order change"),
    CreditNote.OTHER: gettext_lazy("Other"),
}
KIND_LABELS = dict(LineKind.choices)
KIND_ORDER = {kind: index for index, (kind, _label) in enumerate(LineKind.choices)}
REVERSE_CHARGE = "reverse_charge"
EXEMPT = "exempt"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdfLine:
    description: str
    period: str
    quantity: str
    unit_price: str
    amount: str
    # The line's quantity split by a property's values: (label, quantity) rows,
    # under a title naming the property.
    breakdown: tuple[tuple[str, str], ...] = ()
    breakdown_title: str = ""
    # A rate card's lines are grouped under their charge: the first of a charge's
    # carries its name as a heading, and each names its row (indented).
    heading: str = ""
    indented: bool = False


@dataclass(frozen=True)
class PdfLineGroup:
    label: str
    lines: list[PdfLine]
    # Shown when the group has more than one line.
    subtotal: str | None


@dataclass(frozen=True)
class PdfRow:
    """A labelled value: a fact of the document (number, dates) or a totals row."""

    label: str
    value: str
    css: str = ""


def invoice_pdf_filename(invoice: Invoice) -> str:
    """The name a download is offered under: the number, or draft-<id>."""
    return f"{invoice.number}.pdf" if invoice.number else f"draft-{invoice.pk}.pdf"


def credit_note_pdf_filename(note: CreditNote) -> str:
    return f"{note.number}.pdf"


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF, as it stands now (watermarked DRAFT, PAID or VOID by
    its status), in the customer's language; a Factur-X one as PDF/A-3b with its
    XML embedded (_write_pdf). Reads the invoice's lines; writes nothing. Logs a
    warning when some of its text has no installed font."""
    return _write_pdf(invoice, *_invoice_page(invoice))


def render_credit_note_pdf(note: CreditNote) -> bytes:
    """The credit note as a PDF, in the language of the invoice it credits (a
    Factur-X one as the invoice's is). Writes nothing. Logs a warning when some
    of its text has no installed font."""
    return _write_pdf(note, *_credit_note_page(note))


def invoice_pdf_missing_scripts(invoice: Invoice) -> tuple[MissingScript, ...]:
    """The scripts of the invoice's PDF text that no font installed here draws
    (they would print as empty boxes); nothing when every character has a font."""
    return installed_fonts().missing(_invoice_page(invoice)[0])


def credit_note_pdf_missing_scripts(note: CreditNote) -> tuple[MissingScript, ...]:
    """invoice_pdf_missing_scripts for a credit note."""
    return installed_fonts().missing(_credit_note_page(note)[0])


def _invoice_page(invoice: Invoice) -> tuple[str, dict]:
    """The invoice's HTML, and the context it was written from."""
    with invoice.text.speaking():
        context = invoice_pdf_context(invoice)
        return render_to_string(INVOICE_TEMPLATE, context), context


def _credit_note_page(note: CreditNote) -> tuple[str, dict]:
    with note.invoice.text.speaking():
        context = credit_note_pdf_context(note)
        return render_to_string(CREDIT_NOTE_TEMPLATE, context), context


def _write_pdf(document: Invoice | CreditNote, html: str, context: dict) -> bytes:
    """The document's HTML as a PDF; for a Factur-X document (facturx_pdf.is_facturx),
    a PDF/A-3b with its e-invoice's XML embedded, titled, dated and in the language
    its page is."""
    # Checked before it is laid out (a set of the document's characters against the
    # fonts, known once per process): boxes are said, never printed silently.
    missing = installed_fonts().missing(html)
    if missing:
        logger.warning(
            "%s: its PDF lacks fonts for %s (%s); those characters print as empty boxes",
            document,
            "/".join(script.name for script in missing),
            missing_scripts_text(missing),
        )
    if not is_facturx(document):
        return renderer().write_pdf(html)
    pdf = renderer().write_pdf(html, pdf_variant=PDF_VARIANT, finisher=without_producer)
    metadata = PdfMetadata(
        title=context["title"],
        lang=context["lang"],
        author=context["seller"]["name"],
        modified=datetime.fromisoformat(context["modified"]),
    )
    return facturx_pdf_embed(pdf=pdf, xml=document.e_invoice_xml, metadata=metadata)


def _taxed_rows(write: CustomerText, document, tax_lines, discount=0) -> list[PdfRow]:
    """A document's (an invoice's or a credit note's) subtotal, discount, each tax
    line (an InvoiceTaxLine or a TaxLine: its rate, base and amount), tax and total."""
    rows = [PdfRow(_("Subtotal"), write.money(document.subtotal))]
    if discount:
        rows.append(PdfRow(_("Discount"), write.money(-Decimal(discount))))
    for line in tax_lines:
        label = _("%(name)s %(percentage)s on %(taxable_amount)s") % {
            "name": line.name,
            "percentage": write.percent(line.percentage),
            "taxable_amount": write.money(Decimal(line.taxable_amount)),
        }
        rows.append(PdfRow(label, write.money(Decimal(line.amount)), "tax-line"))
    rows.append(PdfRow(_("Tax"), write.money(document.tax)))
    total = _("Total %(currency)s") % {"currency": document.currency}
    return [*rows, PdfRow(total, write.money(document.total), "total")]


def _frame(invoice: Invoice, write: CustomerText, seller: dict) -> dict:
    """What every document prints around its content: the parties, the language,
    the page footer."""
    return {
        **document_parties(invoice, write.locale, seller),
        "lang": write.locale,
        "page_counter": _page_counter_css(),
    }


def _page_counter_css() -> str:
    """The page footer's CSS content in the document's language: the words are
    quoted, the page numbers are counters, in the order the language puts them."""
    parts = []
    for piece in re.split(r"(\{pages?\})", _("Page {page} of {pages}")):
        if piece in ("{page}", "{pages}"):
            parts.append(f"counter({piece[1:-1]})")
        elif piece:
            parts.append('"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(parts)


def _tax_mentions(invoice: Invoice) -> list[str]:
    exemption = (invoice.customer_snapshot or {}).get("tax_exempt")
    if exemption == REVERSE_CHARGE:
        return [
            _(
                "Reverse charge: VAT to be accounted for by the recipient "
                "(Article 196 of Council Directive 2006/112/EC)."
            )
        ]
    if exemption == EXEMPT:
        return [_("Exempt from tax: no tax is charged on this invoice.")]
    return []


def under_charges(lines: list[InvoiceLine], written: list[PdfLine]) -> list[PdfLine]:
    """`written` (the PdfLines of `lines`) with each rate card's lines grouped
    under their charge: its first line headed by the charge ('LLM tokens'), each
    naming its row ('gpt-4o · input'), as the lines' descriptions say them
    ('{meter} · {group}', plans.rating.rate_description)."""
    out, headed = [], set()
    for line, pdf_line in zip(lines, written, strict=True):
        if line.group is None or " · " not in line.description:
            out.append(pdf_line)
            continue
        charge, _, row = line.description.partition(" · ")
        heading = "" if line.meter in headed else charge
        headed.add(line.meter)
        out.append(replace(pdf_line, description=row, heading=heading, indented=True))
    return out


def invoice_pdf_context(invoice: Invoice) -> dict:
    """What the invoice template prints; call it under the document's language."""
    currency = invoice.currency
    write = invoice.text
    invoice_period = invoice.document_period
    groups: dict[str, list[InvoiceLine]] = {}
    for line in sorted(invoice.lines.all(), key=lambda line: line.position):
        groups.setdefault(line.kind, []).append(line)
    changed = [moment for moment in (invoice.paid_at, invoice.voided_at) if moment is not None]
    issued = invoice.finalized_at or invoice.created_at
    notes = list(_tax_mentions(invoice))
    if invoice.paid_at is not None:
        notes.append(_("Paid on %(date)s.") % {"date": write.day(invoice.paid_at)})
    if invoice.voided_at is not None:
        notes.append(
            _("Voided on %(date)s; a credit note cancels this invoice.")
            % {"date": write.day(invoice.voided_at)}
        )
    credit_notes = list(invoice.credit_notes.order_by("pk")) if invoice.pk else []
    for note in credit_notes:
        notes.append(
            _("Credit note %(number)s of %(date)s: %(amount)s %(currency)s.")
            % {
                "number": note.number,
                "date": write.day(note.created_at),
                "amount": write.money(note.total),
                "currency": currency,
            }
        )
    context = {
        **_frame(invoice, write, invoice_seller(invoice)),
        "document_title": _("Invoice"),
        "title": (
            _("Invoice %(number)s") % {"number": invoice.number}
            if invoice.number
            else _("Invoice (draft)")
        ),
        "number": invoice.number or "",
        "status": str(STATUS_LABELS.get(invoice.status, invoice.status)),
        "status_code": invoice.status,
        "watermark": str(WATERMARKS.get(invoice.status, "")),
        "currency": currency,
        "facts": _invoice_facts(invoice, write),
        "groups": [
            PdfLineGroup(
                label=str(KIND_LABELS.get(kind, kind)),
                lines=under_charges(
                    lines,
                    [
                        PdfLine(
                            description=line.description,
                            period=_line_period(line, invoice_period, write),
                            quantity=write.quantity_of(line),
                            unit_price=write.unit_price(line.unit_price, line.per),
                            amount=write.money(line.amount),
                            breakdown=tuple(
                                (
                                    _("Other")
                                    if rest
                                    else value
                                    if value is not None
                                    else _("(none)"),
                                    write.quantity(quantity),
                                )
                                for value, rest, quantity in line.breakdown_rows
                            ),
                            breakdown_title=_("All usage by %(property)s")
                            % {"property": line.breakdown["by"]}
                            if line.breakdown
                            else "",
                        )
                        for line in lines
                    ],
                ),
                subtotal=(
                    write.money(sum((line.amount for line in lines), Decimal(0)))
                    if len(lines) > 1
                    else None
                ),
            )
            for kind, lines in sorted(groups.items(), key=lambda item: _kind_rank(item[0]))
        ],
        "totals": _invoice_totals(invoice, write),
        "notes": notes,
        # Bank details and instructions where something is still to pay.
        "payable": invoice.status in (Invoice.DRAFT, Invoice.FINALIZED),
        "payment_reference": invoice.number or "",
        # The document's dates, for its metadata: issued, and last changed in status.
        "created": _w3c(issued),
        "modified": _w3c(max([issued, *changed])),
    }
    # A line's breakdown splits the meter's whole usage, not the line's part of
    # it (a tier): printed after the lines and totals, under its own title.
    context["breakdowns"] = [
        line for group in context["groups"] for line in group.lines if line.breakdown
    ]
    return context


def _invoice_facts(invoice: Invoice, write: CustomerText) -> list[PdfRow]:
    dash = "\N{EM DASH}"
    facts = [
        PdfRow(_("Invoice number"), invoice.number or dash),
        PdfRow(_("Issue date"), write.day(invoice.finalized_at) or dash),
        PdfRow(_("Due date"), write.day(invoice.due_at) or dash),
    ]
    if invoice.finalized_at is not None and invoice.due_at is not None:
        days = round((invoice.due_at - invoice.finalized_at) / timedelta(days=1))
        terms = (
            _("Due on receipt")
            if days <= 0
            else translation.ngettext("%(days)d day", "%(days)d days", days) % {"days": days}
        )
        facts.append(PdfRow(_("Payment terms"), terms))
    facts.append(PdfRow(_("Period"), invoice.document_dates(write)))
    external_id = (invoice.customer_snapshot or {}).get("external_id")
    if external_id:
        facts.append(PdfRow(_("Customer"), external_id))
    facts.append(PdfRow(_("Status"), str(STATUS_LABELS.get(invoice.status, invoice.status))))
    if invoice.payment_reference and invoice.status == Invoice.PAID:
        facts.append(PdfRow(_("Payment reference"), invoice.payment_reference))
    return facts


def _invoice_totals(invoice: Invoice, write: CustomerText) -> list[PdfRow]:
    currency = invoice.currency
    rows = _taxed_rows(
        write, invoice, list(invoice.tax_lines.all()) if invoice.pk else [], invoice.discount
    )
    if invoice.credits_applied:
        rows.append(PdfRow(_("Credits applied"), write.money(-Decimal(invoice.credits_applied))))
    if invoice.credited:
        rows.append(PdfRow(_("Amount credited"), write.money(-Decimal(invoice.credited))))
    if invoice.status == Invoice.PAID and invoice.amount_due == 0:
        paid = Decimal(invoice.total) - Decimal(invoice.credits_applied) - invoice.credited
        if paid > 0:
            rows.append(PdfRow(_("Amount paid"), write.money(-paid)))
    elif invoice.status != Invoice.VOID and invoice.amount_paid > 0:
        # Parts received so far (a PDF first rendered after them).
        rows.append(PdfRow(_("Amount paid"), write.money(-Decimal(invoice.amount_paid))))
    rows.append(
        PdfRow(
            _("Amount due %(currency)s") % {"currency": currency},
            write.money(invoice.amount_due),
            "amount-due",
        )
    )
    return rows


def credit_note_pdf_context(note: CreditNote) -> dict:
    """What the credit note template prints; call it under the document's language."""
    invoice = note.invoice
    currency = note.currency
    write = invoice.text
    rows = _taxed_rows(write, note, tax_lines_read(note.tax_lines))
    dash = "\N{EM DASH}"
    facts = [
        PdfRow(_("Credit note number"), note.number),
        PdfRow(_("Issue date"), write.day(note.created_at)),
        PdfRow(_("Credited invoice"), invoice.number or dash),
        PdfRow(_("Invoice date"), write.day(invoice.finalized_at) or dash),
        PdfRow(_("Reason"), str(REASON_LABELS.get(note.reason, note.reason))),
    ]
    external_id = (invoice.customer_snapshot or {}).get("external_id")
    if external_id:
        facts.append(PdfRow(_("Customer"), external_id))
    values = {"invoice": invoice.number or "", "currency": currency}
    destinations = []
    if note.to_amount_due:
        destinations.append(
            _("%(amount)s %(currency)s lowers the amount due on invoice %(invoice)s.")
            % {**values, "amount": write.money(note.to_amount_due)}
        )
    if note.paid_back:
        if note.paid_back_to == CreditNote.TO_REFUND:
            text = _("%(amount)s %(currency)s is refunded to your payment method.")
        else:
            text = _(
                "%(amount)s %(currency)s is added to your credit balance, which pays your "
                "next invoices."
            )
        destinations.append(text % {**values, "amount": write.money(note.paid_back)})
    notes = list(destinations)
    if note.voids_invoice:
        notes.append(_("This credit note cancels invoice %(invoice)s in full.") % values)
    notes.extend(_tax_mentions(invoice))
    return {
        **_frame(invoice, write, credit_note_seller(note)),
        "document_title": _("Credit note"),
        "title": _("Credit note %(number)s") % {"number": note.number},
        "number": note.number,
        "watermark": "",
        "currency": currency,
        "facts": facts,
        "memo": note.memo,
        "lines": [PdfRow(line.description, write.money(line.amount)) for line in note.lines.all()],
        "totals": rows,
        "notes": notes,
        "payable": False,
        "created": _w3c(note.created_at),
        "modified": _w3c(note.created_at),
    }


def _kind_rank(kind: str) -> tuple[int, str]:
    return KIND_ORDER.get(kind, len(KIND_ORDER)), kind


def _line_period(line: InvoiceLine, invoice_period: tuple, write: CustomerText) -> str:
    if line.period_start is None or line.period_end is None:
        return ""
    if (line.period_start, line.period_end) == invoice_period:
        return ""
    return write.dates(line.period_start, line.period_end, anchor=line.invoice.period_anchor)


def _w3c(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
