"""E-invoiced documents for the delivery tests: an ordinary invoice (or credit
note) of a French customer, finalized as usual, then given the e-invoice its
issue would have given it, written from its own number and amounts
(test_e_invoice_documents' sellers and buyers). The seller and customer fields
that make the issue e-invoice by itself are another change's."""

from datetime import UTC, datetime
from decimal import Decimal as D

from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.e_invoices.cii import document_cii
from invoices.e_invoices.document import CREDIT_NOTE, INVOICE, Issue, build_document
from invoices.e_invoices.ubl import document_ubl
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import default_seller, period_draft
from tests.invoices.test_e_invoice_documents import FRENCH_BUYER, FRENCH_SELLER

DEC_2 = datetime(2026, 12, 2, 10, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
# 100.00 + 39.90 = 139.90; TVA 20 %: 27.98; total 167.88.
LINES = [
    LineInput("usage", "Jetons gpt-4o", "gpt4o", D(1_000_000), D("0.0001"), D("100.00")),
    LineInput("base_fee", "Forfait Pro", None, D(1), D("39.90"), D("39.90")),
]
TVA = [("TVA", D(20), "S", "")]


def french_seller() -> None:
    default_seller(
        {
            "name": FRENCH_SELLER["name"],
            "address": ["1 rue de la Paix", "75002 Paris", "France"],
            "email": FRENCH_SELLER["email"],
            "tax_id": FRENCH_SELLER["tax_id"],
            "country": "FR",
            "bank": {"bank_name": "Banque", **FRENCH_SELLER["bank"]},
            "payment_instructions": "",
        }
    )


def french_customer(external_id: str = "client-1", **extra):
    if not tax_rate_exists():
        tax_rate_create(code="fr_vat", name="TVA", percentage=D("20.00"), country="FR")
    return customer_create(
        external_id=external_id,
        name="Client & Fils",
        currency="EUR",
        email="compta@client.test",
        address={"line1": "2 av. Foch", "city": "Lyon", "postal_code": "69006", "country": "FR"},
        tax_id="FR40303265045",
        locale="fr",
        tax_rates=["fr_vat"],
        **extra,
    )


def tax_rate_exists() -> bool:
    from plans.models import TaxRate

    return TaxRate.objects.filter(code="fr_vat").exists()


def finalized_invoice(customer) -> Invoice:
    invoice = invoice_finalize(invoice=period_draft(customer, LINES), now=DEC_2)
    return Invoice.objects.get(pk=invoice.pk)


def _line_tuples(lines) -> list[tuple]:
    return [
        (
            position,
            line.kind,
            line.description,
            line.meter or "",
            line.quantity,
            line.unit_price,
            line.per,
            line.amount,
            None,
            None,
        )
        for position, line in enumerate(lines)
    ]


def invoice_e_invoice_xml(invoice: Invoice, profile: str) -> str:
    """The invoice's e-invoice, from its number and stored amounts."""
    document = build_document(
        profile=profile,
        type_code=INVOICE,
        issue=Issue(invoice.number, invoice.finalized_at, invoice.due_at, D(0)),
        currency=invoice.currency,
        seller=FRENCH_SELLER,
        buyer=FRENCH_BUYER,
        lines=_line_tuples(invoice.lines.order_by("position")),
        tax_lines=TVA,
        units={},
        fee_unit="MON",
        taxable=invoice.subtotal - invoice.discount,
        tax=invoice.tax,
        total=invoice.total,
        period=(invoice.period_start, invoice.period_end),
        terms="Payable sous 30 jours",
    )
    written = document_cii(document) if profile == "facturx" else document_ubl(document)
    return written.decode("utf-8")


def e_invoiced(invoice: Invoice, profile: str) -> Invoice:
    """The finalized invoice as issued in `profile` (facturx, xrechnung, peppol)."""
    invoice.e_invoice_format = profile
    invoice.e_invoice_xml = invoice_e_invoice_xml(invoice, profile)
    invoice.save(update_fields=["e_invoice_format", "e_invoice_xml"])
    return Invoice.objects.get(pk=invoice.pk)


def credit_note_of(invoice: Invoice) -> CreditNote:
    """20.00 of the invoice's usage line credited (24.00 with its TVA)."""
    usage = invoice.lines.get(kind="usage")
    return credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=usage.pk, amount=D("20.00"))],
        reason=CreditNote.PRODUCT_UNSATISFACTORY,
        now=DEC_5,
    )


def e_invoiced_note(note: CreditNote, profile: str) -> CreditNote:
    document = build_document(
        profile=profile,
        type_code=CREDIT_NOTE,
        issue=Issue(note.number, note.created_at, None, D(0)),
        currency=note.currency,
        seller=FRENCH_SELLER,
        buyer=FRENCH_BUYER,
        lines=[
            (position, "usage", line.description, "", D(1), None, D(1), line.amount, None, None)
            for position, line in enumerate(note.lines.order_by("pk"))
        ],
        tax_lines=TVA,
        units={},
        fee_unit="C62",
        taxable=note.subtotal,
        tax=note.tax,
        total=note.total,
        period=None,
        preceding=(note.invoice.number, note.invoice.finalized_at),
        terms=f"Avoir sur la facture {note.invoice.number}",
    )
    written = document_cii(document) if profile == "facturx" else document_ubl(document)
    note.e_invoice_format = profile
    note.e_invoice_xml = written.decode("utf-8")
    note.save(update_fields=["e_invoice_format", "e_invoice_xml"])
    return CreditNote.objects.get(pk=note.pk)
