"""Month locks: only a month that has ended can be locked (through the API and
the admin, one service), and nothing changes on a refusal."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from billing.journal.models import JournalPeriodLock
from tests.factories import api_client

pytestmark = pytest.mark.django_db

# "Now" for these tests: a Friday late in November 2026 (UTC).
NOV_27 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOV_27, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api():
    return api_client("read", "admin")


def locked_months() -> list[date]:
    return list(JournalPeriodLock.objects.values_list("month", flat=True))


@pytest.mark.parametrize(
    ("month", "case"),
    [("2026-11", "the current month"), ("2026-12", "a future month"), ("9999-12", "the last")],
)
def test_a_month_that_has_not_ended_is_refused_and_nothing_is_locked(clock, api, month, case):
    response = api.post(f"/api/v1/journal/periods/{month}/lock")

    assert response.status_code == 400, (case, response.content)
    error = response.json()["error"]
    assert error["fields"] == {"month": ["not ended"]}
    assert error["message"] == (
        f"{month} has not ended: only a month that has ended can be locked (2026-10 is the last)"
    )
    assert locked_months() == []


def test_a_month_that_has_ended_is_locked(clock, api):
    response = api.post("/api/v1/journal/periods/2026-10/lock")

    assert response.status_code == 201, response.content
    assert response.json() == {"month": "2026-10", "locked_at": "2026-11-27T12:00:00+00:00"}
    assert locked_months() == [date(2026, 10, 1)]


def test_a_month_ends_at_midnight_utc(api):
    with time_machine.travel(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), tick=False):
        assert api.post("/api/v1/journal/periods/2026-11/lock").status_code == 400
    assert locked_months() == []
    with time_machine.travel(datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tick=False):
        assert api.post("/api/v1/journal/periods/2026-11/lock").status_code == 201
    assert locked_months() == [date(2026, 11, 1)]


@pytest.mark.parametrize("day", ["2026-11-17", "2026-12-01", "9999-12-31"])
def test_the_admin_refuses_a_month_that_has_not_ended_on_its_field(clock, admin_client, day):
    response = admin_client.post("/admin/billing/journalperiodlock/add/", {"month": day})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "month": [
            f"{day[:7]} has not ended: only a month that has ended can be locked "
            "(2026-10 is the last)"
        ]
    }
    assert locked_months() == []


def test_the_admin_locks_a_month_that_has_ended(clock, admin_client):
    response = admin_client.post("/admin/billing/journalperiodlock/add/", {"month": "2026-10-05"})

    assert response.status_code == 302
    assert list(JournalPeriodLock.objects.values_list("month", "locked_at")) == [
        (date(2026, 10, 1), NOV_27)
    ]
