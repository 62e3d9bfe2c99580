"""The rules the two UBL profiles add to EN 16931 (their CIUS), checked on the
document itself before its XML is, under their official identifiers.

- XRechnung: KoSIT's own rules run on every XRechnung (validation.py, the
  pinned rule_sets.XRECHNUNG_UBL); the ones kept here are those finance most
  often meets, said in English and naming the field to fix, where KoSIT's text
  is German and names a business term. Reported first; the official failure of
  the same rule id is then left out (merged).
- Peppol BIS 3: OpenPeppol's rules are not installed (rule_sets.PEPPOL_BIS3_UBL
  says why): the rules below are the ones a Peppol access point would most
  often refuse us on, and it runs the full set on receipt."""

from customers.e_invoice_details import PEPPOL, XRECHNUNG
from invoices.e_invoices.document import Document
from invoices.e_invoices.validation import FIELDS, TERM_READERS, Failure

# Payment means that pay by transfer to the seller's account (UNTDID 4461).
TRANSFERS = ("30", "58")


def _failure(rule: str, message: str, term: str) -> Failure:
    return Failure(rule, message, FIELDS.get(term, term), "", "fatal")


def peppol_failures(document: Document) -> list[Failure]:
    """Peppol BIS Billing 3.0's rules of the ones below EN 16931's."""
    failures = []
    if not (document.buyer_reference or document.order_reference):
        failures.append(
            _failure(
                "PEPPOL-EN16931-R003",
                "A buyer reference (BT-10) or purchase order reference (BT-13) MUST be provided.",
                "BT-10",
            )
        )
    if document.buyer.endpoint is None:
        failures.append(
            _failure(
                "PEPPOL-EN16931-R010",
                "Buyer electronic address (BT-49) MUST be provided: the customer's Peppol id.",
                "BT-49",
            )
        )
    if document.seller.endpoint is None:
        failures.append(
            _failure(
                "PEPPOL-EN16931-R020",
                "Seller electronic address (BT-34) MUST be provided: the billing entity's "
                "Peppol id.",
                "BT-34",
            )
        )
    for line in document.lines:
        if line.quantity * line.price / line.base_quantity != line.net_amount:
            failures.append(
                _failure(
                    "PEPPOL-EN16931-R120",
                    f"Invoice line {line.identifier}: net amount (BT-131) MUST equal invoiced "
                    "quantity x (item net price / price base quantity).",
                    "BT-131",
                )
            )
    return failures


# KoSIT's XRechnung rules on what must be present: (rule, message, term); the
# term is read off the document as validation.TERM_READERS reads it. The seller
# contact's three (BR-DE-5, 6, 7) apply once it has one (BR-DE-2, below).
_XRECHNUNG_CONTACT = (
    ("BR-DE-5", "The seller contact point (BT-41) must be given.", "BT-41"),
    ("BR-DE-6", "The seller contact telephone number (BT-42) must be given.", "BT-42"),
    ("BR-DE-7", "The seller contact email address (BT-43) must be given.", "BT-43"),
)
_XRECHNUNG_PRESENT = (
    ("BR-DE-3", "The seller city (BT-37) must be given.", "BT-37"),
    ("BR-DE-4", "The seller post code (BT-38) must be given.", "BT-38"),
    ("BR-DE-8", "The buyer city (BT-52) must be given.", "BT-52"),
    ("BR-DE-9", "The buyer post code (BT-53) must be given.", "BT-53"),
    (
        "BR-DE-15",
        "The buyer reference (BT-10), for a public buyer its Leitweg-ID, must be given.",
        "BT-10",
    ),
)


def xrechnung_failures(document: Document) -> list[Failure]:
    """XRechnung 3.0's rules (KoSIT) of the ones below EN 16931's, those kept
    here for their clearer message (the module's docstring)."""
    seller = document.seller
    if seller.contact_name or seller.contact_phone or seller.contact_email:
        contact = [
            _failure(rule, message, term)
            for rule, message, term in _XRECHNUNG_CONTACT
            if not TERM_READERS[term](document)
        ]
    else:
        contact = [
            _failure(
                "BR-DE-2",
                "The seller contact (BG-6) must be given: the billing entity's contact "
                "name (BT-41), telephone (BT-42) and email (BT-43).",
                "BT-41",
            )
        ]
    failures = contact + [
        _failure(rule, message, term)
        for rule, message, term in _XRECHNUNG_PRESENT
        if not TERM_READERS[term](document)
    ]
    if document.payment.means_code in TRANSFERS and not document.payment.iban:
        failures.append(
            _failure(
                "BR-DE-23-a",
                "A credit transfer (payment means 30 or 58) must name the account to pay "
                "to (BT-84).",
                "BT-84",
            )
        )
    return failures


def cius_failures(document: Document) -> list[Failure]:
    """The failures of the profile's own rules (none for Factur-X's EN 16931)."""
    if document.profile == PEPPOL:
        return peppol_failures(document)
    if document.profile == XRECHNUNG:
        return xrechnung_failures(document)
    return []


def merged(hand_written: list[Failure], official: list[Failure]) -> list[Failure]:
    """The hand-written failures, then the official rules' but for those of a rule
    id already reported: each rule named once, in finance's words first."""
    named = {failure.rule for failure in hand_written}
    return hand_written + [failure for failure in official if failure.rule not in named]
