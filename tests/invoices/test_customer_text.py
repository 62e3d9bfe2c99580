"""One customer-facing writer (common.customer_text): a Tokyo, a Paris and a
New York customer read the same days for the same invoice on its PDF (rendered,
read back), its lines, its email, the portal and the admin; and each case issue
48 found printing two different days, or English, is gone."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO
from pathlib import Path

import pytest
import time_machine
from pypdf import PdfReader

from billing.subscriptions.lifecycle import subscription_change_plan
from customers.portal import portal_session_create
from customers.services import customer_update
from invoices.emails import document_email_body
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_credit_note_pdf, render_invoice_pdf
from invoices.services import invoice_finalize, invoice_void, invoice_write_draft
from plans.rating import LineInput
from tests.factories import CustomerFactory, api_client, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DASH = "\N{EN DASH}"


def pdf_text(content: bytes) -> str:
    """The PDF's text as one line of words (no-break spaces read as spaces)."""
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)
    return " ".join(text.replace("\N{NO-BREAK SPACE}", " ").split())


def finalized_at(draft: Invoice, now: datetime) -> Invoice:
    """The draft finalized at `now`, the clock moved there: a document is dated
    when it is issued (invoices.issue_dates)."""
    with time_machine.travel(now, tick=False):
        return invoice_finalize(invoice=draft, now=now, collect=False)


def words(html: str) -> str:
    return " ".join(html.replace("&nbsp;", " ").split())


# The api-tour's subscription (start 2026-11-01T00:00:00Z) as each customer reads
# its first period [1 Nov 00:00 UTC, 1 Dec 00:00 UTC): in its language (PDF,
# lines, email, the portal) and in English (the admin). The day holding the
# period's end belongs to the next period: New York's ends on 30 Nov, 20:00, so
# its last day is 29 Nov (the next period starts on 30 Nov).
CUSTOMERS = [
    (
        "tokyo",
        "Asia/Tokyo",
        "en",
        "Period",
        f"1 Nov {DASH} 30 Nov 2026",
        f"1 Nov {DASH} 30 Nov 2026",
    ),
    (
        "paris",
        "Europe/Paris",
        "fr",
        "Période",
        f"1 nov. {DASH} 30 nov. 2026",
        f"1 Nov {DASH} 30 Nov 2026",
    ),
    (
        "new-york",
        "America/New_York",
        "de",
        "Zeitraum",
        f"31. Okt. {DASH} 29. Nov. 2026",
        f"31 Oct {DASH} 29 Nov 2026",
    ),
]


@pytest.mark.parametrize(
    ("name", "zone", "locale", "period_word", "days", "english"),
    CUSTOMERS,
    ids=[customer[0] for customer in CUSTOMERS],
)
def test_the_pdf_lines_email_portal_and_admin_read_the_same_days(
    name, zone, locale, period_word, days, english, client, admin_client, settings, output_dir
):
    # given: a customer in `zone` subscribed as docs/api-tour.md does; its start
    # invoice bills the first period, issued at once
    settings.BILLING_INVOICE_PDFS = False
    plan = published_version(f"flat-{name}", base_fee=D("30.00"))
    customer = CustomerFactory(
        external_id=name, timezone_name=zone, locale=locale, email=f"ap@{name}.test"
    )
    subscribe(customer, plan, NOV_1)
    invoice = invoice_finalize(
        invoice=Invoice.objects.get(customer=customer, reason=Invoice.START),
        now=NOV_1,
        collect=False,
    )
    # (New York's period ends on 30 Nov at 20:00 there, a month after its start in
    # its own time, which the end of daylight saving made 1 Dec 01:00 UTC)
    assert invoice.period_start == NOV_1

    # then: its line names the period's days
    [line] = invoice.lines.all()
    assert line.description.endswith(f"({days})"), line.description
    # the PDF's header and line, read back from the rendered file
    content = render_invoice_pdf(invoice)
    Path(output_dir, f"{name}.pdf").write_bytes(content)  # to look at
    text = pdf_text(content)
    assert f"{period_word} {days}" in text, text
    assert f"({days})" in text
    # the email
    assert f"{days} ({zone})" in document_email_body(invoice, now=datetime(2026, 12, 1, tzinfo=UTC))
    # the portal's invoice list (in the customer's language, as the PDF; in the
    # zone the invoice was issued in)
    now = datetime(2026, 11, 11, tzinfo=UTC)
    token = portal_session_create(customer=customer, now=now).token
    with time_machine.travel(now, tick=False):
        portal = client.get(f"/portal/{token}/")
    [row] = [row for row in portal.context["invoices"] if row["number"] == invoice.number]
    assert row["period"] == days
    assert f'<td class="period">{days}</td>' in portal.content.decode()
    # the admin's invoice page: its period and its line's, the zone named
    page = words(admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode())
    assert f"{english} ({zone})" in page
    assert f"<td>{english}</td>" in page


def test_a_new_york_subscription_made_as_the_api_tour_shows_prints_one_period(admin_client):
    # given: New York's acme, subscribed through the API as docs/api-tour.md does
    published_version("ai_assistant", base_fee=D("49.00"))
    CustomerFactory(external_id="acme", timezone_name="America/New_York")
    response = api_client().post(
        "/api/v1/subscriptions",
        {"customer": "acme", "plan": "ai_assistant", "start": "2026-11-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get(customer__external_id="acme", reason=Invoice.START)

    # then: the header and the line under it read the same days (was "31 Oct - 30
    # Nov" above "(31 Oct - 29 Nov 2026)")
    text = pdf_text(render_invoice_pdf(invoice))
    assert f"Period 31 Oct {DASH} 29 Nov 2026" in text
    assert f"(31 Oct {DASH} 29 Nov 2026)" in text
    assert f"30 Nov 2026 {DASH}" not in text and f"{DASH} 30 Nov" not in text


def test_a_tokyo_plan_change_reads_the_same_days_on_the_pdf_and_in_the_admin(
    admin_client, output_dir
):
    # given: a Tokyo customer moving to a dearer plan on 25 Nov, 00:00 UTC (09:00
    # in Tokyo): the rest of its period runs to 1 Dec, 09:00 in Tokyo
    small = published_version("small", base_fee=D("30.00"))
    large = published_version("large", base_fee=D("60.00"))
    customer = CustomerFactory(external_id="tokyo", timezone_name="Asia/Tokyo")
    subscription = subscribe(customer, small, NOV_1)
    with time_machine.travel(datetime(2026, 11, 25, tzinfo=UTC), tick=False):
        _, invoice = subscription_change_plan(
            subscription=subscription,
            version=large,
            effective="immediate",
            at=datetime(2026, 11, 25, tzinfo=UTC),
        )
    if invoice.status == Invoice.DRAFT:
        invoice = finalized_at(invoice, datetime(2026, 11, 25, 1, tzinfo=UTC))
    note = CreditNote.objects.get(invoice__customer=customer)

    # then: the PDF prints the lines' period as the admin does, 25 to 30 Nov (was
    # "25 Nov - 1 Dec" on the PDF), and the prorated quantity as the share it
    # bills: 6 of 30 days, 0.2 (not the 6 days it once read as)
    content = render_invoice_pdf(invoice)
    Path(output_dir, "plan-change.pdf").write_bytes(content)  # to look at
    text = pdf_text(content)
    assert f"25 Nov {DASH} 30 Nov 2026" in text, text
    assert "1 Dec" not in text.split("Period", 1)[1].split("Subtotal")[0]
    assert "6 of 30 days" not in text
    # the unused time on Small is given back by a credit note, in the same words
    credited = pdf_text(render_credit_note_pdf(note))
    assert f"Unused time on Small (v1), 25 Nov 09:00 {DASH} 30 Nov 2026, 0.2 of 1 Nov" in credited
    page = words(admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode())
    assert f"<td>25 Nov {DASH} 30 Nov 2026</td>" in page
    assert '<td class="numeric">0.2</td>' in page


def test_a_french_credit_note_for_a_void_is_written_in_french(settings):
    # given: a French customer's invoice, voided without a reason
    settings.BILLING_INVOICE_EMAILS = False
    customer = CustomerFactory(external_id="paris", timezone_name="Europe/Paris", locale="fr")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Abonnement", None, D(1), D(10), D(10))],
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    invoice = invoice_finalize(invoice=draft, now=datetime(2026, 12, 2, tzinfo=UTC), collect=False)

    # when
    note = invoice_void(invoice=invoice, reason="", now=datetime(2026, 12, 5, tzinfo=UTC))

    # then: its memo is French (was "void of INV-..."), on its PDF too
    assert note.memo == f"annulation de {invoice.number}"
    text = pdf_text(render_credit_note_pdf(note))
    assert f"annulation de {invoice.number}" in text
    assert "void of" not in text


def test_the_invoice_list_names_the_zone_of_each_day(admin_client, settings):
    # given: a Tokyo and a London invoice issued in the same minute, 24 Nov 20:00
    # UTC: the 25th in Tokyo, the 24th in London
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    for name, zone in (("tokyo", "Asia/Tokyo"), ("london", "Europe/London")):
        customer = CustomerFactory(external_id=name, name=name.title(), timezone_name=zone)
        draft = invoice_write_draft(
            customer=customer,
            subscription=None,
            reason=Invoice.PERIOD,
            period_start=NOV_1,
            period_end=datetime(2026, 11, 24, tzinfo=UTC),
            lines=[LineInput("base_fee", "Flat", None, D(1), D(10), D(10))],
            now=datetime(2026, 11, 24, tzinfo=UTC),
        )
        finalized_at(draft, datetime(2026, 11, 24, 20, tzinfo=UTC))

    listing = admin_client.get("/admin/invoices/invoice/").content.decode()

    # then: each day says which zone it is read in
    assert '25 Nov 2026<br><span class="zone">Asia/Tokyo</span>' in listing
    assert '24 Nov 2026<br><span class="zone">Europe/London</span>' in listing


def test_an_email_reads_the_zone_and_language_saved_with_its_invoice(settings):
    # given: a Tokyo invoice due 24 Dec 20:00 UTC (the 25th in Tokyo), whose customer
    # then moves to New York and to French
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    customer = CustomerFactory(external_id="tokyo", timezone_name="Asia/Tokyo", locale="en")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Flat", None, D(1), D(10), D(10))],
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    invoice = invoice_finalize(
        invoice=draft, now=datetime(2026, 11, 24, 20, tzinfo=UTC), collect=False
    )
    customer_update(customer=customer, timezone="America/New_York", locale="fr")
    invoice.refresh_from_db()

    # when
    body = document_email_body(invoice, now=datetime(2026, 12, 1, tzinfo=UTC))

    # then: the days, the zone and the language its PDF has
    assert f"Period: 1 Nov {DASH} 30 Nov 2026 (Asia/Tokyo)" in body
    assert "Due date: " in body and "(Asia/Tokyo)" in body
    assert "America/New_York" not in body
    assert body.startswith("Hello ")
    due = invoice.text.day(invoice.due_at)
    assert f"Due date: {due} (Asia/Tokyo)" in body
    assert due == invoice.due_at.astimezone(invoice.text.zone).strftime("%-d %b %Y")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "7 seats × 0.2333"),  # noqa: RUF001
        ("fr", "7 utilisateurs × 0,2333"),  # noqa: RUF001
        ("de", "7 Nutzerplätze × 0,2333"),  # noqa: RUF001
    ],
)
def test_a_prorated_seat_line_reads_as_seats_times_its_share(locale, expected):
    # given: 7 seats for the last 7 days of November (a 30-day month), stored as
    # 7 x 7/30 to the 10 decimal places of a line's quantity
    from zoneinfo import ZoneInfo

    from common.customer_text import CustomerText

    share = (D(7) / D(30)).quantize(D("0.0000000001"))
    stored = (7 * share).quantize(D("0.0000000001"))
    write = CustomerText(locale, ZoneInfo("UTC"), "USD")

    # then: seats and the share to 4 places, never "1.6333333333"
    assert write.line_quantity("seats", stored, share=share) == expected
    assert write.line_quantity("seats", D(7)) == "7"
    # a quantity that no whole number of seats explains stays a number
    assert write.line_quantity("seats", D("1.234"), share=share) == write.quantity(D("1.234"))
    # and a seat change down, its quantity negative, reads as the seats it takes off
    taken_off = (-3 * share).quantize(D("0.0000000001"))
    minus_three = write.line_quantity("proration_credit", taken_off, share=share)
    assert minus_three == expected.replace("7 ", "-3 ", 1)


def test_a_seat_plan_change_reads_seats_times_its_share_on_the_pdf_and_in_the_admin(admin_client):
    # given: 3 seats on a plan at 10.00 a seat, moved on 24 Nov to one at 20.00
    small = published_version("seats_small", seat_price=D("10.00"))
    large = published_version("seats_large", seat_price=D("20.00"))
    subscription = subscribe(CustomerFactory(external_id="seats"), small, NOV_1, seats=3)
    with time_machine.travel(datetime(2026, 11, 24, tzinfo=UTC), tick=False):
        _, invoice = subscription_change_plan(
            subscription=subscription,
            version=large,
            effective="immediate",
            at=datetime(2026, 11, 24, tzinfo=UTC),
        )
    if invoice.status == Invoice.DRAFT:
        invoice = finalized_at(invoice, datetime(2026, 11, 24, 1, tzinfo=UTC))

    # then: the seat line's quantity (3 x 7/30) reads as seats and the share
    # (0.2333 x 3 x 20.00 is 14.00 as billed), never as its product; the unused
    # 7.00 of the small plan's seats is given back by a credit note
    text = pdf_text(render_invoice_pdf(invoice))
    page = words(admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode())
    assert "3 seats × 0.2333 20.00 14.00" in text, text  # noqa: RUF001
    note = CreditNote.objects.get(invoice__customer__external_id="seats")
    assert [(line.share, line.amount) for line in note.lines.all()] == [
        (D("0.2333333333"), D("7.00"))
    ]
    assert "3 seats × 0.2333" in page  # noqa: RUF001
    assert "0.7" not in text.split("Period", 1)[1].split("Subtotal")[0]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", ["0.05", "2.50 per 1,000", "2.50 per 1M", "2.50 per 5M", "2.50 per 2.5"]),
        (
            "fr",
            ["0,05", "2,50 par 1 000", "2,50 par 1 million", "2,50 par 5 millions", "2,50 par 2,5"],
        ),
        ("de", ["0,05", "2,50 pro 1.000", "2,50 pro 1 Mio.", "2,50 pro 5 Mio.", "2,50 pro 2,5"]),
    ],
)
def test_a_unit_price_reads_with_how_many_units_it_is_for(locale, expected):
    from zoneinfo import ZoneInfo

    from common.customer_text import CustomerText

    write = CustomerText(locale, ZoneInfo("UTC"), "USD")
    prices = [("0.05", "1"), ("2.50", "1000"), ("2.50", "1000000"), ("2.5", "5000000")]
    prices.append(("2.50", "2.5"))

    written = [write.unit_price(D(price), D(per)) for price, per in prices]

    assert [text.replace("\N{NO-BREAK SPACE}", " ") for text in written] == expected
    assert write.unit_price(None, D(1000)) == ""


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "2.50 per 1M"), ("fr", "2,50 par 1 million"), ("de", "2,50 pro 1 Mio.")],
)
def test_a_line_priced_per_million_reads_so_on_the_pdf_and_in_the_admin(
    locale, expected, admin_client, settings, output_dir
):
    # given: 500,000 tokens at 2.50 per 1,000,000 (1.25), and a fee per 1
    settings.BILLING_INVOICE_EMAILS = False
    customer = CustomerFactory(external_id=f"tokens-{locale}", locale=locale)
    lines = [
        LineInput("overage", "Tokens", "tokens", D(500_000), D("2.50"), D("1.25"), per=D(10**6)),
        LineInput("base_fee", "Plan", None, D(1), D("10.00"), D("10.00")),
    ]
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        lines=lines,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    invoice = invoice_finalize(invoice=draft, now=datetime(2026, 12, 2, tzinfo=UTC), collect=False)

    # when
    pdf = render_invoice_pdf(invoice)
    Path(output_dir, f"invoice-per-million-{locale}.pdf").write_bytes(pdf)
    text = pdf_text(pdf)
    page = words(admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode())

    # then: the price says what it is for; a price per 1 reads as before
    assert expected in text, text
    assert "2.50 USD per 1M" in page
    assert "10.00 USD" in page
    assert "10.00 per" not in page
    assert "per 1 " not in text
