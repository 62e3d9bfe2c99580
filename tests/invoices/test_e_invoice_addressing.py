"""Issue 91: receivers that can be reached. An XRechnung to a German public body
with a Leitweg-ID is addressed 0204:<Leitweg-ID> (BT-49), valid against the
XRechnung rules, and goes into the Peppol folder with its SBDH envelope carrying
exactly the Peppol ids an access point routes by; a buyer with neither a Peppol
id nor a Leitweg-ID is addressed by e-mail and is not put in the folder (for
upload or e-mail)."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.core.management import call_command
from lxml import etree

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity, Customer
from customers.services import customer_update
from invoices.e_invoices.access_points import (
    NO_PEPPOL_ADDRESS,
    SBDH,
    FolderAccessPoint,
    e_invoices_not_sent,
    endpoints,
    peppol_unreachable,
)
from invoices.e_invoices.document import INVOICE, Issue, build_document
from invoices.e_invoices.ubl import CBC, document_ubl
from invoices.e_invoices.validation import UBL_CREDIT_NOTE, UBL_INVOICE, validation_failures
from invoices.models import CreditNote, Invoice
from tests.factories import api_client
from tests.invoices import test_s36_e_invoices as s36
from tests.invoices.test_e_invoice_access_points import issued
from tests.invoices.test_e_invoice_documents import (
    GERMAN_PUBLIC_BODY,
    GERMAN_SELLER,
    NOW,
    line,
)

XRECHNUNG_INVOICE = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
    "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0::2.1"
)
BILLING_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
# A public body whose Leitweg-ID's check digits match (ISO 7064 MOD 97-10):
# GERMAN_PUBLIC_BODY's do not (04011000-12345-67 would need 03).
PUBLIC_BODY = {**GERMAN_PUBLIC_BODY, "leitweg_id": "04011000-12345-03"}
SELLER = {**GERMAN_SELLER, "peppol_id": "9930:DE811907980"}
S = {"s": SBDH}


def xrechnung(buyer: dict, seller: dict = SELLER) -> bytes:
    return document_ubl(
        build_document(
            profile="xrechnung",
            type_code=INVOICE,
            issue=Issue("RE-2026-000001", NOW, NOW, D(0)),
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
            terms="Zahlbar innerhalb von 30 Tagen",
        )
    )


def test_a_public_buyer_is_addressed_by_its_leitweg_id_on_peppol():
    xml = xrechnung(PUBLIC_BODY)
    assert validation_failures(xml, UBL_INVOICE) == []
    assert endpoints(xml) == ("9930:DE811907980", "0204:04011000-12345-03")
    assert peppol_unreachable(*endpoints(xml)) == ""
    # Its own Peppol id, when it has one, comes first.
    own = xrechnung({**PUBLIC_BODY, "peppol_id": "0088:4000001000005"})
    assert endpoints(own)[1] == "0088:4000001000005"


def test_the_folder_envelope_carries_exactly_the_routing_ids(tmp_path):
    xml = xrechnung(PUBLIC_BODY)
    sender, receiver = endpoints(xml)
    FolderAccessPoint(tmp_path).send(number="RE-1", xml=xml, sender=sender, receiver=receiver)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["RE-1.json", "RE-1.sbd.xml", "RE-1.xml"]
    sidecar = json.loads((tmp_path / "RE-1.json").read_text())
    assert (sidecar["receiver"], sidecar["document_type"], sidecar["process"]) == (
        "0204:04011000-12345-03",
        XRECHNUNG_INVOICE,
        BILLING_PROCESS,
    )
    assert "Oxalis" in sidecar["suits"] and sidecar["envelope"] == "RE-1.sbd.xml"

    envelope = etree.fromstring((tmp_path / "RE-1.sbd.xml").read_bytes())
    header = envelope.find("s:StandardBusinessDocumentHeader", S)
    ids = [
        (e.getparent().tag.split("}")[1], e.get("Authority"), e.text)
        for e in header.iterfind("s:*/s:Identifier", S)
    ]
    assert ids == [
        ("Sender", "iso6523-actorid-upis", "9930:DE811907980"),
        ("Receiver", "iso6523-actorid-upis", "0204:04011000-12345-03"),
    ]
    scopes = [
        (s.findtext("s:Type", namespaces=S), s.findtext("s:InstanceIdentifier", namespaces=S))
        for s in header.iterfind("s:BusinessScope/s:Scope", S)
    ]
    assert scopes == [
        ("DOCUMENTID", XRECHNUNG_INVOICE),
        ("PROCESSID", BILLING_PROCESS),
        ("COUNTRY_C1", "DE"),
    ]
    identification = header.find("s:DocumentIdentification", S)
    assert identification.findtext("s:Type", namespaces=S) == "Invoice"
    # The payload is the document as issued, whole.
    payload = envelope[1]
    assert etree.tostring(payload, method="c14n") == etree.tostring(
        etree.fromstring(xml), method="c14n"
    )
    assert payload.findtext(f"{{{CBC}}}ID") == "RE-2026-000001"


def test_the_same_document_enveloped_again_is_the_same_message(tmp_path):
    xml = xrechnung(PUBLIC_BODY)
    sender, receiver = endpoints(xml)
    outbox = FolderAccessPoint(tmp_path)
    outbox.send(number="RE-1", xml=xml, sender=sender, receiver=receiver)
    first = (tmp_path / "RE-1.sbd.xml").read_bytes()
    outbox.send(number="RE-1", xml=xml, sender=sender, receiver=receiver)
    assert (tmp_path / "RE-1.sbd.xml").read_bytes() == first


@pytest.mark.django_db
def test_a_buyer_without_a_peppol_address_is_not_put_in_the_folder(settings, tmp_path):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_PEPPOL_ACCESS_POINT = "folder"
    settings.BILLING_PEPPOL_FOLDER = tmp_path
    from invoices import tasks

    by_email = xrechnung({**GERMAN_PUBLIC_BODY, "leitweg_id": ""})
    assert endpoints(by_email)[1] == "EM:eingang@amt.example"
    assert peppol_unreachable(*endpoints(by_email)) == (
        f"{NO_PEPPOL_ADDRESS} (buyer EM:eingang@amt.example)"
    )
    invoice = issued("xrechnung", xml=by_email)

    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() is None
    assert list(tmp_path.iterdir()) == []
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at is None
    # The sweep does not take it again and again.
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    assert e_invoices_not_sent(since=since, until=until) == []
    reachable = issued("xrechnung", xml=xrechnung(PUBLIC_BODY), external_id="amt-2")
    assert e_invoices_not_sent(since=since, until=until) == [("invoice", reachable.pk)]


def test_a_peppol_address_is_a_scheme_of_peppols_list_and_an_identifier():
    from invoices.e_invoices.access_points import is_peppol_address

    assert is_peppol_address("0204:04011000-12345-03")
    assert is_peppol_address("9930:DE811907980")
    assert not is_peppol_address("EM:eingang@amt.example")
    assert not is_peppol_address("0242:123456")  # four digits, not on Peppol's EAS list
    assert not is_peppol_address("0088:")
    assert not is_peppol_address("")


@pytest.fixture
def bundesamt_closed(settings, tmp_path):
    """S36's German public body, its October closed on 1 November (an XRechnung)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    client = api_client()
    s36.sellers()
    s36.customers()
    s36.plans(client)
    customer_update(
        customer=Customer.objects.get(external_id="bundesamt"), leitweg_id="04011000-12345-03"
    )
    s36.subscribe_and_use(client, "bundesamt", "gpu", 1_000_000)
    with time_machine.travel(s36.NOV_1_0600, tick=False):
        call_command("close_periods")
    return client


@pytest.mark.django_db
def test_a_credit_note_on_an_invoice_issued_by_email_is_addressed_by_the_leitweg_id(
    bundesamt_closed, settings, tmp_path
):
    # given: the Bundesamt's XRechnung as issued before its receiver could be
    # reached (its buyer addressed EM:<email>), and its seller since on Peppol
    outbox = tmp_path / "outbox"
    settings.BILLING_PEPPOL_ACCESS_POINT = "folder"
    settings.BILLING_PEPPOL_FOLDER = outbox
    from invoices import tasks

    invoice = s36.period_invoice("bundesamt")
    by_leitweg = '<cbc:EndpointID schemeID="0204">04011000-12345-03</cbc:EndpointID>'
    assert by_leitweg in invoice.e_invoice_xml
    by_email = '<cbc:EndpointID schemeID="EM">eingang@bundesamt.example</cbc:EndpointID>'
    Invoice.objects.filter(pk=invoice.pk).update(
        e_invoice_xml=invoice.e_invoice_xml.replace(by_leitweg, by_email)
    )
    seller = BillingEntity.objects.get(code="beispiel_gmbh")
    seller.peppol_id = "9930:DE811907980"
    billing_entity_save(entity=seller)

    # when: it is credited
    usage = invoice.lines.get(meter="llm_tokens")
    with time_machine.travel(datetime(2026, 11, 2, 9, tzinfo=UTC), tick=False):
        answer = bundesamt_closed.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"lines": [{"invoice_line": usage.pk, "amount": "10.00"}], "reason": "other"},
            format="json",
        )
    assert answer.status_code == 201, answer.json()

    # then: the note is addressed 0204:<Leitweg-ID>, valid, and goes into the folder
    note = CreditNote.objects.get(invoice=invoice)
    xml = note.e_invoice_xml.encode()
    assert validation_failures(xml, UBL_CREDIT_NOTE) == []
    assert endpoints(xml) == ("9930:DE811907980", "0204:04011000-12345-03")
    assert peppol_unreachable(*endpoints(xml)) == ""
    tasks.e_invoice_send.delay("creditnote", note.pk).get()
    sidecar = json.loads((outbox / f"{note.number}.json").read_text())
    assert sidecar["receiver"] == "0204:04011000-12345-03"


@pytest.mark.django_db
def test_a_leitweg_id_whose_check_digits_fail_is_no_peppol_address(settings, tmp_path):
    # given: an XRechnung to a public body whose Leitweg-ID's check digits do not
    # match (kept as its buyer reference, BT-10: the platform it is uploaded to
    # decides), written 0204:<Leitweg-ID> as its address
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_PEPPOL_ACCESS_POINT = "folder"
    settings.BILLING_PEPPOL_FOLDER = tmp_path
    from invoices import tasks

    xml = xrechnung(GERMAN_PUBLIC_BODY)
    assert validation_failures(xml, UBL_INVOICE) == []
    assert endpoints(xml)[1] == "0204:04011000-12345-67"

    # then: no access point can route it: for upload or e-mail, saying why
    assert peppol_unreachable(*endpoints(xml)) == (
        f"{NO_PEPPOL_ADDRESS} (buyer 0204:04011000-12345-67: '04011000-12345-67': "
        "check digits do not match (not a Leitweg-ID))"
    )
    invoice = issued("xrechnung", xml=xml)
    assert tasks.e_invoice_send.delay("invoice", invoice.pk).get() is None
    assert list(tmp_path.iterdir()) == []
