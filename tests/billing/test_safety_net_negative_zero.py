"""Safety net: a negative zero never reaches an invoice. Decimal keeps the sign of
zero: -1 x 0.00 is -0.00, and -0.004 rounds to -0.00, which prints as "-0.00". A
credit that rounds to nothing (a proration credit for the last second of a
period, a seat removed a second before the end) is where one arises:
billing.subscriptions.lifecycle._proration writes `sign * amount`. The folds that keep it out: the
one rounding helper (common.money.quantize_money), the one money formatter
(format_money, and format_decimal for plain numbers), and the databases, which
both store -0.00 as 0."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import SubscriptionChange
from billing.subscriptions.lifecycle import (
    subscription_change_plan,
    subscription_set_seats,
)
from common.money import format_decimal, format_money, quantize_money
from invoices.models import CreditNote, Invoice
from plans.models import Plan
from tests.factories import PlanFactory, subscribe

# One second of the month left: 20.00 x 1/2,592,000 = 0.0000077.. rounds to 0.00.
LAST_SECOND = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


# The helpers


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("-0.004"), "USD", "0.00"),
        (D("-0.00"), "USD", "0.00"),
        (-1 * D("0.00"), "EUR", "0.00"),
        (D("-0.4"), "JPY", "0"),
        (D("-0.0004"), "BHD", "0.000"),
    ],
)
def test_rounding_to_zero_gives_an_unsigned_zero(amount, currency, text):
    """Rule: quantize_money never returns -0: a line amount is rounded there."""
    rounded = quantize_money(amount, currency)

    assert str(rounded) == text
    assert not rounded.is_signed()


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("-0.00"), "USD", "0.00"),
        (D("-0"), "USD", "0.00"),
        (D("-0E-10"), "USD", "0.00"),  # as a Decimal field with 10 places holds it
        (D("-0"), "JPY", "0"),
    ],
)
def test_a_negative_zero_amount_prints_as_zero(amount, currency, text):
    """Rule: format_money, which every amount the API, the portal and the PDF show
    goes through, prints a negative zero as 0."""
    assert format_money(amount, currency) == text


def test_a_negative_zero_quantity_prints_as_zero():
    assert format_decimal(D("-0.000")) == "0"


# Credits that round to nothing, stored and shown


@pytest.fixture
def starter_pro(acme):
    PlanFactory(code="starter", version__base_fee=D("20.00"))
    PlanFactory(code="pro", version__base_fee=D("50.00"))


def invoice_json(api, invoice: Invoice) -> dict:
    with time_machine.travel(DEC_1, tick=False):
        response = api.get(f"/api/v1/invoices/{invoice.pk}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_proration_of_zero_is_stored_and_shown_as_zero(api, acme, starter_pro):
    """Rule: a plan change in the period's last second charges 0.00: stored as 0,
    shown as "0.00", never "-0.00". Its credit for unused time, 0.00, credits
    nothing: no credit note, and no line on the change's invoice
    (billing.invoicing.unused_time)."""
    # given
    subscription = subscribe(acme, "starter")
    pro = Plan.objects.get(code="pro").versions.get()

    # when
    _, change = subscription_change_plan(
        subscription=subscription, version=pro, effective="immediate", at=LAST_SECOND
    )

    # then
    stored = list(change.lines.values_list("kind", "amount"))
    assert stored == [("proration_charge", D("0.00"))]
    assert [amount.is_signed() for _, amount in stored] == [False]
    assert not CreditNote.objects.exists()
    body = invoice_json(api, change)
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [
        ("proration_charge", "0.00"),
    ]
    assert (body["subtotal"], body["total"]) == ("0.00", "0.00")
    history = SubscriptionChange.objects.get(kind="plan_change")
    assert history.details["total"] == "0.00"


@pytest.mark.django_db
def test_the_migration_preview_of_a_zero_proration_shows_zero(api, acme, starter_pro):
    subscription = subscribe(acme, "starter")

    with time_machine.travel(LAST_SECOND, tick=False):
        response = api.post(
            "/api/v1/plan-migrations/preview",
            {
                "subscriptions": [subscription.pk],
                "plan": "pro",
                "effective": "immediate",
                "at": "2026-11-30T23:59:59Z",
            },
            format="json",
        )

    assert response.status_code == 200, response.content
    row = response.json()["rows"][0]
    assert {name: row[name] for name in ("usage", "credit", "charge", "total")} == {
        "usage": "0.00",
        "credit": "0.00",
        "charge": "0.00",
        "total": "0.00",
    }


@pytest.mark.django_db
def test_a_seat_credit_of_zero_is_stored_and_shown_as_zero(api, acme):
    """Rule: a seat removed in the period's last second credits 10.00 x -1/2,592,000,
    which rounds to 0.00, not -0.00."""
    # given
    PlanFactory(code="team", version__seat_price=D("10.00"))
    subscription = subscribe(acme, "team", seats=3)

    # when
    subscription_set_seats(subscription=subscription, seats=2, at=LAST_SECOND)
    periods_close(as_of=DEC_1)

    # then
    close = Invoice.objects.get(reason="period")
    credit = close.lines.get(kind="proration_credit")
    assert (credit.amount, credit.amount.is_signed()) == (D("0.00"), False)
    body = invoice_json(api, close)
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [
        ("proration_credit", "0.00"),
        ("seats", "20.00"),
    ]
    assert body["total"] == "20.00"
