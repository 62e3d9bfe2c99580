# ruff: noqa: RUF001 (the file is about letters of other scripts that look Latin)
"""Every script on every document: invoice and credit note PDFs for customers whose
names, addresses and line descriptions are in Japanese, Chinese, Korean, Arabic,
Hebrew, Cyrillic and Greek, read back with pypdf with every character present;
right-to-left text marked to read from the right; and a document with text no
installed font has is logged and named on its admin page, with what to install.

The PDF tests need the Noto fonts (Debian's fonts-noto-core and fonts-noto-cjk,
which .ci/run installs); on a machine without them they are skipped, saying so."""

import logging
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from customers.services import customer_create
from invoices import pdf
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.pdf import (
    invoice_pdf_missing_scripts,
    render_credit_note_pdf,
    render_invoice_pdf,
)
from invoices.pdf_fonts import (
    FontCoverage,
    cjk_language,
    installed_fonts,
    isolate_lines,
    missing_scripts_text,
    text_direction,
)
from invoices.services import invoice_finalize
from invoices.templatetags.pdf_text import script_attrs
from plans.rating import LineInput
from tests.factories import period_draft

pytestmark = pytest.mark.django_db

DEC_2 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)

JAPANESE = {
    "name": "株式会社サクラ",
    "address": {
        "line1": "丸の内一丁目1番1号",
        "line2": "千代田区",
        "city": "東京都",
        "postal_code": "100-0005",
        "country": "JP",
    },
    "description": "クラウド利用料（標準プラン）",
}
ARABIC = {
    "name": "شركة النخيل للتجارة",
    "address": {
        "line1": "شارع الملك فهد 123",
        "city": "الرياض",
        "postal_code": "12211",
        "country": "SA",
    },
    "description": "خدمات الحوسبة السحابية",
}
HEBREW = {
    "name": "חברת הדקל בע״מ",
    "address": {
        "line1": "רחוב הרצל 15",
        "city": "תל אביב",
        "postal_code": "6578901",
        "country": "IL",
    },
    "description": "שירותי ענן חודשיים",
}
CHINESE = {
    "name": "北京云科技有限公司",
    "address": {"line1": "朝阳区建国路88号", "city": "北京市", "country": "CN"},
    "description": "云计算服务（标准版）",
}
KOREAN = {
    "name": "주식회사 한빛",
    "address": {"line1": "테헤란로 152", "city": "서울특별시 강남구", "country": "KR"},
    "description": "클라우드 저장소 사용량",
}
RUSSIAN = {
    "name": "ООО «Ромашка»",
    "address": {"line1": "ул. Тверская, д. 7", "city": "Москва", "country": "RU"},
    "description": "Облачное хранилище",
}
GREEK = {
    "name": "Εταιρεία Ήλιος Α.Ε.",
    "address": {"line1": "Οδός Ερμού 25", "city": "Αθήνα", "country": "GR"},
    "description": "Υπηρεσίες νέφους",
}
CUSTOMERS = {
    "ja": JAPANESE,
    "ar": ARABIC,
    "he": HEBREW,
    "zh": CHINESE,
    "ko": KOREAN,
    "ru": RUSSIAN,
    "el": GREEK,
}
ALL_TEXT = " ".join(
    " ".join([customer["name"], customer["description"], *customer["address"].values()])
    for customer in CUSTOMERS.values()
)
# Khitan Small Script (Unicode 13): no Noto font draws it, in Debian 12 at least.
KHITAN = "\U00018b00\U00018b01\U00018b02"

needs_fonts = pytest.mark.skipif(
    bool(installed_fonts().missing(ALL_TEXT)),
    reason="fonts for "
    + (missing_scripts_text(installed_fonts().missing(ALL_TEXT)) or "every script")
    + " are not installed on this machine (CI installs them: .ci/run)",
)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def invoice_for(key: str, **lines) -> Invoice:
    data = CUSTOMERS[key]
    customer = customer_create(
        external_id=f"customer-{key}",
        name=data["name"],
        currency="USD",
        email=f"billing@{key}.example",
        address=data["address"],
    )
    rows = [
        LineInput("base_fee", data["description"], None, D(1), D(100), D(100)),
        LineInput("usage", lines.get("usage", "API requests"), "requests", D(10), D(1), D(10)),
    ]
    return invoice_finalize(invoice=period_draft(customer, rows), now=DEC_2)


def ours(caplog) -> list[str]:
    """What the PDF module logged (WeasyPrint says each glyph it lacks on its own)."""
    return [record.getMessage() for record in caplog.records if record.name == "invoices.pdf"]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def assert_printed(text: str, printed: str) -> None:
    """Every character of `printed` is in the PDF's text as often as it is there,
    and each of its words is (a right-to-left line may come out with its words in
    visual order, each word as written)."""
    wanted = Counter(character for character in printed if not character.isspace())
    found = Counter(character for character in text if not character.isspace())
    assert not wanted - found, f"missing from the PDF: {''.join(wanted - found)!r}"
    for word in printed.split():
        assert word in text, word


def printed_parts(key: str) -> list[str]:
    data = CUSTOMERS[key]
    return [data["name"], data["description"], *data["address"].values()][:-1]  # not the code


# The PDFs, read back.


@needs_fonts
def test_a_japanese_customer_with_a_tokyo_address_prints_every_character(caplog):
    invoice = invoice_for("ja")

    with caplog.at_level(logging.WARNING, logger="invoices.pdf"):
        text = pdf_text(render_invoice_pdf(invoice))

    assert "株式会社サクラ" in text.splitlines()
    assert "丸の内一丁目1番1号" in text.splitlines()
    assert "千代田区" in text.splitlines()
    assert "100-0005 東京都" in text.splitlines()
    assert "Japan" in text.splitlines()
    assert "クラウド利用料（標準プラン） 1 100.00 100.00" in text.splitlines()
    assert ours(caplog) == []
    assert invoice_pdf_missing_scripts(invoice) == ()


@needs_fonts
@pytest.mark.parametrize("key", ["ar", "he"])
def test_an_arabic_and_a_hebrew_address_print_every_character(key, caplog):
    invoice = invoice_for(key)

    with caplog.at_level(logging.WARNING, logger="invoices.pdf"):
        text = pdf_text(render_invoice_pdf(invoice))

    for part in printed_parts(key):
        assert_printed(text, part)
    assert CUSTOMERS[key]["name"] in text.splitlines()
    assert CUSTOMERS[key]["description"] in text
    assert ours(caplog) == []


@needs_fonts
@pytest.mark.parametrize("key", ["zh", "ko", "ru", "el"])
def test_chinese_korean_cyrillic_and_greek_names_addresses_and_lines_print(key):
    # Each customer's invoice carries a line in every other script too.
    others = " / ".join(CUSTOMERS[other]["description"] for other in ("zh", "ko", "ru", "el"))
    invoice = invoice_for(key, usage=others)

    text = pdf_text(render_invoice_pdf(invoice))

    assert CUSTOMERS[key]["name"] in text.splitlines()
    for part in printed_parts(key):
        assert_printed(text, part)
    assert_printed(text, others)
    assert "10 1.00 10.00" in text


@needs_fonts
def test_a_credit_note_prints_hebrew_and_japanese_lines_and_its_customer():
    invoice = invoice_for("he", usage="データ転送量")
    base, usage = invoice.lines.order_by("position")
    note = credit_note_issue(
        invoice=invoice,
        lines=[
            CreditLineInput(invoice_line=base.pk, amount=D("40.00")),
            CreditLineInput(invoice_line=usage.pk, amount=D("10.00")),
        ],
        reason=CreditNote.ORDER_CHANGE,
        memo="החזר חלקי — 一部返金",
        now=DEC_5,
    )

    text = pdf_text(render_credit_note_pdf(note))

    for part in [*printed_parts("he"), "データ転送量", "החזר חלקי — 一部返金"]:
        assert_printed(text, part)
    assert "データ転送量 10.00" in text.splitlines()


# Direction and language: what WeasyPrint is told.


def test_right_to_left_text_is_marked_as_dir_auto_would_mark_it():
    assert text_direction(ARABIC["name"]) == "rtl"
    assert text_direction(HEBREW["address"]["line1"]) == "rtl"
    # The first strong character decides, as for dir="auto": digits are neutral.
    assert text_direction("123 " + ARABIC["address"]["line1"]) == "rtl"
    assert text_direction("Acme / " + ARABIC["name"]) == "ltr"
    assert text_direction("12345") == "ltr"
    assert str(script_attrs(ARABIC["name"])) == ' dir="rtl"'
    assert str(script_attrs(JAPANESE["name"])) == ' lang="ja"'
    assert str(script_attrs(CHINESE["name"])) == ' lang="zh"'
    assert str(script_attrs(KOREAN["name"])) == ' lang="ko"'
    assert script_attrs("Acme Inc") == ""
    assert script_attrs(RUSSIAN["name"]) == ""
    assert cjk_language(GREEK["name"]) == ""


def test_each_line_of_a_mixed_address_reads_in_its_own_direction():
    contact = "شارع الملك فهد 123\nbilling@example.sa"

    assert isolate_lines(contact) == (
        "\u2068شارع الملك فهد 123\u2069\n\u2068billing@example.sa\u2069"
    )
    # Text with no right-to-left character is left as it is (its PDF unchanged).
    assert isolate_lines("1 Rue de Rivoli\n75001 Paris") == "1 Rue de Rivoli\n75001 Paris"


def test_the_pdf_marks_right_to_left_and_cjk_text_and_leaves_latin_text_alone():
    arabic = invoice_for("ar", usage="API requests")
    latin = customer_create(
        external_id="latin", name="Acme SARL", currency="EUR", address={"city": "Paris"}
    )
    latin_invoice = invoice_finalize(
        invoice=period_draft(latin, [LineInput("base_fee", "Pro", None, D(1), D(9), D(9))]),
        now=DEC_2,
    )

    html = pdf._invoice_page(arabic)[0]
    latin_html = pdf._invoice_page(latin_invoice)[0]

    assert f'<p class="name" dir="rtl">{ARABIC["name"]}</p>' in html
    assert f'<td dir="rtl">{ARABIC["description"]}</td>' in html
    assert '<p class="contact" dir="rtl">\u2068شارع الملك فهد 123\u2069' in html
    assert "<td>API requests</td>" in html
    assert "dir=" not in latin_html and "lang=" not in latin_html.split("<body>")[1]
    assert "\u2068" not in latin_html


# Text no font has: logged and shown, with what to install.


def dejavu_only(tmp_path) -> FontCoverage:
    """The fonts of a machine with DejaVu only (no Noto): a fontconfig of its own."""
    if not DEJAVU.is_dir():
        pytest.skip(f"DejaVu fonts not found in {DEJAVU}")
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">'
        f"<fontconfig><dir>{DEJAVU}</dir><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    return FontCoverage.from_fontconfig(config)


def test_without_the_cjk_fonts_japanese_is_named_with_what_to_install(tmp_path):
    coverage = dejavu_only(tmp_path)

    missing = coverage.missing(f"{JAPANESE['name']} {JAPANESE['address']['line1']}")

    assert [script.name for script in missing] == ["Han", "Hiragana", "Katakana"]
    assert missing_scripts_text(missing) == (
        "Chinese, Japanese or Korean (Han), Japanese (Hiragana), Japanese (Katakana)"
        " — install fonts-noto-cjk"
    )
    # DejaVu has Arabic, Hebrew, Cyrillic and Greek; spaces and bidi marks need none.
    other_scripts = " ".join(printed_parts("ar") + printed_parts("he") + printed_parts("ru"))
    assert coverage.missing(other_scripts + printed_parts("el")[0] + "\u2068\u2069\u00a0") == ()
    assert coverage.missing_characters("サクラ") == frozenset("サクラ")


def test_a_document_with_text_no_font_has_is_logged_and_named_on_its_admin_pages(
    admin_client, caplog, tmp_path, monkeypatch
):
    # given a machine whose fonts lack Japanese, and a Japanese customer
    monkeypatch.setattr(pdf, "installed_fonts", lambda: dejavu_only(tmp_path))
    invoice = invoice_for("ja")
    base = invoice.lines.order_by("position").first()
    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=base.pk, amount=D("10.00"))],
        reason=CreditNote.OTHER,
        now=DEC_5,
    )

    # when its PDFs are rendered and its pages opened
    with caplog.at_level(logging.WARNING, logger="invoices.pdf"):
        render_invoice_pdf(invoice)
        render_credit_note_pdf(note)
    invoice_page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/")
    note_page = admin_client.get(f"/admin/invoices/creditnote/{note.pk}/change/")

    # then the log names each document and the scripts, the pages what to install
    messages = ours(caplog)
    assert messages == [
        f"{invoice.number}: its PDF lacks fonts for Han/Hiragana/Katakana "
        "(Chinese, Japanese or Korean (Han), Japanese (Hiragana), Japanese (Katakana)"
        " — install fonts-noto-cjk); those characters print as empty boxes",
        f"{note.number}: its PDF lacks fonts for Han/Hiragana/Katakana "
        "(Chinese, Japanese or Korean (Han), Japanese (Hiragana), Japanese (Katakana)"
        " — install fonts-noto-cjk); those characters print as empty boxes",
    ]
    assert {record.levelname for record in caplog.records if record.name == "invoices.pdf"} == {
        "WARNING"
    }
    for page in (invoice_page, note_page):
        assert page.status_code == 200
        assert (
            "This PDF lacks fonts for: Chinese, Japanese or Korean (Han), Japanese (Hiragana), "
            "Japanese (Katakana) — install fonts-noto-cjk"
        ) in page.content.decode()


def test_a_rare_script_without_any_installed_font_is_logged_by_the_real_fonts(admin_client, caplog):
    if not installed_fonts().missing(KHITAN):
        pytest.skip("this machine has a font for Khitan Small Script")
    invoice = invoice_for("ru", usage=f"Khitan {KHITAN}")

    with caplog.at_level(logging.WARNING, logger="invoices.pdf"):
        content = render_invoice_pdf(invoice)
    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()

    assert content.startswith(b"%PDF")
    assert ours(caplog) == [
        f"{invoice.number}: its PDF lacks fonts for Khitan Small Script (Khitan Small Script"
        " — install fonts-noto-core or fonts-noto-extra); those characters print as empty boxes"
    ]
    assert "This PDF lacks fonts for: Khitan Small Script" in page
    assert unicodedata.name(KHITAN[0]).startswith("KHITAN SMALL SCRIPT")


def test_a_document_whose_every_character_has_a_font_says_so_on_its_page(admin_client):
    invoice = invoice_for("ru")

    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()

    assert "Every character of this PDF has a font." in page
    assert "lacks fonts" not in page
