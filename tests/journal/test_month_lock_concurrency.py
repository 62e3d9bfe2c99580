"""Month locks at once, on PostgreSQL with threads: of two lifts of one lock one
lifts it (the other is told the month is not locked), and of two locks of one
month one locks it (the other is told it is locked already)."""

from datetime import UTC, date, datetime

import pytest

from billing.journal.models import JournalPeriodLock
from billing.journal.periods import journal_month_lock, journal_month_unlock
from common.errors import Conflict, NotFound
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV_27 = datetime(2026, 11, 27, 12, tzinfo=UTC)
OCTOBER = date(2026, 10, 1)


def outcome(work):
    try:
        work()
    except (Conflict, NotFound) as refused:
        return refused.message
    return "done"


def test_two_lifts_at_once_lift_the_lock_once():
    journal_month_lock(month=OCTOBER, now=NOV_27, by="finance")

    results = run_at_once(
        lambda i: outcome(
            lambda: journal_month_unlock(
                month=OCTOBER, reason=f"reason {i}", by=f"user {i}", now=NOV_27
            )
        ),
        clients=2,
    )

    assert sorted(results) == ["2026-10 is not locked", "done"]
    winner = results.index("done")
    assert list(JournalPeriodLock.objects.values_list("lifted_by", "lift_reason")) == [
        (f"user {winner}", f"reason {winner}")
    ]


def test_two_locks_at_once_lock_the_month_once():
    results = run_at_once(
        lambda i: outcome(lambda: journal_month_lock(month=OCTOBER, now=NOV_27, by=f"user {i}")),
        clients=2,
    )

    assert sorted(results) == ["2026-10 is locked already", "done"]
    assert JournalPeriodLock.objects.filter(lifted_at__isnull=True).count() == 1
