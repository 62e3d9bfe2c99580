"""Issue 91: a document's period is the span its lines bill (API.md, "Spend,
revenue and periods from the one statement"), on every page and in its
e-invoice's invoice period (BG-14), whose end is the period's last day.

- A cancellation on 28 Nov bills the usage of 1-28 Nov: its API, PDF, portal,
  admin page and e-invoices (Peppol UBL, Factur-X CII) say 1-28 Nov (they said
  the unused days 28-30 Nov, Peppol's PEPPOL-EN16931-R110).
- October's closing invoice bills October's usage and November's fee in
  advance: it spans 1 Oct - 30 Nov, each line keeps its own period inside it
  (the fee's November was outside the invoice period October, R111).

Driven as finance drives it (test_s36's sellers, customers and plans, usage
through the API, the close command, the cancel through the API), the clock
moved by time_machine; the e-invoices are those the issue wrote and validated
against the EN 16931 rules."""

from datetime import UTC, date, datetime
from decimal import Decimal as D
from importlib import import_module
from io import BytesIO
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from lxml import etree
from pypdf import PdfReader

from common.customer_text import CustomerText, last_day, part_range
from customers.portal import portal_session_create
from invoices.e_invoices.cii import RAM, RSM, UDT
from invoices.e_invoices.document import invoice_period, period_days
from invoices.e_invoices.ubl import CAC, CBC
from invoices.e_invoices.validation import CII, UBL_CREDIT_NOTE, UBL_INVOICE, validation_failures
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_invoice_pdf
from invoices.services import lines_span
from plans.rating import LineInput
from tests.factories import CustomerFactory, api_client, period_draft
from tests.invoices.test_s36_e_invoices import customers, plans, sellers

pytestmark = pytest.mark.django_db

service_period_fill = import_module(
    "invoices.migrations.0040_invoice_service_period"
).service_period_fill

DASH = "\N{EN DASH}"
NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
# The end of the 28th in Paris and Brussels: the usage of 1-28 Nov is billed,
# 29-30 Nov is not used.
NOV_28 = datetime(2026, 11, 28, 13, tzinfo=UTC)  # 14:00 in Paris
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1_0600 = datetime(2026, 11, 1, 6, tzinfo=UTC)
NS = {"cac": CAC, "cbc": CBC, "ram": RAM, "rsm": RSM, "udt": UDT}


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0


def subscribe(client, customer: str, start: str, when: datetime) -> int:
    with time_machine.travel(when, tick=False):
        created = client.post(
            "/api/v1/subscriptions",
            {"customer": customer, "plan": "studio", "start": start},
            format="json",
        )
    assert created.status_code == 201, created.content
    return created.json()["id"]


def use(client, customer: str, at: datetime, tokens: int) -> None:
    event = {
        "id": f"{customer}-{at.isoformat()}",
        "customer": customer,
        "event_name": "llm.tokens",
        "timestamp": at.isoformat(),
        "properties": {"tokens": tokens, "model": "gpt-4o", "token_type": "input"},
    }
    with time_machine.travel(at, tick=False):
        posted = client.post("/api/v1/events", {"events": [event]}, format="json")
    assert posted.status_code == 202 and posted.json()["accepted"] == 1, posted.json()


def pdf_text(content: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)
    return " ".join(text.replace("\N{NO-BREAK SPACE}", " ").split())


def words(html: str) -> str:
    return " ".join(html.replace("&nbsp;", " ").split())


def ubl_periods(xml: bytes) -> tuple[tuple[date, date], list[tuple[date, date]]]:
    """The UBL invoice's period (cac:InvoicePeriod, BG-14) and each line's (BG-26)."""
    root = etree.fromstring(xml)

    def period(element) -> tuple[date, date]:
        return (
            date.fromisoformat(element.findtext("cbc:StartDate", namespaces=NS)),
            date.fromisoformat(element.findtext("cbc:EndDate", namespaces=NS)),
        )

    [header] = root.findall("cac:InvoicePeriod", NS)
    lines = root.findall("cac:InvoiceLine/cac:InvoicePeriod", NS)
    assert len(lines) == len(root.findall("cac:InvoiceLine", NS))
    return period(header), [period(line) for line in lines]


def cii_periods(xml: bytes) -> tuple[tuple[date, date], list[tuple[date, date]]]:
    """The CII invoice's BillingSpecifiedPeriod (BG-14) and each line's (BG-26)."""
    root = etree.fromstring(xml)

    def day(element, name: str) -> date:
        text = element.findtext(f"ram:{name}/udt:DateTimeString", namespaces=NS)
        return datetime.strptime(text, "%Y%m%d").date()

    def period(element) -> tuple[date, date]:
        return day(element, "StartDateTime"), day(element, "EndDateTime")

    transaction = "rsm:SupplyChainTradeTransaction/"
    [header] = root.findall(
        transaction + "ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod", NS
    )
    items = root.findall(transaction + "ram:IncludedSupplyChainTradeLineItem", NS)
    lines = [
        item.find("ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod", NS)
        for item in items
    ]
    assert all(line is not None for line in lines)
    return period(header), [period(line) for line in lines]


def assert_lines_inside(header: tuple[date, date], lines: list[tuple[date, date]]) -> None:
    """PEPPOL-EN16931-R110 / R111: no line's period starts before the invoice
    period's start or ends after its end."""
    for start, end in lines:
        assert header[0] <= start <= end <= header[1], (header, (start, end))


@pytest.fixture
def cancelled(django_capture_on_commit_callbacks):
    """Lumière (Factur-X) and Bruxelles (Peppol) on Studio from 1 Nov (Paris and
    Brussels), 1,000,000 tokens on 10 Nov (100.00), each cancelled at once on
    28 Nov: their cancellation invoices."""
    client = api_client()
    sellers()
    customers()
    plans(client)
    cancelled = {}
    for customer in ("lumiere", "bruxelles"):
        subscription = subscribe(client, customer, "2026-11-01T00:00:00+01:00", NOV_10)
        use(client, customer, NOV_10, 1_000_000)
        # Finalized once the cancel commits, as it is without a grace.
        with (
            time_machine.travel(NOV_28, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            answer = client.post(
                f"/api/v1/subscriptions/{subscription}/cancel",
                {"effective": "immediate"},
                format="json",
            )
        assert answer.status_code == 200, answer.content
        cancelled[customer] = Invoice.objects.get(
            customer__external_id=customer, reason=Invoice.CANCEL
        )
    return client, cancelled


def period_in_pdf(text: str) -> str:
    """The PDF's header period: what follows "Période" up to "Client"."""
    return text.split("Période ", 1)[1].split(" Client ", 1)[0]


def period_in_admin(page: str) -> str:
    """The admin page's Period field, its zone named."""
    return page.split("<label>Period:</label>", 1)[1].split("</div>", 1)[0].split(">")[-1].strip()


def test_a_cancellation_on_the_28th_says_1_to_28_nov_everywhere(cancelled, admin_client, client):
    api, invoices = cancelled
    invoice, peppol = invoices["lumiere"], invoices["bruxelles"]
    assert (invoice.status, invoice.subtotal) == (Invoice.FINALIZED, D("100.00"))
    assert (invoice.e_invoice_format, peppol.e_invoice_format) == ("facturx", "peppol")
    # What the close keys it by stays the cancel's moment to the period's end;
    # its one line bills the usage of 1 Nov (Paris) to the cancel.
    paris_nov_1 = datetime(2026, 10, 31, 23, tzinfo=UTC)
    paris_dec_1 = datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert (invoice.period_start, invoice.period_end) == (NOV_28, paris_dec_1)
    [usage] = invoice.lines.all()
    assert (usage.period_start, usage.period_end) == (paris_nov_1, NOV_28)

    # when: each surface is read
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    pdf = pdf_text(render_invoice_pdf(invoice))
    token = portal_session_create(customer=invoice.customer, now=NOV_28).token
    with time_machine.travel(NOV_28, tick=False):
        portal = client.get(f"/portal/{token}/")
    [row] = [row for row in portal.context["invoices"] if row["number"] == invoice.number]
    admin = words(
        admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    )
    cii, ubl = invoice.e_invoice_xml.encode(), peppol.e_invoice_xml.encode()
    assert validation_failures(cii, CII) == []
    assert validation_failures(ubl, UBL_INVOICE) == []

    # then: each says 1-28 Nov (they said the unused 29-30 Nov), the e-invoices'
    # periods ending on the 28th (inclusive), their line inside it
    nov_1_28 = (date(2026, 11, 1), date(2026, 11, 28))
    assert {
        "api": (body["period_start"], body["period_end"]),
        "pdf": period_in_pdf(pdf),
        "portal": row["period"],
        "admin": period_in_admin(admin),
        "cii": cii_periods(cii),
        "ubl": ubl_periods(ubl),
    } == {
        "api": ("2026-10-31T23:00:00Z", "2026-11-28T13:00:00Z"),
        "pdf": f"1 nov. {DASH} 28 nov. 2026",
        "portal": f"1 nov. {DASH} 28 nov. 2026",
        "admin": f"1 Nov {DASH} 28 Nov 2026 (Europe/Paris)",
        "cii": (nov_1_28, [nov_1_28]),
        "ubl": (nov_1_28, [nov_1_28]),
    }
    assert f'<td class="period">1 nov. {DASH} 28 nov. 2026</td>' in portal.content.decode()


@pytest.fixture
def closed():
    """Lumière and Bruxelles on Studio from 1 Oct, 1,000,000 tokens on 20 Oct,
    October closed on 1 Nov: usage 100.00 in arrears, November's 39.90 in advance."""
    client = api_client()
    sellers()
    customers()
    plans(client)
    for customer in ("lumiere", "bruxelles"):
        subscribe(client, customer, "2026-10-01T00:00:00+02:00", OCT_1)
        use(client, customer, OCT_20, 1_000_000)
    with time_machine.travel(NOV_1_0600, tick=False):
        call_command("close_periods")
    return client


def closing_invoice(customer: str) -> Invoice:
    return Invoice.objects.get(customer__external_id=customer, reason=Invoice.PERIOD)


def test_a_closing_invoice_spans_its_usage_and_the_fee_in_advance(closed, admin_client):
    invoice, peppol = closing_invoice("lumiere"), closing_invoice("bruxelles")
    assert (invoice.status, invoice.subtotal, invoice.total) == (
        Invoice.FINALIZED,
        D("139.90"),
        D("167.88"),
    )
    assert (invoice.e_invoice_format, peppol.e_invoice_format) == ("facturx", "peppol")
    paris_oct_1 = datetime(2026, 9, 30, 22, tzinfo=UTC)
    paris_nov_1 = datetime(2026, 10, 31, 23, tzinfo=UTC)
    paris_dec_1 = datetime(2026, 11, 30, 23, tzinfo=UTC)
    # The close's key is October; each line keeps its own period.
    assert (invoice.period_start, invoice.period_end) == (paris_oct_1, paris_nov_1)
    periods = {line.kind: (line.period_start, line.period_end) for line in invoice.lines.all()}
    assert periods == {
        "overage": (paris_oct_1, paris_nov_1),
        "base_fee": (paris_nov_1, paris_dec_1),
    }

    # when: each surface is read
    body = closed.get(f"/api/v1/invoices/{invoice.pk}").json()
    pdf = pdf_text(render_invoice_pdf(invoice))
    admin = words(
        admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    )
    cii, ubl = invoice.e_invoice_xml.encode(), peppol.e_invoice_xml.encode()
    assert validation_failures(cii, CII) == []
    assert validation_failures(ubl, UBL_INVOICE) == []

    # then: the document spans October and November (its end the 30th, not 1
    # Dec), each line keeps its own period inside it (R111: November's fee was
    # outside the invoice period October)
    october = (date(2026, 10, 1), date(2026, 10, 31))
    november = (date(2026, 11, 1), date(2026, 11, 30))
    both = (date(2026, 10, 1), date(2026, 11, 30))
    cii_header, cii_lines = cii_periods(cii)
    ubl_header, ubl_lines = ubl_periods(ubl)
    assert {
        "api": (body["period_start"], body["period_end"]),
        "pdf": period_in_pdf(pdf),
        "admin": period_in_admin(admin),
        "cii": (cii_header, sorted(cii_lines)),
        "ubl": (ubl_header, sorted(ubl_lines)),
    } == {
        "api": ("2026-09-30T22:00:00Z", "2026-11-30T23:00:00Z"),
        "pdf": f"1 oct. {DASH} 30 nov. 2026",
        "admin": f"1 Oct {DASH} 30 Nov 2026 (Europe/Paris)",
        "cii": (both, [october, november]),
        "ubl": (both, [october, november]),
    }
    assert_lines_inside(cii_header, cii_lines)
    assert_lines_inside(ubl_header, ubl_lines)
    # the fee's own period is printed under it on the PDF
    assert f"1 nov. {DASH} 30 nov. 2026" in pdf


# The last day a document, a page and an e-invoice say for [start, end): one rule.
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("start", "end", "zone", "last"),
    [
        # a whole month: the last day is the 30th, never the day after (1 Dec)
        (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC), PARIS, 30),
        # usage up to a cancel at 14:00 on the 28th: the 28th was billed
        (datetime(2026, 10, 31, 23, tzinfo=UTC), NOV_28, PARIS, 28),
        # usage up to a cancel at the end of the 28th (midnight in Paris)
        (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 28, 23, tzinfo=UTC), PARIS, 28),
        # a whole month cut at UTC midnights, read in Paris across the end of
        # summer time (02:00 to 01:00): the month ends on its last day
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), PARIS, None),
        # a period cut at its anchor (20:00 in New York): the day holding its end
        # starts the next period
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, 1, tzinfo=UTC), NEW_YORK, 29),
    ],
    ids=[
        "whole-month",
        "cancel-during-a-day",
        "cancel-end-of-day",
        "utc-month-in-paris",
        "anchored-period",
    ],
)
def test_the_last_day_is_the_same_on_pages_and_e_invoices(start, end, zone, last):
    text = CustomerText(locale="en", zone=zone, currency="EUR")
    expected = date(2026, 11, last) if last else date(2026, 10, 31)
    assert last_day(start, end, zone) == expected
    assert period_days(start, end, text)[1] == expected


def test_an_invoice_stamps_the_span_of_its_lines_and_0040_fills_the_drafts_before():
    customer = CustomerFactory(external_id="span", timezone_name="Europe/Paris")
    oct_1, nov_1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    dec_1 = datetime(2026, 12, 1, tzinfo=UTC)
    usage = LineInput("usage", "Tokens", "tokens", D(10), D(1), D(10), oct_1, nov_1)
    fee = LineInput("base_fee", "Pro", None, D(1), D("39.90"), D("39.90"), nov_1, dec_1)
    undated = LineInput("base_fee", "Pack", None, D(1), D(5), D(5))
    closing = period_draft(customer, [usage, fee, undated], start=oct_1, end=nov_1)
    purchase = period_draft(customer, [undated], start=NOV_28, end=NOV_28)
    # written: the span of the lines that name a period; none for a purchase
    assert (closing.service_start, closing.service_end) == (oct_1, dec_1)
    assert closing.document_period == (oct_1, dec_1)
    assert (closing.period_start, closing.period_end) == (oct_1, nov_1)
    assert (purchase.service_start, purchase.service_end) == (None, None)
    assert purchase.document_period == (NOV_28, NOV_28)
    assert lines_span([usage, fee, undated]) == (oct_1, dec_1)
    # drafts written before 0040 get the same from their stored lines; an issued
    # document keeps the period it was issued with
    issued = period_draft(customer, [usage, fee], start=oct_1, end=nov_1)
    Invoice.objects.filter(pk=issued.pk).update(status=Invoice.FINALIZED)
    Invoice.objects.update(service_start=None, service_end=None)
    service_period_fill(apps, None)
    assert list(Invoice.objects.order_by("pk").values_list("service_start", "service_end")) == [
        (oct_1, dec_1),
        (None, None),
        (None, None),
    ]
    issued.refresh_from_db()
    assert issued.document_period == (oct_1, nov_1)


BERLIN = ZoneInfo("Europe/Berlin")


def test_a_document_reads_its_periods_with_its_schedules_anchor():
    """A schedule anchored at 09:00 in Berlin, cut at 14:00 on 28 Nov: the part
    after the cut ends where the next period begins (14 Dec, as the line's own
    description says it), the part before it on the day of the cut, on the PDF,
    the pages and the e-invoice alike."""
    anchor = datetime(2026, 12, 15, 8, tzinfo=UTC)  # 09:00 in Berlin
    start = datetime(2026, 11, 15, 8, tzinfo=UTC)
    cut = datetime(2026, 11, 28, 13, tzinfo=UTC)  # 14:00
    text = CustomerText(locale="en", zone=BERLIN, currency="EUR")

    assert period_days(cut, anchor, text, anchor) == (date(2026, 11, 28), date(2026, 12, 14))
    assert part_range(cut, anchor, BERLIN) == f"28 Nov 14:00 {DASH} 14 Dec 2026"
    assert text.dates(cut, anchor, anchor=anchor) == f"28 Nov {DASH} 14 Dec 2026"
    assert period_days(start, cut, text, anchor) == (date(2026, 11, 15), date(2026, 11, 28))
    assert text.dates(start, cut, anchor=anchor) == f"15 Nov {DASH} 28 Nov 2026"


def test_the_invoice_period_holds_every_line():
    """BG-14 is the document's days widened to hold each line's: a line cut on
    the morning its schedule's period ends (08:00, before the 09:00 anchor) ends
    on that day, after the document's last day."""
    anchor = datetime(2026, 12, 15, 8, tzinfo=UTC)
    start = datetime(2026, 11, 15, 8, tzinfo=UTC)
    text = CustomerText(locale="en", zone=BERLIN, currency="EUR")
    morning = datetime(2026, 12, 15, 7, tzinfo=UTC)
    lines = [
        SimpleNamespace(period=period_days(start, morning, text, anchor)),
        SimpleNamespace(period=None),
    ]

    assert period_days(start, anchor, text, anchor) == (date(2026, 11, 15), date(2026, 12, 14))
    assert invoice_period((start, anchor), lines, text, anchor) == (
        date(2026, 11, 15),
        date(2026, 12, 15),
    )
    assert invoice_period(None, [SimpleNamespace(period=None)], text, anchor) is None


def ubl_credit_note_periods(xml: bytes) -> tuple[tuple[date, date], list[tuple[date, date]]]:
    """The UBL credit note's period (cac:InvoicePeriod, BG-14) and each line's
    that names one (BG-26)."""
    root = etree.fromstring(xml)

    def period(element) -> tuple[date, date]:
        return (
            date.fromisoformat(element.findtext("cbc:StartDate", namespaces=NS)),
            date.fromisoformat(element.findtext("cbc:EndDate", namespaces=NS)),
        )

    [header] = root.findall("cac:InvoicePeriod", NS)
    return period(header), [
        period(line) for line in root.findall("cac:CreditNoteLine/cac:InvoicePeriod", NS)
    ]


def test_a_cancellations_credit_note_says_the_unused_days_it_credits(cancelled):
    """Issue 93: a credit note's period is the span its lines credit, as an
    invoice's is the span its lines bill: the cancel on 28 Nov (14:00 in Paris)
    gives back Studio's fee for the rest of November (28-30 Nov), while its
    invoice bills the usage of 1-28 Nov."""
    api, invoices = cancelled
    notes = {
        customer: CreditNote.objects.get(invoice__customer__external_id=customer)
        for customer in ("lumiere", "bruxelles")
    }
    note = notes["lumiere"]
    paris_dec_1 = datetime(2026, 11, 30, 23, tzinfo=UTC)
    # 39.90 x 58 h / 720 h (28 Nov 13:00 UTC to 1 Dec in Paris, of November)
    [line] = note.lines.all()
    assert (line.amount, line.period_start, line.period_end) == (D("3.21"), NOV_28, paris_dec_1)
    assert note.document_period == (NOV_28, paris_dec_1)

    body = api.get(f"/api/v1/credit-notes/{note.pk}").json()
    cii, ubl = note.e_invoice_xml.encode(), notes["bruxelles"].e_invoice_xml.encode()
    assert validation_failures(cii, CII) == []
    assert validation_failures(ubl, UBL_CREDIT_NOTE) == []

    nov_28_30 = (date(2026, 11, 28), date(2026, 11, 30))
    assert {
        "api": (body["period_start"], body["period_end"], body["subtotal"]),
        "cii": cii_periods(cii),
        "ubl": ubl_credit_note_periods(ubl),
    } == {
        "api": ("2026-11-28T13:00:00Z", "2026-11-30T23:00:00Z", "3.21"),
        "cii": (nov_28_30, [nov_28_30]),
        "ubl": (nov_28_30, [nov_28_30]),
    }
    # the invoice still says the days it bills
    invoice = api.get(f"/api/v1/invoices/{invoices['lumiere'].pk}").json()
    assert (invoice["period_start"], invoice["period_end"]) == (
        "2026-10-31T23:00:00Z",
        "2026-11-28T13:00:00Z",
    )


def cii_header_period(xml: bytes) -> tuple[date, date]:
    """The CII document's BillingSpecifiedPeriod (BG-14) alone."""
    [period] = etree.fromstring(xml).findall(
        "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        "ram:BillingSpecifiedPeriod",
        NS,
    )
    return tuple(
        datetime.strptime(
            period.findtext(f"ram:{name}/udt:DateTimeString", namespaces=NS), "%Y%m%d"
        ).date()
        for name in ("StartDateTime", "EndDateTime")
    )


def test_a_credit_note_of_usage_says_the_period_of_the_line_it_credits(closed):
    """A credit note of part of October's usage line (no period of its own)
    says October, the period of the line it credits, as its API period and its
    e-invoices' invoice period (BG-14; it had none)."""
    credited = {}
    for customer in ("lumiere", "bruxelles"):
        invoice = closing_invoice(customer)
        usage = invoice.lines.get(kind="overage")
        with time_machine.travel(datetime(2026, 11, 3, 9, tzinfo=UTC), tick=False):
            answer = closed.post(
                f"/api/v1/invoices/{invoice.pk}/credit-notes",
                {
                    "reason": "product_unsatisfactory",
                    "lines": [{"invoice_line": usage.pk, "amount": "10.00"}],
                },
                format="json",
            )
        assert answer.status_code == 201, answer.content
        credited[customer] = answer.json()
    body = credited["lumiere"]
    note = CreditNote.objects.get(pk=body["id"])
    peppol = CreditNote.objects.get(pk=credited["bruxelles"]["id"])
    cii, ubl = note.e_invoice_xml.encode(), peppol.e_invoice_xml.encode()
    assert validation_failures(cii, CII) == []
    assert validation_failures(ubl, UBL_CREDIT_NOTE) == []

    october = (date(2026, 10, 1), date(2026, 10, 31))
    assert {
        "api": (body["period_start"], body["period_end"], body["subtotal"], body["total"]),
        "cii": cii_header_period(cii),
        "ubl": ubl_credit_note_periods(ubl),
    } == {
        "api": ("2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", "10.00", "12.00"),
        "cii": october,
        # the line names no period of its own: the header holds it
        "ubl": (october, []),
    }
