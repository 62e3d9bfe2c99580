"""S36 (SCENARIOS.md): e-invoices that validate, end to end. Sellers, tax rates
and customers set as finance sets them, usage posted through the API, periods
closed by the close command: each invoice's e-invoice is issued with it,
validated against the EN 16931 rules with no failed assertion, and pays exactly
what the invoice says.

- A French seller to a French company (Factur-X EN 16931): usage 100.00 and the
  fee 39.90 at VAT 20 %: 139.90 + 27.98 = 167.88; a credit note of 20.00 + 4.00
  references it.
- A German seller to a German public body (XRechnung, Leitweg-ID
  04011000-12345-67): 100.00 at 19 %: 119.00.
- The French seller to a Belgian company, reverse-charged (BE0123456749, AE,
  "Reverse charge", Peppol BIS 3): 250.00, VAT 0.00.
- Refused: the same reverse charge to a Belgian company without its VAT id stays a
  draft naming BR-AE-02 and the customer's VAT id, takes no number, and is issued
  with the next one once the VAT id is added."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.core.management import call_command
from lxml import etree

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create, customer_update
from invoices.e_invoices.cii import RAM, RSM, UDT
from invoices.e_invoices.ubl import CBC
from invoices.e_invoices.validation import (
    CII,
    UBL_INVOICE,
    schematron_failures,
    validation_failures,
)
from invoices.models import CreditNote, Invoice
from plans.tax_rates import tax_rate_create
from tests.factories import api_client, llm_tokens_meter

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1_0600 = datetime(2026, 11, 1, 6, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, 9, tzinfo=UTC)
UDT_NS = {"udt": UDT}
THOUSAND = {"scheme": "per_unit", "unit_price": "0.10", "per": "1000"}


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0


def sellers() -> None:
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
            functional_currency="EUR",
            timezone="Europe/Paris",
            e_invoicing=True,
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
            functional_currency="EUR",
            timezone="Europe/Berlin",
            e_invoicing=True,
        )
    )


def customers() -> None:
    tax_rate_create(code="fr_vat", name="TVA", percentage=D(20), country="FR")
    tax_rate_create(code="de_vat", name="USt", percentage=D(19), country="DE")
    customer_create(
        external_id="lumiere",
        name="Lumière & Fils <SARL>",
        currency="EUR",
        timezone_name="Europe/Paris",
        locale="fr",
        address={"line1": "2 av. Foch", "postal_code": "69006", "city": "Lyon", "country": "FR"},
        tax_id="FR83404833048",
        tax_rates=["fr_vat"],
        billing_entity="exemple_sas",
        order_reference="PO-2026-17",
        e_invoice_format="facturx",
    )
    customer_create(
        external_id="bundesamt",
        name="Bundesamt für Beispiele",
        email="eingang@bundesamt.example",
        currency="EUR",
        timezone_name="Europe/Berlin",
        locale="de",
        address={"line1": "Amtsweg 2", "postal_code": "53113", "city": "Bonn", "country": "DE"},
        tax_rates=["de_vat"],
        billing_entity="beispiel_gmbh",
        leitweg_id="04011000-12345-67",
        e_invoice_format="xrechnung",
    )
    for external_id, vat_id in (("bruxelles", "BE0123456749"), ("sans_tva", None)):
        customer_create(
            external_id=external_id,
            name=f"Société {external_id} SA",
            currency="EUR",
            timezone_name="Europe/Brussels",
            locale="fr",
            address={
                "line1": "Rue Royale 1",
                "postal_code": "1000",
                "city": "Bruxelles",
                "country": "BE",
            },
            tax_id=vat_id,
            tax_exempt="reverse_charge",
            billing_entity="exemple_sas",
            peppol_id="0208:0123456749",
            e_invoice_format="peppol",
        )


def plans(client) -> None:
    llm_tokens_meter()
    for code, fee in (("studio", "39.90"), ("gpu", "0")):
        charge = {"meter": "llm_tokens", "model": "overage", "included_units": "0"}
        created = client.post(
            "/api/v1/plans",
            {
                "code": code,
                "name": code.title(),
                "currency": "EUR",
                "base_fee": fee,
                "publish": True,
                "charges": [charge | {"pricing": THOUSAND}],
            },
            format="json",
        )
        assert created.status_code == 201, created.json()


def subscribe_and_use(client, customer: str, plan: str, tokens: int) -> None:
    with time_machine.travel(OCT_1, tick=False):
        created = client.post(
            "/api/v1/subscriptions",
            {"customer": customer, "plan": plan, "start": "2026-10-01T00:00:00Z"},
            format="json",
        )
        assert created.status_code == 201, created.content
    with time_machine.travel(OCT_20, tick=False):
        event = {
            "id": f"{customer}-1",
            "customer": customer,
            "event_name": "llm.tokens",
            "timestamp": OCT_20.isoformat(),
            "properties": {"tokens": tokens, "model": "gpt-4o", "token_type": "input"},
        }
        posted = client.post("/api/v1/events", {"events": [event]}, format="json")
        assert posted.status_code == 202 and posted.json()["accepted"] == 1, posted.json()


@pytest.fixture
def closed():
    """S36's October, closed on 1 November."""
    client = api_client()
    sellers()
    customers()
    plans(client)
    subscribe_and_use(client, "lumiere", "studio", 1_000_000)
    subscribe_and_use(client, "bundesamt", "gpu", 1_000_000)
    subscribe_and_use(client, "bruxelles", "gpu", 2_500_000)
    subscribe_and_use(client, "sans_tva", "gpu", 2_500_000)
    with time_machine.travel(NOV_1_0600, tick=False):
        call_command("close_periods")
    return client


def period_invoice(customer: str) -> Invoice:
    return Invoice.objects.get(customer__external_id=customer, reason=Invoice.PERIOD)


def texts(xml: bytes, path: str, namespaces: dict) -> list[str]:
    return [element.text for element in etree.fromstring(xml).iterfind(path, namespaces)]


def assert_valid(xml: bytes, kind: str) -> None:
    """No failed assertion at all: no schema error, no rule, not even a warning."""
    assert validation_failures(xml, kind) == []
    assert schematron_failures(xml, kind) == []


def test_s36_french_invoice_is_a_factur_x_paying_its_total(closed):
    invoice = period_invoice("lumiere")
    assert invoice.status == Invoice.FINALIZED
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("139.90"), D("27.98"), D("167.88"))
    assert invoice.e_invoice_format == "facturx"
    xml = invoice.e_invoice_xml.encode()
    assert_valid(xml, CII)
    ram = {"ram": RAM}
    summation = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    assert texts(xml, summation + "LineTotalAmount", ram) == ["139.90"]
    assert texts(xml, summation + "TaxBasisTotalAmount", ram) == ["139.90"]
    assert texts(xml, summation + "TaxTotalAmount", ram) == ["27.98"]
    assert texts(xml, summation + "GrandTotalAmount", ram) == ["167.88"]
    assert texts(xml, summation + "DuePayableAmount", ram) == [f"{invoice.amount_due:.2f}"]
    assert sorted(texts(xml, ".//ram:LineTotalAmount", ram)) == ["100.00", "139.90", "39.90"]
    assert texts(xml, ".//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID", ram) == [
        "PO-2026-17"
    ]
    assert b"Lumi\xc3\xa8re &amp; Fils &lt;SARL&gt;" in xml
    # Its number and issue day are the invoice's (1 November in Paris).
    document = f"{{{RSM}}}ExchangedDocument/"
    assert texts(xml, document + "ram:ID", ram) == [invoice.number]
    assert texts(xml, document + "ram:IssueDateTime/udt:DateTimeString", ram | UDT_NS) == [
        "20261101"
    ]


def test_s36_the_credit_note_references_the_invoice_it_credits(closed):
    invoice = period_invoice("lumiere")
    usage = invoice.lines.get(meter="llm_tokens")
    with time_machine.travel(NOV_2, tick=False):
        issued = closed.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"lines": [{"invoice_line": usage.pk, "amount": "20.00"}], "reason": "other"},
            format="json",
        )
    assert issued.status_code == 201, issued.json()
    note = CreditNote.objects.get(invoice=invoice)
    assert (note.subtotal, note.tax, note.total) == (D("20.00"), D("4.00"), D("24.00"))
    assert note.e_invoice_format == "facturx"
    xml = note.e_invoice_xml.encode()
    assert_valid(xml, CII)
    ram = {"ram": RAM}
    assert texts(xml, ".//ram:TypeCode", ram)[0] == "381"
    assert texts(xml, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", ram) == [
        invoice.number
    ]
    assert texts(xml, ".//ram:DuePayableAmount", ram) == ["24.00"]


def test_s36_german_public_body_gets_an_xrechnung_with_its_leitweg_id(closed):
    invoice = period_invoice("bundesamt")
    assert (invoice.status, invoice.total) == (Invoice.FINALIZED, D("119.00"))
    assert invoice.number.startswith("RE-2026-")
    xml = invoice.e_invoice_xml.encode()
    assert_valid(xml, UBL_INVOICE)
    cbc = {"cbc": CBC}
    assert texts(xml, "cbc:CustomizationID", cbc) == [
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    ]
    assert texts(xml, "cbc:BuyerReference", cbc) == ["04011000-12345-67"]
    assert texts(xml, ".//cbc:TaxExclusiveAmount", cbc) == ["100.00"]
    assert texts(xml, ".//cbc:PayableAmount", cbc) == ["119.00"]


def test_s36_reverse_charge_to_a_belgian_company_by_peppol(closed):
    invoice = period_invoice("bruxelles")
    assert (invoice.status, invoice.tax, invoice.total) == (Invoice.FINALIZED, 0, D("250.00"))
    xml = invoice.e_invoice_xml.encode()
    assert_valid(xml, UBL_INVOICE)
    cbc = {"cbc": CBC}
    assert texts(xml, ".//cbc:TaxExemptionReason", cbc) == ["Reverse charge"]
    assert texts(xml, ".//cbc:TaxExemptionReasonCode", cbc) == ["VATEX-EU-AE"]
    assert set(texts(xml, ".//cbc:ID", cbc)) >= {"AE"}
    assert texts(xml, ".//cbc:PayableAmount", cbc) == ["250.00"]
    assert texts(xml, ".//cbc:EndpointID", cbc) == ["30326504500011", "0123456749"]


def test_s36_a_breakdown_that_does_not_add_up_fails_naming_the_rule(closed):
    xml = period_invoice("bundesamt").e_invoice_xml.encode()
    broken = xml.replace(
        b'<cbc:TaxAmount currencyID="EUR">19.00', b'<cbc:TaxAmount currencyID="EUR">18.00', 1
    )
    assert "BR-CO-14" in {failure.rule for failure in validation_failures(broken, UBL_INVOICE)}


def test_s36_reverse_charge_without_the_buyers_vat_id_is_refused_then_issued_next(closed):
    draft = period_invoice("sans_tva")
    assert (draft.status, draft.number) == (Invoice.DRAFT, None)
    assert [(e["rule"], e["field"]) for e in draft.e_invoice_errors] == [
        ("BR-AE-02", "customer.vat_id")
    ]
    # The API says why, and finalizing again is refused the same way, changing nothing.
    body = closed.get(f"/api/v1/invoices/{draft.pk}").json()
    assert [e["rule"] for e in body["e_invoice_errors"]] == ["BR-AE-02"]
    with time_machine.travel(NOV_2, tick=False):
        refused = closed.post(f"/api/v1/invoices/{draft.pk}/finalize")
    assert refused.status_code == 409, refused.json()
    assert refused.json()["error"]["type"] == "e_invoice_invalid"
    assert "BR-AE-02" in refused.json()["error"]["message"]
    assert [(e["rule"], e["field"]) for e in refused.json()["error"]["e_invoice_errors"]] == [
        ("BR-AE-02", "customer.vat_id")
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.DRAFT, None)

    # The seller's numbers stay gapless: the refused draft took none.
    issued = sorted(
        Invoice.objects.filter(billing_entity__code="exemple_sas").values_list("number", flat=True)
    )
    assert issued == [f"FR-2026-{n:06d}" for n in range(1, len(issued) + 1)]

    customer_update(customer=draft.customer, tax_id="BE0123456749")
    with time_machine.travel(NOV_2, tick=False):
        finalized = closed.post(f"/api/v1/invoices/{draft.pk}/finalize")
    assert finalized.status_code == 200, finalized.json()
    draft.refresh_from_db()
    assert draft.number == f"FR-2026-{len(issued) + 1:06d}"
    assert draft.e_invoice_errors == []
    assert draft.customer_snapshot["tax_id"] == "BE0123456749"
    assert_valid(draft.e_invoice_xml.encode(), UBL_INVOICE)
    assert "BE0123456749" in draft.e_invoice_xml


def test_a_document_with_no_en16931_form_is_refused_on_finalize_and_in_the_close():
    """Stacked rates (two taxes on the same amount) refused before any XML: the
    single finalize answers why, the close leaves the draft with the failure kept
    and goes on with the others."""
    from invoices.e_invoices.issuing import EInvoiceInvalid
    from invoices.services import invoice_finalize, invoices_finalize_due
    from plans.rating import LineInput
    from tests.factories import period_draft

    sellers()
    tax_rate_create(code="state", name="State tax", percentage=D(6))
    tax_rate_create(code="county", name="County tax", percentage=D(1))
    stacked = customer_create(
        external_id="stacked",
        name="Stacked Ltd",
        currency="EUR",
        address={"line1": "2 av. Foch", "postal_code": "69006", "city": "Lyon", "country": "FR"},
        tax_id="FR83404833048",
        tax_rates=["state", "county"],
        billing_entity="exemple_sas",
        e_invoice_format="facturx",
    )
    line = LineInput("base_fee", "Plan", None, D(1), D("10.00"), D("10.00"))
    first, second = (
        period_draft(stacked, [line]),
        period_draft(
            stacked,
            [line],
            start=datetime(2026, 12, 1, tzinfo=UTC),
            end=datetime(2027, 1, 1, tzinfo=UTC),
        ),
    )
    with pytest.raises(EInvoiceInvalid) as refused:
        invoice_finalize(invoice=first, now=NOV_2)
    assert [f.rule for f in refused.value.failures] == ["EINV-VAT-STACKED"]
    assert invoices_finalize_due(cutoff=datetime(2027, 1, 2, tzinfo=UTC), now=NOV_2) == 0
    for draft in (first, second):
        draft.refresh_from_db()
        assert (draft.status, draft.number) == (Invoice.DRAFT, None)
        assert [(e["rule"], e["field"]) for e in draft.e_invoice_errors] == [
            ("EINV-VAT-STACKED", "customer.tax_rates")
        ]


def test_a_finalized_invoice_runs_the_schematron_once(monkeypatch):
    """Checked before it is numbered, then issued as checked: its Schematron rules
    run once; its schema is checked again on the XML issued."""
    from invoices.e_invoices import issuing, validation

    sellers()
    customers()
    plans(api_client())
    subscribe_and_use(api_client(), "bruxelles", "gpu", 2_500_000)
    draft = Invoice.objects.filter(customer__external_id="bruxelles", status=Invoice.DRAFT)
    calls = {"rules": 0, "schema": 0}
    rules, schema = validation.validation_failures, issuing.schema_failures

    def counted_rules(*args, **kwargs):
        calls["rules"] += 1
        return rules(*args, **kwargs)

    def counted_schema(*args, **kwargs):
        calls["schema"] += 1
        return schema(*args, **kwargs)

    monkeypatch.setattr(issuing, "validation_failures", counted_rules)
    monkeypatch.setattr(issuing, "schema_failures", counted_schema)
    with time_machine.travel(NOV_1_0600, tick=False):
        call_command("close_periods")
    invoice = period_invoice("bruxelles")
    assert (invoice.status, invoice.e_invoice_format) == (Invoice.FINALIZED, "peppol")
    assert calls == {"rules": 1, "schema": 1}
    assert not draft.exists()
    assert_valid(invoice.e_invoice_xml.encode(), UBL_INVOICE)
