# Japanese is written with full-width punctuation and Spanish ranges with an en dash.
# ruff: noqa: RUF001
"""Issue 76: what a customer reads (its invoice and credit note PDFs, their
emails, the portal) in French, German, Spanish and Japanese, with no English
left: each is rendered for a customer in each language, read back as text (the
PDFs with pypdf), and searched for English words and phrases. Spanish and
Japanese amounts and dates are asserted exactly: "1.234,50" and "1 nov 2026",
"123,456" (JPY, no minor digits) and "2026年11月1日"."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from pypdf import PdfReader

from config.models import UserLanguage
from config.user_language import LanguageForm, visitor_language
from customers.models import Customer
from customers.portal import portal_session_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.emails import document_email_body, document_email_subject
from invoices.models import CreditNote, Invoice
from invoices.pay_links import pay_path
from invoices.pdf import (
    credit_note_pdf_missing_scripts,
    invoice_pdf_missing_scripts,
    render_credit_note_pdf,
    render_invoice_pdf,
)
from invoices.pdf_fonts import installed_fonts
from invoices.reminders import reminder_body, reminder_subject
from invoices.services import invoice_finalize
from plans.services import tax_rate_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    default_seller,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)

# English a customer must not read in another language: words and the pieces
# that glue phrases together ("TVA 20 % on 1 234,50", "1,78 EUR off the amount due").
ENGLISH = [
    "Invoice",
    "Credit note",
    "Total",
    "Subtotal",
    "Tax",
    "Amount",
    "Amount due",
    "Due",
    "Due date",
    "Issue date",
    "Page",
    "Period",
    "Description",
    "Quantity",
    "Unit price",
    "Bill to",
    "Credit to",
    "Payment",
    "Status",
    "Reason",
    "Customer",
    "Hello",
    "Kind regards",
    "Please",
    "Usage",
    "Balances",
    "Number",
    "Date",
    "Base fee",
    "per",
    "on",
    "of",
    "off",
    "off the amount due",
    "lowers the amount due",
    "days",
    "included",
    "Nov",
    "Dec",
]
# Words that are that language's own too.
OWN_WORDS = {
    "fr": {"Total", "Page", "Description", "Date"},
    "de": {"Status", "Nov", "per"},
    "es": {"Total", "Subtotal"},
    "ja": set(),
}
# What the documents name that no language translates: the seller, the plan, the
# meter, the language switch's names.
NAMES = ["Example Billing", "Pro Plan", "Prompts", "English", "Deutsch", "Español", "Français"]

LANGUAGES = {
    # locale: currency, base fee, tax rate (name, percentage)
    "fr": ("EUR", D("1234.50"), ("TVA", D("20.00"))),
    "de": ("EUR", D("1234.50"), ("USt.", D("19.00"))),
    "es": ("EUR", D("1234.50"), ("IVA", D("21.00"))),
    "ja": ("JPY", D(123456), ("消費税", D("10.00"))),
}


@pytest.fixture(autouse=True)
def seller(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_EMAILS = False
    default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin", "Germany"],
            "email": "invoices@example.test",
            "tax_id": "DE123456789",
            "country": "DE",
            "bank": {"bank_name": "Berliner Bank", "iban": "DE89370400440532013000"},
            "payment_instructions": "",
        }
    )


def documents(locale: str) -> tuple[Invoice, CreditNote]:
    """A customer in `locale` on the Pro plan from 1 Nov (its base fee plus tax),
    its start invoice issued that day, and a credit note of 100 (10,000 in JPY)
    of its base fee on 5 Nov, taken off the amount due."""
    currency, base_fee, (tax_name, percentage) = LANGUAGES[locale]
    tax_rate_create(code=f"tax_{locale}", name=tax_name, percentage=percentage, country="FR")
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    customer = CustomerFactory(
        external_id=f"acme-{locale}",
        name="ACME",
        currency=currency,
        locale=locale,
        timezone_name="Asia/Tokyo" if locale == "ja" else "Europe/Madrid",
        address={"line1": "1 rue X", "postal_code": "75001", "city": "Paris", "country": "FR"},
        tax_rates=[f"tax_{locale}"],
    )
    version = published_version(
        "pro",
        base_fee=base_fee,
        currency=currency,
        charges=(overage("prompts", 1000, "0.05" if currency == "EUR" else "5"),),
    )
    version.plan.name = "Pro Plan"
    version.plan.save()
    subscribe(customer, version, NOV_1)
    # The clock moved to each issue: a document is dated when it is issued
    # (invoices.issue_dates).
    with time_machine.travel(NOV_1, tick=False):
        invoice = invoice_finalize(
            invoice=Invoice.objects.get(customer=customer, reason=Invoice.START),
            now=NOV_1,
            collect=False,
        )
    base = invoice.lines.get()
    with time_machine.travel(NOV_5, tick=False):
        note = credit_note_issue(
            invoice=invoice,
            lines=[
                CreditLineInput(invoice_line=base.pk, amount=D(100 if currency == "EUR" else 10000))
            ],
            reason=CreditNote.ORDER_CHANGE,
            now=NOV_5,
        )
    return Invoice.objects.get(pk=invoice.pk), note


def spaced(text: str) -> str:
    text = text.replace("\N{NO-BREAK SPACE}", " ").replace("\N{NARROW NO-BREAK SPACE}", " ")
    return " ".join(text.split())


def pdf_text(content: bytes) -> str:
    return spaced(" ".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages))


def page_text(html: str) -> str:
    """A page's words: its tags and their attributes left out, the title and the
    labels read (aria-label) kept."""
    labels = " ".join(re.findall(r'aria-label="([^"]*)"', html))
    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return spaced(re.sub(r"<[^>]+>", " ", html) + " " + labels)


def english_left(text: str, locale: str) -> list[str]:
    for name in NAMES:
        text = text.replace(name, " ")
    own = OWN_WORDS[locale]
    return [
        phrase
        for phrase in ENGLISH
        if phrase not in own and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text)
    ]


def portal_page(client, customer) -> str:
    token = portal_session_create(customer=customer, now=NOV_11).token
    return page(client, f"/portal/{token}/")


def page(client, path: str) -> str:
    with time_machine.travel(NOV_11, tick=False):
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def reminders(invoice: Invoice) -> str:
    """The dunning reminders' subjects and bodies, before and after the due date."""
    return "\n".join(
        reminder_subject(invoice, overdue=overdue)
        + "\n"
        + reminder_body(invoice, overdue=overdue, now=NOV_11)
        for overdue in (False, True)
    )


@pytest.mark.parametrize("locale", ["fr", "de", "es", "ja"])
def test_no_english_is_left_on_what_a_customer_reads(client, locale):
    invoice, note = documents(locale)

    texts = {
        "invoice PDF": pdf_text(render_invoice_pdf(invoice)),
        "credit note PDF": pdf_text(render_credit_note_pdf(note)),
        "invoice email": document_email_subject(invoice)
        + "\n"
        + document_email_body(invoice, now=NOV_11),
        "credit note email": document_email_subject(note)
        + "\n"
        + document_email_body(note, now=NOV_11),
        "portal": page_text(portal_page(client, invoice.customer)),
        "pay page": page_text(page(client, pay_path(invoice_id=invoice.pk, now=NOV_11))),
        "reminder emails": reminders(invoice),
    }

    left = {where: english_left(text, locale) for where, text in texts.items()}
    assert left == {where: [] for where in texts}, texts


SPANISH_INVOICE = [
    "Factura",
    "Fecha de emisión 1 nov 2026",
    "Fecha de vencimiento 1 dic 2026",
    "Condiciones de pago 30 días",
    "Periodo 1 nov – 30 nov 2026",
    "Subtotal 1.234,50",
    "IVA 21 % sobre 1.234,50 259,25",
    "Impuestos 259,25",
    "Total EUR 1.493,75",
    "Importe abonado -121,00",
    "Importe pendiente EUR 1.372,75",
    "Factura rectificativa CN-2026-000001 del 5 nov 2026: 121,00 EUR.",
    "Indique INV-2026-000001 al realizar el pago.",
    "INV-2026-000001 Página 1 de 1",
]
JAPANESE_INVOICE = [
    "請求書",
    "発行日 2026年11月1日",
    "支払期日 2026年12月1日",
    "支払条件 30日",
    "対象期間 11月1日～2026年11月30日",
    "小計 123,456",
    "消費税 10%（課税対象額 123,456） 12,346",
    "税額 12,346",
    "合計 JPY 135,802",
    "クレジット額 -11,000",
    "請求金額 JPY 124,802",
    "クレジットノート CN-2026-000001（2026年11月5日）：11,000 JPY。",
    "INV-2026-000001 1 / 1 ページ",
]


@pytest.mark.parametrize(
    ("locale", "expected"), [("es", SPANISH_INVOICE), ("ja", JAPANESE_INVOICE)], ids=["es", "ja"]
)
def test_spanish_and_japanese_invoices_write_amounts_and_days_their_way(locale, expected):
    invoice, _note = documents(locale)

    text = pdf_text(render_invoice_pdf(invoice))

    for phrase in expected:
        assert phrase in text, (phrase, text)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "es",
            [
                "Factura rectificativa",
                "Número de factura rectificativa CN-2026-000001",
                "Fecha de emisión 5 nov 2026",
                "Factura rectificada INV-2026-000001",
                "Motivo Cambio de pedido",
                "IVA 21 % sobre 100,00 21,00",
                "Total EUR 121,00",
                "121,00 EUR se descuentan del importe pendiente de la factura INV-2026-000001.",
            ],
        ),
        (
            "ja",
            [
                "クレジットノート番号 CN-2026-000001",
                "発行日 2026年11月5日",
                "対象請求書 INV-2026-000001",
                "理由 注文の変更",
                "消費税 10%（課税対象額 10,000） 1,000",
                "合計 JPY 11,000",
                "11,000 JPYは請求書 INV-2026-000001 の請求金額から差し引かれます。",
            ],
        ),
    ],
    ids=["es", "ja"],
)
def test_spanish_and_japanese_credit_notes(locale, expected):
    _invoice, note = documents(locale)

    text = pdf_text(render_credit_note_pdf(note))

    for phrase in expected:
        assert phrase in text, (phrase, text)


def test_the_email_and_the_portal_in_japanese(client):
    invoice, _note = documents("ja")

    subject = document_email_subject(invoice)
    body = document_email_body(invoice, now=NOV_11)
    page = page_text(portal_page(client, invoice.customer))

    assert subject == "Example Billing GmbHからの請求書 INV-2026-000001"
    assert "請求金額：124,802\N{NO-BREAK SPACE}JPY" in body
    assert "支払期日：2026年12月1日（Asia/Tokyo）" in body
    assert "対象期間：11月1日～2026年11月30日（Asia/Tokyo）" in body
    assert (
        "INV-2026-000001 契約開始 11月1日～2026年11月30日 2026年11月1日 2026年12月1日 未払い"
        in page
    )


def test_customers_take_spanish_and_japanese_and_the_admin_stays_as_it_was(rf):
    def codes(choices):
        return [code for code, _name in choices]

    assert codes(Customer._meta.get_field("locale").choices) == ["en", "fr", "de", "es", "ja"]
    assert codes(UserLanguage._meta.get_field("language").choices) == ["en", "fr", "de"]
    assert codes(LanguageForm().fields["language"].choices) == ["en", "fr", "de"]
    # a browser asking for Spanish reads the admin's login page in English
    assert visitor_language(rf.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="es")) == "en"
    assert visitor_language(rf.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="de")) == "de"


@pytest.mark.skipif(
    bool(installed_fonts().missing("請求書 クレジットノート")),
    reason="fonts-noto-cjk is not installed on this machine (CI installs it: scripts/_fonts.sh)",
)
def test_every_character_of_a_japanese_document_has_a_font():
    invoice, note = documents("ja")

    assert invoice_pdf_missing_scripts(invoice) == ()
    assert credit_note_pdf_missing_scripts(note) == ()
