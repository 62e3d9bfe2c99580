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

from common.e_invoice_codes import PEPPOL_EAS, peppol_scheme_id_errors
from customers.e_invoice_details import PEPPOL, XRECHNUNG
from invoices.e_invoices.document import Document, Party
from invoices.e_invoices.validation import FIELDS, TERM_READERS, Failure
from invoices.e_invoices.xml_text import xml_safe

# Payment means that pay by transfer to the seller's account (UNTDID 4461).
TRANSFERS = ("30", "58")


def _failure(rule: str, message: str, term: str) -> Failure:
    return Failure(rule, message, FIELDS.get(term, term), "", "fatal")


# Payment means that debit the buyer's account (UNTDID 4461: 49 direct debit, 59 SEPA).
DEBITS = ("49", "59")
# The Peppol rule (PEPPOL-COMMON-R0nn) that checks a scheme's ids, where one does.
COMMON_RULES = {
    "0088": "PEPPOL-COMMON-R040",
    "0192": "PEPPOL-COMMON-R041",
    "0184": "PEPPOL-COMMON-R042",
    "0208": "PEPPOL-COMMON-R043",
    "0007": "PEPPOL-COMMON-R049",
    "0151": "PEPPOL-COMMON-R050",
}
# A party's texts a document carries, and the field each is set in.
_PARTY_TEXTS = {
    "seller": {
        "name": "billing_entity.legal_name",
        "street": "billing_entity.street",
        "city": "billing_entity.city",
        "postal_code": "billing_entity.postal_code",
        "contact_name": "billing_entity.contact_name",
        "contact_phone": "billing_entity.contact_phone",
    },
    "buyer": {
        "name": "customer.name",
        "street": "customer.address.line1",
        "street_2": "customer.address.line2",
        "city": "customer.address.city",
        "postal_code": "customer.address.postal_code",
    },
}


def _party_failures(party: Party, role: str) -> list[Failure]:
    """A party's texts that its XML would carry as empty elements (PEPPOL-EN16931-R008:
    only spaces, or only characters XML cannot hold), and its endpoint's scheme and
    id as Peppol checks them (CL008, COMMON-R040...): data saved before these were
    refused on save."""
    failures = []
    for attribute, field in _PARTY_TEXTS[role].items():
        value = getattr(party, attribute)
        if value and not xml_safe(value).strip():
            failures.append(
                _failure(
                    "PEPPOL-EN16931-R008",
                    f"Document MUST not contain empty elements: the {role}'s {field} is "
                    "only spaces or control characters.",
                    field,
                )
            )
    endpoint = party.endpoint
    if endpoint is None:
        return failures
    field = "billing_entity.peppol_id" if role == "seller" else "customer.peppol_id"
    if endpoint.scheme not in PEPPOL_EAS:
        failures.append(
            _failure(
                "PEPPOL-EN16931-CL008",
                f'Electronic address identifier scheme must be from the codelist "Electronic '
                f"Address Identifier Scheme\": the {role}'s {endpoint.scheme!r} is not.",
                field,
            )
        )
    elif problems := peppol_scheme_id_errors(endpoint.scheme, endpoint.identifier):
        rule = COMMON_RULES.get(endpoint.scheme, "EINV-PEPPOL-ID")
        failures.append(
            _failure(rule, f"The {role}'s endpoint {endpoint.scheme}: {problems[0]}", field)
        )
    return failures


def peppol_failures(document: Document) -> list[Failure]:
    """Peppol BIS Billing 3.0's rules of the ones below EN 16931's."""
    failures = [
        *_party_failures(document.seller, "seller"),
        *_party_failures(document.buyer, "buyer"),
    ]
    if document.payment.means_code in DEBITS and not document.payment.mandate_reference:
        failures.append(
            _failure(
                "PEPPOL-EN16931-R061",
                "Mandate reference MUST be provided for direct debit: the customer's SEPA "
                "mandate reference (BT-89).",
                "BT-89",
            )
        )
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
