"""Invoice and credit note PDFs in the customer's language (English, French,
German), read back with pypdf: the words, the numbers and dates written the way
the language writes them, a row per tax rate with its taxable amount, the due
date and terms, VOID, the reverse-charge mention and both tax ids, the bank
details; the credit note's lines, tax, total and where its money went; and the
credit note's PDF stored after it is issued. Time is set; amounts are exact."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from pypdf import PdfReader

from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_credit_note_pdf, render_invoice_pdf
from invoices.rendering import credit_note_pdf_response
from invoices.services import invoice_finalize, invoice_void
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import default_seller, period_draft

pytestmark = pytest.mark.django_db

DEC_2 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"

# 1,200.00 + 34.50 = 1,234.50; TVA 20 % = 246.90; 5.5 % of 1,234.50 = 67.8975 -> 67.90
LINES = [
    LineInput("base_fee", "Chat Growth (Dec 2026)", None, D(1), D(1200), D(1200)),
    LineInput(
        "usage", "GPT-4o input tokens", "gpt4o_in", D(13_800_000), D("0.0000025"), D("34.50")
    ),
]


@pytest.fixture(autouse=True)
def seller(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The seller is the default billing entity; these are its details.
    default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin", "Germany"],
            "email": "invoices@example.test",
            "tax_id": "DE123456789",
            "country": "DE",
            "bank": {
                "bank_name": "Berliner Bank",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
            },
            "payment_instructions": "",
        }
    )


@pytest.fixture
def rates():
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20.00"), country="FR")
    tax_rate_create(code="local", name="Local", percentage=D("5.50"), country="FR")


def customer(locale: str, **extra):
    fields = {
        "external_id": f"acme-{locale}",
        "name": "Acme SARL",
        "currency": "EUR",
        "email": "compta@acme.test",
        "address": {
            "line1": "12 rue de Rivoli",
            "postal_code": "75001",
            "city": "Paris",
            "country": "FR",
        },
        "tax_id": "FR40303265045",
        "locale": locale,
        "tax_rates": ["fr_vat", "local"],
        **extra,
    }
    return customer_create(**fields)


def finalized(owner) -> Invoice:
    return invoice_finalize(invoice=period_draft(owner, LINES), now=DEC_2)


def text_of(content: bytes) -> list[str]:
    """The PDF's text, line by line, with no-break spaces read as spaces."""
    lines = []
    for page in PdfReader(BytesIO(content)).pages:
        lines += (
            page.extract_text()
            .replace(NBSP, " ")
            .replace("\N{NARROW NO-BREAK SPACE}", " ")
            .splitlines()
        )
    return lines


EXPECTED = {
    "en": [
        "Invoice",
        "Issue date 2 Dec 2026",
        "Due date 1 Jan 2027",
        "Payment terms 30 days",
        "Period 1 Nov \N{EN DASH} 30 Nov 2026",
        "Status Finalized",
        "Chat Growth (Dec 2026) 1 1,200.00 1,200.00",
        "GPT-4o input tokens 13,800,000 0.0000025 34.50",
        "Subtotal 1,234.50",
        "TVA 20% on 1,234.50 246.90",
        "Local 5.5% on 1,234.50 67.90",
        "Tax 314.80",
        "Total EUR 1,549.30",
        "Amount due EUR 1,549.30",
        "Tax ID DE123456789",
        "Tax ID FR40303265045",
        "75001 Paris",
        "France",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Please quote INV-2026-000001 with your payment.",
        "INV-2026-000001 Page 1 of 1",
    ],
    "fr": [
        "Facture",
        "Date d'émission 2 déc. 2026",
        "Date d'échéance 1 jan. 2027",
        "Conditions de paiement 30 jours",
        "Période 1 nov. \N{EN DASH} 30 nov. 2026",
        "Statut Émise",
        "Chat Growth (Dec 2026) 1 1 200,00 1 200,00",
        "GPT-4o input tokens 13 800 000 0,0000025 34,50",
        "Sous-total 1 234,50",
        "TVA 20 % sur 1 234,50 246,90",
        "Local 5,5 % sur 1 234,50 67,90",
        "Taxes 314,80",
        "Total EUR 1 549,30",
        "Reste à payer EUR 1 549,30",
        "N° TVA DE123456789",
        "N° TVA FR40303265045",
        "75001 Paris",
        "France",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Merci d'indiquer INV-2026-000001 avec votre paiement.",
        "INV-2026-000001 Page 1 sur 1",
    ],
    "de": [
        "Rechnung",
        "Ausstellungsdatum 2. Dez. 2026",
        "Fälligkeitsdatum 1. Jan. 2027",
        "Zahlungsbedingungen 30 Tage",
        "Zeitraum 1. Nov. \N{EN DASH} 30. Nov. 2026",
        "Status Ausgestellt",
        "Chat Growth (Dec 2026) 1 1.200,00 1.200,00",
        "GPT-4o input tokens 13.800.000 0,0000025 34,50",
        "Zwischensumme 1.234,50",
        "TVA 20 % auf 1.234,50 246,90",
        "Local 5,5 % auf 1.234,50 67,90",
        "Steuer 314,80",
        "Gesamt EUR 1.549,30",
        "Zu zahlender Betrag EUR 1.549,30",
        "USt-IdNr. DE123456789",
        "USt-IdNr. FR40303265045",
        "75001 Paris",
        "Frankreich",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Bitte geben Sie bei der Zahlung INV-2026-000001 an.",
        "INV-2026-000001 Seite 1 von 1",
    ],
}


@pytest.mark.parametrize("locale", ["en", "fr", "de"])
def test_an_invoice_is_written_in_the_customers_language(rates, locale):
    invoice = finalized(customer(locale))

    text = text_of(render_invoice_pdf(invoice))

    assert (invoice.tax, invoice.total) == (D("314.80"), D("1549.30"))
    for expected in EXPECTED[locale]:
        assert expected in text, expected
    metadata = PdfReader(BytesIO(render_invoice_pdf(invoice))).metadata
    assert metadata.title == {"en": "Invoice", "fr": "Facture", "de": "Rechnung"}[locale] + (
        " INV-2026-000001"
    )


@pytest.mark.parametrize(
    ("locale", "watermark", "status", "voided"),
    [
        ("en", "VOID", "Status Void", "Voided on 5 Dec 2026; a credit note cancels this invoice."),
        (
            "fr",
            "ANNULÉE",
            "Statut Annulée",
            "Annulée le 5 déc. 2026 ; un avoir annule cette facture.",
        ),
        (
            "de",
            "STORNIERT",
            "Status Storniert",
            "Storniert am 5. Dez. 2026; eine Gutschrift hebt diese Rechnung auf.",
        ),
    ],
)
def test_a_voided_invoice_says_so_in_its_language(rates, locale, watermark, status, voided):
    invoice = finalized(customer(locale))
    invoice_void(invoice=invoice, reason="billed twice", now=DEC_5)

    text = text_of(render_invoice_pdf(Invoice.objects.get(pk=invoice.pk)))

    for expected in (watermark, status, voided):
        assert expected in text, expected
    # the voiding credit note is listed, and nothing is left to pay
    assert any(
        line.startswith(
            ("Credit note CN-2026-000001", "Avoir CN-2026-000001", "Gutschrift CN-2026-000001")
        )
        for line in text
    )
    due = next(line for line in text if line.startswith(("Amount due", "Reste", "Zu zahlender")))
    assert due.endswith(" 0.00" if locale == "en" else " 0,00")


@pytest.mark.parametrize(
    ("locale", "mention"),
    [
        (
            "en",
            "Reverse charge: VAT to be accounted for by the recipient "
            "(Article 196 of Council Directive 2006/112/EC).",
        ),
        (
            "fr",
            "Autoliquidation : TVA due par le preneur "
            "(article 196 de la directive 2006/112/CE du Conseil).",
        ),
        (
            "de",
            "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge): die Umsatzsteuer "
            "schuldet der Leistungsempfänger (Artikel 196 der Richtlinie 2006/112/EG des Rates).",
        ),
    ],
)
def test_a_reverse_charged_invoice_has_no_tax_the_mention_and_both_tax_ids(rates, locale, mention):
    invoice = finalized(customer(locale, tax_exempt="reverse_charge"))

    text = " ".join(text_of(render_invoice_pdf(invoice)))

    assert (invoice.tax, invoice.total) == (D("0.00"), D("1234.50"))
    assert mention in text
    assert "DE123456789" in text and "FR40303265045" in text
    assert "TVA 20" not in text


def test_an_exempt_invoice_says_so(rates):
    invoice = finalized(customer("en", tax_exempt="exempt"))

    text = text_of(render_invoice_pdf(invoice))

    assert "Exempt from tax: no tax is charged on this invoice." in text
    assert "Reverse charge" not in " ".join(text)


def test_terms_of_zero_days_read_due_on_receipt(rates):
    invoice = finalized(customer("fr", payment_terms_days=0))

    text = text_of(render_invoice_pdf(invoice))

    assert "Date d'échéance 2 déc. 2026" in text
    assert "Conditions de paiement Payable à réception" in text


# credit notes

CREDIT_NOTE_EXPECTED = {
    "en": [
        "Credit note",
        "CN-2026-000001",
        "Credit note number CN-2026-000001",
        "Issue date 5 Dec 2026",
        "Credited invoice INV-2026-000001",
        "Invoice date 2 Dec 2026",
        "Reason Product unsatisfactory",
        "Tokens billed twice",
        "GPT-4o input tokens 34.50",
        "Subtotal 34.50",
        "TVA 20% on 34.50 6.90",
        "Local 5.5% on 34.50 1.90",
        "Tax 8.80",
        "Total EUR 43.30",
        "43.30 EUR lowers the amount due on invoice INV-2026-000001.",
        "Tax ID FR40303265045",
        "CN-2026-000001 Page 1 of 1",
    ],
    "fr": [
        "Avoir",
        "Numéro d'avoir CN-2026-000001",
        "Date d'émission 5 déc. 2026",
        "Facture concernée INV-2026-000001",
        "Date de la facture 2 déc. 2026",
        "Motif Produit non satisfaisant",
        "GPT-4o input tokens 34,50",
        "Sous-total 34,50",
        "TVA 20 % sur 34,50 6,90",
        "Local 5,5 % sur 34,50 1,90",
        "Taxes 8,80",
        "Total EUR 43,30",
        "43,30 EUR viennent en déduction du reste à payer de la facture INV-2026-000001.",
        "CN-2026-000001 Page 1 sur 1",
    ],
    "de": [
        "Gutschrift",
        "Gutschriftsnummer CN-2026-000001",
        "Rechnungsdatum 2. Dez. 2026",
        "Gutgeschriebene Rechnung INV-2026-000001",
        "Grund Produkt nicht zufriedenstellend",
        "Steuer 8,80",
        "Gesamt EUR 43,30",
        "CN-2026-000001 Seite 1 von 1",
    ],
}


@pytest.mark.parametrize("locale", ["en", "fr", "de"])
def test_a_partial_credit_note_is_written_in_the_customers_language(rates, locale):
    invoice = finalized(customer(locale))
    usage = invoice.lines.get(kind="usage")

    # 34.50 of usage; tax in proportion: 246.90 * 34.50 / 1234.50 = 6.90 and
    # 67.90 * 34.50 / 1234.50 = 1.8976 -> 1.90
    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=usage.pk, amount=D("34.50"))],
        reason=CreditNote.PRODUCT_UNSATISFACTORY,
        memo="Tokens billed twice",
        now=DEC_5,
    )

    text = text_of(render_credit_note_pdf(note))

    assert (note.subtotal, note.tax, note.total) == (D("34.50"), D("8.80"), D("43.30"))
    for expected in CREDIT_NOTE_EXPECTED[locale]:
        assert expected in text, expected
    assert not {"VOID", "ANNULÉE", "STORNIERT"} & set(text)


def test_a_credit_note_on_a_paid_invoice_says_it_went_to_the_credit_balance(rates):
    from invoices.settlement import invoice_mark_paid

    invoice = finalized(customer("fr"))
    invoice_mark_paid(invoice=invoice, reference="virement 118", now=DEC_2)
    base = invoice.lines.get(kind="base_fee")

    note = credit_note_issue(
        invoice=Invoice.objects.get(pk=invoice.pk),
        lines=[CreditLineInput(invoice_line=base.pk, amount=D("100.00"))],
        reason=CreditNote.ORDER_CHANGE,
        now=DEC_5,
    )

    text = text_of(render_credit_note_pdf(note))
    # 100.00 + 20 % (20.00) + 5.5 % (5.50)
    assert note.total == D("125.50")
    assert (
        "125,50 EUR sont ajoutés à votre solde créditeur, qui règle vos prochaines factures."
        in text
    )


def test_a_credit_note_pdf_is_stored_after_it_is_issued_and_served(
    rates, django_capture_on_commit_callbacks
):
    invoice = finalized(customer("en"))
    usage = invoice.lines.get(kind="usage")

    with (
        time_machine.travel(DEC_5, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditLineInput(invoice_line=usage.pk, amount=D("10.00"))],
            reason=CreditNote.DUPLICATE,
            now=DEC_5,
        )

    note.refresh_from_db()
    assert note.pdf_file.name == f"credit-notes/CN-2026/CN-2026-000001-{note.pdf_sha256[:16]}.pdf"
    assert note.pdf_rendered_at == DEC_5
    with note.pdf_file.open("rb") as stored:
        content = stored.read()
    # deterministic, and what the download serves
    assert render_credit_note_pdf(note) == content
    response = credit_note_pdf_response(credit_note=note, now=DEC_5)
    assert response["Content-Disposition"] == 'attachment; filename="CN-2026-000001.pdf"'
    assert response.content == content
    assert "Reason Duplicate charge" in text_of(content)


def test_a_void_stores_its_credit_notes_pdf_too(rates, django_capture_on_commit_callbacks):
    invoice = finalized(customer("de"))

    with django_capture_on_commit_callbacks(execute=True):
        note = invoice_void(invoice=invoice, reason="doppelt berechnet", now=DEC_5)

    note.refresh_from_db()
    text = text_of(note.pdf_file.read())
    assert "Diese Gutschrift storniert die Rechnung INV-2026-000001 vollständig." in text
    assert "Gesamt EUR 1.549,30" in text
