"""A prepaid commit in the journal: sold to deferred revenue, drawn by the
closing invoices (deferred to revenue), its unused access (and rollover left
over) expired to breakage at each close, and deferred revenue always what the
commit still holds. The backfill writes the expiries once."""

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.close import periods_close
from billing.journal.models import AccountKind, DocumentType, JournalEntry
from billing.locks import subscription_lock
from invoices.models import Invoice
from invoices.services import invoice_void
from tests.wallets.test_commits import (
    NOV_1,
    access_blocks,
    catalog,  # noqa: F401 (the fixture)
    customer_on_plan,
    movements,
    period_invoice,
    post_usage,
    sign,
)
from wallets.commit_models import Commit
from wallets.commits import commits_end_early

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2027, 2, 1, tzinfo=UTC)

# 3,000.00 over three months, 1,000.00 a month; half of what a month leaves
# rolls over into the next month only.
PREPAID = {
    "amount": "3000.00",
    "currency": "USD",
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2027-02-01T00:00:00Z",
    "billing": "prepaid",
    "access": "per_period",
    "applies_to": ["llm_tokens"],
    "rollover": {"percent": "50", "expires_after_periods": 1},
}


def balance(customer, kind: str) -> D:
    totals = JournalEntry.objects.filter(customer=customer, kind=kind).aggregate(
        debit=Sum("debit"), credit=Sum("credit")
    )
    return (totals["debit"] or D(0)) - (totals["credit"] or D(0))


def held(commit: Commit) -> D:
    return sum((a.remaining for a in access_blocks(commit)), D(0))


def close(customer, start: datetime, end: datetime) -> Invoice:
    """The period's close (its invoice finalized at once: no grace period)."""
    periods_close(as_of=end)
    invoice = period_invoice(customer, start)
    assert invoice.status == Invoice.FINALIZED
    return invoice


def breakage(customer) -> list[tuple[date, str, D, D]]:
    return list(
        JournalEntry.objects.filter(customer=customer, document_type=DocumentType.COMMIT_EXPIRY)
        .order_by("id")
        .values_list("date", "account", "debit", "credit")
    )


def legs(invoice: Invoice) -> list[tuple[str, str, D, D]]:
    return list(
        JournalEntry.objects.filter(document_key=f"invoice:{invoice.pk}")
        .order_by("line")
        .values_list("account", "meter", "debit", "credit")
    )


def test_a_prepaid_commit_with_rollover_through_its_closes(catalog):  # noqa: F811
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", PREPAID).status_code == 201
    commit = Commit.objects.get(customer=customer)
    # Sold: all of it deferred.
    assert legs(commit.invoice) == [
        ("2300", "", D(0), D("3000.00")),
        ("1100", "", D("3000.00"), D(0)),
    ]
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D("3000.00")

    # November: 600.00 drawn; of the 400.00 left, 200.00 rolls over, 200.00 expires.
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    november = close(customer, NOV_1, DEC_1)
    assert legs(november) == [
        ("4000", "llm_tokens", D(0), D("600.00")),
        ("2300", "", D("600.00"), D(0)),
    ]
    assert breakage(customer) == [
        (date(2026, 11, 30), "2300", D("200.00"), D(0)),
        (date(2026, 11, 30), "4100", D(0), D("200.00")),
    ]
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D("2200.00")

    # December: 150.00 drawn from the rollover; its 50.00 left expires (a
    # rollover does not roll over), December's 1,000.00 rolls 500.00 and
    # expires 500.00.
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=150_000)
    december = close(customer, DEC_1, JAN_1)
    assert legs(december) == [
        ("4000", "llm_tokens", D(0), D("150.00")),
        ("2300", "", D("150.00"), D(0)),
    ]
    assert breakage(customer)[2:] == [
        (date(2026, 12, 31), "2300", D("500.00"), D(0)),
        (date(2026, 12, 31), "4100", D(0), D("500.00")),
        (date(2026, 12, 31), "2300", D("50.00"), D(0)),
        (date(2026, 12, 31), "4100", D(0), D("50.00")),
    ]
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D("1500.00")

    # January, the last: 1,200.00 drawn (500.00 rollover, 700.00 of January's);
    # the 300.00 left expires, nothing rolls past the term.
    post_usage("acme", datetime(2027, 1, 10, tzinfo=UTC), tokens=1_200_000)
    january = close(customer, JAN_1, FEB_1)
    assert january.total == D("0.00")
    assert breakage(customer)[6:] == [
        (date(2027, 1, 31), "2300", D("300.00"), D(0)),
        (date(2027, 1, 31), "4100", D(0), D("300.00")),
    ]
    commit.refresh_from_db()
    assert commit.status == Commit.ENDED
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D(0)
    # 1,950.00 recognized as drawn, 1,050.00 breakage: the 3,000.00 committed.
    assert -balance(customer, AccountKind.REVENUE) == D("1950.00")
    assert -balance(customer, AccountKind.BREAKAGE) == D("1050.00")
    expired = movements(commit, "expiry")
    assert -sum(e.amount for e in expired) == D("1050.00")


def test_a_void_of_a_closing_invoice_keeps_what_the_commit_drew_recognized(catalog):  # noqa: F811
    # The void gives the commit nothing back: deferred revenue stays what it holds.
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", PREPAID).status_code == 201
    commit = Commit.objects.get(customer=customer)
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000, gb=40)
    november = close(customer, NOV_1, DEC_1)
    assert november.total == D("40.00")

    note = invoice_void(invoice=november, reason="", now=DEC_1 + timedelta(days=2))

    assert list(
        JournalEntry.objects.filter(document_key=f"credit_note:{note.pk}")
        .order_by("line")
        .values_list("account", "meter", "plan", "debit", "credit")
    ) == [
        ("4000", "llm_tokens", "", D("600.00"), D(0)),
        ("4000", "storage", "", D("40.00"), D(0)),
        ("4000", "", "ai", D(0), D("600.00")),
        ("1100", "", "", D(0), D("40.00")),
    ]
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D("2200.00")
    assert balance(customer, AccountKind.RECEIVABLE) == D("3000.00")


def test_an_early_end_expires_what_is_left_to_breakage(catalog):  # noqa: F811
    customer, subscription = customer_on_plan("acme")
    assert sign("acme", PREPAID).status_code == 201
    commit = Commit.objects.get(customer=customer)
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    close(customer, NOV_1, DEC_1)
    ended = datetime(2026, 12, 15, 12, tzinfo=UTC)
    with transaction.atomic():
        subscription_lock(subscription.pk)
        commits_end_early(subscription=subscription, at=ended)

    assert breakage(customer)[2:] == [
        (date(2026, 12, 15), "2300", D("1000.00"), D(0)),
        (date(2026, 12, 15), "4100", D(0), D("1000.00")),
        (date(2026, 12, 15), "2300", D("200.00"), D(0)),
        (date(2026, 12, 15), "4100", D(0), D("200.00")),
        (date(2026, 12, 15), "2300", D("1000.00"), D(0)),
        (date(2026, 12, 15), "4100", D(0), D("1000.00")),
    ]
    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit) == D(0)


def test_backfill_twice_writes_commit_expiries_once(catalog):  # noqa: F811
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    close(customer, NOV_1, DEC_1)
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=150_000)
    close(customer, DEC_1, JAN_1)
    live = breakage(customer)
    totals = defaultdict(D)
    for account, debit, credit in JournalEntry.objects.values_list("account", "debit", "credit"):
        totals[account] += debit - credit
    JournalEntry.objects.filter(document_type=DocumentType.COMMIT_EXPIRY).delete()

    said = []
    for _run in range(2):
        out = StringIO()
        call_command("journal_backfill", stdout=out)
        said.append(out.getvalue().strip())

    assert said == ["journaled 3 document(s)", "journaled 0 document(s)"]

    assert breakage(customer) == live
    keys = JournalEntry.objects.filter(document_type=DocumentType.COMMIT_EXPIRY)
    assert keys.count() == 6
    again = defaultdict(D)
    for account, debit, credit in JournalEntry.objects.values_list("account", "debit", "credit"):
        again[account] += debit - credit
    assert again == totals


EXAMPLES = itertools.count()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cents=st.integers(100, 500_000),
    rollover=st.integers(0, 100),
    rollover_periods=st.integers(1, 2),
    usage=st.lists(st.integers(0, 2_000), min_size=3, max_size=3),
    void=st.none() | st.integers(0, 2),
)
def test_deferred_revenue_is_what_any_commit_holds(
    catalog,  # noqa: F811
    cents,
    rollover,
    rollover_periods,
    usage,
    void,
):
    # given: a prepaid commit of any amount and rollover, any usage, maybe a void
    code = f"c{next(EXAMPLES)}"
    customer, _subscription = customer_on_plan(code)
    body = {**PREPAID, "amount": f"{D(cents) / 100:.2f}"}
    body.pop("rollover")
    if rollover:
        body["rollover"] = {"percent": str(rollover), "expires_after_periods": rollover_periods}
    assert sign(code, body).status_code == 201
    commit = Commit.objects.get(customer=customer)
    months = [NOV_1, DEC_1, JAN_1, FEB_1]

    for n, tokens in enumerate(usage):
        # when: the month's usage (in 1.00 steps) and its close
        if tokens:
            post_usage(code, months[n] + timedelta(days=9), tokens=tokens * 1000)
        invoice = close(customer, months[n], months[n + 1])
        if void == n:
            invoice_void(invoice=invoice, reason="", now=months[n + 1] + timedelta(hours=2))

        # then: every document balances; the commit's deferred revenue is what it
        # holds, its breakage what it expired, receivable what is still due
        per_document = (
            JournalEntry.objects.filter(customer=customer)
            .values("document_key")
            .annotate(debit=Sum("debit"), credit=Sum("credit"))
        )
        assert [row for row in per_document if row["debit"] != row["credit"]] == []
        assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held(commit)
        expired = movements(commit, "expiry")
        assert -balance(customer, AccountKind.BREAKAGE) == -sum((e.amount for e in expired), D(0))
        due = sum((i.amount_due for i in Invoice.objects.filter(customer=customer)), D(0))
        assert balance(customer, AccountKind.RECEIVABLE) == due
    assert held(commit) == D(0)
