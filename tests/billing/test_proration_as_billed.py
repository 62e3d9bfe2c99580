"""A prorated fee is written as billed (issue 76): its part of the period to the
minute in the customer's zone and its share of the whole period, written so
that the share times the fees of the whole period rounds to the line's amount;
the API gives the share to 4 places. Before, the words counted whole days
("5 of 30 days" for 4.3, "30 of 30 days" for 29 days and 23 hours)."""

from datetime import UTC, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_cancel
from common.money import quantize_money
from invoices.models import CreditNoteLine, Invoice
from tests.factories import CustomerFactory, published_version, subscribe

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_1_PARIS = datetime(2026, 11, 1, tzinfo=PARIS)  # 31 Oct, 23:00 UTC
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def growth(base_fee: str, *, currency: str = "USD"):
    version = published_version("chat_growth", base_fee=D(base_fee), currency=currency)
    version.plan.name = "Chat Growth"
    version.plan.save(update_fields=["name"])
    return version


def cancel_line(subscription, at: datetime):
    """The line of the credit note an immediate cancel at `at` issues for the
    unused time (billing.invoicing.unused_time)."""
    with time_machine.travel(NOW, tick=False):
        subscription_cancel(subscription=subscription, effective="immediate", at=at)
    return CreditNoteLine.objects.get(credit_note__invoice__subscription=subscription)


def quantity_column(line) -> str:
    """The line's quantity as its PDF and the admin print it."""
    return line.invoice.text.quantity_of(line)


def test_a_cancel_after_4_3_days_says_the_share_it_credits():
    # given: Chat Growth at 59.00 a month, from 1 Nov (UTC)
    customer = CustomerFactory(external_id="new")
    with time_machine.travel(NOW, tick=False):
        subscription = subscribe(customer, growth("59.00"), NOV_1)

    # when: cancelled on 26 Nov at 16:38, 4 days 7 h 22 min before the period ends
    line = cancel_line(subscription, datetime(2026, 11, 26, 16, 38, tzinfo=UTC))

    # then: 6202 of 43,200 minutes (0.14356...) of 59.00 is 8.47; the words say
    # 0.1436 (not "5 of 30 days", which is 9.83), and 0.1436 x 59.00 is 8.47 too
    assert line.amount == D("8.47")
    assert line.description == (
        "Unused time on Chat Growth (v1), 26 Nov 16:38 \u2013 30 Nov 2026, 0.1436 of Nov 2026"
    )
    assert quantize_money(D("0.1436") * D("59.00"), "USD") == D("8.47")
    assert line.share.quantize(D("0.0001")) == D("0.1436")


def test_a_paris_start_typed_in_utc_is_not_a_whole_month():
    # given: a Paris customer, calendar-anchored, starting 1 Nov 00:00 UTC: 01:00
    # in Paris, so 29 days 23 hours of Paris's November (719 of 720 hours)
    customer = CustomerFactory(
        external_id="lumiere", timezone_name="Europe/Paris", locale="fr", currency="EUR"
    )
    with time_machine.travel(NOW, tick=False):
        subscription = subscribe(
            customer, growth("59.00", currency="EUR"), NOV_1, billing_anchor=Subscription.CALENDAR
        )

    # then: the start invoice bills 0.9986 of November, 58.92, and says so to
    # the hour (not "30 jours sur 30")
    line = Invoice.objects.get(subscription=subscription, reason=Invoice.START).lines.get()
    assert line.amount == D("58.92")
    assert line.description == (
        "Chat Growth (1 nov. 01:00 \u2013 30 nov. 2026, 0,9986 de la p\u00e9riode nov. 2026)"
    )
    assert quantity_column(line) == "0,9986"
    assert quantize_money(D("0.9986") * D("59.00"), "EUR") == line.amount


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "en",
            "Unused time on Chat Growth (v1), 27 Nov 13:00 \u2013 30 Nov 2026, 0.1153 of Nov 2026",
        ),
        (
            "fr",
            "Temps non utilis\u00e9 sur Chat Growth (v1), 27 nov. 13:00 \u2013 30 nov. 2026, "
            "0,1153 de la p\u00e9riode nov. 2026",
        ),
    ],
)
def test_s33_a_paris_cancel_credits_83_of_720_hours(api, locale, words):
    # given (S33): a Paris customer on 39.90 a month from 1 Nov 00:00 in Paris
    customer = CustomerFactory(
        external_id="lumiere", timezone_name="Europe/Paris", locale=locale, currency="EUR"
    )
    with time_machine.travel(NOW, tick=False):
        subscription = subscribe(customer, growth("39.90", currency="EUR"), NOV_1_PARIS)

    # when: cancelled now, 27 Nov 12:00 UTC (13:00 in Paris)
    line = cancel_line(subscription, NOW)

    # then: 13:00 27 Nov to 1 Dec in Paris is 83 of 720 hours, 0.1153: 4.60 credited
    assert line.amount == D("4.60")
    assert line.description == words
    # and the API gives the share to 4 places, null on a line of a whole period
    body = api.get(f"/api/v1/credit-notes/{line.credit_note_id}").json()
    assert [(row["amount"], row["share"]) for row in body["lines"]] == [("4.60", "0.1153")]
    start = Invoice.objects.get(subscription=subscription, reason=Invoice.START)
    body = api.get(f"/api/v1/invoices/{start.pk}").json()
    assert [(row["kind"], row["share"]) for row in body["lines"]] == [("base_fee", None)]


def test_the_share_takes_more_places_where_four_would_not_give_the_amount():
    # given: 83 of 720 hours (0.115277...) of 999.00 is 115.16, but 0.1153 x 999.00
    # is 115.18; 0.11528 x 999.00 is 115.16
    from common import customer_text
    from common.customer_text import CustomerText

    share = D(83) / D(720)
    with customer_text.speaking("en"):
        assert customer_text.share_text(share) == "0.1153"
        assert customer_text.share_text(share, whole_price=D("39.90"), currency="EUR") == "0.1153"
        assert customer_text.share_text(share, whole_price=D("999.00"), currency="EUR") == "0.11528"
    # and the quantity column of such a line (3 seats at 333.00, stored to 10 places) says the same
    stored_share = share.quantize(D("1E-10"))
    write = CustomerText("de", PARIS, "EUR")
    text = write.line_quantity(
        "seats",
        3 * stored_share,
        share=stored_share,
        unit_price=D("333.00"),
        amount=D("115.16"),
    )
    assert text == "3 Nutzerpl\u00e4tze \u00d7 0,11528"


def test_seats_added_mid_afternoon_say_the_share_they_charge():
    # given: 2 seats at 10.00 from 1 Nov (UTC), 5 from 26 Nov 14:05
    from billing.invoicing.close import periods_close
    from billing.subscriptions.lifecycle import subscription_set_seats

    customer = CustomerFactory(external_id="seats")
    with time_machine.travel(NOW, tick=False):
        subscription = subscribe(
            customer, published_version("team", seat_price=D("10.00")), NOV_1, seats=2
        )
        subscription_set_seats(
            subscription=subscription, seats=5, at=datetime(2026, 11, 26, 14, 5, tzinfo=UTC)
        )

    # when: November closes
    dec_1 = datetime(2026, 12, 1, tzinfo=UTC)
    with time_machine.travel(dec_1, tick=False):
        periods_close(as_of=dec_1)

    # then: 3 seats for 6355 of 43,200 minutes (0.14710...) of 10.00 is 4.41, and
    # 3 x 0.1471 x 10.00 is 4.41 too
    line = Invoice.objects.get(reason=Invoice.PERIOD).lines.get(kind="proration_charge")
    assert line.amount == D("4.41")
    assert line.description == "Seats 2 to 5, 26 Nov 14:05 \u2013 30 Nov 2026, 0.1471 of Nov 2026"
    assert quantity_column(line) == "3 seats \u00d7 0.1471"
