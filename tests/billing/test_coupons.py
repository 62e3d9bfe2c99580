"""Coupons redeemed on subscriptions (S21's coupon half, issue 17): a discount line
on the period invoices the close writes, before tax, rounded half up once, never
below zero; a refused redemption changes nothing."""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.coupon_rule import discount_amount
from billing.invoicing.close import periods_close
from billing.models import Discount, Subscription
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_cancel, subscription_change_plan
from billing.usage.ingestion import events_ingest
from common.vocabulary import CouponDuration
from invoices.models import CreditNote, Invoice
from plans.coupons import coupon_create
from plans.models import Coupon
from plans.pricing import PricingSpec, TierSpec
from plans.services import tax_rate_create
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    api_client,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2027, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


def period_invoice(subscription, start: datetime) -> Invoice:
    return Invoice.objects.get(subscription=subscription, reason="period", period_start=start)


def figures(invoice: Invoice) -> tuple[D, D, D, D]:
    return invoice.subtotal, invoice.discount, invoice.tax, invoice.total


def discount_lines(invoice: Invoice) -> list[D]:
    return [line.amount for line in invoice.lines.filter(kind="discount")]


def redeem(api, subscription, code: str, *, at: datetime = NOV_15):
    with time_machine.travel(at, tick=False):
        return api.post(
            f"/api/v1/subscriptions/{subscription.pk}/discounts", {"coupon": code}, format="json"
        )


@pytest.fixture
def pro(db):
    """S21's 50.00 plan, and acme on it from November 1st."""
    published_version("pro", base_fee=D("50.00"))
    return subscribe(CustomerFactory(external_id="acme"), "pro")


def test_s21_a_20_percent_coupon_repeating_2_discounts_the_next_two_period_invoices(api, pro):
    # given
    coupon_create(
        code="LAUNCH20",
        name="Launch 20%",
        percent_off=D("20"),
        duration=CouponDuration.REPEATING,
        duration_periods=2,
    )

    # when
    response = redeem(api, pro, "LAUNCH20")

    # then
    assert response.status_code == 201, response.content
    assert response.json() == {
        "coupon": "LAUNCH20",
        "name": "Launch 20%",
        "percent_off": "20.00",
        "amount_off": None,
        "currency": None,
        "duration": "repeating",
        "periods_applied": 0,
        "periods_left": 2,
        "created_at": "2026-11-15T00:00:00Z",
        "ended_at": None,
    }
    assert Coupon.objects.get(code="LAUNCH20").times_redeemed == 1

    # when: December's close
    periods_close(as_of=DEC_1)

    # then: 50.00 - 10.00, and one period left on the subscription
    december = period_invoice(pro, NOV_1)
    assert figures(december) == (D("50.00"), D("10.00"), D("0.00"), D("40.00"))
    assert discount_lines(december) == [D("-10.00")]
    shown = api.get(f"/api/v1/subscriptions/{pro.pk}").json()["discount"]
    assert (shown["coupon"], shown["periods_applied"], shown["periods_left"]) == ("LAUNCH20", 1, 1)
    body = api.get(f"/api/v1/invoices/{december.pk}").json()
    assert (body["subtotal"], body["discount"], body["total"]) == ("50.00", "10.00", "40.00")

    # when: January's and February's closes
    periods_close(as_of=FEB_1)

    # then: the second is discounted too, the third not; the discount is used up
    assert figures(period_invoice(pro, DEC_1)) == (D("50.00"), D("10.00"), D("0.00"), D("40.00"))
    february = period_invoice(pro, JAN_1)
    assert figures(february) == (D("50.00"), D("0.00"), D("0.00"), D("50.00"))
    assert discount_lines(february) == []
    discount = Discount.objects.get(subscription=pro)
    assert (discount.periods_applied, discount.periods_left, discount.ended_at) == (2, 0, JAN_1)
    assert api.get(f"/api/v1/subscriptions/{pro.pk}").json()["discount"] is None


def test_s21_an_amount_off_larger_than_the_subtotal_gives_a_total_of_zero(api, pro):
    coupon_create(
        code="BIG500",
        name="500 off",
        amount_off=D("500.00"),
        currency="USD",
        duration=CouponDuration.ONCE,
    )
    assert redeem(api, pro, "BIG500").status_code == 201

    periods_close(as_of=JAN_1)

    december = period_invoice(pro, NOV_1)
    assert figures(december) == (D("50.00"), D("50.00"), D("0.00"), D("0.00"))
    assert discount_lines(december) == [D("-50.00")]
    assert december.amount_due == D("0.00")
    # once: the next period invoice only
    assert figures(period_invoice(pro, DEC_1)) == (D("50.00"), D("0.00"), D("0.00"), D("50.00"))


def test_a_20_percent_coupon_repeating_3_on_an_s8_hybrid_invoice_with_tax(api, acme_s8):
    # given: VAT 20 %; S8's plan (49.00, 5 seats at 10.00, graduated tokens) and
    # a 20 % coupon for three periods
    subscription = acme_s8
    coupon_create(
        code="Q20",
        name="20% for 3 months",
        percent_off=D("20"),
        duration=CouponDuration.REPEATING,
        duration_periods=3,
    )
    assert redeem(api, subscription, "Q20").status_code == 201
    # 6,005,000 tokens: billable 5,005,000 = 4,000,000 x 0.000008 (32.00)
    # + 1,005,000 x 0.000006 (6.03)
    result = events_ingest(
        events=[
            {
                "id": "t1",
                "customer": "acme",
                "event_name": "llm",
                "timestamp": "2026-11-20T00:00:00Z",
                "properties": {"tokens": 6_005_000},
            }
        ],
        now=DEC_1,
    )
    assert not result.rejected

    # when
    periods_close(as_of=MAR_1)

    # then: November's usage 38.03 + December's fees 99.00 = 137.03; 20 % of it,
    # 27.406, rounded half up once: 27.41; VAT 20 % on 109.62 = 21.924 -> 21.92
    december = period_invoice(subscription, NOV_1)
    assert figures(december) == (D("137.03"), D("27.41"), D("21.92"), D("131.54"))
    assert discount_lines(december) == [D("-27.41")]
    assert [(t.taxable_amount, t.amount) for t in december.tax_lines.all()] == [
        (D("109.62"), D("21.92"))
    ]
    # the next two: 99.00 - 19.80, VAT on 79.20 = 15.84; the fourth undiscounted
    for start in (DEC_1, JAN_1):
        assert figures(period_invoice(subscription, start)) == (
            D("99.00"),
            D("19.80"),
            D("15.84"),
            D("95.04"),
        )
    assert figures(period_invoice(subscription, FEB_1)) == (
        D("99.00"),
        D("0.00"),
        D("19.80"),
        D("118.80"),
    )
    # the discount line sits before tax, after the usage and fees, on the invoice
    kinds = list(december.lines.values_list("kind", flat=True))
    assert kinds[-1] == "discount"


@pytest.fixture
def acme_s8(db):
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    MeterFactory(
        code="tokens", name="tokens", event_name="llm", aggregation="sum", value_property="tokens"
    )
    published_version(
        "s8",
        base_fee=D("49.00"),
        seat_price=D("10.00"),
        charges=(
            ChargeSpec(
                "tokens",
                "overage",
                D(1_000_000),
                pricing=PricingSpec(
                    "graduated",
                    tiers=(TierSpec(D(4_000_000), D("0.000008")), TierSpec(None, D("0.000006"))),
                ),
            ),
        ),
    )
    return subscribe(CustomerFactory(external_id="acme"), "s8", seats=5)


def test_a_percent_off_is_rounded_half_up_once():
    # 25 % of 10.10 is 2.525: half up 2.53 (half even would say 2.52)
    discount = Discount(
        coupon=Coupon(percent_off=D("25"), duration=CouponDuration.FOREVER), periods_left=None
    )
    assert discount_amount(discount, subtotal=D("10.10"), currency="USD") == D("2.53")
    assert discount_amount(discount, subtotal=D("0.00"), currency="USD") == D("0")
    assert discount_amount(discount, subtotal=D("-5.00"), currency="USD") == D("0")


def unchanged_state(coupon: Coupon, subscription: Subscription) -> tuple:
    coupon.refresh_from_db()
    return (
        coupon.times_redeemed,
        coupon.active,
        Discount.objects.filter(coupon=coupon).count(),
        Discount.objects.filter(subscription=subscription).count(),
    )


def test_a_redemption_limit_reached_answers_409_and_changes_nothing(api, pro):
    # given: a coupon of one redemption, redeemed by acme
    coupon = coupon_create(
        code="ONE", name="One", percent_off=D("10"), duration="forever", max_redemptions=1
    )
    assert redeem(api, pro, "ONE").status_code == 201
    other = subscribe(CustomerFactory(external_id="beta"), "pro")
    before = unchanged_state(coupon, other)

    # when
    response = redeem(api, other, "ONE")

    # then
    assert response.status_code == 409, response.content
    assert response.json()["error"]["type"] == "conflict"
    assert unchanged_state(coupon, other) == before == (1, True, 1, 0)
    assert api.get(f"/api/v1/subscriptions/{other.pk}").json()["discount"] is None


def test_an_amount_off_in_another_currency_answers_409_and_changes_nothing(api, pro):
    coupon = coupon_create(
        code="EUR10", name="10 EUR", amount_off=D("10.00"), currency="EUR", duration="once"
    )
    before = unchanged_state(coupon, pro)

    response = redeem(api, pro, "EUR10")

    assert response.status_code == 409, response.content
    assert "EUR" in response.json()["error"]["message"]
    assert unchanged_state(coupon, pro) == before == (0, True, 0, 0)


@pytest.mark.parametrize(
    ("terms", "at"),
    [
        pytest.param({"active": False}, NOV_15, id="archived"),
        pytest.param({"redeem_by": datetime(2026, 11, 10, tzinfo=UTC)}, NOV_15, id="too-late"),
    ],
)
def test_an_archived_or_expired_coupon_answers_409_and_changes_nothing(api, pro, terms, at):
    coupon = coupon_create(code="C", name="C", percent_off=D("10"), duration="once", **terms)
    before = unchanged_state(coupon, pro)

    assert redeem(api, pro, "C", at=at).status_code == 409
    assert unchanged_state(coupon, pro) == before


def test_a_coupon_is_redeemed_up_to_and_including_its_redeem_by_instant(api, pro):
    """Rule: redeem_by is the last instant a coupon is redeemed at, itself included."""
    # given: a coupon redeemable until Nov 15 00:00:00, and two subscriptions
    coupon = coupon_create(
        code="UNTIL15", name="Until 15", percent_off=D("10"), duration="once", redeem_by=NOV_15
    )
    late = subscribe(CustomerFactory(external_id="beta"), "pro")

    # when: acme redeems it at that instant, beta one second later
    on_time = redeem(api, pro, "UNTIL15", at=NOV_15)
    before = unchanged_state(coupon, late)
    too_late = redeem(api, late, "UNTIL15", at=NOV_15 + timedelta(seconds=1))

    # then
    assert on_time.status_code == 201, on_time.content
    assert unchanged_state(coupon, pro) == (1, True, 1, 1)
    assert too_late.status_code == 409, too_late.content
    assert too_late.json()["error"]["fields"] == {
        "coupon": ["coupon UNTIL15 could be redeemed until 2026-11-15T00:00:00+00:00"]
    }
    assert unchanged_state(coupon, late) == before == (1, True, 1, 0)


def test_a_second_discount_on_a_subscription_answers_409(api, pro):
    first = coupon_create(code="A", name="A", percent_off=D("10"), duration="forever")
    second = coupon_create(code="B", name="B", percent_off=D("50"), duration="once")
    assert redeem(api, pro, "A").status_code == 201

    response = redeem(api, pro, "B")

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {
        "coupon": ["the subscription already has a discount"]
    }
    assert unchanged_state(second, pro) == (0, True, 0, 1)
    assert unchanged_state(first, pro) == (1, True, 1, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"coupon": "NOPE"}, "coupon"),
        ({}, "coupon"),
        ({"coupon": ["A"]}, "coupon"),
        ({"coupon": None}, "coupon"),
    ],
)
def test_an_unknown_coupon_or_a_bad_body_answers_400(api, pro, body, field):
    with time_machine.travel(NOV_15, tick=False):
        response = api.post(f"/api/v1/subscriptions/{pro.pk}/discounts", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Discount.objects.exists()


def test_an_ended_subscription_takes_no_coupon(api, pro):
    coupon = coupon_create(code="A", name="A", percent_off=D("10"), duration="forever")
    subscription_cancel(subscription=pro, effective="immediate", at=NOV_15)

    assert redeem(api, pro, "A").status_code == 409
    assert unchanged_state(coupon, pro) == (0, True, 0, 0)


def test_plan_change_and_cancel_invoices_are_not_discounted(pro):
    # given: a forever 50 % discount
    coupon = coupon_create(code="HALF", name="Half", percent_off=D("50"), duration="forever")
    discount_redeem(subscription=pro, coupon=coupon, now=NOV_1)
    bigger = PlanVersionFactory(plan=pro.version.plan, base_fee=D("80.00"))

    # when: an immediate plan change mid-November, then a cancel mid-December
    _, change = subscription_change_plan(
        subscription=pro, version=bigger, effective="immediate", at=NOV_15
    )
    periods_close(as_of=DEC_1)
    _, cancel = subscription_cancel(
        subscription=Subscription.objects.get(pk=pro.pk),
        effective="immediate",
        at=datetime(2026, 12, 16, 12, tzinfo=UTC),
    )

    # then: only the period invoice has a discount (half of December's 80.00)
    assert (change.discount, discount_lines(change)) == (D("0"), [])
    assert figures(period_invoice(pro, NOV_1))[:2] == (D("80.00"), D("40.00"))
    assert Discount.objects.get(subscription=pro).periods_applied == 1
    # and the cancel bills nothing (no usage): its unused time, half of December,
    # is a credit note of half of what December's invoice charged after the
    # discount (20.00 of the 40.00), not of the 80.00 list price
    assert cancel is None
    note = CreditNote.objects.get(invoice=period_invoice(pro, NOV_1))
    assert list(note.lines.values_list("amount", flat=True)) == [D("20.00")]


def test_a_subscription_ending_at_period_end_ends_its_discount(pro):
    coupon = coupon_create(code="F", name="F", percent_off=D("10"), duration="forever")
    discount_redeem(subscription=pro, coupon=coupon, now=NOV_1)
    subscription_cancel(subscription=pro, effective="period_end", at=NOV_15)

    periods_close(as_of=DEC_1)

    # the last invoice bills no fees (nothing to discount), and the discount ends with it
    discount = Discount.objects.get(subscription=pro)
    assert (discount.periods_applied, discount.ended_at) == (1, DEC_1)
    assert period_invoice(pro, NOV_1).discount == 0


def pdf_text(invoice: Invoice) -> str:
    from pypdf import PdfReader

    from invoices.pdf import render_invoice_pdf

    reader = PdfReader(io.BytesIO(render_invoice_pdf(invoice)))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(
    ("locale", "line", "discount_row"),
    [
        ("en", "Launch 20%: 20% off 1 -10.00", "Discount -10.00"),
        ("fr", "Launch 20% : remise de 20\xa0% 1 -10,00", "Remise -10,00"),
        ("de", "Launch 20%: 20\xa0% Rabatt 1 -10,00", "Rabatt -10,00"),
    ],
)
def test_the_pdf_shows_the_discount_line_and_row_in_the_customer_language(
    locale, line, discount_row
):
    published_version("pro", base_fee=D("50.00"))
    subscription = subscribe(CustomerFactory(external_id="acme", locale=locale), "pro")
    coupon = coupon_create(code="LAUNCH20", name="Launch 20%", percent_off=D("20"), duration="once")
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_15)
    periods_close(as_of=DEC_1)

    text = pdf_text(period_invoice(subscription, NOV_1)).splitlines()

    # the line in its group (description, quantity, amount), and the totals' row
    assert line in text
    assert discount_row in text
