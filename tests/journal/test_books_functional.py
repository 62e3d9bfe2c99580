"""Books per seller (issue 75): every journal entry carries its seller and its
amount in the seller's functional currency at the rate of the document's day;
each document balances in both currencies; a payment settling a receivable
booked at another rate books the difference to exchange differences (S32);
a missing rate leaves the functional amounts null until it is entered and the
entries are filled (transaction amounts untouched)."""

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal as D
from importlib import import_module

import pytest
from django.apps import apps

from billing.journal.functional import journal_functional_fill
from billing.journal.models import JournalEntry
from billing.journal.writer import Document, Leg, journal_write
from tests.factories import CustomerFactory
from tests.journal.books_support import (
    NOV_5,
    NOV_20,
    invoice,
    pay,
    rate,
    s32_books,
    s32_rates,
    sellers,
)

pytestmark = pytest.mark.django_db

books_migration = import_module("billing.migrations.0036_journal_books")


def rows(document_key: str) -> list[tuple]:
    return list(
        JournalEntry.objects.filter(document_key=document_key)
        .order_by("line")
        .values_list(
            "billing_entity",
            "account",
            "debit",
            "credit",
            "currency",
            "functional_debit",
            "functional_credit",
            "functional_currency",
            "rate",
        )
    )


def test_s32_the_eur_seller_books_a_usd_invoice_and_its_payment_in_eur():
    books = s32_books()
    ny = books["ny"]

    # the invoice on 5 Nov at 0.90: receivable 90.00 EUR
    assert rows(f"invoice:{ny.pk}") == [
        ("sas", "4000", D(0), D("100.00"), "USD", D(0), D("90.00"), "EUR", D("0.9")),
        ("sas", "1100", D("100.00"), D(0), "USD", D("90.00"), D(0), "EUR", D("0.9")),
    ]
    # paid on 20 Nov at 0.92: clearing 92.00, receivable 90.00 as booked, 2.00 gained
    assert rows(f"payment:{ny.pk}") == [
        ("sas", "1200", D("100.00"), D(0), "USD", D("92.00"), D(0), "EUR", D("0.92")),
        ("sas", "1100", D(0), D("100.00"), "USD", D(0), D("90.00"), "EUR", D("0.92")),
        ("sas", "7900", D(0), D(0), "USD", D(0), D("2.00"), "EUR", D("0.92")),
    ]
    assert JournalEntry.objects.get(document_key=f"payment:{ny.pk}", line=2).account_name == (
        "Exchange differences"
    )
    # the seller's own currency and the USD seller's books: the amounts themselves, rate 1
    assert rows(f"invoice:{books['paris'].pk}")[1] == (
        "sas", "1100", D("50.00"), D(0), "EUR", D("50.00"), D(0), "EUR", D(1),
    )  # fmt: skip
    assert rows(f"payment:{books['boston'].pk}") == [
        ("default", "1200", D("30.00"), D(0), "USD", D("30.00"), D(0), "USD", D(1)),
        ("default", "1100", D(0), D("30.00"), "USD", D(0), D("30.00"), "USD", D(1)),
    ]


def test_every_document_balances_in_both_currencies():
    s32_books()

    totals = defaultdict(lambda: [D(0), D(0)])
    for entry in JournalEntry.objects.all():
        totals[entry.document_key][0] += entry.debit - entry.credit
        totals[entry.document_key][1] += entry.functional_debit - entry.functional_credit
    assert len(totals) == 5
    assert {tuple(pair) for pair in totals.values()} == {(D(0), D(0))}


def test_rounding_is_per_leg_and_the_cent_left_goes_to_the_largest_leg():
    # given 1 USD = 0.3333 EUR: 0.10 -> 0.03, each 0.05 -> 0.02 (0.016665)
    rate("USD", "EUR", "0.3333", datetime(2026, 10, 1, tzinfo=UTC))
    _inc, sas = sellers()
    customer = CustomerFactory(external_id="ny", billing_entity="sas")

    journal_write(
        document=Document("invoice", "T-1", "test:1", customer.pk, "USD", NOV_5, seller=sas),
        legs=[
            Leg("revenue", D("-0.05"), meter="a"),
            Leg("revenue", D("-0.05"), meter="b"),
            Leg("receivable", D("0.10")),
        ],
        now=NOV_5,
    )

    assert [(e.functional_debit, e.functional_credit) for e in JournalEntry.objects.all()] == [
        (D(0), D("0.02")),
        (D(0), D("0.02")),
        (D("0.04"), D(0)),
    ]


def test_a_missing_rate_leaves_the_functional_amounts_null_until_filled():
    # given no USD->EUR rate when the EUR seller invoices and is paid
    books = s32_books(with_rates=False)
    ny = books["ny"]
    waiting = JournalEntry.objects.filter(rate__isnull=True)
    assert sorted({e.document_key for e in waiting}) == sorted(
        [f"invoice:{ny.pk}", f"payment:{ny.pk}"]
    )
    assert {(e.functional_debit, e.functional_credit) for e in waiting} == {(None, None)}
    written = list(JournalEntry.objects.order_by("pk").values_list("pk", "debit", "credit", "date"))

    # nothing to fill while the rate is still missing
    assert journal_functional_fill() == 0

    # when the rates are entered and the journal filled
    s32_rates()
    assert journal_functional_fill() == 2

    # then the same functional amounts as if the rates had been there, nothing else changed
    assert [(r[2], r[3], r[4], r[5], r[6], r[8]) for r in rows(f"payment:{ny.pk}")] == [
        (D("100.00"), D(0), "USD", D("92.00"), D(0), D("0.92")),
        (D(0), D("100.00"), "USD", D(0), D("90.00"), D("0.92")),
        (D(0), D(0), "USD", D(0), D("2.00"), D("0.92")),
    ]
    assert [r[5:7] for r in rows(f"invoice:{ny.pk}")] == [
        (D(0), D("90.00")),
        (D("90.00"), D(0)),
    ]
    assert (
        list(JournalEntry.objects.order_by("pk").values_list("pk", "debit", "credit", "date"))
        == written
    )
    assert journal_functional_fill() == 0


def test_the_migration_gives_old_entries_their_seller_and_functional_amounts():
    # given entries written before books per seller (their new columns as the
    # schema step leaves them)
    books = s32_books()
    JournalEntry.objects.update(
        billing_entity="", functional_currency="", functional_debit=None,
        functional_credit=None, rate=None,
    )  # fmt: skip

    books_migration.books_backfill(apps, None)

    # the seller's currency: the amounts at 1; another: waiting for its rate
    boston = JournalEntry.objects.filter(document_key=f"invoice:{books['boston'].pk}")
    assert {
        (e.billing_entity, e.functional_debit, e.functional_credit, e.rate) for e in boston
    } == {
        ("default", D(0), D("30.00"), D(1)),
        ("default", D("30.00"), D(0), D(1)),
    }
    ny = JournalEntry.objects.filter(customer__external_id="ny")
    assert {(e.billing_entity, e.functional_currency, e.rate) for e in ny} == {("sas", "EUR", None)}
    assert journal_functional_fill() == 2
    assert JournalEntry.objects.filter(rate__isnull=True).count() == 0
    assert date(2026, 11, 20) in set(ny.values_list("document_date", flat=True))


def test_a_payment_of_an_invoice_never_journaled_is_at_its_own_day_s_rate():
    # given an invoice whose entries are not there (issued before the journal)
    s32_rates()
    sellers()
    ny = invoice(CustomerFactory(external_id="ny", billing_entity="sas"), "100.00", on=NOV_5)
    JournalEntry.objects.filter(document_key=f"invoice:{ny.pk}").delete()

    pay(ny, on=NOV_20)

    assert [(r[1], r[5], r[6], r[8]) for r in rows(f"payment:{ny.pk}")] == [
        ("1200", D("92.00"), D(0), D("0.92")),
        ("1100", D(0), D("92.00"), D("0.92")),
    ]


def test_a_document_is_converted_at_the_rate_in_effect_at_the_start_of_its_day():
    # given: 1 USD = 0.90 EUR from 1 Oct, and 0.95 from noon on 5 Nov
    rate("USD", "EUR", "0.90", datetime(2026, 10, 1, tzinfo=UTC))
    rate("USD", "EUR", "0.95", datetime(2026, 11, 5, 12, tzinfo=UTC))
    sellers()
    ny = CustomerFactory(external_id="ny", name="New York Inc", billing_entity="sas")

    # when: the EUR seller issues a USD invoice of 100.00 at 15:00 that day
    issued = invoice(ny, "100.00", on=datetime(2026, 11, 5, 15, tzinfo=UTC))

    # then: it is booked at the day's rate as the day began (0.90), not at noon's
    assert rows(f"invoice:{issued.pk}") == [
        ("sas", "4000", D(0), D("100.00"), "USD", D(0), D("90.00"), "EUR", D("0.9")),
        ("sas", "1100", D("100.00"), D(0), "USD", D("90.00"), D(0), "EUR", D("0.9")),
    ]
