"""`manage.py close_periods` and `manage.py setup_periodic_tasks`: what the
operators run. Time is set explicitly; a refused run writes nothing."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from billing.models import BilledPeriod, Subscription, SubscriptionChange
from billing.tasks import close_periods as close_periods_task
from invoices.models import CreditNote, Invoice, InvoiceLine, InvoiceSequence
from tests.factories import PlanFactory, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
TASK_NAME = "Close billing periods and finalize invoices"


@pytest.fixture
def subscribed(acme):
    """acme on a flat 20.00 a month from November 1st: a draft start invoice."""
    return subscribe(acme, PlanFactory(code="flat", version__base_fee=D("20.00")), NOV_1)


def close(*args: str, now: datetime) -> str:
    out = StringIO()
    with time_machine.travel(now, tick=False):
        call_command("close_periods", *args, stdout=out)
    return out.getvalue().strip()


def billing_state() -> dict:
    models = (Subscription, SubscriptionChange, Invoice, InvoiceLine, CreditNote, BilledPeriod)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "invoices": list(
            Invoice.objects.order_by("id").values_list("reason", "status", "number", "total")
        ),
        "sequences": list(InvoiceSequence.objects.values_list("name", "next_number")),
        "subscriptions": list(
            Subscription.objects.values_list(
                "status", "version_id", "seats", "current_period_start", "current_period_end"
            )
        ),
    }


def statuses() -> dict[str, str]:
    return dict(Invoice.objects.values_list("reason", "status"))


def test_close_as_of_a_past_time_closes_and_finalizes(subscribed):
    output = close("--as-of", "2026-12-01T00:00:00Z", now=datetime(2026, 12, 3, tzinfo=UTC))

    # what it issues is dated when issued (the 3rd), not as of the 1st
    assert output == (
        "closed 1 period(s), finalized 2 invoice(s) as of 2026-12-01T00:00:00+00:00; "
        "issued on 2026-12-03"
    )
    assert statuses() == {"start": "finalized", "period": "finalized"}
    assert set(Invoice.objects.values_list("finalized_at", flat=True)) == {
        datetime(2026, 12, 3, tzinfo=UTC)
    }
    subscribed.refresh_from_db()
    assert (subscribed.current_period_start, subscribed.current_period_end) == (
        DEC_1,
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_close_without_as_of_closes_what_ended_by_now(subscribed):
    output = close(now=datetime(2026, 12, 1, 0, 5, tzinfo=UTC))

    assert output == "closed 1 period(s), finalized 2 invoice(s) as of 2026-12-01T00:05:00+00:00"


def test_close_as_of_an_offset_time_reads_it_in_utc(subscribed):
    output = close("--as-of", "2026-12-01T01:00:00+01:00", now=datetime(2026, 12, 2, tzinfo=UTC))

    assert output.startswith("closed 1 period(s)")
    assert output.endswith("as of 2026-12-01T00:00:00+00:00; issued on 2026-12-02")


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        pytest.param("2026-12-01T00:00:01Z", "--as-of is in the future", id="future"),
        pytest.param("2026-12-01T00:00:00", "--as-of needs an offset", id="no-offset"),
        pytest.param("yesterday", "is not ISO 8601", id="not-a-time"),
        pytest.param("", "is not ISO 8601", id="empty"),
    ],
)
def test_a_refused_as_of_writes_nothing(subscribed, as_of, message):
    before = billing_state()

    with pytest.raises(CommandError, match=message):
        close("--as-of", as_of, now=DEC_1)

    assert billing_state() == before
    assert statuses() == {"start": "draft"}


def test_running_again_closes_nothing_more(subscribed):
    close("--as-of", "2026-12-01T00:00:00Z", now=DEC_1)
    before = billing_state()

    output = close("--as-of", "2026-12-01T00:00:00Z", now=datetime(2026, 12, 1, 1, tzinfo=UTC))

    assert output.startswith("closed 0 period(s), finalized 0 invoice(s)")
    assert billing_state() == before


def test_a_grace_keeps_the_closing_invoice_a_draft_until_it_has_passed(subscribed, settings):
    # given: drafts stay 24 hours
    settings.BILLING_INVOICE_GRACE_HOURS = 24

    # when: the close at December 1st
    first = close("--as-of", "2026-12-01T00:00:00Z", now=DEC_1)

    # then: the start invoice (written November 1st) is finalized; the closing one is a draft
    assert first.startswith("closed 1 period(s), finalized 1 invoice(s)")
    assert statuses() == {"start": "finalized", "period": "draft"}

    # when: a run a second before its grace ends, then one when it ends
    early = close(now=datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC))
    assert early.startswith("closed 0 period(s), finalized 0 invoice(s)")
    assert statuses() == {"start": "finalized", "period": "draft"}
    late = close(now=datetime(2026, 12, 2, tzinfo=UTC))

    # then
    assert late.startswith("closed 0 period(s), finalized 1 invoice(s)")
    closing = Invoice.objects.get(reason="period")
    assert (closing.status, closing.number, closing.finalized_at) == (
        "finalized",
        "INV-2026-000002",
        datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_the_beat_task_closes_what_ended_by_now(subscribed):
    with time_machine.travel(datetime(2026, 12, 1, 0, 5, tzinfo=UTC), tick=False):
        result = close_periods_task.delay().get()

    # one subscription was due; its chunk task closed it and finalized both drafts
    # (eager here: the chunk ran before the beat task's own finalization)
    assert result == {"due": 1, "finalized": 0}
    assert statuses() == {"start": "finalized", "period": "finalized"}


# setup_periodic_tasks


def setup_periodic_tasks() -> str:
    out = StringIO()
    call_command("setup_periodic_tasks", stdout=out)
    return out.getvalue().strip()


def test_setup_periodic_tasks_creates_the_close_task_once(db):
    first = setup_periodic_tasks().splitlines()
    rows = (PeriodicTask.objects.count(), IntervalSchedule.objects.count())
    second = setup_periodic_tasks().splitlines()

    assert f"created: {TASK_NAME} (billing.tasks.close_periods)" in first
    assert f"kept: {TASK_NAME} (billing.tasks.close_periods)" in second
    assert [line.split(": ")[0] for line in second] == ["kept"] * len(first)
    assert (PeriodicTask.objects.count(), IntervalSchedule.objects.count()) == rows
    task = PeriodicTask.objects.get(name=TASK_NAME)
    assert (task.name, task.task, task.enabled) == (
        TASK_NAME,
        "billing.tasks.close_periods",
        True,
    )
    assert (task.interval.every, task.interval.period) == (5, IntervalSchedule.MINUTES)


def test_setup_periodic_tasks_keeps_edits_made_in_the_admin(db):
    setup_periodic_tasks()
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.filter(name=TASK_NAME).update(enabled=False, interval=hourly)

    setup_periodic_tasks()

    task = PeriodicTask.objects.get(name=TASK_NAME)
    assert (task.enabled, task.interval_id) == (False, hourly.pk)
