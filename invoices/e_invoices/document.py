"""An invoice or a credit note as the EN 16931 semantic model: the one mapping of
what a document bills onto the standard's business terms (BT-n), which the CII
and UBL writers only spell out. Nothing here adds or rounds money on its own:
each amount is one the document stored (its lines, subtotal, discount, tax,
total, credits applied), so an e-invoice pays exactly what its invoice asks.

- Lines: every line but the discount lines, with its quantity, unit (the
  meter's UN/ECE code, the plan version's for fees, C62 otherwise) and a price
  that gives back its amount exactly: the unit price per `per` units when that
  product is the amount, else the amount for the whole quantity (BT-149).
  A negative line (a proration credit) has a negative quantity and a positive
  price, as BR-27 wants.
- Discount lines become document allowances (BG-20), positive.
- VAT: one category and rate per document. Our tax is charged per rate on the
  whole taxable amount, so an invoice taxed at two rates at once (stacked sales
  taxes) has no EN 16931 form and is refused with rule EINV-VAT-STACKED. A
  document without tax says why: the customer's reverse charge (AE) or
  exemption (E), an export outside the EU (G), a seller outside VAT (O).
- Totals: line total BT-106 = subtotal, allowances BT-107 = discount, tax BT-110,
  total BT-112, prepaid BT-113 = the credit balance the invoice spent, payable
  BT-115 = total less that."""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from common.customer_text import CustomerText, last_day, local_day
from common.vocabulary import LineKind
from customers.e_invoice_details import E_INVOICE_FORMATS, XRECHNUNG
from invoices.e_invoices.validation import Failure
from plans.taxes import EU_COUNTRIES

ZERO = Decimal(0)
ONE = Decimal(1)

# The document type codes (UNTDID 1001) and profiles.
INVOICE = "380"
CREDIT_NOTE = "381"
# The formats a customer chooses (Customer.e_invoice_format).
FORMATS = tuple(dict(E_INVOICE_FORMATS))

# The exemption reason code (VATEX) a category is given when its rate names none.
DEFAULT_EXEMPTION_CODES = {
    "AE": "VATEX-EU-AE",
    "K": "VATEX-EU-IC",
    "G": "VATEX-EU-G",
    "O": "VATEX-EU-O",
}
DEFAULT_EXEMPTION_REASONS = {
    "AE": "Reverse charge",
    "E": "Exempt from VAT",
    "K": "Intra-community supply",
    "G": "Export outside the EU",
    "O": "Not subject to VAT",
}
# The categories whose tax breakdown says why no VAT is charged (BR-AE-10, BR-E-10, ...).
WITH_REASON = frozenset(DEFAULT_EXEMPTION_REASONS)

# Payment means (UNTDID 4461): SEPA credit transfer, credit transfer, card, SEPA direct debit.
SEPA_CREDIT_TRANSFER = "58"
CREDIT_TRANSFER = "30"
CARD = "48"
SEPA_DIRECT_DEBIT = "59"


class EInvoiceRefused(Exception):
    """A document that cannot be written as EN 16931 at all (before any schema or
    Schematron check): `failures` (validation.Failure) say why."""

    def __init__(self, failures: list):
        super().__init__("; ".join(f"{f.rule}: {f.message}" for f in failures))
        self.failures = failures


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # EAS code, e.g. 0208, or EM for an email address
    identifier: str


@dataclass(frozen=True)
class Party:
    name: str  # BT-27 / BT-44
    street: str  # BT-35 / BT-50
    street_2: str  # BT-36 / BT-51
    city: str  # BT-37 / BT-52
    postal_code: str  # BT-38 / BT-53
    country: str  # BT-40 / BT-55
    vat_id: str  # BT-31 / BT-48
    registration_id: str  # BT-30 / BT-47
    endpoint: Endpoint | None  # BT-34 / BT-49
    contact_name: str = ""  # BT-41 / BT-56
    contact_phone: str = ""  # BT-42 / BT-57
    contact_email: str = ""  # BT-43 / BT-58


@dataclass(frozen=True)
class Vat:
    category: str  # BT-151 / BT-118
    rate: Decimal  # BT-152 / BT-119
    reason: str = ""  # BT-120
    reason_code: str = ""  # BT-121


@dataclass(frozen=True)
class Line:
    identifier: str  # BT-126
    name: str  # BT-153
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130
    price: Decimal  # BT-146, never negative
    base_quantity: Decimal  # BT-149
    net_amount: Decimal  # BT-131
    period: tuple[date, date] | None  # BG-26


@dataclass(frozen=True)
class Allowance:
    amount: Decimal  # BT-92, positive
    reason: str  # BT-97


@dataclass(frozen=True)
class Payment:
    means_code: str  # BT-81
    reference: str  # BT-83
    iban: str  # BT-84
    bic: str  # BT-86
    account_name: str  # BT-85
    creditor_id: str  # BT-90
    mandate_reference: str  # BT-89
    terms: str  # BT-20
    debtor_iban: str = ""  # BT-91
    card_digits: str = ""  # BT-87
    card_holder: str = ""  # BT-88


@dataclass(frozen=True)
class Document:
    profile: str  # facturx, xrechnung or peppol
    type_code: str  # BT-3
    number: str  # BT-1
    issue_date: date  # BT-2
    due_date: date | None  # BT-9
    currency: str  # BT-5
    buyer_reference: str  # BT-10
    order_reference: str  # BT-13
    preceding: tuple[str, date] | None  # BG-3: the invoice a credit note credits
    period: tuple[date, date] | None  # BG-14
    seller: Party
    buyer: Party
    payment: Payment
    vat: Vat
    lines: list[Line]
    allowances: list[Allowance]
    line_total: Decimal  # BT-106
    allowance_total: Decimal  # BT-107
    tax_exclusive: Decimal  # BT-109 = the VAT group's taxable amount BT-116
    tax: Decimal  # BT-110 = BT-117
    tax_inclusive: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    payable: Decimal  # BT-115
    notes: list[str] = field(default_factory=list)  # BT-22

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE

    @property
    def delivery_date(self) -> date:
        """BT-72: when the service was delivered: the last day of the period it
        bills, else the day it is issued."""
        return self.period[1] if self.period is not None else self.issue_date


def endpoint_of(value: str, *, email: str = "", email_fallback: bool = False) -> Endpoint | None:
    """A Peppol id `scheme:id` as an endpoint; else, where the profile takes one
    (XRechnung), the email address (scheme EM); else None."""
    if value and ":" in value:
        scheme, identifier = value.split(":", 1)
        return Endpoint(scheme.strip(), identifier.strip())
    if email_fallback and email:
        return Endpoint("EM", email)
    return None


def seller_party(seller: dict, *, profile: str) -> Party:
    """The seller as an invoice's snapshot of its billing entity holds it
    (invoices.sellers.seller_snapshot)."""
    return Party(
        name=seller.get("name") or "",
        street=seller.get("street") or "",
        street_2="",
        city=seller.get("city") or "",
        postal_code=seller.get("postal_code") or "",
        country=(seller.get("country") or "").upper(),
        vat_id=seller.get("tax_id") or "",
        registration_id=seller.get("registration_id") or "",
        endpoint=endpoint_of(
            seller.get("peppol_id") or "",
            email=seller.get("email") or "",
            email_fallback=profile == XRECHNUNG,
        ),
        contact_name=seller.get("contact_name") or "",
        contact_phone=seller.get("contact_phone") or "",
        contact_email=seller.get("email") or "",
    )


# The Peppol scheme of a Leitweg-ID (EAS 0204): how a German public buyer is
# addressed on Peppol, 0204:<Leitweg-ID>.
LEITWEG_SCHEME = "0204"


def leitweg_address(buyer: dict, *, profile: str) -> str:
    """An XRechnung buyer's Peppol address from its Leitweg-ID ('' without one,
    or in another profile): its BT-49 when it has no Peppol id of its own, so an
    access point can route it (an e-mail address it cannot)."""
    leitweg = (buyer.get("leitweg_id") or "").strip()
    return f"{LEITWEG_SCHEME}:{leitweg}" if profile == XRECHNUNG and leitweg else ""


def buyer_party(buyer: dict, *, profile: str) -> Party:
    """The buyer as the invoice's customer snapshot holds it."""
    address = buyer.get("address") or {}
    return Party(
        name=buyer.get("name") or "",
        street=address.get("line1") or "",
        street_2=address.get("line2") or "",
        city=address.get("city") or "",
        postal_code=address.get("postal_code") or "",
        country=(address.get("country") or "").upper(),
        vat_id=buyer.get("tax_id") or "",
        registration_id="",
        endpoint=endpoint_of(
            buyer.get("peppol_id") or leitweg_address(buyer, profile=profile),
            email=buyer.get("email") or "",
            email_fallback=profile == XRECHNUNG,
        ),
        contact_email=buyer.get("email") or "",
    )


def document_vat(
    tax_lines: list[tuple[str, Decimal, str, str]], *, buyer: dict, seller: dict
) -> Vat:
    """The document's one VAT category and rate. `tax_lines`: (name, percentage,
    category, exemption reason) of each rate it charged. Raises EInvoiceRefused
    for stacked rates, or no tax and no reason for it."""
    if len(tax_lines) > 1:
        names = ", ".join(f"{line[0]} {line[1].normalize():f} %" for line in tax_lines)
        raise EInvoiceRefused(
            [
                Failure(
                    "EINV-VAT-STACKED",
                    f"An e-invoice charges one VAT rate per line; this document stacks "
                    f"{len(tax_lines)} rates on the same amount ({names}). Give the "
                    "customer a single VAT rate.",
                    "customer.tax_rates",
                )
            ]
        )
    if tax_lines:
        _name, percentage, category, reason = tax_lines[0]
        category = category or "S"
        if category in WITH_REASON:
            return Vat(
                category,
                percentage,
                reason or DEFAULT_EXEMPTION_REASONS[category],
                "" if reason and category == "E" else DEFAULT_EXEMPTION_CODES.get(category, ""),
            )
        return Vat(category, percentage)
    exempt = buyer.get("tax_exempt") or "none"
    if exempt == "reverse_charge":
        return Vat("AE", ZERO, DEFAULT_EXEMPTION_REASONS["AE"], DEFAULT_EXEMPTION_CODES["AE"])
    if exempt == "exempt":
        return Vat("E", ZERO, DEFAULT_EXEMPTION_REASONS["E"])
    seller_country = (seller.get("country") or "").upper()
    buyer_country = ((buyer.get("address") or {}).get("country") or "").upper()
    if seller_country in EU_COUNTRIES and buyer_country and buyer_country not in EU_COUNTRIES:
        return Vat("G", ZERO, DEFAULT_EXEMPTION_REASONS["G"], DEFAULT_EXEMPTION_CODES["G"])
    if not seller.get("tax_id"):
        return Vat("O", ZERO, DEFAULT_EXEMPTION_REASONS["O"], DEFAULT_EXEMPTION_CODES["O"])
    raise EInvoiceRefused(
        [
            Failure(
                "EINV-VAT-CATEGORY",
                "The document charges no VAT and gives no reason: give the customer a VAT "
                "rate, or mark it exempt or reverse-charged.",
                "customer.tax_rates",
            )
        ]
    )


def priced(quantity: Decimal, unit_price: Decimal | None, per: Decimal, amount: Decimal):
    """(quantity, price, base quantity) that give back `amount` exactly: the unit
    price per `per` units when quantity x price / per is the amount; else the
    amount for the whole quantity; a line without quantity is one unit. The
    price is never negative: a negative amount takes a negative quantity."""
    sign = -1 if amount < 0 else 1
    if quantity == 0:
        return Decimal(sign), abs(amount), ONE
    if (
        unit_price is not None
        and unit_price >= 0
        and per > 0
        and quantity * unit_price / per == amount
    ):
        return quantity, unit_price, per
    return abs(quantity) * sign, abs(amount), abs(quantity)


def period_days(
    start: datetime | None,
    end: datetime | None,
    text: CustomerText,
    anchor: datetime | None = None,
):
    """A [start, end) period as the first and last days it covers in the
    customer's zone (EN 16931's end date is inclusive: the last day, never the
    day after), read as the customer's text reads them (customer_text.last_day,
    with the schedule's `anchor`: the PDF's days)."""
    if start is None or end is None:
        return None
    return local_day(start, text.zone), last_day(start, end, text.zone, anchor)


def invoice_period(period, lines: list, text: CustomerText, anchor: datetime | None):
    """The invoice period (BG-14): the document's period as its PDF says it,
    widened to hold every line's (PEPPOL-EN16931-R110/R111: no line period lies
    outside it, whatever day a line cut during a day ends on); None without one."""
    days = [period_days(*period, text, anchor)] if period else []
    days += [line.period for line in lines if line.period]
    if not days:
        return None
    return min(first for first, _last in days), max(last for _first, last in days)


@dataclass(frozen=True)
class Issue:
    """What the document is issued as: its number, day, due day and what the
    customer's credit balance paid of it (known only as it is finalized; a check
    before numbering uses a provisional number and the day of the check)."""

    number: str
    issued_at: datetime
    due_at: datetime | None
    prepaid: Decimal


def payment_of(seller: dict, buyer: dict, *, currency: str, reference: str, terms: str) -> Payment:
    """How the customer pays (the seller's payment means, BG-16)."""
    means = seller.get("payment_means") or "credit_transfer"
    bank = seller.get("bank") or {}
    iban = (bank.get("iban") or "").replace(" ", "")
    if means == "card":
        code = CARD
    elif means == "direct_debit":
        code = SEPA_DIRECT_DEBIT
    else:
        code = SEPA_CREDIT_TRANSFER if currency == "EUR" and iban else CREDIT_TRANSFER
    return Payment(
        means_code=code,
        reference=reference,
        iban=iban if code in (SEPA_CREDIT_TRANSFER, CREDIT_TRANSFER) else "",
        bic=(bank.get("bic") or "") if code in (SEPA_CREDIT_TRANSFER, CREDIT_TRANSFER) else "",
        account_name=seller.get("name") or "",
        creditor_id=seller.get("sepa_creditor_id") or "" if code == SEPA_DIRECT_DEBIT else "",
        mandate_reference=(
            buyer.get("sepa_mandate_reference") or "" if code == SEPA_DIRECT_DEBIT else ""
        ),
        terms=terms,
        debtor_iban=(
            (buyer.get("debtor_iban") or "").replace(" ", "") if code == SEPA_DIRECT_DEBIT else ""
        ),
        card_digits=buyer.get("card_last_digits") or "" if code == CARD else "",
        card_holder=buyer.get("card_holder_name") or "" if code == CARD else "",
    )


def build_document(
    *,
    profile: str,
    type_code: str,
    issue: Issue,
    currency: str,
    seller: dict,
    buyer: dict,
    lines: list,
    tax_lines: list[tuple[str, Decimal, str, str]],
    units: dict[str, str],
    fee_unit: str,
    taxable: Decimal,
    tax: Decimal,
    total: Decimal,
    period: tuple[datetime, datetime] | None,
    preceding: tuple[str, datetime] | None = None,
    terms: str = "",
    anchor: datetime | None = None,
) -> Document:
    """The EN 16931 document of an invoice's or a credit note's stored amounts.
    `lines`: (position, kind, description, meter, quantity, unit price, per,
    amount, period start, period end) of each line, in order; `taxable`: what
    the document stored as taxed (an invoice's subtotal less its discount),
    which its lines less its allowances must make; `anchor`: a boundary of the
    schedule its periods are read with (Invoice.period_anchor), as its PDF reads
    them."""
    text = CustomerText.of_snapshot(buyer, currency)
    vat = document_vat(tax_lines, buyer=buyer, seller=seller)
    doc_lines, allowances = [], []
    for position, kind, description, meter, quantity, unit_price, per, amount, start, end in lines:
        if kind == LineKind.DISCOUNT:
            allowances.append(Allowance(-amount, description))
            continue
        quantity, price, base = priced(quantity, unit_price, per or ONE, amount)
        unit = units.get(meter) if meter else None
        if unit is None:
            unit = fee_unit if kind in (LineKind.BASE_FEE, LineKind.SEATS) else "C62"
        doc_lines.append(
            Line(
                identifier=str(position + 1),
                name=description,
                quantity=quantity,
                unit_code=unit,
                price=price,
                base_quantity=base,
                net_amount=amount,
                period=period_days(start, end, text, anchor),
            )
        )
    line_total = sum((line.net_amount for line in doc_lines), ZERO)
    allowance_total = sum((allowance.amount for allowance in allowances), ZERO)
    if line_total - allowance_total != taxable:
        raise EInvoiceRefused(
            [
                Failure(
                    "EINV-TOTALS",
                    f"The lines ({line_total}) less allowances ({allowance_total}) are not "
                    f"the document's taxable amount ({taxable}).",
                    "lines",
                )
            ]
        )
    return Document(
        profile=profile,
        type_code=type_code,
        number=issue.number,
        issue_date=local_day(issue.issued_at, text.zone),
        due_date=local_day(issue.due_at, text.zone) if issue.due_at else None,
        currency=currency,
        buyer_reference=(
            buyer.get("leitweg_id")
            or buyer.get("buyer_reference")
            or ("" if profile == XRECHNUNG else buyer.get("external_id") or "")
        ),
        order_reference=buyer.get("order_reference") or "",
        preceding=(preceding[0], local_day(preceding[1], text.zone)) if preceding else None,
        period=invoice_period(period, doc_lines, text, anchor),
        seller=seller_party(seller, profile=profile),
        buyer=buyer_party(buyer, profile=profile),
        payment=payment_of(seller, buyer, currency=currency, reference=issue.number, terms=terms),
        vat=vat,
        lines=doc_lines,
        allowances=allowances,
        line_total=line_total,
        allowance_total=allowance_total,
        tax_exclusive=taxable,
        tax=tax,
        tax_inclusive=total,
        prepaid=issue.prepaid,
        payable=total - issue.prepaid,
    )
