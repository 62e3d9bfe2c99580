"""Nothing waits in the broker longer than common.task_sending.COUNTDOWN_LIMIT_SECONDS: a
worker holds a task with a countdown unacked until it runs, which RabbitMQ ends at
its consumer timeout and Redis delivers again past its visibility timeout. Work due
later is a row that a beat sweep sends, and the sweeps run every minute (the tests of
each retry: payments, webhook deliveries, emails)."""

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from common.task_sending import COUNTDOWN_LIMIT_SECONDS, enqueue_on_commit
from config.celery import app
from tests.beat import scheduled

every_minute = importlib.import_module("invoices.migrations.0036_sweeps_every_minute").every_minute


def test_a_countdown_within_the_bound_is_sent_with_it(
    db, delayed_sends, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit("billing.tasks.check_usage_alerts", [], countdown=COUNTDOWN_LIMIT_SECONDS)

    assert delayed_sends == [("billing.tasks.check_usage_alerts", COUNTDOWN_LIMIT_SECONDS, None)]


def test_a_countdown_over_the_bound_raises_at_once_and_sends_nothing(
    db, delayed_sends, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValueError, match="over 300 s; work due later is a row"),
    ):
        enqueue_on_commit(
            "invoices.tasks.collect_payment", 1, countdown=COUNTDOWN_LIMIT_SECONDS + 1
        )

    assert callbacks == []
    assert delayed_sends == []


def test_no_task_retries_itself_later_than_the_bound():
    """A task's own autoretry (retry_backoff) and the database outage's backoff wait
    at most the bound, jitter included."""
    app.loader.import_default_modules()
    project = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    backoffs = {
        name: task.retry_backoff_max
        for name, task in project.items()
        if getattr(task, "retry_backoff", False)
    }

    assert set(backoffs) >= {"billing.tasks.send_alert_email", "invoices.tasks.reconcile_payment"}
    assert {name: cap for name, cap in backoffs.items() if cap > COUNTDOWN_LIMIT_SECONDS} == {}
    assert {task.database_retry_backoff_max for task in project.values()} == {
        COUNTDOWN_LIMIT_SECONDS
    }


SWEEPS = {
    "Send overdue Stripe payment attempts": "invoices.tasks.collect_due_payments",
    "Send overdue webhook deliveries": "billing.tasks.retry_due_webhooks",
    "Send invoice and credit note emails left pending": "invoices.tasks.send_due_document_emails",
}


def test_the_sweeps_of_what_is_due_run_every_minute(db):
    for name, task in SWEEPS.items():
        assert scheduled(name) == (task, 1, "minutes")


def test_the_migration_moves_the_sweeps_left_at_five_minutes_and_keeps_edits(db):
    # given: the schedule as setup_periodic_tasks made it before, one entry edited
    call_command("setup_periodic_tasks", stdout=StringIO())
    five = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    ten = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.filter(name="Send overdue Stripe payment attempts").update(interval=five)
    PeriodicTask.objects.filter(name="Send invoice and credit note emails left pending").update(
        interval=ten
    )
    closing = PeriodicTask.objects.get(task="billing.tasks.close_periods")
    assert (closing.interval.every, closing.interval.period) == (5, "minutes")

    # when
    every_minute(apps, None)

    # then: the payments' sweep every minute; the edited one and the others as they were
    def every(task: str) -> tuple[int, str]:
        entry = PeriodicTask.objects.get(task=task)
        return entry.interval.every, entry.interval.period

    assert every("invoices.tasks.collect_due_payments") == (1, "minutes")
    assert every("invoices.tasks.send_due_document_emails") == (10, "minutes")
    assert every("billing.tasks.close_periods") == (5, "minutes")
