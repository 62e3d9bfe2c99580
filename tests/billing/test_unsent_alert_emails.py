"""The beat's sweep of alert emails (billing.tasks.send_unsent_alert_emails): an alert
whose email task was lost, because the broker was out of reach when the alert
committed (or restarted without its data), is emailed once the sweep finds it; the
broker drill (tests/test_broker_drill.py) met such an alert."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from kombu.exceptions import OperationalError

from billing.models import Alert, AlertTeamRecipient
from billing.notifications.alerts import alert_raise, unsent_alert_emails_enqueue
from billing.tasks import send_alert_email
from tests.beat import scheduled
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)


def raise_low_balance(customer, *, key: str = "credits", now: datetime = NOV_10, **extra):
    return alert_raise(
        customer=customer,
        kind=Alert.LOW_BALANCE,
        period_start=NOV_1,
        key=key,
        payload={"balance": "5", "threshold": "10", **extra},
        now=now,
    )


@pytest.fixture
def broker_down(monkeypatch):
    """Sending a task fails as it does with Redis out of reach."""

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(send_alert_email, "apply_async", refuse)
    return monkeypatch


def test_an_alert_whose_email_could_not_be_queued_is_emailed_by_the_sweep(
    mailoutbox, broker_down, django_capture_on_commit_callbacks
):
    acme = CustomerFactory(external_id="acme", email="billing@acme.test")
    # given: an alert raised while the broker was down (its email logged, not queued)
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_low_balance(acme)
    assert mailoutbox == []
    broker_down.undo()

    # when: the sweep runs two minutes later, and again a minute after that
    sweep = NOV_10 + timedelta(minutes=2)
    with time_machine.travel(sweep, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            queued = unsent_alert_emails_enqueue(now=sweep)
        with django_capture_on_commit_callbacks(execute=True):
            queued_again = unsent_alert_emails_enqueue(now=sweep + timedelta(minutes=1))

    # then: emailed once
    assert (queued, queued_again) == (1, 0)
    assert [(m.subject, m.to) for m in mailoutbox] == [
        ("Your balance is low", ["billing@acme.test"])
    ]
    alert.refresh_from_db()
    assert alert.emailed_at == sweep


def test_the_sweep_leaves_alerts_with_no_email_due(
    mailoutbox, broker_down, django_capture_on_commit_callbacks
):
    acme = CustomerFactory(external_id="acme", email="billing@acme.test")
    silent = CustomerFactory(external_id="silent", email="")
    team = CustomerFactory(external_id="team", email="")
    AlertTeamRecipient.objects.create(email="ops@seller.test", kinds=[Alert.LOW_BALANCE])
    with django_capture_on_commit_callbacks(execute=True):
        raise_low_balance(acme, key="just now", now=NOV_10 + timedelta(minutes=1, seconds=1))
        raise_low_balance(acme, key="yesterday", now=NOV_10 - timedelta(days=1, seconds=1))
        raise_low_balance(acme, key="passed with 90", announced_with="prompts:90")
        alert_raise(  # a kind the team does not take, of a customer with no address
            customer=silent,
            kind=Alert.SPEND_LIMIT,
            period_start=NOV_1,
            key="spend_limit",
            payload={},
            now=NOV_10,
        )
        raise_low_balance(team, key="the team's")
        emailed = raise_low_balance(acme, key="emailed")
        alert_raise(
            customer=acme,
            kind=Alert.MARGIN_LOW,
            period_start=NOV_1,
            key="above:1",
            payload={},
            now=NOV_10,
            announce=False,
        )
    Alert.objects.filter(pk=emailed.pk).update(emailed_at=NOV_10)
    broker_down.undo()

    sweep = NOV_10 + timedelta(minutes=3)
    with (
        time_machine.travel(sweep, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        queued = unsent_alert_emails_enqueue(now=sweep)

    # only the alert whose kind the team takes, of a customer with no address: to the team
    assert queued == 1
    assert [(m.subject, m.to) for m in mailoutbox] == [
        (f"[{team.name}] Your balance is low", ["ops@seller.test"])
    ]
    assert set(Alert.objects.filter(emailed_at__isnull=False).values_list("key", flat=True)) == {
        "the team's",
        "emailed",
    }


def test_setup_periodic_tasks_schedules_the_sweep_every_minute():
    assert scheduled("Send alert emails left unsent") == (
        "billing.tasks.send_unsent_alert_emails",
        1,
        "minutes",
    )
