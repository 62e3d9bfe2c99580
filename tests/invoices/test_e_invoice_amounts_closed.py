"""The e-invoice's amounts, through the close, in each format (Factur-X, XRechnung,
Peppol): November's invoice of a customer with a 10 % coupon and a credit balance
of 30.00, priced below a cent, validates against the EN 16931 rules and says
exactly what the invoice says (issue 91):

- 12,345 tokens at 0.004 (a price below a cent, written as it is): 49.38;
  10.125 GPU hours at 0.50 (5.0625, billed 5.06: the line's amount for its whole
  quantity, the quantity written as it is); subtotal 54.44;
- taxable (BT-109) = subtotal less the discount: 54.44 - 5.44 = 49.00;
- VAT 20 %: 9.80; total 58.80;
- prepaid (BT-113) = the credit balance the invoice spent: 30.00 (October's
  10,000 tokens, 40.00 + 8.00 VAT, paid, then credited 25.00 + 5.00 VAT);
  payable (BT-115) = 58.80 - 30.00 = 28.80;
- the period is November, its end day the 30th (EN 16931's end day is
  inclusive); the plan has no fee billed in advance, so the invoice's lines
  bill exactly its period.

The PDF shows the same credits applied and amount due."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from django.core.management import call_command
from lxml import etree
from pypdf import PdfReader

from billing.subscriptions.discounts import discount_redeem
from billing.usage.ingestion import events_ingest
from common.vocabulary import CouponDuration
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from invoices.credit_balance import credit_balance
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.e_invoices.cii import RAM
from invoices.e_invoices.ubl import CAC, CBC
from invoices.e_invoices.validation import (
    CII,
    UBL_INVOICE,
    schematron_failures,
    validation_failures,
)
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from invoices.settlement import invoice_mark_paid
from plans.coupons import coupon_create
from plans.models import Meter
from plans.services import meter_create
from plans.tax_rates import tax_rate_create
from plans.validation import ChargeSpec
from tests.factories import overage, per_unit, published_version, subscribe

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1_0600 = datetime(2026, 11, 1, 6, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 12, tzinfo=UTC)
DEC_1_0600 = datetime(2026, 12, 1, 6, tzinfo=UTC)

# Each format's buyer (and the seller that issues to it).
BUYERS = {
    "facturx": {
        "seller": "exemple_sas",
        "address": {"line1": "2 av. Foch", "postal_code": "69006", "city": "Lyon", "country": "FR"},
        "tax_id": "FR83404833048",
        "tax_rates": ["fr_vat"],
    },
    "peppol": {
        "seller": "exemple_sas",
        "address": {"line1": "2 av. Foch", "postal_code": "69006", "city": "Lyon", "country": "FR"},
        "tax_id": "FR83404833048",
        "tax_rates": ["fr_vat"],
        "peppol_id": "0009:40483304800014",
    },
    "xrechnung": {
        "seller": "beispiel_gmbh",
        "address": {"line1": "Amtsweg 2", "postal_code": "53113", "city": "Bonn", "country": "DE"},
        "tax_rates": ["de_vat_20"],
        "email": "eingang@bundesamt.example",
        "leitweg_id": "04011000-12345-67",
    },
}


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0


def sellers() -> None:
    common = {"functional_currency": "EUR", "timezone": "UTC", "e_invoicing": True}
    billing_entity_save(
        entity=BillingEntity(
            code="exemple_sas",
            legal_name="Exemple SAS",
            address_lines="1 rue de la Paix\n75002 Paris",
            street="1 rue de la Paix",
            postal_code="75002",
            city="Paris",
            country="FR",
            tax_id="FR40303265045",
            registration_id="303265045",
            peppol_id="0009:30326504500011",
            email="factures@exemple.fr",
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            invoice_prefix="FR",
            credit_note_prefix="AV",
            **common,
        )
    )
    billing_entity_save(
        entity=BillingEntity(
            code="beispiel_gmbh",
            legal_name="Beispiel GmbH",
            address_lines="Hauptstr. 1\n10115 Berlin",
            street="Hauptstr. 1",
            postal_code="10115",
            city="Berlin",
            country="DE",
            tax_id="DE811907980",
            email="rechnung@beispiel.de",
            contact_name="Anna Muster",
            contact_phone="+49 30 123456",
            iban="DE89370400440532013000",
            bic="COBADEFFXXX",
            invoice_prefix="RE",
            credit_note_prefix="GS",
            **common,
        )
    )


def buyer(profile: str):
    details = dict(BUYERS[profile])
    seller = details.pop("seller")
    return customer_create(
        external_id="kunde",
        name="Client & Fils",
        currency="EUR",
        timezone_name="UTC",
        billing_entity=seller,
        e_invoice_format=profile,
        **details,
    )


def plan():
    """studio (EUR, no fee): tokens at 0.004 each, GPU hours at 0.50."""
    meter_create(
        code="tokens",
        name="Tokens",
        event_name="tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
    )
    meter_create(
        code="gpu_hours",
        name="GPU hours",
        event_name="gpu",
        aggregation=Meter.SUM,
        value_property="hours",
    )
    return published_version(
        "studio",
        currency="EUR",
        base_fee=D(0),
        charges=[
            overage("tokens", 0, "0.004"),
            ChargeSpec("gpu_hours", "overage", D(0), pricing=per_unit("0.50")),
        ],
    )


@pytest.fixture(params=["facturx", "xrechnung", "peppol"])
def november(request) -> Invoice:
    """November's invoice, finalized by December's close: October's paid, then
    credited 25.00 (+ 5.00 VAT) into the credit balance; a 10 % coupon redeemed
    for November; its tokens and GPU hours."""
    profile = request.param
    sellers()
    tax_rate_create(code="fr_vat", name="TVA", percentage=D(20), country="FR")
    tax_rate_create(code="de_vat_20", name="USt", percentage=D(20), country="DE")
    customer = buyer(profile)
    subscription = subscribe(customer, plan(), start=OCT_1)
    use("october", OCT_20, tokens=10_000)
    with time_machine.travel(NOV_1_0600, tick=False):
        call_command("close_periods")
    october = Invoice.objects.get(
        subscription=subscription, reason=Invoice.PERIOD, period_start=OCT_1
    )
    assert (october.status, october.total) == (Invoice.FINALIZED, D("48.00"))
    invoice_mark_paid(invoice=october, reference="wire", now=NOV_2)
    with time_machine.travel(NOV_2, tick=False):
        credit_note_issue(
            invoice=october,
            lines=[CreditLineInput(invoice_line=october.lines.get().pk, amount=D("25.00"))],
            reason="other",
            now=NOV_2,
        )
    assert credit_balance(customer) == D("30.00")
    coupon = coupon_create(
        code="WELCOME10", name="Welcome", percent_off=D(10), duration=CouponDuration.ONCE
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_2)
    use("november", NOV_20, tokens=12_345, hours="10.125")
    with time_machine.travel(DEC_1_0600, tick=False):
        call_command("close_periods")
    invoice = Invoice.objects.get(
        subscription=subscription, reason=Invoice.PERIOD, period_start=NOV_1
    )
    assert (invoice.status, invoice.e_invoice_format) == (Invoice.FINALIZED, profile)
    return invoice


def use(prefix: str, at: datetime, **used) -> None:
    names = {"tokens": "tokens", "hours": "gpu"}
    events_ingest(
        events=[
            {
                "id": f"{prefix}-{name}",
                "customer": "kunde",
                "event_name": names[name],
                "timestamp": at.isoformat(),
                "properties": {name: value},
            }
            for name, value in used.items()
        ],
        now=at,
    )


def texts(tree, path: str) -> list[str]:
    return [element.text for element in tree.iterfind(path, {"cac": CAC, "cbc": CBC, "ram": RAM})]


def test_the_invoice_bills_the_discounted_prepaid_sub_cent_figures(november):
    assert (november.subtotal, november.discount, november.tax, november.total) == (
        D("54.44"),
        D("5.44"),
        D("9.80"),
        D("58.80"),
    )
    assert (november.credits_applied, november.amount_due) == (D("30.00"), D("28.80"))
    assert credit_balance(november.customer) == 0
    pdf = "\n".join(
        page.extract_text() for page in PdfReader(BytesIO(render_invoice_pdf(november))).pages
    )
    for printed in (
        "Tokens over 0 included 12,345 0.004 49.38",
        "GPU hours over 0 included 10.125 0.50 5.06",
        "Subtotal 54.44",
        "Discount -5.44",
        "20% on 49.00 9.80",
        "Total EUR 58.80",
        "Credits applied -30.00",
        "Amount due EUR 28.80",
    ):
        assert printed in pdf


def test_the_e_invoice_validates_against_en16931(november):
    xml = november.e_invoice_xml.encode()
    kind = CII if november.e_invoice_format == "facturx" else UBL_INVOICE
    assert validation_failures(xml, kind) == []
    assert schematron_failures(xml, kind) == []


def test_the_e_invoice_states_taxable_prepaid_and_payable(november):
    tree = etree.fromstring(november.e_invoice_xml.encode())
    if november.e_invoice_format == "facturx":
        total = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
        found = {
            name: texts(tree, total + name)
            for name in (
                "LineTotalAmount",
                "AllowanceTotalAmount",
                "TaxBasisTotalAmount",
                "GrandTotalAmount",
                "TotalPrepaidAmount",
                "DuePayableAmount",
            )
        }
        found["BasisAmount"] = texts(tree, ".//ram:ApplicableTradeTax/ram:BasisAmount")
    else:
        total = "cac:LegalMonetaryTotal/cbc:"
        found = {
            name: texts(tree, total + name)
            for name in (
                "LineExtensionAmount",
                "AllowanceTotalAmount",
                "TaxExclusiveAmount",
                "TaxInclusiveAmount",
                "PrepaidAmount",
                "PayableAmount",
            )
        }
        found["BasisAmount"] = texts(tree, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount")
    assert list(found.values()) == [
        ["54.44"],  # the lines
        ["5.44"],  # the discount, as an allowance
        ["49.00"],  # taxable: the subtotal less the discount
        ["58.80"],  # the total
        ["30.00"],  # prepaid: what the credit balance paid
        ["28.80"],  # payable: the total less that
        ["49.00"],  # the VAT breakdown's taxable amount
    ]


def test_the_e_invoice_writes_prices_and_quantities_exactly(november):
    tree = etree.fromstring(november.e_invoice_xml.encode())
    if november.e_invoice_format == "facturx":
        rows = [
            (
                item.findtext(f".//{{{RAM}}}BilledQuantity"),
                item.findtext(f".//{{{RAM}}}NetPriceProductTradePrice/{{{RAM}}}ChargeAmount"),
                item.findtext(f".//{{{RAM}}}NetPriceProductTradePrice/{{{RAM}}}BasisQuantity"),
                item.findtext(f".//{{{RAM}}}LineTotalAmount"),
            )
            for item in tree.iter(f"{{{RAM}}}IncludedSupplyChainTradeLineItem")
        ]
    else:
        rows = [
            (
                line.findtext(f"{{{CBC}}}InvoicedQuantity"),
                line.findtext(f"{{{CAC}}}Price/{{{CBC}}}PriceAmount"),
                line.findtext(f"{{{CAC}}}Price/{{{CBC}}}BaseQuantity"),
                line.findtext(f"{{{CBC}}}LineExtensionAmount"),
            )
            for line in tree.iterfind(f"{{{CAC}}}InvoiceLine")
        ]
    assert sorted(rows) == sorted(
        [
            ("12345", "0.004", "1", "49.38"),  # 12,345 tokens at 0.004 each
            ("10.125", "5.06", "10.125", "5.06"),  # 5.06 for 10.125 hours
        ]
    )


def test_the_e_invoice_period_ends_on_its_last_day(november):
    tree = etree.fromstring(november.e_invoice_xml.encode())
    if november.e_invoice_format == "facturx":
        period = "ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod/ram:"
        days = [
            texts(tree, f".//{period}{name}/{{*}}DateTimeString")
            for name in ("StartDateTime", "EndDateTime")
        ]
        assert days == [["20261101"], ["20261130"]]
    else:
        days = [texts(tree, f"cac:InvoicePeriod/cbc:{name}") for name in ("StartDate", "EndDate")]
        assert days == [["2026-11-01"], ["2026-11-30"]]
