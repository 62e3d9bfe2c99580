"""A customer's e-invoice details (EN 16931): which it holds, the formats it may
choose, and what is wrong with them; the rules on each identifier are
common.e_invoice_codes'."""

from django.utils.translation import gettext_lazy as _

from common.e_invoice_codes import (
    iban_errors,
    leitweg_id_errors,
    payment_card_digits_errors,
    peppol_id_errors,
    text_part_errors,
    vat_id_errors,
)

# The buyer's e-invoice details (EN 16931): copied on its invoices as they are
# issued (invoices.services.customer_snapshot), read by invoices.e_invoices.
E_INVOICE_DETAILS = (
    "buyer_reference",
    "order_reference",
    "leitweg_id",
    "peppol_id",
    "e_invoice_format",
    "sepa_mandate_reference",
    "debtor_iban",
    "card_last_digits",
    "card_holder_name",
)
# The customer's fields customer_e_invoice_errors checks (its parameters, but the
# seller's payment means): the details but the order reference, and the VAT number.
E_INVOICE_CHECKED = ("tax_id", *(name for name in E_INVOICE_DETAILS if name != "order_reference"))
FACTURX = "facturx"
XRECHNUNG = "xrechnung"
PEPPOL = "peppol"
E_INVOICE_FORMATS = [
    (FACTURX, _("Factur-X (PDF/A-3 with CII XML)")),
    (XRECHNUNG, _("XRechnung (UBL)")),
    (PEPPOL, _("Peppol BIS Billing 3.0 (UBL)")),
]
# A seller's payment means (BillingEntity.payment_means) that ask of each buyer
# something of its own: a mandate and the account debited, or its card.
DIRECT_DEBIT = "direct_debit"
CARD = "card"


def seller_payment_means(entity) -> str:
    """How `entity` (a BillingEntity, or None) asks its e-invoices to be paid;
    "" when it issues none (no e-invoice asks anything of the buyer)."""
    if entity is None or not entity.e_invoicing:
        return ""
    return entity.payment_means


def customer_e_invoice_errors(
    *,
    tax_id: str,
    leitweg_id: str,
    peppol_id: str,
    buyer_reference: str,
    e_invoice_format: str,
    sepa_mandate_reference: str = "",
    debtor_iban: str = "",
    card_last_digits: str = "",
    card_holder_name: str = "",
    seller_means: str = "",
) -> dict[str, list[str]]:
    """What is wrong with a customer's e-invoice details, by field: its VAT number,
    Leitweg-ID, Peppol endpoint, debited IBAN and card digits each well formed;
    an XRechnung buyer names a Leitweg-ID or a buyer reference (BR-DE-15), a
    Peppol buyer its endpoint. `seller_means`: how its seller's e-invoices ask to
    be paid (seller_payment_means): by direct debit, an e-invoiced buyer names
    its mandate (BT-89, PEPPOL-EN16931-R061) and the account debited (BT-91,
    BR-DE-31); by card, an XRechnung buyer the card's last digits (BT-87,
    BR-DE-24-a)."""
    fields = {}
    if errors := vat_id_errors(tax_id or ""):
        fields["tax_id"] = errors
    if leitweg_id and (errors := leitweg_id_errors(leitweg_id)):
        fields["leitweg_id"] = errors
    if peppol_id and (errors := peppol_id_errors(peppol_id)):
        fields["peppol_id"] = errors
    if debtor_iban and (errors := iban_errors(debtor_iban)):
        fields["debtor_iban"] = errors
    if card_last_digits and (errors := payment_card_digits_errors(card_last_digits)):
        fields["card_last_digits"] = errors
    for name, value in (
        ("buyer_reference", buyer_reference),
        ("sepa_mandate_reference", sepa_mandate_reference),
        ("card_holder_name", card_holder_name),
    ):
        if value and (errors := text_part_errors(value)):
            fields[name] = errors
    formats = dict(E_INVOICE_FORMATS)
    if e_invoice_format and e_invoice_format not in formats:
        fields["e_invoice_format"] = [f"must be one of {', '.join(formats)} or empty"]
        return fields
    if e_invoice_format == XRECHNUNG and not (leitweg_id or buyer_reference):
        fields.setdefault("leitweg_id", []).append(
            "XRechnung needs a Leitweg-ID or a buyer reference"
        )
    elif e_invoice_format == PEPPOL and not peppol_id:
        fields.setdefault("peppol_id", []).append("Peppol needs the buyer's Peppol endpoint")
    if e_invoice_format and seller_means == DIRECT_DEBIT:
        if not sepa_mandate_reference:
            fields.setdefault("sepa_mandate_reference", []).append(
                "its seller's e-invoices are paid by direct debit: give the SEPA mandate "
                "reference (BT-89, PEPPOL-EN16931-R061)"
            )
        if not debtor_iban:
            fields.setdefault("debtor_iban", []).append(
                "its seller's e-invoices are paid by direct debit: give the IBAN debited "
                "(BT-91, BR-DE-31)"
            )
    if e_invoice_format == XRECHNUNG and seller_means == CARD and not card_last_digits:
        fields.setdefault("card_last_digits", []).append(
            "its seller's e-invoices are paid by card: XRechnung needs the card's last "
            "4 digits (BT-87, BR-DE-24-a)"
        )
    return fields
