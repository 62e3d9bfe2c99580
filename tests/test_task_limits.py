"""Tasks that cannot hog the workers (issue 73): every task of the project has a soft
and a hard time limit, the heavy ones longer limits of their own; renders, emails and
bulk jobs go to the `bulk` queue, so the beat's close and the urgent checks never wait
behind them (config.celery)."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError

from config.celery import BULK_QUEUE, BULK_TASKS, DEFAULT_QUEUE, URGENT_TASKS, app
from config.environment import env_task_limits

PROJECT = ("billing.", "invoices.", "wallets.", "plans.", "customers.", "config.")


def project_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith(PROJECT)}


def queue(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_every_task_of_the_project_has_a_soft_and_a_hard_time_limit():
    tasks = project_tasks()

    assert len(tasks) >= 25
    limits = {name: (task.soft_time_limit, task.time_limit) for name, task in tasks.items()}
    missing = {name: pair for name, pair in limits.items() if None in pair}
    assert missing == {}
    assert {name: pair for name, pair in limits.items() if not 0 < pair[0] < pair[1]} == {}


def test_the_heavy_tasks_name_longer_limits_and_the_rest_have_the_default():
    limits = {name: (t.soft_time_limit, t.time_limit) for name, t in project_tasks().items()}

    assert {
        name: limits[name]
        for name in (
            "invoices.tasks.render_invoice_pdf",
            "invoices.tasks.render_credit_note_pdf",
            "invoices.tasks.send_document_email",
            "billing.tasks.close_periods",
            "billing.tasks.close_subscriptions",
            "wallets.tasks.expire_credits",
            "billing.tasks.run_plan_migration",
            "plans.tasks.run_price_simulation",
            "billing.tasks.check_usage_alerts",
            "invoices.tasks.collect_payment",
        )
    } == {
        "invoices.tasks.render_invoice_pdf": (180, 210),
        "invoices.tasks.render_credit_note_pdf": (180, 210),
        "invoices.tasks.send_document_email": (180, 210),
        "billing.tasks.close_periods": (900, 960),
        "billing.tasks.close_subscriptions": (900, 960),
        "wallets.tasks.expire_credits": (900, 960),
        "billing.tasks.run_plan_migration": (1800, 1860),
        "plans.tasks.run_price_simulation": (1800, 1860),
        "billing.tasks.check_usage_alerts": (120, 150),
        "invoices.tasks.collect_payment": (120, 150),
    }


def test_time_limits_come_from_the_environment_and_a_soft_one_must_come_first(monkeypatch):
    monkeypatch.setenv("CELERY_TASK_SOFT_TIME_LIMIT", "30")
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "40")
    monkeypatch.setenv("BILLING_PDF_TASK_TIME_LIMIT", "600")

    assert env_task_limits(pdf=(180, 210)) == {"default": (30, 40), "pdf": (180, 600)}

    monkeypatch.setenv("BILLING_PDF_TASK_SOFT_TIME_LIMIT", "600")
    with pytest.raises(ImproperlyConfigured, match="BILLING_PDF_TASK_SOFT_TIME_LIMIT"):
        env_task_limits(pdf=(180, 210))


def test_renders_emails_and_bulk_jobs_go_to_the_bulk_queue_and_the_beat_work_to_default():
    tasks = project_tasks()

    assert [name for name in BULK_TASKS if name not in tasks] == []
    assert {name: queue(name) for name in BULK_TASKS} == dict.fromkeys(BULK_TASKS, BULK_QUEUE)
    assert set(BULK_TASKS) >= {
        "invoices.tasks.render_invoice_pdf",
        "invoices.tasks.render_credit_note_pdf",
        "invoices.tasks.send_document_email",
        "billing.tasks.run_plan_migration",
        "billing.tasks.rebuild_meter_usage",
        "plans.tasks.run_price_simulation",
    }
    beat_work = (
        "billing.tasks.close_periods",
        "billing.tasks.close_subscriptions",
        "wallets.tasks.expire_credits",
        "invoices.tasks.collect_payment",
        "invoices.tasks.collect_due_payments",
        "invoices.tasks.run_dunning",
        "invoices.tasks.send_due_document_emails",
    )
    assert {name: queue(name) for name in beat_work} == dict.fromkeys(beat_work, DEFAULT_QUEUE)
    # every task has one queue: none is both urgent and bulk
    assert set(URGENT_TASKS) & set(BULK_TASKS) == set()


def test_a_database_error_met_while_stopping_at_the_soft_limit_is_not_retried(monkeypatch):
    from wallets import ledger
    from wallets.tasks import expire_credits

    calls = []

    def expire(*, now):
        calls.append(now)
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded:
            # its clean-up meets the connection the interrupted statement left broken
            raise OperationalError("server closed the connection unexpectedly") from None

    monkeypatch.setattr(ledger, "credits_expire", expire)

    # when (eagerly: a retry would run at once)
    result = expire_credits.apply()

    # then: failed once, not retried as a database outage would be
    assert (result.state, type(result.result)) == ("FAILURE", OperationalError)
    assert len(calls) == 1
