"""The PDF renderer's shortcuts change nothing in a PDF: an invoice (French,
several pages, a breakdown, a discount, two tax rates, a long name, DRAFT) and a
credit note render to the bytes WeasyPrint writes as it comes (its HTML parser,
its whole user-agent stylesheet); with fontTools, a document in the trimmed
font's characters embeds it whole, any other subsets its fonts; the templates stay
well-formed XML, which the renderer parses quicker; a document that is not still
renders."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D
from importlib.resources import files
from io import BytesIO
from xml.etree import ElementTree

import pytest
from django.template.loader import render_to_string
from django.utils import translation
from pypdf import PdfReader

from customers.services import customer_create
from invoices import pdf_renderer
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.pdf import (
    CREDIT_NOTE_TEMPLATE,
    INVOICE_TEMPLATE,
    credit_note_pdf_context,
    invoice_pdf_context,
)
from invoices.services import invoice_finalize
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import default_seller, period_draft

pytestmark = pytest.mark.django_db

DEC_2 = datetime(2026, 12, 2, 10, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)

LINES = [
    LineInput("base_fee", "Chat Growth (Dec 2026)", None, D(1), D(1200), D(1200)),
    LineInput(
        "usage",
        "Tokens",
        "tokens",
        D(5_000_000),
        D("0.000002"),
        D("10.00"),
        breakdown=(
            "model",
            (("gpt-4o", D(3_000_000)), ("gpt-4o-mini", D(1_900_000)), (None, D(100_000))),
        ),
    ),
    *(
        LineInput(
            "usage", f"Modèle n° {n} tokens", f"m{n}", D(1000 + n), D("0.01"), D(10) + n * D("0.01")
        )
        for n in range(45)
    ),
    LineInput("discount", "Remise fidélité", None, D(1), None, D("-50.00")),
]


@pytest.fixture(autouse=True)
def seller(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    # The seller is the default billing entity; these are its details.
    default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin"],
            "email": "invoices@example.test",
            "tax_id": "DE123456789",
            "country": "DE",
            "bank": {"bank_name": "Berliner Bank", "iban": "DE89370400440532013000", "bic": ""},
            "payment_instructions": "",
        }
    )


@pytest.fixture
def documents() -> tuple[Invoice, Invoice, CreditNote]:
    """A French draft and a finalized invoice of several pages, and a credit note."""
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20.00"), country="FR")
    tax_rate_create(code="local", name="Local", percentage=D("5.50"), country="FR")
    owner = customer_create(
        external_id="acme-fr",
        name="Société Anonyme des Établissements Acme et Compagnie Réunis de Paris",
        currency="EUR",
        email="comptabilite@acme.example",
        address={
            "line1": "12 rue de Rivoli",
            "postal_code": "75001",
            "city": "Paris",
            "country": "FR",
        },
        tax_id="FR40303265045",
        locale="fr",
        tax_rates=["fr_vat", "local"],
    )

    unnumbered = period_draft(owner, LINES)
    invoice = invoice_finalize(invoice=period_draft(owner, LINES), now=DEC_2)
    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=invoice.lines.get(kind="base_fee").pk, amount=D(100))],
        reason=CreditNote.ORDER_CHANGE,
        memo="Moins de sièges",
        now=DEC_5,
    )
    return Invoice.objects.get(pk=unnumbered.pk), invoice, note


def htmls(documents) -> list[str]:
    """Each document's HTML, as invoices.pdf renders it."""
    unnumbered, invoice, note = documents
    with translation.override("fr"):
        return [
            render_to_string(INVOICE_TEMPLATE, invoice_pdf_context(unnumbered)),
            render_to_string(INVOICE_TEMPLATE, invoice_pdf_context(invoice)),
            render_to_string(CREDIT_NOTE_TEMPLATE, credit_note_pdf_context(note)),
        ]


def as_weasyprint_writes_it(html: str) -> bytes:
    """With the renderer's stylesheet, fonts and choice of embedding fonts whole."""
    from weasyprint import HTML

    renderer = pdf_renderer.renderer()
    with pdf_renderer._fixed_font_timestamps():
        return HTML(string=html, url_fetcher=renderer.fetcher).write_pdf(
            stylesheets=[renderer.stylesheet],
            font_config=renderer.font_config,
            full_fonts=renderer.embeds_whole_font(html),
        )


def test_the_renderer_writes_the_bytes_weasyprint_writes(documents):
    pages = []
    for html in htmls(documents):
        content = pdf_renderer.renderer().write_pdf(html)

        assert content == as_weasyprint_writes_it(html)
        pages.append(len(PdfReader(BytesIO(content)).pages))
    # both invoices run onto a second page (the table's header repeated there)
    assert pages[0] > 1 and pages[1] > 1 and pages[2] == 1


def test_a_partys_lines_in_one_paragraph_render_as_a_paragraph_each(documents):
    # given the documents as printed (address, email and tax ID: one pre-line
    # paragraph per party) and as they were (a paragraph per line)
    for html in htmls(documents):
        paragraphs = re.findall(r'<p class="contact">(.*?)</p>', html, flags=re.S)
        one_each = re.sub(
            r'<p class="contact">(.*?)</p>',
            lambda match: "".join(f"<p>{line}</p>" for line in match[1].split("\n")),
            html,
            flags=re.S,
        )

        # then both parties have several lines, laid out the same, to the byte
        assert len(paragraphs) == 2 and all(text.count("\n") >= 2 for text in paragraphs)
        assert pdf_renderer.renderer().write_pdf(html) == pdf_renderer.renderer().write_pdf(
            one_each
        )


def test_the_templates_are_well_formed_xml(documents):
    for html in htmls(documents):
        root = ElementTree.fromstring(html)  # noqa: S314

        assert root.tag == "html"


def test_a_document_that_is_not_xml_is_parsed_as_html():
    html = "<!DOCTYPE html><p>Montant&nbsp;dû<br>1 234,50 &euro;<p>Merci"
    with pytest.raises(ElementTree.ParseError):
        ElementTree.fromstring(html)  # noqa: S314

    assert pdf_renderer.renderer().write_pdf(html) == as_weasyprint_writes_it(html)


def test_the_user_agent_stylesheet_loses_six_rules_an_invoice_never_uses():
    from weasyprint import css

    stock = (files(css) / "html5_ua.css").read_text("utf-8")

    # a WeasyPrint whose stylesheet no longer reads this way would make renders slower
    assert len(pdf_renderer.UA_UNUSED_PSEUDO_RULES.findall(stock)) == 6


def font_files(content: bytes) -> dict[str, bytes]:
    """Each embedded font's name (without its subset tag) and file."""
    page = PdfReader(BytesIO(content)).pages[0]
    files = {}
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        [descendant] = font["/DescendantFonts"]
        name = str(font["/BaseFont"]).split("+", 1)[1]
        files[name] = descendant.get_object()["/FontDescriptor"]["/FontFile2"].get_data()
    return files


def test_with_fonttools_a_latin_document_embeds_the_trimmed_font_whole(
    fonttools_subsets, documents
):
    renderer = fonttools_subsets
    [trimmed] = renderer.fonts.values()
    _unnumbered, invoice, _note = documents
    with translation.override("fr"):
        html = render_to_string(INVOICE_TEMPLATE, invoice_pdf_context(invoice))
    greek = html.replace("Société Anonyme", "Ωmega ЖЛФ")

    latin_pdf = renderer.write_pdf(html)
    greek_pdf = renderer.write_pdf(greek)

    # the French invoice is drawn in the trimmed font only, embedded as it is
    assert renderer.embeds_whole_font(html)
    assert font_files(latin_pdf) == {"Invoice-Sans": trimmed}
    # Greek and Cyrillic letters fall back to the system font: both are subsets
    assert not renderer.embeds_whole_font(greek)
    fonts = font_files(greek_pdf)
    assert sorted(fonts) == ["DejaVu-Sans", "Invoice-Sans"]
    assert all(len(file) < len(trimmed) for file in fonts.values())
    assert "Ωmega ЖЛФ" in PdfReader(BytesIO(greek_pdf)).pages[0].extract_text()
    assert renderer.write_pdf(html) == latin_pdf


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ("Müller & Søn, Łódź, Ştefan", True),
        ("Line one\nline two\ttab\r\n", True),
        ("5 \N{EURO SIGN} \N{EN DASH} n\N{DEGREE SIGN} 1", True),
        ("\N{GREEK CAPITAL LETTER OMEGA}", False),
        # the stylesheet sets headings in capitals: a micro sign becomes a Greek MU
        ("\N{MICRO SIGN}s", False),
        ("\N{CJK UNIFIED IDEOGRAPH-4E2D}", False),
        ("\N{GRINNING FACE}", False),
    ],
)
def test_a_document_embeds_the_trimmed_font_whole_only_in_its_characters(
    fonttools_subsets, text, whole
):
    assert fonttools_subsets.embeds_whole_font(f"<html><p>{text}</p></html>") is whole
