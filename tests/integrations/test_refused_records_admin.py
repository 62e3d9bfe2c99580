"""Refused gateway records in the admin: listed by source and reason, each shown as
received, replayed by Finance or Operations from the list's action (a page of them
at once, more by a task); Support does not see them."""

from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.integration_models import RefusedRecord
from billing.integrations import replay
from billing.models import UsageEvent
from customers.services import customer_create
from tests.factories import subscribe
from tests.integrations.test_litellm_ingest import NOW, payload, post
from tests.test_admin_languages import words

pytestmark = pytest.mark.django_db

LIST = "/admin/billing/refusedrecord/"


def staff(client, role: str):
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user(role.lower(), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def replay_action(client, *rows):
    with time_machine.travel(NOW, tick=False):
        return client.post(
            LIST,
            {"action": "replay", "_selected_action": [row.pk for row in rows]},
            follow=True,
        )


@pytest.fixture
def kept(s35):
    """Two calls for globex (unknown) and one naming no customer, kept."""
    post([payload("g1", customer="globex"), payload("g2", customer="globex")])
    post([payload("anon", customer="") | {"metadata": {}}])
    return {row.call_id: row for row in RefusedRecord.objects.all()}


def test_the_list_filters_by_source_and_reason_and_a_row_shows_its_record(client, kept):
    operations = staff(client, "Operations")

    listed = words(operations.get(LIST + "?source=litellm&reason=unknown_customer").text)
    assert "g1" in listed and "g2" in listed and "anon" not in listed
    assert "unknown customer 'globex'" in listed
    assert "anon" in words(operations.get(LIST + "?reason=no_customer").text)
    assert "g1" not in words(operations.get(LIST + "?source=otlp").text)

    page = operations.get(f"{LIST}{kept['g1'].pk}/change/")
    assert page.status_code == 200
    assert "&quot;end_user&quot;: &quot;globex&quot;" in page.text


def test_operations_replays_the_selected_rows_once_the_customer_exists(client, kept):
    operations = staff(client, "Operations")
    subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")

    # when: g1 replayed, then g1 and g2 and the nameless one together
    first = replay_action(operations, kept["g1"])
    second = replay_action(operations, kept["g1"], kept["g2"], kept["anon"])

    # then: each call billed once
    assert "1 record replayed: billed 1." in words(first.text)
    assert "3 records replayed: billed 1, already billed 1, refused again 1." in words(second.text)
    assert UsageEvent.objects.filter(customer__external_id="globex").count() == 6
    outcomes = dict(RefusedRecord.objects.values_list("call_id", "replay_outcome"))
    assert outcomes == {"g1": "accepted", "g2": "accepted", "anon": "refused"}


def test_more_rows_than_a_page_replays_are_replayed_by_a_task(
    client, kept, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(replay, "REPLAY_AT_ONCE", 1)
    monkeypatch.setattr("billing.admin.refused_records.REPLAY_AT_ONCE", 1)
    finance = staff(client, "Finance")
    subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")

    with django_capture_on_commit_callbacks(execute=True):
        answer = replay_action(finance, kept["g1"], kept["g2"])

    assert "2 records are being replayed" in words(answer.text)
    assert UsageEvent.objects.filter(customer__external_id="globex").count() == 6


def test_support_sees_no_refused_records_and_replays_none(client, kept):
    support = staff(client, "Support")
    subscribe(customer_create(external_id="globex", name="Globex", currency="USD"), "tokens")

    assert support.get(LIST).status_code == 403
    assert replay_action(support, kept["g1"]).status_code == 403

    assert UsageEvent.objects.count() == 0
    assert RefusedRecord.objects.filter(replayed_at__isnull=False).count() == 0
