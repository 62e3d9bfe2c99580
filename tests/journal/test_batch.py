"""A batch of the close's finalizations (invoices_finalize_due) journals each
invoice as one finalized alone would (billing.journal.writer.journal_batch): the
same entries, a locked month moving them alike, with finance's accounts and the
locked months read once and the entries written in one statement for the batch."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.journal.models import JournalEntry, JournalPeriodLock
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoices_finalize_due
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, period_draft, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


def catalog() -> None:
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=False)
    published_version("starter", base_fee=D("30.00"))


def drafts(suffix: str) -> set[int]:
    """Three customers' drafts: a plan's start invoice (its revenue by plan), a usage
    invoice with VAT, and one with a discount. Returns the customers' ids."""
    first = CustomerFactory(external_id=f"a{suffix}")
    subscribe(first, "starter", start=NOV_1)
    second = CustomerFactory(external_id=f"b{suffix}", tax_rates=["vat"])
    third = CustomerFactory(external_id=f"c{suffix}")
    period_draft(second, [LineInput("usage", "API calls", "api_calls", D(1000), D("0.1"), D(100))])
    period_draft(
        third,
        [
            LineInput("usage", "API calls", "api_calls", D(500), D("0.1"), D(50)),
            LineInput("discount", "Launch", None, D(1), D(-5), D(-5)),
        ],
    )
    return {first.pk, second.pk, third.pk}


def entries(customers: set[int]) -> list[tuple]:
    return sorted(
        (key.split(":")[0], *rest)
        for key, *rest in JournalEntry.objects.filter(customer_id__in=customers).values_list(
            "document_key",
            "date",
            "document_date",
            "line",
            "account",
            "debit",
            "credit",
            "meter",
            "plan",
            "tax_rate",
        )
    )


def test_a_batch_journals_what_one_by_one_journals_reading_once(db):
    # given: October locked (read, moving nothing), and three drafts finalized one
    # by one
    JournalPeriodLock.objects.create(month=date(2026, 10, 1), locked_at=NOV_1)
    catalog()
    alone = drafts("1")
    for invoice in Invoice.objects.filter(status=Invoice.DRAFT).order_by("pk"):
        invoice_finalize(invoice=invoice, now=DEC_2, collect=False)
    expected = entries(alone)
    assert {row[0] for row in expected} == {"invoice"} and len(expected) >= 7

    # when: the same drafts of three other customers finalized by the close's batch
    batched = drafts("2")
    with CaptureQueriesContext(connection) as queries:
        assert invoices_finalize_due(cutoff=DEC_2, now=DEC_2) == 3

    # then: the same entries; the accounts, the locks and the entries one statement each
    assert entries(batched) == expected
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum('FROM "billing_journalaccount"' in s for s in sql) == 1
    assert sum('FROM "billing_journalperiodlock"' in s for s in sql) == 1
    assert sum(s.startswith('INSERT INTO "billing_journalentry"') for s in sql) == 1


def test_a_locked_month_moves_a_batch_s_entries_as_it_moves_one(db):
    JournalPeriodLock.objects.create(month=date(2026, 12, 1), locked_at=NOV_1)
    catalog()
    drafts("")

    assert invoices_finalize_due(cutoff=DEC_2, now=DEC_2) == 3

    assert set(JournalEntry.objects.values_list("date", "document_date")) == {
        (date(2027, 1, 1), date(2026, 12, 2))
    }
