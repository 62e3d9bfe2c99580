"""A property of e-invoices: whatever an invoice bills (usage priced per unit, by
package, graduated or volume tiers, fees, a proration credit, a discount, one
VAT rate among several, reverse charge or exemption) and whatever a credit note
gives back of it, and whatever its customer's credit balance paid of it, its CII
and its UBL validate against the official EN 16931 rules, say that as prepaid
and ask exactly what the invoice (or note) totals less that; written as an
XRechnung, its UBL passes KoSIT's XRechnung rules too (the pinned
rule_sets.XRECHNUNG_UBL). The amounts come from
the project's own rules: the tier walk (plans.pricing), the invoice's
one sum (invoices.totals), the tax credited (plans.taxes.tax_credit_lines)."""

from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from common.money import quantize_money
from common.vocabulary import LineKind
from invoices.e_invoices.cii import RAM, document_cii
from invoices.e_invoices.document import CREDIT_NOTE, INVOICE, Issue, build_document
from invoices.e_invoices.ubl import CAC, CBC, document_ubl
from invoices.e_invoices.validation import CII, UBL_CREDIT_NOTE, UBL_INVOICE, validation_failures
from invoices.totals import invoice_totals
from plans.pricing import PricingSpec, TierSpec, price_units
from plans.taxes import tax_credit_lines
from tests.invoices.test_e_invoice_documents import (
    BELGIAN_COMPANY,
    FRENCH_BUYER,
    FRENCH_SELLER,
    GERMAN_PUBLIC_BODY,
    GERMAN_SELLER,
)

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
PERIOD = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
SELLER = {**FRENCH_SELLER, "peppol_id": "0009:30326504500011"}
BUYERS = {
    "S": {**FRENCH_BUYER, "peppol_id": "0009:12345678200077"},
    "AE": BELGIAN_COMPANY,
    "E": {**FRENCH_BUYER, "tax_exempt": "exempt", "peppol_id": "0009:12345678200077"},
}
# As XRechnung (KoSIT's rules run after EN 16931's): the German seller to a public
# body, or reverse-charged to the Belgian company.
GERMAN_BUYERS = {
    "S": GERMAN_PUBLIC_BODY,
    "AE": {**BELGIAN_COMPANY, "leitweg_id": "04011000-12345-67"},
    "E": {**GERMAN_PUBLIC_BODY, "tax_exempt": "exempt"},
}
RATES = [D(20), D(19), D(21), D("5.5"), D(10), D(7)]

prices = st.decimals(min_value=D("0.000001"), max_value=D(50), places=6)
units = st.integers(min_value=0, max_value=5_000_000).map(D)


@st.composite
def pricings(draw):
    scheme = draw(st.sampled_from(["per_unit", "package", "graduated", "volume"]))
    if scheme == "per_unit":
        return PricingSpec(
            scheme, unit_price=draw(prices), per=draw(st.sampled_from([D(1), D(1000)]))
        )
    if scheme == "package":
        return PricingSpec(
            scheme, package_size=D(draw(st.integers(1, 10_000))), package_price=draw(prices)
        )
    bounds = sorted(set(draw(st.lists(st.integers(1, 2_000_000), min_size=1, max_size=3))))
    tiers = tuple(
        TierSpec(
            up_to=D(bound) if bound is not None else None,
            unit_price=draw(prices),
            flat_fee=draw(st.sampled_from([D(0), D(0), D("9.99")])),
        )
        for bound in [*bounds, None]
    )
    return PricingSpec(scheme, tiers=tiers)


@st.composite
def invoices(draw):
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        pricing = draw(pricings())
        quantity = draw(units)
        amount = quantize_money(price_units(quantity, pricing), "EUR")
        unit_price = pricing.unit_price if pricing.scheme == "per_unit" else None
        per = pricing.per if pricing.scheme == "per_unit" else D(1)
        lines.append((LineKind.USAGE, "Tokens", quantity, unit_price, per, amount))
    fee = draw(st.decimals(min_value=D(0), max_value=D(500), places=2))
    lines.append((LineKind.BASE_FEE, "Plan fee", D(1), fee, D(1), fee))
    charged = sum(amount for *_, amount in lines)
    if draw(st.booleans()) and fee > 0:
        credit = -quantize_money(fee * draw(st.sampled_from([D("0.3"), D("0.5")])), "EUR")
        lines.append((LineKind.PRORATION_CREDIT, "Unused time", D(1), None, D(1), credit))
        charged += credit
    if draw(st.booleans()) and charged > 0:
        off = quantize_money(charged * draw(st.sampled_from([D("0.1"), D("0.25")])), "EUR")
        lines.append((LineKind.DISCOUNT, "Coupon WELCOME", D(1), None, D(1), -off))
    category = draw(st.sampled_from(["S", "S", "AE", "E"]))
    rate = draw(st.sampled_from(RATES)) if category == "S" else None
    return lines, category, rate


def as_document(
    lines, category, rate, *, type_code=INVOICE, profile, totals, preceding=None, prepaid=D(0)
):
    return build_document(
        profile=profile,
        type_code=type_code,
        issue=Issue("X-2026-000001", NOW, NOW, prepaid),
        currency="EUR",
        seller=GERMAN_SELLER if profile == "xrechnung" else SELLER,
        buyer=(GERMAN_BUYERS if profile == "xrechnung" else BUYERS)[category],
        lines=[
            (position, kind, text, "", quantity, price, per, amount, *PERIOD)
            for position, (kind, text, quantity, price, per, amount) in enumerate(lines)
        ],
        tax_lines=[("VAT", rate, "S", "")] if rate is not None else [],
        units={},
        fee_unit="MON",
        taxable=totals.taxable,
        tax=totals.tax,
        total=totals.total,
        period=PERIOD,
        preceding=preceding,
        terms="30 days",
    )


def payable(xml: bytes, kind: str) -> D:
    tree = etree.fromstring(xml)
    if kind == CII:
        return D(tree.findtext(f".//{{{RAM}}}DuePayableAmount"))
    return D(tree.findtext(f".//{{{CBC}}}PayableAmount"))


def prepaid_amount(xml: bytes, kind: str) -> D:
    """BT-113, written only when something was prepaid."""
    tree = etree.fromstring(xml)
    found = tree.findtext(
        f".//{{{RAM}}}TotalPrepaidAmount" if kind == CII else f".//{{{CBC}}}PrepaidAmount"
    )
    return D(0) if found is None else D(found)


def ubl_lines(xml: bytes) -> list[tuple[D, D, D, D]]:
    """Each UBL line's quantity, price, base quantity and net amount."""
    found = []
    for line in etree.fromstring(xml).iterfind(f"{{{CAC}}}*"):
        if not line.tag.endswith("Line"):
            continue
        quantity = line.find(f"{{{CBC}}}InvoicedQuantity")
        if quantity is None:
            quantity = line.find(f"{{{CBC}}}CreditedQuantity")
        found.append(
            (
                D(quantity.text),
                D(line.findtext(f"{{{CAC}}}Price/{{{CBC}}}PriceAmount")),
                D(line.findtext(f"{{{CAC}}}Price/{{{CBC}}}BaseQuantity")),
                D(line.findtext(f"{{{CBC}}}LineExtensionAmount")),
            )
        )
    return found


def assert_valid_and_paying(
    document, total: D, kinds: tuple[str, str], prepaid: D = D(0), xrechnung=None
) -> None:
    for xml, kind in ((document_cii(document), kinds[0]), (document_ubl(document), kinds[1])):
        assert validation_failures(xml, kind, document) == []
        assert prepaid_amount(xml, kind) == prepaid
        assert payable(xml, kind) == total - prepaid
    if xrechnung is not None:
        # The same as an XRechnung: CEN's rules, then KoSIT's (rule_sets.XRECHNUNG_UBL).
        xml = document_ubl(xrechnung)
        assert validation_failures(xml, kinds[1], xrechnung) == []
        assert payable(xml, kinds[1]) == total - prepaid
    # Each line's quantity x price / base quantity is its amount exactly (Peppol's
    # PEPPOL-EN16931-R120, which the EN 16931 rules alone do not check), its
    # price never negative (BR-27).
    for quantity, price, base, amount in ubl_lines(document_ubl(document)):
        assert price >= 0
        assert quantity * price / base == amount


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices(), st.data())
def test_every_invoice_and_credit_note_validates_and_pays_its_total(invoice, data):
    lines, category, rate = invoice
    rates = [SimpleNamespace(percentage=rate)] if rate is not None else []
    totals = invoice_totals(
        [SimpleNamespace(kind=kind, amount=amount) for kind, *_, amount in lines],
        rates=rates,
        currency="EUR",
    )
    summed = SimpleNamespace(
        taxable=totals.subtotal - totals.discount, tax=totals.tax, total=totals.total
    )
    # What the credit balance paid of it: nothing, part or all.
    share = data.draw(st.sampled_from([D(0), D("0.5"), D(1)])) if totals.total > 0 else D(0)
    prepaid = quantize_money(totals.total * share, "EUR")
    document = as_document(lines, category, rate, profile="peppol", totals=summed, prepaid=prepaid)
    xrechnung = as_document(
        lines, category, rate, profile="xrechnung", totals=summed, prepaid=prepaid
    )
    assert_valid_and_paying(document, totals.total, (CII, UBL_INVOICE), prepaid, xrechnung)

    # A credit note for part of each positive line (as invoices.credit_notes lets one).
    credited = [
        (LineKind.USAGE, text, D(1), None, D(1), quantize_money(amount * share, "EUR"))
        for (kind, text, *_, amount), share in zip(
            lines,
            data.draw(
                st.lists(
                    st.sampled_from([D(0), D("0.5"), D(1)]),
                    min_size=len(lines),
                    max_size=len(lines),
                )
            ),
            strict=True,
        )
        if kind != LineKind.DISCOUNT and amount > 0 and share > 0
    ]
    subtotal = sum((amount for *_, amount in credited), D(0))
    taxable = totals.subtotal - totals.discount
    if not credited or subtotal > taxable:
        return
    charged = [
        SimpleNamespace(code="vat", name="VAT", percentage=line.rate.percentage, amount=line.amount)
        for line in totals.taxes
    ]
    taxes = tax_credit_lines(
        charged=charged,
        already={},
        taxable=taxable,
        credited_before=D(0),
        credited_after=subtotal,
        currency="EUR",
    )
    tax = sum((line.amount for line in taxes), D(0))
    notes = [
        as_document(
            credited,
            category,
            rate,
            type_code=CREDIT_NOTE,
            profile=profile,
            totals=SimpleNamespace(taxable=subtotal, tax=tax, total=subtotal + tax),
            preceding=("X-2026-000001", NOW),
        )
        for profile in ("peppol", "xrechnung")
    ]
    assert_valid_and_paying(notes[0], subtotal + tax, (CII, UBL_CREDIT_NOTE), xrechnung=notes[1])
