"""Month locks: only a month that has ended can be locked (through the API and
the admin, one service), and nothing changes on a refusal."""

from datetime import UTC, date, datetime
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client

from billing.journal.models import JournalEntry, JournalPeriodLock
from customers.models import ApiKey
from tests.factories import CustomerFactory, api_client
from tests.journal.support import usage_invoice

pytestmark = pytest.mark.django_db

# "Now" for these tests: a Friday late in November 2026 (UTC).
NOV_27 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOV_27, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api():
    return api_client("finance:read", "admin")


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
    key = ApiKey.objects.get(name="finance:read-admin")
    assert response.json() == {
        "month": "2026-10",
        "locked_at": "2026-11-27T12:00:00+00:00",
        "locked_by": f"API key finance:read-admin ({key.prefix}…)",
        "lifted_at": None,
        "lifted_by": "",
        "reason": "",
    }
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


# Lifting a lock: Finance's, with a reason kept in the lock's history


def october_locked(api) -> None:
    assert api.post("/api/v1/journal/periods/2026-10/lock").status_code == 201


def history() -> list[tuple]:
    return list(
        JournalPeriodLock.objects.order_by("id").values_list(
            "month", "locked_by", "lifted_at", "lifted_by", "lift_reason"
        )
    )


def test_finance_lifts_a_lock_with_a_reason_kept_with_who_and_when(clock, api):
    # given: October locked, then a document of October moved to November
    october_locked(api)
    key = ApiKey.objects.get(name="finance:read-admin")
    customer = CustomerFactory(external_id="acme")
    moved = usage_invoice(customer, "30.00", now=datetime(2026, 10, 20, tzinfo=UTC))

    # when
    response = api.post(
        "/api/v1/journal/periods/2026-10/unlock",
        {"reason": "supplier credit note of October arrived late"},
        format="json",
    )

    # then: the lock is lifted, who, when and why kept; October is open again
    assert response.status_code == 200, response.content
    who = f"API key finance:read-admin ({key.prefix}…)"
    lifted = {
        "month": "2026-10",
        "locked_at": "2026-11-27T12:00:00+00:00",
        "locked_by": who,
        "lifted_at": "2026-11-27T12:00:00+00:00",
        "lifted_by": who,
        "reason": "supplier credit note of October arrived late",
    }
    assert response.json() == lifted
    assert api.get("/api/v1/journal/periods").json() == {"results": [lifted]}
    after = usage_invoice(customer, "40.00", now=datetime(2026, 10, 21, tzinfo=UTC))
    assert journal_days(moved) == {date(2026, 11, 1)}  # written while locked: kept
    assert journal_days(after) == {date(2026, 10, 21)}


def journal_days(invoice) -> set[date]:
    return set(
        JournalEntry.objects.filter(document_key=f"invoice:{invoice.pk}").values_list(
            "date", flat=True
        )
    )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_a_lock_is_not_lifted_without_a_reason(clock, api, body):
    october_locked(api)

    response = api.post("/api/v1/journal/periods/2026-10/unlock", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["reason"]
    assert [row[2:] for row in history()] == [(None, "", "")]


def test_a_key_without_finances_admin_scope_cannot_lift_a_lock(clock, api):
    october_locked(api)

    response = api_client("read").post(
        "/api/v1/journal/periods/2026-10/unlock", {"reason": "why not"}, format="json"
    )

    assert response.status_code == 403
    assert [row[2:] for row in history()] == [(None, "", "")]


def test_a_month_not_locked_is_not_lifted_and_a_lifted_one_is_locked_again(clock, api):
    missing = api.post("/api/v1/journal/periods/2026-09/unlock", {"reason": "x"}, format="json")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "2026-09 is not locked"

    october_locked(api)
    assert (
        api.post(
            "/api/v1/journal/periods/2026-10/unlock", {"reason": "reopen"}, format="json"
        ).status_code
        == 200
    )
    again = api.post("/api/v1/journal/periods/2026-10/unlock", {"reason": "x"}, format="json")
    assert again.status_code == 404
    october_locked(api)

    assert [(row[0], row[2], row[4]) for row in history()] == [
        (date(2026, 10, 1), NOV_27, "reopen"),
        (date(2026, 10, 1), None, ""),
    ]


# In the admin


def role_user(role: str) -> Client:
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user(username=f"{role.lower()}-user", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


LOCKS = "/admin/billing/journalperiodlock/"


def lift(client: Client, reason: str):
    lock = JournalPeriodLock.objects.get()
    return client.post(
        LOCKS,
        {
            "action": "lift_with_reason",
            "_selected_action": [lock.pk],
            "apply": "1",
            "reason": reason,
        },
    )


def test_finance_lifts_a_lock_in_the_admin_with_a_reason(clock):
    finance = role_user("Finance")
    assert finance.post(f"{LOCKS}add/", {"month": "2026-10-12"}).status_code == 302
    asked = finance.post(
        LOCKS,
        {"action": "lift_with_reason", "_selected_action": [JournalPeriodLock.objects.get().pk]},
    )
    assert asked.status_code == 200
    assert "Lift the lock" in asked.content.decode()

    response = lift(finance, "October's supplier credit note came late")

    assert response.status_code == 302
    assert history() == [
        (
            date(2026, 10, 1),
            "finance-user",
            NOV_27,
            "finance-user",
            "October's supplier credit note came late",
        )
    ]
    page = finance.get(LOCKS).content.decode()
    assert "October&#x27;s supplier credit note came late" in page
    lock = JournalPeriodLock.objects.get()
    own_page = finance.get(f"{LOCKS}{lock.pk}/change/").content.decode()
    assert "October&#x27;s supplier credit note came late" in own_page
    assert "Reason lifted" in own_page


def test_the_admin_refuses_to_lift_a_lock_without_a_reason(clock):
    finance = role_user("Finance")
    assert finance.post(f"{LOCKS}add/", {"month": "2026-10-12"}).status_code == 302

    response = lift(finance, "  ")

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert [row[2:] for row in history()] == [(None, "", "")]


def test_a_staff_user_who_is_not_finance_cannot_lift_a_lock(clock):
    # given: a user who may see and add locks, but not lift them (not Finance)
    user = User.objects.create_user(username="clerk", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_journalperiodlock", "add_journalperiodlock"])
    )
    clerk = Client()
    clerk.force_login(user)
    assert clerk.post(f"{LOCKS}add/", {"month": "2026-10-12"}).status_code == 302
    assert "lift_with_reason" not in clerk.get(LOCKS).content.decode()

    lift(clerk, "I would like to")

    assert [row[1:] for row in history()] == [("clerk", None, "", "")]
    operations = role_user("Operations")
    lift(operations, "I would like to")
    assert [row[2:] for row in history()] == [(None, "", "")]
