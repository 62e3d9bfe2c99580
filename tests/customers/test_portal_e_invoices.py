"""The portal offers an XML e-invoice (XRechnung, Peppol) beside the PDF of the
invoice or credit note, labelled in the customer's language, and serves it as
issued; a Factur-X one is the PDF (no second link); another customer's link, a
document without an e-invoice or a tampered token get nothing."""

import pytest
import time_machine
from django.core import signing

from customers.portal import SALT, portal_session_create
from tests.invoices.e_invoice_support import (
    DEC_5,
    credit_note_of,
    e_invoiced,
    e_invoiced_note,
    finalized_invoice,
    french_customer,
    french_seller,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def seller(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    french_seller()


def portal_url(customer) -> str:
    return f"/portal/{portal_session_create(customer=customer, now=DEC_5).token}/"


def test_the_portal_offers_and_serves_a_ubl_e_invoice(client):
    customer = french_customer()
    invoice = finalized_invoice(customer)
    plain_note = credit_note_of(invoice)
    invoice = e_invoiced(invoice, "xrechnung")
    note = e_invoiced_note(plain_note, "xrechnung")
    url = portal_url(customer)

    with time_machine.travel(DEC_5, tick=False):
        page = client.get(url).content.decode()
        served = client.get(f"{url}invoices/{invoice.pk}/e-invoice")
        served_note = client.get(f"{url}credit-notes/{note.pk}/e-invoice")

    invoice_link = f'href="{url}invoices/{invoice.pk}/e-invoice" class="e-invoice"'
    note_link = f'href="{url}credit-notes/{note.pk}/e-invoice" class="e-invoice"'
    assert f"<a {invoice_link}>Facture électronique (XML)</a>" in page
    assert f"<a {note_link}>Facture électronique (XML)</a>" in page
    assert served.status_code == 200
    assert served["Content-Type"] == "application/xml; charset=utf-8"
    assert served["Content-Disposition"] == 'attachment; filename="INV-2026-000001.xml"'
    assert served.content == invoice.e_invoice_xml.encode("utf-8")
    assert served_note.content == note.e_invoice_xml.encode("utf-8")
    assert served_note["Content-Disposition"] == 'attachment; filename="CN-2026-000001.xml"'


def test_a_german_customer_reads_the_label_in_german(client):
    customer = french_customer(external_id="kunde")
    customer.locale = "de"
    customer.save(update_fields=["locale"])
    invoice = e_invoiced(finalized_invoice(customer), "peppol")

    with time_machine.travel(DEC_5, tick=False):
        page = client.get(portal_url(customer)).content.decode()

    assert f'invoices/{invoice.pk}/e-invoice" class="e-invoice">E-Rechnung (XML)</a>' in page


def test_no_link_for_a_facturx_or_an_ordinary_invoice_and_no_download(client):
    customer = french_customer()
    facturx = e_invoiced(finalized_invoice(customer), "facturx")
    ordinary = finalized_invoice(customer)
    url = portal_url(customer)

    with time_machine.travel(DEC_5, tick=False):
        page = client.get(url).content.decode()
        missing = client.get(f"{url}invoices/{ordinary.pk}/e-invoice")

    assert 'class="e-invoice"' not in page
    assert f"invoices/{facturx.pk}/pdf" in page
    assert missing.status_code == 404
    assert b"<?xml" not in missing.content


def test_another_customers_link_or_a_tampered_token_gets_nothing(client):
    mine = french_customer()
    theirs = french_customer(external_id="client-2")
    invoice = e_invoiced(finalized_invoice(mine), "peppol")
    forged = signing.dumps({"c": mine.pk, "exp": 2_000_000_000}, salt=SALT, key="not-the-key")

    with time_machine.travel(DEC_5, tick=False):
        other = client.get(f"{portal_url(theirs)}invoices/{invoice.pk}/e-invoice")
        tampered = client.get(f"/portal/{forged}/invoices/{invoice.pk}/e-invoice")

    assert other.status_code == 404
    assert tampered.status_code == 403
    for response in (other, tampered):
        assert invoice.e_invoice_xml.encode("utf-8") not in response.content
        assert b"INV-2026-000001" not in response.content
