"""An EN 16931 document written as UN/CEFACT Cross Industry Invoice (CII D16B),
as Factur-X / ZUGFeRD's EN 16931 profile embeds it in a PDF/A-3. Elements in
the order the schema wants them; each carries the business term it holds."""

from lxml import etree

from invoices.e_invoices.document import Document, Party
from invoices.e_invoices.xml_text import amount_text, day_compact, number_text, serialized, sub

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NAMESPACES = {"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT}
EN16931 = "urn:cen.eu:en16931:2017"


def _r(name: str) -> str:
    return f"{{{RAM}}}{name}"


def _date(parent, tag: str, value, *, qualified: bool = False) -> None:
    holder = sub(parent, _r(tag))
    namespace = QDT if qualified else UDT
    sub(holder, f"{{{namespace}}}DateTimeString", day_compact(value), format="102")


def _party(parent, tag: str, party: Party, *, seller: bool) -> None:
    element = sub(parent, _r(tag))
    sub(element, _r("Name"), party.name)
    if party.registration_id:
        legal = sub(element, _r("SpecifiedLegalOrganization"))
        sub(legal, _r("ID"), party.registration_id)
    if seller and (party.contact_name or party.contact_phone or party.contact_email):
        contact = sub(element, _r("DefinedTradeContact"))
        if party.contact_name:
            sub(contact, _r("PersonName"), party.contact_name)
        if party.contact_phone:
            phone = sub(contact, _r("TelephoneUniversalCommunication"))
            sub(phone, _r("CompleteNumber"), party.contact_phone)
        if party.contact_email:
            email = sub(contact, _r("EmailURIUniversalCommunication"))
            sub(email, _r("URIID"), party.contact_email)
    address = sub(element, _r("PostalTradeAddress"))
    if party.postal_code:
        sub(address, _r("PostcodeCode"), party.postal_code)
    if party.street:
        sub(address, _r("LineOne"), party.street)
    if party.street_2:
        sub(address, _r("LineTwo"), party.street_2)
    if party.city:
        sub(address, _r("CityName"), party.city)
    sub(address, _r("CountryID"), party.country)
    if party.endpoint is not None:
        uri = sub(element, _r("URIUniversalCommunication"))
        sub(uri, _r("URIID"), party.endpoint.identifier, schemeID=party.endpoint.scheme)
    if party.vat_id:
        registration = sub(element, _r("SpecifiedTaxRegistration"))
        sub(registration, _r("ID"), party.vat_id, schemeID="VA")


def _category(parent, document: Document) -> None:
    """The VAT category and rate of a line or an allowance (no rate for O: BR-O-5)."""
    sub(parent, _r("TypeCode"), "VAT")
    sub(parent, _r("CategoryCode"), document.vat.category)
    if document.vat.category != "O":
        sub(parent, _r("RateApplicablePercent"), number_text(document.vat.rate))


def document_cii(document: Document) -> bytes:
    """The CII XML of `document` (UTF-8 bytes)."""
    currency = document.currency
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NAMESPACES)
    context = sub(root, f"{{{RSM}}}ExchangedDocumentContext")
    guideline = sub(context, _r("GuidelineSpecifiedDocumentContextParameter"))
    sub(guideline, _r("ID"), EN16931)

    header = sub(root, f"{{{RSM}}}ExchangedDocument")
    sub(header, _r("ID"), document.number)
    sub(header, _r("TypeCode"), document.type_code)
    _date(header, "IssueDateTime", document.issue_date)
    for note in document.notes:
        included = sub(header, _r("IncludedNote"))
        sub(included, _r("Content"), note)

    transaction = sub(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for line in document.lines:
        item = sub(transaction, _r("IncludedSupplyChainTradeLineItem"))
        line_document = sub(item, _r("AssociatedDocumentLineDocument"))
        sub(line_document, _r("LineID"), line.identifier)
        product = sub(item, _r("SpecifiedTradeProduct"))
        sub(product, _r("Name"), line.name)
        agreement = sub(item, _r("SpecifiedLineTradeAgreement"))
        price = sub(agreement, _r("NetPriceProductTradePrice"))
        sub(price, _r("ChargeAmount"), number_text(line.price))
        sub(price, _r("BasisQuantity"), number_text(line.base_quantity), unitCode=line.unit_code)
        delivery = sub(item, _r("SpecifiedLineTradeDelivery"))
        sub(delivery, _r("BilledQuantity"), number_text(line.quantity), unitCode=line.unit_code)
        settlement = sub(item, _r("SpecifiedLineTradeSettlement"))
        _category(sub(settlement, _r("ApplicableTradeTax")), document)
        if line.period is not None:
            period = sub(settlement, _r("BillingSpecifiedPeriod"))
            _date(period, "StartDateTime", line.period[0])
            _date(period, "EndDateTime", line.period[1])
        summation = sub(settlement, _r("SpecifiedTradeSettlementLineMonetarySummation"))
        sub(summation, _r("LineTotalAmount"), amount_text(line.net_amount, currency))

    agreement = sub(transaction, _r("ApplicableHeaderTradeAgreement"))
    if document.buyer_reference:
        sub(agreement, _r("BuyerReference"), document.buyer_reference)
    _party(agreement, "SellerTradeParty", document.seller, seller=True)
    _party(agreement, "BuyerTradeParty", document.buyer, seller=False)
    if document.order_reference:
        order = sub(agreement, _r("BuyerOrderReferencedDocument"))
        sub(order, _r("IssuerAssignedID"), document.order_reference)

    delivery = sub(transaction, _r("ApplicableHeaderTradeDelivery"))
    event = sub(delivery, _r("ActualDeliverySupplyChainEvent"))
    _date(event, "OccurrenceDateTime", document.delivery_date)

    settlement = sub(transaction, _r("ApplicableHeaderTradeSettlement"))
    payment = document.payment
    if payment.creditor_id:
        sub(settlement, _r("CreditorReferenceID"), payment.creditor_id)
    if payment.reference:
        sub(settlement, _r("PaymentReference"), payment.reference)
    sub(settlement, _r("InvoiceCurrencyCode"), currency)
    means = sub(settlement, _r("SpecifiedTradeSettlementPaymentMeans"))
    sub(means, _r("TypeCode"), payment.means_code)
    if payment.card_digits:
        card = sub(means, _r("ApplicableTradeSettlementFinancialCard"))
        sub(card, _r("ID"), payment.card_digits)
        if payment.card_holder:
            sub(card, _r("CardholderName"), payment.card_holder)
    if payment.debtor_iban:
        debited = sub(means, _r("PayerPartyDebtorFinancialAccount"))
        sub(debited, _r("IBANID"), payment.debtor_iban)
    if payment.iban:
        account = sub(means, _r("PayeePartyCreditorFinancialAccount"))
        sub(account, _r("IBANID"), payment.iban)
        if payment.account_name:
            sub(account, _r("AccountName"), payment.account_name)
        if payment.bic:
            institution = sub(means, _r("PayeeSpecifiedCreditorFinancialInstitution"))
            sub(institution, _r("BICID"), payment.bic)
    vat = document.vat
    breakdown = sub(settlement, _r("ApplicableTradeTax"))
    sub(breakdown, _r("CalculatedAmount"), amount_text(document.tax, currency))
    sub(breakdown, _r("TypeCode"), "VAT")
    if vat.reason:
        sub(breakdown, _r("ExemptionReason"), vat.reason)
    sub(breakdown, _r("BasisAmount"), amount_text(document.tax_exclusive, currency))
    sub(breakdown, _r("CategoryCode"), vat.category)
    if vat.reason_code:
        sub(breakdown, _r("ExemptionReasonCode"), vat.reason_code)
    if vat.category != "O":
        sub(breakdown, _r("RateApplicablePercent"), number_text(vat.rate))
    if document.period is not None:
        period = sub(settlement, _r("BillingSpecifiedPeriod"))
        _date(period, "StartDateTime", document.period[0])
        _date(period, "EndDateTime", document.period[1])
    for allowance in document.allowances:
        element = sub(settlement, _r("SpecifiedTradeAllowanceCharge"))
        indicator = sub(element, _r("ChargeIndicator"))
        sub(indicator, f"{{{UDT}}}Indicator", "false")
        sub(element, _r("ActualAmount"), amount_text(allowance.amount, currency))
        sub(element, _r("Reason"), allowance.reason)
        _category(sub(element, _r("CategoryTradeTax")), document)
    if payment.terms or document.due_date or payment.mandate_reference:
        terms = sub(settlement, _r("SpecifiedTradePaymentTerms"))
        if payment.terms:
            sub(terms, _r("Description"), payment.terms)
        if document.due_date:
            _date(terms, "DueDateDateTime", document.due_date)
        if payment.mandate_reference:
            sub(terms, _r("DirectDebitMandateID"), payment.mandate_reference)
    totals = sub(settlement, _r("SpecifiedTradeSettlementHeaderMonetarySummation"))
    sub(totals, _r("LineTotalAmount"), amount_text(document.line_total, currency))
    if document.allowances:
        sub(totals, _r("AllowanceTotalAmount"), amount_text(document.allowance_total, currency))
    sub(totals, _r("TaxBasisTotalAmount"), amount_text(document.tax_exclusive, currency))
    sub(totals, _r("TaxTotalAmount"), amount_text(document.tax, currency), currencyID=currency)
    sub(totals, _r("GrandTotalAmount"), amount_text(document.tax_inclusive, currency))
    if document.prepaid:
        sub(totals, _r("TotalPrepaidAmount"), amount_text(document.prepaid, currency))
    sub(totals, _r("DuePayableAmount"), amount_text(document.payable, currency))
    if document.preceding is not None:
        reference = sub(settlement, _r("InvoiceReferencedDocument"))
        sub(reference, _r("IssuerAssignedID"), document.preceding[0])
        _date(reference, "FormattedIssueDateTime", document.preceding[1], qualified=True)
    return serialized(root)
