"""What the invoice PDFs' words and numbers are made of: the locale rule for
amounts, numbers, percentages and dates (common.customer_text), addresses laid out
by country (invoices.pdf_parties.postal_address), and the translation catalogs: complete,
their placeholders kept, and compiled by scripts/compilemessages.py into .mo
files that gettext reads exactly as GNU msgfmt's."""

import gettext
import importlib.util
import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common import customer_text
from common.customer_text import CustomerText
from invoices.pdf_parties import postal_address

ROOT = Path(__file__).resolve().parents[2]
NBSP = "\N{NO-BREAK SPACE}"


def _compiler():
    spec = importlib.util.spec_from_file_location(
        "compilemessages", ROOT / "scripts" / "compilemessages.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compilemessages = _compiler()


# numbers, amounts, dates


def _text(locale, zone="UTC"):
    return CustomerText(customer_text.language(locale), ZoneInfo(zone))


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "1,234.50"),
        ("fr", f"1{NBSP}234,50"),
        ("de", "1.234,50"),
        ("es", "1.234,50"),
        ("ja", "1,234.50"),
        ("it", "1,234.50"),
    ],
)
def test_an_amount_is_grouped_and_pointed_as_the_language_writes_it(locale, expected):
    assert _text(locale).money(D("1234.5"), "EUR") == expected


def test_amounts_keep_their_currencys_digits_and_their_sign():
    assert _text("de").money(D("-1234567.5"), "USD") == "-1.234.567,50"
    assert _text("fr").money(D(6700), "JPY") == f"6{NBSP}700"
    assert _text("fr").money(D("0.0000025"), "USD") == "0,0000025"
    assert _text("en").money(D("-0.00"), "USD") == "0.00"
    assert _text("en").money_text(D("1234.5"), "USD") == f"1,234.50{NBSP}USD"
    assert _text("ja").money_text(D(1235), "JPY") == f"1,235{NBSP}JPY"
    assert _text("es").money_text(D("1234.5"), "EUR") == f"1.234,50{NBSP}EUR"


def test_numbers_and_percentages():
    assert _text("en").quantity(D("13800000.000")) == "13,800,000"
    assert _text("de").quantity(D("0.05000")) == "0,05"
    assert _text("en").percent(D("20.00")) == "20%"
    assert _text("fr").percent(D("5.5000")) == f"5,5{NBSP}%"
    assert _text("de").percent(D("19")) == f"19{NBSP}%"
    assert _text("es").percent(D("21")) == f"21{NBSP}%"
    assert _text("ja").percent(D("10")) == "10%"
    assert _text("es").quantity(D("13800000")) == "13.800.000"


def test_a_date_is_the_customers_day_in_its_language():
    # 00:30 UTC on Dec 1st is still November 30th in Los Angeles
    moment = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)

    assert _text("en", "America/Los_Angeles").day(moment) == "30 Nov 2026"
    assert _text("fr", "America/Los_Angeles").day(moment) == "30 nov. 2026"
    assert _text("de", "Europe/Berlin").day(moment) == "1. Dez. 2026"
    # French months whose abbreviations would read alike are told apart.
    assert _text("fr").day(datetime(2026, 6, 2, tzinfo=UTC)) == "2 juin 2026"
    assert _text("fr").day(datetime(2026, 7, 2, tzinfo=UTC)) == "2 juil. 2026"
    assert _text("en", "America/Los_Angeles").day(None) == ""
    # Spanish and Japanese, which only customers read.
    assert _text("es", "Europe/Madrid").day(moment) == "1 dic 2026"
    assert _text("ja", "Asia/Tokyo").day(datetime(2026, 11, 27, tzinfo=UTC)) == "2026年11月27日"
    november = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert _text("ja").dates(*november) == "11月1日～2026年11月30日"  # noqa: RUF001
    assert _text("es").dates(*november) == "1 nov \N{EN DASH} 30 nov 2026"


def test_the_document_language_falls_back_to_english():
    values = ("fr", "de-AT", "FR_ca", "es-MX", "ja_JP", "it", None, 3)
    assert [customer_text.language(value) for value in values] == [
        "fr",
        "de",
        "fr",
        "es",
        "ja",
        "en",
        "en",
        "en",
    ]


def test_a_zone_this_system_does_not_know_reads_as_utc():
    assert [str(customer_text.zone(name)) for name in ("Asia/Tokyo", "", None, "Mars/Base")] == [
        "Asia/Tokyo",
        "UTC",
        "UTC",
        "UTC",
    ]


# addresses


@pytest.mark.parametrize(
    ("address", "locale", "expected"),
    [
        (
            {
                "line1": "42 Harbour Road",
                "line2": None,
                "city": "Seattle",
                "state": "WA",
                "postal_code": "98101",
                "country": "US",
            },
            "en",
            ["42 Harbour Road", "Seattle, WA 98101"],
        ),
        (
            {
                "line1": "10 Downing Street",
                "city": "London",
                "postal_code": "SW1A 2AA",
                "country": "GB",
            },
            "en",
            ["10 Downing Street", "London", "SW1A 2AA", "United Kingdom"],
        ),
        (
            {"line1": "12 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"},
            "fr",
            ["12 rue de Rivoli", "75001 Paris", "France"],
        ),
        (
            {"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
            "fr",
            ["Hauptstraße 1", "10115 Berlin", "Allemagne"],
        ),
        (
            {"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
            "de",
            ["Hauptstraße 1", "10115 Berlin", "Deutschland"],
        ),
        # the older shapes: free-form keys, lines in a string or a list
        (
            {
                "line1": "42 Main Street",
                "postal_code": "94107",
                "city": "San Francisco",
                "attention": "Accounts payable",
            },
            "en",
            ["42 Main Street", "94107 San Francisco", "Accounts payable"],
        ),
        (
            "1 Example Street\nSpringfield, 12345\n",
            "en",
            ["1 Example Street", "Springfield, 12345"],
        ),
        (["Hauptstraße 1", " ", "10115 Berlin"], "de", ["Hauptstraße 1", "10115 Berlin"]),
        (None, "en", []),
    ],
)
def test_an_address_is_laid_out_by_its_country(address, locale, expected):
    assert postal_address(address, locale=locale, home_country="US") == expected


def test_an_address_in_the_sellers_country_has_no_country_line():
    address = {"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}

    assert postal_address(address, locale="de", home_country="DE") == [
        "Hauptstraße 1",
        "10115 Berlin",
    ]


# the catalogs and their compiler

CATALOGS = sorted((ROOT / "locale").glob("*/LC_MESSAGES/django.po"))
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def test_french_german_spanish_and_japanese_catalogs_exist():
    assert [path.parts[-3] for path in CATALOGS] == ["de", "es", "fr", "ja"]


@pytest.mark.parametrize("path", CATALOGS, ids=lambda path: path.parts[-3])
def test_every_string_is_translated_with_its_placeholders(path):
    entries = compilemessages.parse_po(path.read_text(encoding="utf-8"), str(path))
    messages = [entry for entry in entries if entry["msgid"]]

    assert len(messages) > 50
    for entry in messages:
        assert all(entry["msgstr"]) and not entry["fuzzy"], entry["msgid"]
        # A plural's forms each take the singular's placeholders or the plural's
        # (a singular form may name the count too).
        expected = [sorted(PLACEHOLDER.findall(entry["msgid"]))]
        if entry.get("msgid_plural"):
            expected.append(sorted(PLACEHOLDER.findall(entry["msgid_plural"])))
        for form in entry["msgstr"]:
            assert sorted(PLACEHOLDER.findall(form)) in expected, (entry["msgid"], form)


def test_the_compiled_catalog_reads_as_gettexts(tmp_path):
    po = tmp_path / "fr" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        "\n".join(
            [
                'msgid ""',
                'msgstr ""',
                '"Content-Type: text/plain; charset=UTF-8\\n"',
                '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"',
                "",
                "# a comment",
                'msgid "Invoice"',
                'msgstr "Facture"',
                "",
                'msgctxt "watermark"',
                'msgid "VOID"',
                'msgstr "ANNUL\u00c9E"',
                "",
                'msgid "%(days)d day"',
                'msgid_plural "%(days)d days"',
                'msgstr[0] "%(days)d jour"',
                'msgstr[1] "%(days)d jours"',
                "",
                'msgid ""',
                '"A long "',
                '"\\"quoted\\" one"',
                'msgstr "Une longue "',
                '"\\"citée\\""',
                "",
                "#, fuzzy",
                'msgid "Unsure"',
                'msgstr "Incertain"',
                "",
                'msgid "Untranslated"',
                'msgstr ""',
                "",
            ]
        ),
        encoding="utf-8",
    )

    assert compilemessages.compile_all([tmp_path]) == [po.with_suffix(".mo")]
    # unchanged: not written again
    assert compilemessages.compile_all([tmp_path]) == []

    with po.with_suffix(".mo").open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)
    assert catalog.gettext("Invoice") == "Facture"
    assert catalog.pgettext("watermark", "VOID") == "ANNULÉE"
    assert [catalog.ngettext("%(days)d day", "%(days)d days", n) for n in (1, 2)] == [
        "%(days)d jour",
        "%(days)d jours",
    ]
    assert catalog.gettext('A long "quoted" one') == 'Une longue "citée"'
    assert catalog.gettext("Unsure") == "Unsure"
    assert catalog.gettext("Untranslated") == "Untranslated"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
@pytest.mark.parametrize("path", CATALOGS, ids=lambda path: path.parts[-3])
def test_the_project_catalogs_compile_as_gnu_msgfmt_compiles_them(path, tmp_path):
    ours = compilemessages.mo_bytes(
        compilemessages.parse_po(path.read_text(encoding="utf-8"), str(path))
    )
    msgfmt = shutil.which("msgfmt")
    subprocess.run(  # noqa: S603 (our own catalog, GNU's msgfmt)
        [msgfmt, "--check-format", "-o", str(tmp_path / "gnu.mo"), str(path)], check=True
    )

    with (tmp_path / "gnu.mo").open("rb") as gnu:
        expected = gettext.GNUTranslations(gnu)._catalog
    (tmp_path / "ours.mo").write_bytes(ours)
    with (tmp_path / "ours.mo").open("rb") as mine:
        assert gettext.GNUTranslations(mine)._catalog == expected


def test_a_broken_catalog_is_refused_with_its_line(tmp_path):
    po = tmp_path / "de" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "Invoice"\nmsgstr Rechnung\n', encoding="utf-8")

    with pytest.raises(compilemessages.PoError, match=r"django.po:2: expected a quoted string"):
        compilemessages.compile_all([tmp_path])
    assert not po.with_suffix(".mo").exists()
