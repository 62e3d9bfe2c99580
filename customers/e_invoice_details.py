"""A customer's e-invoice details (EN 16931): which it holds, the formats it may
choose, and what is wrong with them; the rules on each identifier are
billing.core.e_invoice_codes'."""

from django.utils.translation import gettext_lazy as _

from billing.core.e_invoice_codes import leitweg_id_errors, peppol_id_errors, vat_id_errors

# The buyer's e-invoice details (EN 16931): copied on its invoices as they are
# issued (invoices.services.customer_snapshot), read by invoices.e_invoices.
E_INVOICE_DETAILS = (
    "buyer_reference",
    "order_reference",
    "leitweg_id",
    "peppol_id",
    "e_invoice_format",
    "sepa_mandate_reference",
)
FACTURX = "facturx"
XRECHNUNG = "xrechnung"
PEPPOL = "peppol"
E_INVOICE_FORMATS = [
    (FACTURX, _("Factur-X (PDF/A-3 with CII XML)")),
    (XRECHNUNG, _("XRechnung (UBL)")),
    (PEPPOL, _("Peppol BIS Billing 3.0 (UBL)")),
]


def customer_e_invoice_errors(
    *, tax_id: str, leitweg_id: str, peppol_id: str, buyer_reference: str, e_invoice_format: str
) -> dict[str, list[str]]:
    """What is wrong with a customer's e-invoice details, by field: its VAT number,
    Leitweg-ID and Peppol endpoint each well formed; an XRechnung buyer names a
    Leitweg-ID or a buyer reference (BR-DE-15), a Peppol buyer its endpoint."""
    fields = {}
    if errors := vat_id_errors(tax_id or ""):
        fields["tax_id"] = errors
    if leitweg_id and (errors := leitweg_id_errors(leitweg_id)):
        fields["leitweg_id"] = errors
    if peppol_id and (errors := peppol_id_errors(peppol_id)):
        fields["peppol_id"] = errors
    formats = dict(E_INVOICE_FORMATS)
    if e_invoice_format and e_invoice_format not in formats:
        fields["e_invoice_format"] = [f"must be one of {', '.join(formats)} or empty"]
    elif e_invoice_format == XRECHNUNG and not (leitweg_id or buyer_reference):
        fields.setdefault("leitweg_id", []).append(
            "XRechnung needs a Leitweg-ID or a buyer reference"
        )
    elif e_invoice_format == PEPPOL and not peppol_id:
        fields.setdefault("peppol_id", []).append("Peppol needs the buyer's Peppol endpoint")
    return fields
