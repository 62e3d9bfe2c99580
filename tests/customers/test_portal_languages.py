"""The portal in the customer's language, and what it calls invoiced.

- Issue 48: right after subscribing, the start invoice is a draft (the grace
  before it is issued): the portal said "Of which invoiced already 19.99" above
  "No invoices yet". A draft's part of the period is now "on an upcoming
  invoice, not yet issued", the draft listed as such, and the figures still add
  up to the period statement's.
- Issue 49: the portal in English, French or German (the customer's locale, or
  the reader's choice with the switch, kept in a cookie), with the same period
  dates and amounts as the customer's PDF invoice read back as text; every fixed
  phrase of the portal's templates and view in both catalogs."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO
from pathlib import Path

import pytest
import time_machine
from pypdf import PdfReader

from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from customers.views import LANGUAGE_COOKIE
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from invoices.services import invoice_finalize
from plans.services import tax_rate_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)
DASH = "\N{EN DASH}"


def spaced(text: str) -> str:
    """Text with its no-break spaces read as spaces and its runs of spaces as one."""
    text = text.replace("\N{NO-BREAK SPACE}", " ").replace("\N{NARROW NO-BREAK SPACE}", " ")
    return " ".join(text.split())


def words(html: str) -> str:
    """A page's text, its tags read as spaces."""
    return spaced(re.sub(r"<[^>]+>", " ", html))


def pdf_text(content: bytes) -> str:
    return spaced(" ".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages))


def open_portal(client, customer, query: str = ""):
    token = portal_session_create(customer=customer, now=NOV_11).token
    with time_machine.travel(NOV_11, tick=False):
        return client.get(f"/portal/{token}/{query}")


# issue 48: a draft is upcoming, not invoiced


def test_right_after_subscribing_the_start_invoice_is_upcoming_not_invoiced(client):
    # given: a plan at 19.99 a month, subscribed on 1 Nov; its start invoice is a draft
    acme = CustomerFactory(external_id="acme")
    subscribe(acme, published_version("starter", base_fee=D("19.99")), NOV_1)
    start_invoice = Invoice.objects.get(customer=acme, reason=Invoice.START)
    assert start_invoice.status == Invoice.DRAFT

    # when: the customer opens the portal
    page = open_portal(client, acme)

    # then: the 19.99 is on an upcoming invoice, not invoiced already, and the
    # list shows that invoice as upcoming, with its amount (no number, no PDF)
    context, html = page.context, page.content.decode()
    text = words(html)
    assert (context["subtotal"], context["invoiced"], context["upcoming"]) == (
        "19.99",
        None,
        "19.99",
    )
    assert "Of which invoiced already" not in text and "No invoices yet." not in text
    assert "Of which on an upcoming invoice, not yet issued 19.99" in text
    assert "Upcoming, not yet issued 19.99 USD" in text
    [row] = context["invoices"]
    assert (row["number"], row["status"], row["total"], row["reason"]) == (
        "",
        "Upcoming, not yet issued",
        "19.99",
        "Subscription start",
    )
    assert f"invoices/{start_invoice.pk}/pdf" not in html

    # when: the grace is over and the invoice is issued
    invoice_finalize(invoice=start_invoice, now=NOV_11, collect=False)
    page = open_portal(client, acme)

    # then: the same 19.99 is invoiced already, on a numbered invoice with its PDF
    context = page.context
    assert (context["subtotal"], context["invoiced"], context["upcoming"]) == (
        "19.99",
        "19.99",
        None,
    )
    [row] = context["invoices"]
    start_invoice.refresh_from_db()
    assert (row["number"], row["status"]) == (start_invoice.number, "Open")
    assert f"invoices/{start_invoice.pk}/pdf" in page.content.decode()


def test_invoiced_upcoming_and_usage_not_invoiced_add_up_to_the_subtotal(client):
    # given: a plan change on 16 Nov leaves two drafts (start, plan change) of which
    # only the start invoice is issued; usage after the change is not invoiced yet
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    v1 = published_version("basic", base_fee=D("30.00"), charges=(overage("prompts", 10, "0.50"),))
    v2 = PlanVersionFactory(
        plan=v1.plan, base_fee=D("45.00"), charges=(overage("prompts", 10, "0.25"),)
    )
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, v1, NOV_1)
    with time_machine.travel(NOV_1, tick=False):
        invoice_finalize(
            invoice=Invoice.objects.get(customer=acme, reason=Invoice.START),
            now=NOV_1,
            collect=False,
        )
    at = datetime(2026, 11, 5, tzinfo=UTC)
    events = [
        {"id": f"a{i}", "customer": "acme", "event_name": "prompt", "timestamp": at.isoformat()}
        for i in range(14)
    ]
    assert events_ingest(events=events, now=at).accepted == 14
    change = datetime(2026, 11, 6, tzinfo=UTC)
    with time_machine.travel(change, tick=False):
        subscription_change_plan(
            subscription=subscription, version=v2, effective="immediate", at=change
        )
    later = datetime(2026, 11, 8, tzinfo=UTC)
    events = [
        {"id": f"b{i}", "customer": "acme", "event_name": "prompt", "timestamp": later.isoformat()}
        for i in range(12)
    ]
    assert events_ingest(events=events, now=later).accepted == 12

    # when: the portal is read on 11 Nov
    page = open_portal(client, acme)

    # then: 5.00 invoiced (the start's 30.00 less the credit note for 25 of 30 days
    # unused, 25.00: billing.invoicing.unused_time); the plan change's draft bills
    # 4 over 10 at 0.50 = 2.00 plus 25 days of 45.00 = 37.50: 39.50 upcoming; 2 over
    # 10 at 0.25 = 0.50 not invoiced yet; 45.00 in all
    context = page.context
    figures = [context[figure] for figure in ("subtotal", "invoiced", "upcoming")]
    assert figures == ["45.00", "5.00", "39.50"]
    [usage] = context["features"]
    assert usage["amount"] == "0.50"
    assert D(figures[1]) + D(figures[2]) + D(usage["amount"]) == D(figures[0])
    [draft] = [row for row in context["invoices"] if row["status"] == "Upcoming, not yet issued"]
    assert (draft["reason"], draft["total"]) == ("Plan change", "39.50")


# issue 49: the portal in the customer's language, as its PDF


@pytest.fixture
def vat(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    tax_rate_create(code="vat_20", name="VAT", percentage=D("20.00"), country="FR")


def european(external_id: str, locale: str, zone: str) -> tuple:
    """A customer in `locale` and `zone`, on 1,234.50 EUR a month plus 20% VAT
    from 1 Nov, its start invoice issued that day."""
    customer = CustomerFactory(
        external_id=external_id,
        name="Société Acme" if locale == "fr" else "Acme GmbH",
        currency="EUR",
        locale=locale,
        timezone_name=zone,
        address={"line1": "1 rue X", "postal_code": "75001", "city": "Paris", "country": "FR"},
        tax_rates=["vat_20"],
    )
    plan = published_version(f"pro-{locale}", base_fee=D("1234.50"), currency="EUR")
    subscribe(customer, plan, NOV_1)
    invoice = invoice_finalize(
        invoice=Invoice.objects.get(customer=customer, reason=Invoice.START),
        now=NOV_1,
        collect=False,
    )
    return customer, invoice


LANGUAGE_CASES = [
    # locale, zone, the period as the PDF prints it, its words around figures
    (
        "fr",
        "Europe/Paris",
        f"1 nov. {DASH} 30 nov. 2026",
        {
            "period": "Période",
            "subtotal": "Sous-total",
            "total": "Total EUR",
            "issued": "Date d'émission",
            "due": "Date d'échéance",
        },
        ["Dépenses de la période (EUR)", "Dont déjà facturé", "Factures", "Statut"],
    ),
    (
        "de",
        "Europe/Berlin",
        f"1. Nov. {DASH} 30. Nov. 2026",
        {
            "period": "Zeitraum",
            "subtotal": "Zwischensumme",
            "total": "Gesamt EUR",
            "issued": "Ausstellungsdatum",
            "due": "Fälligkeitsdatum",
        },
        ["Ausgaben in diesem Zeitraum (EUR)", "Davon bereits in Rechnung gestellt", "Rechnungen"],
    ),
]


@pytest.mark.parametrize(
    ("locale", "zone", "period", "pdf_words", "portal_words"),
    LANGUAGE_CASES,
    ids=[case[0] for case in LANGUAGE_CASES],
)
def test_the_portal_reads_the_period_dates_and_amounts_of_the_customers_pdf(
    client, vat, locale, zone, period, pdf_words, portal_words
):
    customer, invoice = european(f"acme-{locale}", locale, zone)

    # when: the customer opens the portal, and its invoice's PDF is read back
    page = open_portal(client, customer)
    html = spaced(page.content.decode())
    pdf = pdf_text(render_invoice_pdf(invoice))

    # then: the page is in the customer's language
    assert f'<html lang="{locale}">' in html
    for words in portal_words:
        assert words in html, words
    assert "Spend this period" not in html and "Invoices</h2>" not in html
    # and its invoice row reads the PDF's period, dates and amounts
    [row] = page.context["invoices"]
    assert row["number"] == invoice.number
    assert spaced(row["period"]) == period
    assert f"{pdf_words['period']} {period}" in pdf, pdf
    assert f"{pdf_words['issued']} {spaced(row['date'])}" in pdf
    assert f"{pdf_words['due']} {spaced(row['due'])}" in pdf
    total = spaced(row["total"])
    assert total == {"fr": "1 481,40", "de": "1.481,40"}[locale]
    assert f"{pdf_words['total']} {total}" in pdf
    # and the period's spend so far is the PDF's subtotal (before tax), invoiced already
    subtotal = spaced(page.context["subtotal"])
    assert subtotal == {"fr": "1 234,50", "de": "1.234,50"}[locale]
    assert spaced(page.context["invoiced"]) == subtotal
    assert f"{pdf_words['subtotal']} {subtotal}" in pdf
    # and the current period at the top is the same days
    assert f"{period} ({zone})" in html


def test_the_switch_changes_the_language_keeps_the_link_and_is_remembered(client, vat):
    customer, _ = european("acme-fr", "fr", "Europe/Paris")

    # given: the French page offers English and German, on the same signed link
    page = open_portal(client, customer)
    html = page.content.decode()
    assert 'href="?lang=de"' in html and 'href="?lang=en"' in html
    assert LANGUAGE_COOKIE not in page.cookies

    # when: the reader picks German
    page = open_portal(client, customer, "?lang=de")

    # then: the page is German, its figures written the German way, and kept
    assert page.status_code == 200
    assert "Rechnungen" in page.content.decode()
    assert spaced(page.context["subtotal"]) == "1.234,50"
    assert page.cookies[LANGUAGE_COOKIE].value == "de"
    assert page.cookies[LANGUAGE_COOKIE]["path"] == "/portal/"
    # a new link opened later in the same browser reads German too
    page = open_portal(client, customer)
    assert page.context["language"] == "de"
    # its refusals too
    assert "Dieser Link ist nicht gültig" in client.get("/portal/nonsense/").content.decode()

    # when: a language the portal is not written in is asked for
    client.cookies.clear()
    page = open_portal(client, customer, "?lang=xx")

    # then: it is the customer's own, and nothing is remembered
    assert page.context["language"] == "fr"
    assert LANGUAGE_COOKIE not in page.cookies


# every fixed phrase in both catalogs

BLOCK = re.compile(r"{% blocktranslate(?: [^%]*)? %}(.*?){% endblocktranslate %}", re.S)
TRANSLATE = re.compile(r'{% translate "([^"]+)" %}')
VARIABLE = re.compile(r"{{ (\w+) }}")
LAZY = re.compile(r'gettext_lazy\("([^"]+)"\)|\b_\("([^"]+)"\)')


def portal_phrases() -> set[str]:
    phrases = set()
    for template in (ROOT / "templates" / "portal").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        phrases |= set(TRANSLATE.findall(text))
        phrases |= {VARIABLE.sub(r"%(\1)s", block) for block in BLOCK.findall(text)}
    views = (ROOT / "customers" / "views.py").read_text(encoding="utf-8")
    phrases |= {a or b for a, b in LAZY.findall(views)}
    return phrases


@pytest.mark.parametrize("locale", ["fr", "de", "es", "ja"])
def test_every_phrase_of_the_portal_is_in_the_catalog(locale):
    catalog = (ROOT / "locale" / locale / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    msgids = set(re.findall(r'^msgid "(.*)"$', catalog, re.M))
    phrases = portal_phrases()

    assert len(phrases) > 60
    assert sorted(phrases - msgids) == []
