"""The revenue report and the books recognize alike (issue 93, API.md v1.4):
fees billed in advance and prepaid commits go to deferred revenue when issued
and are recognized as earned (fees by the recognition entries, from the one
earned-revenue function; commits as drawn plus breakage at expiry), so that
GET /api/v1/revenue/bridge says earned = journal revenue + accrued closing -
accrued opening, difference 0.00, per seller."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.test import override_settings

from billing.invoicing.close import periods_close
from billing.journal.models import AccountKind, DocumentType, JournalEntry, JournalPeriodLock
from billing.revenue.recognition import revenue_recognize_closed
from billing.subscriptions.discounts import discount_redeem
from billing.tasks import recognize_revenue
from common.vocabulary import CouponDuration
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_void
from plans.coupons import coupon_create
from plans.models import Meter
from plans.services import meter_create
from tests.factories import api_client, default_seller, subscribe

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
# October closes late: on the 3rd of November.
NOV_3 = datetime(2026, 11, 3, 9, tzinfo=UTC)
NOV_4 = datetime(2026, 11, 4, tzinfo=UTC)


def per_thousand(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": "1000"}


@pytest.fixture
def catalog(db):
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
    )
    meter_create(
        code="storage",
        name="Storage",
        event_name="storage.gb",
        aggregation=Meter.SUM,
        value_property="gb",
    )
    plan = {
        "code": "pro",
        "name": "Pro",
        "currency": "USD",
        # Billed in advance: 1.00 a day in October, 31 days.
        "base_fee": "31.00",
        "publish": True,
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "pricing": per_thousand("1.00"),
            },
            {
                "meter": "storage",
                "model": "overage",
                "included_units": "0",
                "pricing": {"scheme": "per_unit", "unit_price": "1.00"},
            },
        ],
    }
    response = api_client("admin").post("/api/v1/plans", plan, format="json")
    assert response.status_code == 201, response.json()


def sellers() -> tuple[BillingEntity, BillingEntity]:
    inc = default_seller({"name": "Usage Billing Inc.", "country": "US"})
    ltd = billing_entity_save(
        entity=BillingEntity(
            code="ltd",
            legal_name="Usage Billing Ltd",
            country="GB",
            invoice_prefix="GB",
            credit_note_prefix="GBCN",
            functional_currency="USD",
            timezone="UTC",
        )
    )
    return inc, ltd


def post_usage(external_id: str, when: datetime, *, tokens: int, gb: int) -> None:
    events = [
        {
            "id": f"{external_id}-t",
            "customer": external_id,
            "event_name": "llm.tokens",
            "timestamp": when.isoformat(),
            "properties": {"tokens": tokens},
        },
        {
            "id": f"{external_id}-s",
            "customer": external_id,
            "event_name": "storage.gb",
            "timestamp": when.isoformat(),
            "properties": {"gb": gb},
        },
    ]
    with time_machine.travel(when, tick=False):
        posted = api_client("events:write").post(
            "/api/v1/events", {"events": events}, format="json"
        )
    assert posted.status_code in (200, 201, 202), posted.json()


# 300.00 over October and November, 150.00 a month, no rollover.
COMMIT = {
    "amount": "300.00",
    "currency": "USD",
    "starts_at": "2026-10-01T00:00:00Z",
    "ends_at": "2026-12-01T00:00:00Z",
    "billing": "prepaid",
    "access": "per_period",
    "applies_to": ["llm_tokens"],
}


def october(external_id: str, seller: str, *, tokens: int, gb: int):
    """A customer of `seller` on Pro from October 1 (its fee billed in advance),
    with a prepaid commit, October's usage on the 10th, 10.00 of October's fee
    credited on the 20th."""
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id=external_id, name=external_id.title(), currency="USD", timezone_name="UTC"
        )
        customer.billing_entity = BillingEntity.objects.get(code=seller)
        customer.save(update_fields=["billing_entity"])
        subscription = subscribe(customer, "pro", start=OCT_1)
        signed = api_client("admin").post(
            f"/api/v1/customers/{external_id}/commits", COMMIT, format="json"
        )
        assert signed.status_code == 201, signed.json()
    post_usage(external_id, OCT_10, tokens=tokens, gb=gb)
    start = Invoice.objects.get(customer=customer, reason=Invoice.START)
    if start.status == Invoice.DRAFT:
        with time_machine.travel(OCT_1, tick=False):
            start = invoice_finalize(invoice=start, now=OCT_1, collect=False)
    fee = start.lines.get(kind="base_fee")
    with time_machine.travel(OCT_20, tick=False):
        credit_note_issue(
            invoice=start,
            lines=[CreditLineInput(fee.pk, D("10.00"))],
            reason=CreditNote.OTHER,
            now=OCT_20,
        )
    return customer, subscription


def bridge(entity: str, start: str, end: str) -> dict:
    response = api_client("finance:read").get(
        "/api/v1/revenue/bridge", {"billing_entity": entity, "from": start, "to": end}
    )
    assert response.status_code == 200, response.json()
    return response.json()


def sum_of(kind: str, **filters) -> D:
    totals = JournalEntry.objects.filter(kind=kind, **filters).aggregate(
        debit=Sum("debit", default=D(0)), credit=Sum("credit", default=D(0))
    )
    return totals["credit"] - totals["debit"]


def two_sellers_late_close():
    """October for two sellers' customers, closed late (November 3), the
    recognition run on the 4th."""
    sellers()
    october("acme", "default", tokens=100_000, gb=20)
    october("bolt", "ltd", tokens=120_000, gb=7)
    with time_machine.travel(NOV_3, tick=False):
        periods_close(as_of=NOV_3)


def test_the_bridge_is_zero_per_seller_with_fees_in_advance_a_commit_a_credit_note_and_a_late_close(
    catalog,
):
    two_sellers_late_close()
    with time_machine.travel(NOV_4, tick=False):
        # given: the books before any recognition: October's fees sit in deferred revenue
        assert sum_of(AccountKind.REVENUE, date__lt=date(2026, 11, 1)) == D(0)
        # when: the recognition of the periods ended
        out = StringIO()
        call_command("journal_recognize", stdout=out)
        assert out.getvalue() == "wrote 2 recognition document(s), by month\n"
        acme = bridge("default", "2026-10-01", "2026-11-01")
        bolt = bridge("ltd", "2026-10-01", "2026-11-01")
        acme_november = bridge("default", "2026-11-01", "2026-11-04")

    # then, per seller: October earned its fee (31.00) less the 10.00 credited,
    # the usage the commit drew (100.00, 120.00), the storage (20.00, 7.00) and
    # the commit's October breakage (150.00 - drawn: 50.00, 30.00)
    assert acme == {
        "billing_entity": "default",
        "currency": "USD",
        "earned": "191.00",
        # recognized 21.00 (31.00 - 10.00) on Oct 31 and 50.00 breakage
        "journal_revenue": "71.00",
        "deferred_opening": "0.00",
        # 331.00 sold, 10.00 credited, 21.00 recognized, 50.00 expired
        "deferred_closing": "250.00",
        "accrued_opening": "0.00",
        # October's usage, on the invoice issued November 3
        "accrued_closing": "120.00",
        "difference": "0.00",
    }
    assert bolt == {
        "billing_entity": "ltd",
        "currency": "USD",
        "earned": "178.00",
        "journal_revenue": "51.00",
        "deferred_opening": "0.00",
        "deferred_closing": "270.00",
        "accrued_opening": "0.00",
        "accrued_closing": "127.00",
        "difference": "0.00",
    }
    # and November so far (recognized by month: its fee not yet, 31.00 over 30
    # days, 3.10 earned by the 4th, accrued until November ends)
    assert acme_november == {
        "billing_entity": "default",
        "currency": "USD",
        "earned": "3.10",
        "journal_revenue": "120.00",
        "deferred_opening": "250.00",
        # November's fee (31.00) deferred, the drawdown (100.00) taken from it
        "deferred_closing": "181.00",
        "accrued_opening": "120.00",
        "accrued_closing": "3.10",
        "difference": "0.00",
    }
    # and the recognition entries: one per customer and month, per plan
    assert list(
        JournalEntry.objects.filter(document_type=DocumentType.RECOGNITION)
        .order_by("billing_entity", "line")
        .values_list("billing_entity", "date", "account", "plan", "debit", "credit")
    ) == [
        ("default", date(2026, 10, 31), "4000", "pro", D(0), D("21.00")),
        ("default", date(2026, 10, 31), "2300", "", D("21.00"), D(0)),
        ("ltd", date(2026, 10, 31), "4000", "pro", D(0), D("21.00")),
        ("ltd", date(2026, 10, 31), "2300", "", D("21.00"), D(0)),
    ]


def test_recognition_runs_any_number_of_times_and_catches_a_late_invoice_up(catalog):
    sellers()
    october("acme", "default", tokens=100_000, gb=20)
    # given: October recognized on Nov 2, before its close (the fee, 21.00)
    with time_machine.travel(NOV_1 + timedelta(days=1), tick=False):
        assert revenue_recognize_closed(now=NOV_1 + timedelta(days=1)) == 1
    # when: it runs again with nothing new (the beat's task)
    with time_machine.travel(NOV_1 + timedelta(days=1), tick=False):
        assert recognize_revenue() == 0
    assert JournalEntry.objects.filter(document_type=DocumentType.RECOGNITION).count() == 2
    # when: October closes late; its invoice bills November's fee in advance,
    # which October earned nothing of: nothing more to recognize for October
    with time_machine.travel(NOV_3, tick=False):
        periods_close(as_of=NOV_3)
    with time_machine.travel(NOV_4, tick=False):
        assert revenue_recognize_closed(now=NOV_4) == 0
        assert bridge("default", "2026-10-01", "2026-11-01")["difference"] == "0.00"
    assert sum_of(AccountKind.REVENUE, document_type=DocumentType.RECOGNITION) == D("21.00")


@override_settings(BILLING_RECOGNITION_PERIOD="day")
def test_by_day_a_fee_issued_late_is_recognized_in_the_days_it_earned_by_the_next_run(catalog):
    sellers()
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id="acme", name="Acme", currency="USD", timezone_name="UTC"
        )
        subscribe(customer, "pro", start=OCT_1)
    # given: October 1-9 recognized by day while the fee's invoice was a draft
    oct_10, oct_15, oct_16 = (datetime(2026, 10, day, tzinfo=UTC) for day in (10, 15, 16))
    assert revenue_recognize_closed(now=oct_10, since=date(2026, 10, 1)) == 0
    # when: it is issued on the 15th (its period ends after: billed in advance)
    start = Invoice.objects.get(customer=customer, reason=Invoice.START)
    with time_machine.travel(oct_15, tick=False):
        invoice_finalize(invoice=start, now=oct_15, collect=False)
    # then: the next run recognizes 1.00 on each day from the 1st to the 15th
    assert revenue_recognize_closed(now=oct_16, since=date(2026, 10, 1)) == 15
    assert revenue_recognize_closed(now=oct_16, since=date(2026, 10, 1)) == 0
    recognized = JournalEntry.objects.filter(
        document_type=DocumentType.RECOGNITION, kind=AccountKind.REVENUE
    ).order_by("date")
    assert list(recognized.values_list("date", "credit"))[:2] == [
        (date(2026, 10, 1), D("1.00")),
        (date(2026, 10, 2), D("1.00")),
    ]
    assert recognized.count() == 15
    assert sum_of(AccountKind.REVENUE) == D("15.00")
    assert sum_of(AccountKind.DEFERRED_REVENUE) == D("16.00")
    # and any window of whole days bridges: the first ten, and the 11th to the 16th
    with time_machine.travel(oct_16, tick=False):
        first = bridge("default", "2026-10-01", "2026-10-11")
        then = bridge("default", "2026-10-11", "2026-10-16")
    assert (first["earned"], first["journal_revenue"], first["difference"]) == (
        "10.00",
        "10.00",
        "0.00",
    )
    assert (then["earned"], then["journal_revenue"], then["deferred_closing"]) == (
        "5.00",
        "5.00",
        "16.00",
    )
    assert then["difference"] == "0.00"


def test_a_fee_issued_after_its_period_is_revenue_when_issued_and_accrued_until_then(catalog):
    sellers()
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id="acme", name="Acme", currency="USD", timezone_name="UTC"
        )
        subscribe(customer, "pro", start=OCT_1)
    start = Invoice.objects.get(customer=customer, reason=Invoice.START)
    with time_machine.travel(NOV_3, tick=False):
        invoice_finalize(invoice=start, now=NOV_3, collect=False)
    with time_machine.travel(NOV_4, tick=False):
        assert revenue_recognize_closed(now=NOV_4) == 0
        october_bridge = bridge("default", "2026-10-01", "2026-11-01")
        november = bridge("default", "2026-11-01", "2026-11-04")
    assert (october_bridge["earned"], october_bridge["journal_revenue"]) == ("31.00", "0.00")
    assert (october_bridge["accrued_closing"], october_bridge["difference"]) == ("31.00", "0.00")
    assert (november["journal_revenue"], november["accrued_opening"]) == ("31.00", "31.00")
    assert november["difference"] == "0.00"


def test_recognition_of_a_locked_month_goes_to_the_next_open_month(catalog):
    two_sellers_late_close()
    JournalPeriodLock.objects.create(month=date(2026, 10, 1), locked_at=NOV_3)
    with time_machine.travel(NOV_4, tick=False):
        assert revenue_recognize_closed(now=NOV_4) == 2
        acme = bridge("default", "2026-10-01", "2026-11-01")
    assert set(
        JournalEntry.objects.filter(document_type=DocumentType.RECOGNITION).values_list(
            "date", "document_date"
        )
    ) == {(date(2026, 11, 1), date(2026, 10, 31))}
    # The books of October are closed: the bridge says what they miss.
    assert acme["journal_revenue"] == "50.00"
    assert acme["difference"] == "21.00"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-10-01"}, "to"),
        ({"from": "2026-10-01", "to": "2026-10-01", "billing_entity": "default"}, "to"),
        ({"from": "2026-10-32", "to": "2026-11-01", "billing_entity": "default"}, "from"),
        ({"from": "2026-10-01", "to": "2026-11-01"}, "billing_entity"),
        ({"from": "2026-10-01", "to": "2026-11-01", "billing_entity": "nope"}, "billing_entity"),
        ({"from": "2025-01-01", "to": "2026-11-01", "billing_entity": "default"}, "to"),
        ({"from": "2026-10-01", "to": "2026-11-01", "tz": "UTC"}, "tz"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(catalog, query, field):
    sellers()
    response = api_client("finance:read").get("/api/v1/revenue/bridge", query)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()
    assert not JournalEntry.objects.exists()


def test_the_bridge_needs_the_finance_scope(catalog):
    sellers()
    response = api_client("read").get(
        "/api/v1/revenue/bridge",
        {"from": "2026-10-01", "to": "2026-11-01", "billing_entity": "default"},
    )
    assert response.status_code == 403


def test_a_discount_on_a_fee_billed_in_advance_is_recognized_with_it(catalog):
    # given: 10 % off every period invoice from October's close on
    sellers()
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id="acme", name="Acme", currency="USD", timezone_name="UTC"
        )
        subscription = subscribe(customer, "pro", start=OCT_1)
        coupon = coupon_create(
            code="TEN", name="Ten", duration=CouponDuration.FOREVER, percent_off=D("10")
        )
        discount_redeem(subscription=subscription, coupon=coupon, now=OCT_1)
        start = Invoice.objects.get(customer=customer, reason=Invoice.START)
        invoice_finalize(invoice=start, now=OCT_1, collect=False)
    post_usage("acme", OCT_10, tokens=0, gb=20)
    # when: October closes on time: 20.00 of storage and November's fee (31.00),
    # 5.10 off: 2.00 of the storage's, 3.10 of the fee's
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    closing = Invoice.objects.get(customer=customer, reason=Invoice.PERIOD)
    assert (closing.subtotal, closing.discount) == (D("51.00"), D("5.10"))
    booked = JournalEntry.objects.filter(document_key=f"invoice:{closing.pk}")
    assert sum_of(AccountKind.DEFERRED_REVENUE, document_key=f"invoice:{closing.pk}") == D("27.90")
    assert sum_of(AccountKind.DISCOUNTS, document_key=f"invoice:{closing.pk}") == D("-2.00")
    assert booked.filter(kind=AccountKind.REVENUE).count() == 1
    # then: November recognizes the fee net of its discount, and the bridge is 0.00
    dec_2 = datetime(2026, 12, 2, tzinfo=UTC)
    with time_machine.travel(dec_2, tick=False):
        # October's fee (31.00), November's (27.90)
        assert revenue_recognize_closed(now=dec_2, since=date(2026, 10, 1)) == 2
        november = bridge("default", "2026-11-01", "2026-12-01")
    # November earned its fee net of its discount; the books booked October's
    # storage net of its (18.00, issued November 1: accrued until then) and
    # recognized the fee
    assert (november["earned"], november["journal_revenue"]) == ("27.90", "45.90")
    assert (november["accrued_opening"], november["accrued_closing"]) == ("18.00", "0.00")
    assert (november["deferred_closing"], november["difference"]) == ("0.00", "0.00")


def test_a_void_after_recognition_takes_the_recognition_back(catalog):
    sellers()
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id="acme", name="Acme", currency="USD", timezone_name="UTC"
        )
        subscribe(customer, "pro", start=OCT_1)
        start = Invoice.objects.get(customer=customer, reason=Invoice.START)
        invoice_finalize(invoice=start, now=OCT_1, collect=False)
    # given: October's fee recognized
    with time_machine.travel(NOV_3, tick=False):
        assert revenue_recognize_closed(now=NOV_3) == 1
    # when: its invoice is voided, then the recognition runs again
    nov_5 = datetime(2026, 11, 5, tzinfo=UTC)
    with time_machine.travel(nov_5, tick=False):
        invoice_void(invoice=start, reason="", now=nov_5)
        assert revenue_recognize_closed(now=nov_5) == 1
        october_bridge = bridge("default", "2026-10-01", "2026-11-01")
    # then: a second document takes October's 31.00 back; nothing is left deferred
    assert list(
        JournalEntry.objects.filter(document_type=DocumentType.RECOGNITION, kind="revenue")
        .order_by("id")
        .values_list("document_key", "date", "debit", "credit")
    ) == [
        (f"recognition:month:2026-10-01:USD:{customer.pk}:1", date(2026, 10, 31), D(0), D("31")),
        (f"recognition:month:2026-10-01:USD:{customer.pk}:2", date(2026, 10, 31), D("31"), D(0)),
    ]
    assert sum_of(AccountKind.DEFERRED_REVENUE) == D(0)
    assert october_bridge["earned"] == october_bridge["journal_revenue"] == "0.00"
    assert october_bridge["difference"] == "0.00"
