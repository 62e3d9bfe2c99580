"""How invoice lines and the portal word numbers, days and proration: meter and
plan names, the version on both sides of a plan change, thousands separators in
the customer's locale, inclusive days in the customer's time zone. Money is as
before: only the words change."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import translation
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import subscription_change_plan
from common import customer_text
from customers.portal import portal_session_create
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_invoice_pdf
from plans.pricing import GRADUATED, PricingSpec, TierSpec
from plans.rating import charge_lines
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    PlanVersionFactory,
    published_version,
    subscribe,
)

NEW_YORK = ZoneInfo("America/New_York")
# 20 Oct 2026, 10:00 in New York (EDT); its anniversary period ends on 20 Nov,
# 10:00 EST (15:00 UTC), a month and an hour later.
OCT_20 = datetime(2026, 10, 20, 14, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 15, tzinfo=UTC)
DEC_20 = datetime(2026, 12, 20, 15, tzinfo=UTC)
# 5 Nov 2026, 12:00 in New York.
NOV_5_NOON = datetime(2026, 11, 5, 17, tzinfo=UTC)


def lines_of(invoice: Invoice) -> list[tuple[str, str, D]]:
    return [
        (line.kind, line.description, line.amount) for line in invoice.lines.order_by("position")
    ]


# ---- the rules, one by one ----


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "1,234,567.5"), ("fr", "1\xa0234\xa0567,5"), ("de", "1.234.567,5")],
)
def test_a_quantity_is_grouped_in_the_customers_locale(locale, expected):
    with customer_text.speaking(locale):
        assert customer_text.quantity(D("1234567.50")) == expected


def test_a_quantity_keeps_every_digit_and_drops_trailing_zeros():
    with customer_text.speaking("en"):
        assert customer_text.quantity(D("1E+6")) == "1,000,000"
        assert customer_text.quantity(D("0.0000025")) == "0.0000025"
        assert customer_text.quantity(D("-0")) == "0"
        assert customer_text.quantity(7) == "7"


def test_consecutive_periods_print_as_inclusive_days_that_do_not_overlap():
    with customer_text.speaking("en"):
        first = customer_text.date_range(OCT_20, NOV_20, NEW_YORK)
        second = customer_text.date_range(NOV_20, DEC_20, NEW_YORK)
        year_end = customer_text.date_range(DEC_20, datetime(2027, 1, 20, 15, tzinfo=UTC), NEW_YORK)
    assert (first, second) == ("20 Oct \u2013 19 Nov 2026", "20 Nov \u2013 19 Dec 2026")
    assert year_end == "20 Dec 2026 \u2013 19 Jan 2027"


def test_a_period_ending_at_midnight_ends_the_day_before():
    start = datetime(2026, 11, 1, 4, tzinfo=UTC)  # 1 Nov, 00:00 EDT
    end = datetime(2026, 12, 1, 5, tzinfo=UTC)  # 1 Dec, 00:00 EST
    with customer_text.speaking("en"):
        assert customer_text.period(start, end, NEW_YORK) == "Nov 2026"
        assert customer_text.date_range(start, end, NEW_YORK) == "1 Nov \u2013 30 Nov 2026"


def test_proration_reads_as_its_start_and_its_share_of_the_whole_period():
    # 358 of 745 hours: the period runs from 20 Oct to 20 Nov, 10:00 in New York
    with customer_text.speaking("en"):
        text = customer_text.proration(NOV_5_NOON, NOV_20, whole=(OCT_20, NOV_20), zone=NEW_YORK)
    assert text == "5 Nov 12:00 \u2013 19 Nov 2026, 0.4805 of 20 Oct \u2013 19 Nov 2026"


# ---- invoice lines ----


def llm_tokens_charge() -> ChargeSpec:
    tiers = (TierSpec(D(1_000_000), D("0.00002")), TierSpec(None, D("0.00001")))
    return ChargeSpec(
        "llm_tokens", "overage", D(100_000), pricing=PricingSpec(GRADUATED, tiers=tiers)
    )


def test_usage_lines_name_the_meter_and_group_thousands():
    with customer_text.speaking("en"):
        lines = charge_lines(
            llm_tokens_charge(), quantity=D(2_600_000), meter_name="LLM tokens", currency="USD"
        )
    assert [(line.description, line.quantity, line.amount) for line in lines] == [
        (
            "LLM tokens over 100,000 included: tier up to 1,000,000 past the included",
            D(1_000_000),
            D("20.00"),
        ),
        (
            "LLM tokens over 100,000 included: tier above 1,000,000 past the included",
            D(1_500_000),
            D("15.00"),
        ),
    ]


def test_usage_lines_are_written_in_the_language_given():
    with translation.override("de"):
        lines = charge_lines(
            llm_tokens_charge(), quantity=D(200_000), meter_name="LLM tokens", currency="USD"
        )
    assert [line.description for line in lines] == [
        "LLM tokens über 100.000 inklusive: Stufe bis 1.000.000 nach den inklusiven Einheiten"
    ]


@pytest.mark.django_db
def test_a_plan_change_names_both_versions_and_prorates_in_the_customers_zone():
    # given: Chat Growth v1 (30.00 a month) and v2 (45.00), a New York customer on
    # v1 from 20 Oct, 10:00 local
    v1 = published_version("chat_growth", base_fee=D("30.00"))
    v1.plan.name = "Chat Growth"
    v1.plan.save(update_fields=["name"])
    v2 = PlanVersionFactory(plan=v1.plan, base_fee=D("45.00"))
    customer = CustomerFactory(external_id="ny", timezone_name="America/New_York")
    subscription = subscribe(customer, v1, OCT_20)
    assert subscription.current_period_end == NOV_20
    start = Invoice.objects.get(subscription=subscription, reason=Invoice.START)
    assert lines_of(start) == [("base_fee", "Chat Growth (20 Oct \u2013 19 Nov 2026)", D("30.00"))]

    # when: it moves to v2 on 5 Nov at noon, New York time
    _, invoice = subscription_change_plan(
        subscription=subscription, version=v2, effective="immediate", at=NOV_5_NOON
    )

    # then: each side names its version; the money is prorated by the second,
    # 358 of 745 hours (14.4161... and 21.6241...), as before: the unused v1 time
    # is a credit note against the start invoice (billing.invoicing.unused_time)
    days = "5 Nov 12:00 \u2013 19 Nov 2026, 0.4805 of 20 Oct \u2013 19 Nov 2026"
    assert lines_of(invoice) == [
        ("proration_charge", f"Remaining time on Chat Growth (v2), {days}", D("21.62")),
    ]
    note = CreditNote.objects.get(invoice=start)
    [credited] = note.lines.all()
    assert (credited.description, credited.amount) == (
        f"Unused time on Chat Growth (v1), {days}",
        D("14.42"),
    )
    # The share is stored as before: 358/745 of a month, to 10 places.
    assert [line.quantity for line in invoice.lines.order_by("position")] == [D("0.4805369128")]
    assert credited.share == D("0.4805369128")


@pytest.mark.django_db
def test_the_close_names_the_next_version_of_the_same_plan():
    v1 = published_version("chat", base_fee=D("30.00"))
    v2 = PlanVersionFactory(plan=v1.plan, base_fee=D("45.00"))
    customer = CustomerFactory(external_id="ny", timezone_name="America/New_York")
    subscription = subscribe(customer, v1, OCT_20)
    subscription_change_plan(
        subscription=subscription, version=v2, effective="period_end", at=NOV_5_NOON
    )

    periods_close(as_of=NOV_20)

    period = Invoice.objects.get(subscription=subscription, reason=Invoice.PERIOD)
    assert lines_of(period) == [("base_fee", "Chat (v2) (20 Nov \u2013 19 Dec 2026)", D("45.00"))]


@pytest.mark.django_db
def test_a_french_customers_lines_are_written_under_its_locale():
    team = published_version("team", seat_price=D("1.00"))
    customer = CustomerFactory(
        external_id="paris", timezone_name="Europe/Paris", currency="USD", locale="fr"
    )
    subscribe(customer, team, datetime(2026, 10, 31, 23, tzinfo=UTC), seats=1200)

    start = Invoice.objects.get(customer=customer, reason=Invoice.START)
    # 1 Nov 00:00 in Paris: a calendar month there. In French, the number grouped
    # the French way.
    assert [line.description for line in start.lines.all()] == ["1\xa0200 utilisateurs (nov. 2026)"]
    assert start.total == D("1200.00")


# ---- the portal ----


@pytest.mark.django_db
def test_the_portal_reads_dates_in_the_customers_zone_as_the_pdf_prints_them(client):
    plan = published_version("flat", base_fee=D("30.00"))
    customer = CustomerFactory(external_id="ny", timezone_name="America/New_York")
    subscribe(customer, plan, OCT_20)
    # Finalized at 22 Oct 03:00 UTC: still 21 Oct in New York.
    finalized_at = datetime(2026, 10, 22, 3, tzinfo=UTC)
    with time_machine.travel(finalized_at, tick=False):
        periods_close(as_of=finalized_at)
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.status == Invoice.FINALIZED

    now = datetime(2026, 11, 11, tzinfo=UTC)
    token = portal_session_create(customer=customer, now=now).token
    with time_machine.travel(now, tick=False):
        response = client.get(f"/portal/{token}/")

    assert response.status_code == 200
    assert response.context["period"] == "20 Oct \u2013 19 Nov 2026 (America/New_York)"
    [row] = response.context["invoices"]
    assert row["date"] == "21 Oct 2026"
    reader = PdfReader(BytesIO(render_invoice_pdf(invoice)))
    assert "Issue date 21 Oct 2026" in " ".join(reader.pages[0].extract_text().split())
    html = response.content.decode()
    assert "current period 20 Oct \u2013 19 Nov 2026 (America/New_York)" in html
    assert "Dates in America/New_York." in html
