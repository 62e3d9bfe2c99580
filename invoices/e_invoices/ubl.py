"""An EN 16931 document written as OASIS UBL 2.1 (an Invoice, or a CreditNote
with its amounts positive), declared as XRechnung 3.0 for German public buyers
or as Peppol BIS Billing 3.0. Elements in the order the schema wants them."""

from lxml import etree

from customers.e_invoice_details import XRECHNUNG
from invoices.e_invoices.document import Document, Party
from invoices.e_invoices.xml_text import amount_text, number_text, serialized, sub

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
ROOTS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
CUSTOMIZATIONS = {
    XRECHNUNG: "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
    "peppol": "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
}
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def _a(name: str) -> str:
    return f"{{{CAC}}}{name}"


def _b(name: str) -> str:
    return f"{{{CBC}}}{name}"


def _money(parent, name: str, value, currency: str) -> None:
    sub(parent, _b(name), amount_text(value, currency), currencyID=currency)


def _category(parent, tag: str, document: Document, *, reasons: bool = False) -> None:
    """A TaxCategory (or ClassifiedTaxCategory): code, rate (none for O), and in
    the breakdown the exemption reason."""
    vat = document.vat
    category = sub(parent, _a(tag))
    sub(category, _b("ID"), vat.category)
    if vat.category != "O":
        sub(category, _b("Percent"), number_text(vat.rate))
    if reasons and vat.reason_code:
        sub(category, _b("TaxExemptionReasonCode"), vat.reason_code)
    if reasons and vat.reason:
        sub(category, _b("TaxExemptionReason"), vat.reason)
    scheme = sub(category, _a("TaxScheme"))
    sub(scheme, _b("ID"), "VAT")


def _party(parent, tag: str, party: Party, *, seller: bool, creditor_id: str = "") -> None:
    holder = sub(parent, _a(tag))
    element = sub(holder, _a("Party"))
    if party.endpoint is not None:
        sub(element, _b("EndpointID"), party.endpoint.identifier, schemeID=party.endpoint.scheme)
    if creditor_id:
        identification = sub(element, _a("PartyIdentification"))
        sub(identification, _b("ID"), creditor_id, schemeID="SEPA")
    address = sub(element, _a("PostalAddress"))
    if party.street:
        sub(address, _b("StreetName"), party.street)
    if party.street_2:
        sub(address, _b("AdditionalStreetName"), party.street_2)
    if party.city:
        sub(address, _b("CityName"), party.city)
    if party.postal_code:
        sub(address, _b("PostalZone"), party.postal_code)
    country = sub(address, _a("Country"))
    sub(country, _b("IdentificationCode"), party.country)
    if party.vat_id:
        tax_scheme = sub(element, _a("PartyTaxScheme"))
        sub(tax_scheme, _b("CompanyID"), party.vat_id)
        scheme = sub(tax_scheme, _a("TaxScheme"))
        sub(scheme, _b("ID"), "VAT")
    legal = sub(element, _a("PartyLegalEntity"))
    sub(legal, _b("RegistrationName"), party.name)
    if party.registration_id:
        sub(legal, _b("CompanyID"), party.registration_id)
    if seller and (party.contact_name or party.contact_phone or party.contact_email):
        contact = sub(element, _a("Contact"))
        if party.contact_name:
            sub(contact, _b("Name"), party.contact_name)
        if party.contact_phone:
            sub(contact, _b("Telephone"), party.contact_phone)
        if party.contact_email:
            sub(contact, _b("ElectronicMail"), party.contact_email)


def document_ubl(document: Document) -> bytes:
    """The UBL 2.1 XML of `document` (UTF-8 bytes): an Invoice, or a CreditNote."""
    currency = document.currency
    credit = document.is_credit_note
    name = "CreditNote" if credit else "Invoice"
    root = etree.Element(
        f"{{{ROOTS[name]}}}{name}", nsmap={None: ROOTS[name], "cac": CAC, "cbc": CBC}
    )
    sub(root, _b("CustomizationID"), CUSTOMIZATIONS[document.profile])
    sub(root, _b("ProfileID"), PEPPOL_PROFILE)
    sub(root, _b("ID"), document.number)
    sub(root, _b("IssueDate"), document.issue_date.isoformat())
    if document.due_date and not credit:
        sub(root, _b("DueDate"), document.due_date.isoformat())
    sub(root, _b("CreditNoteTypeCode" if credit else "InvoiceTypeCode"), document.type_code)
    for note in document.notes:
        sub(root, _b("Note"), note)
    sub(root, _b("DocumentCurrencyCode"), currency)
    if document.buyer_reference:
        sub(root, _b("BuyerReference"), document.buyer_reference)
    if document.period is not None:
        period = sub(root, _a("InvoicePeriod"))
        sub(period, _b("StartDate"), document.period[0].isoformat())
        sub(period, _b("EndDate"), document.period[1].isoformat())
    if document.order_reference:
        order = sub(root, _a("OrderReference"))
        sub(order, _b("ID"), document.order_reference)
    if document.preceding is not None:
        billing = sub(root, _a("BillingReference"))
        reference = sub(billing, _a("InvoiceDocumentReference"))
        sub(reference, _b("ID"), document.preceding[0])
        sub(reference, _b("IssueDate"), document.preceding[1].isoformat())
    payment = document.payment
    _party(
        root,
        "AccountingSupplierParty",
        document.seller,
        seller=True,
        creditor_id=payment.creditor_id,
    )
    _party(root, "AccountingCustomerParty", document.buyer, seller=False)
    delivery = sub(root, _a("Delivery"))
    sub(delivery, _b("ActualDeliveryDate"), document.delivery_date.isoformat())

    means = sub(root, _a("PaymentMeans"))
    sub(means, _b("PaymentMeansCode"), payment.means_code)
    if document.due_date and credit:
        sub(means, _b("PaymentDueDate"), document.due_date.isoformat())
    if payment.reference:
        sub(means, _b("PaymentID"), payment.reference)
    if payment.card_digits:
        card = sub(means, _a("CardAccount"))
        sub(card, _b("PrimaryAccountNumberID"), payment.card_digits)
        # Required by the UBL schema, no business term: Peppol's syntax binding says NA.
        sub(card, _b("NetworkID"), "NA")
        if payment.card_holder:
            sub(card, _b("HolderName"), payment.card_holder)
    if payment.iban:
        account = sub(means, _a("PayeeFinancialAccount"))
        sub(account, _b("ID"), payment.iban)
        if payment.account_name:
            sub(account, _b("Name"), payment.account_name)
        if payment.bic:
            branch = sub(account, _a("FinancialInstitutionBranch"))
            sub(branch, _b("ID"), payment.bic)
    if payment.mandate_reference:
        mandate = sub(means, _a("PaymentMandate"))
        sub(mandate, _b("ID"), payment.mandate_reference)
        if payment.debtor_iban:
            debited = sub(mandate, _a("PayerFinancialAccount"))
            sub(debited, _b("ID"), payment.debtor_iban)
    if payment.terms:
        terms = sub(root, _a("PaymentTerms"))
        sub(terms, _b("Note"), payment.terms)

    for allowance in document.allowances:
        element = sub(root, _a("AllowanceCharge"))
        sub(element, _b("ChargeIndicator"), "false")
        sub(element, _b("AllowanceChargeReason"), allowance.reason)
        _money(element, "Amount", allowance.amount, currency)
        _category(element, "TaxCategory", document)

    tax_total = sub(root, _a("TaxTotal"))
    _money(tax_total, "TaxAmount", document.tax, currency)
    subtotal = sub(tax_total, _a("TaxSubtotal"))
    _money(subtotal, "TaxableAmount", document.tax_exclusive, currency)
    _money(subtotal, "TaxAmount", document.tax, currency)
    _category(subtotal, "TaxCategory", document, reasons=True)

    totals = sub(root, _a("LegalMonetaryTotal"))
    _money(totals, "LineExtensionAmount", document.line_total, currency)
    _money(totals, "TaxExclusiveAmount", document.tax_exclusive, currency)
    _money(totals, "TaxInclusiveAmount", document.tax_inclusive, currency)
    if document.allowances:
        _money(totals, "AllowanceTotalAmount", document.allowance_total, currency)
    if document.prepaid:
        _money(totals, "PrepaidAmount", document.prepaid, currency)
    _money(totals, "PayableAmount", document.payable, currency)

    for line in document.lines:
        element = sub(root, _a("CreditNoteLine" if credit else "InvoiceLine"))
        sub(element, _b("ID"), line.identifier)
        sub(
            element,
            _b("CreditedQuantity" if credit else "InvoicedQuantity"),
            number_text(line.quantity),
            unitCode=line.unit_code,
        )
        _money(element, "LineExtensionAmount", line.net_amount, currency)
        if line.period is not None:
            period = sub(element, _a("InvoicePeriod"))
            sub(period, _b("StartDate"), line.period[0].isoformat())
            sub(period, _b("EndDate"), line.period[1].isoformat())
        item = sub(element, _a("Item"))
        sub(item, _b("Name"), line.name)
        _category(item, "ClassifiedTaxCategory", document)
        price = sub(element, _a("Price"))
        sub(price, _b("PriceAmount"), number_text(line.price), currencyID=currency)
        sub(price, _b("BaseQuantity"), number_text(line.base_quantity), unitCode=line.unit_code)
    return serialized(root)
