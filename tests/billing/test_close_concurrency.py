"""The close and invoice numbering under concurrency, on PostgreSQL, and the
close run by a real Celery worker on Redis or RabbitMQ."""

import os
import signal
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.db import connection

from billing.invoicing import close
from billing.invoicing.close import periods_close
from billing.models import Subscription
from config.celery import DEFAULT_QUEUE
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from tests.factories import CustomerFactory, PlanFactory, subscribe
from tests.workers import celery_worker, tasks_on_the_broker, worker_broker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


def subscribers(count: int) -> None:
    plan = PlanFactory(code="flat", version__base_fee=D("9.00"))
    for n in range(count):
        subscribe(CustomerFactory(external_id=f"c{n}", name=f"C{n}"), plan, OCT_1)


def in_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def assert_gap_free(prefix: str, count: int) -> None:
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    assert numbers == [f"{prefix}-{n:06d}" for n in range(1, count + 1)]


def test_two_closes_at_once_write_each_invoice_once(db):
    # given: 20 subscriptions whose October ended
    subscribers(20)

    # when: two closes start at the same moment
    errors = in_threads(2, lambda _: periods_close(as_of=NOV_1))

    # then: one closing invoice per subscription, every invoice finalized once
    assert errors == []
    assert Invoice.objects.filter(reason="period").count() == 20
    assert Invoice.objects.filter(reason="period").values("subscription").distinct().count() == 20
    assert not Invoice.objects.filter(status="draft").exists()
    assert_gap_free("INV-2026", 40)


def test_a_close_shared_among_processes_bills_each_period_once(db):
    # given: 30 subscriptions whose October ended
    subscribers(30)

    # when: the close runs in three processes, and then once more
    first = periods_close(as_of=NOV_1, processes=3)
    again = periods_close(as_of=NOV_1, processes=3)

    # then
    assert (first.periods_closed, first.invoices_finalized) == (30, 60)
    assert (again.periods_closed, again.invoices_finalized) == (0, 0)
    assert Invoice.objects.filter(reason="period").values("subscription").distinct().count() == 30
    assert_gap_free("INV-2026", 60)


def test_each_close_process_finalizes_what_it_closed_as_it_goes(db, monkeypatch):
    # given: 30 subscriptions whose October ended; this process's finalizations noted
    subscribers(30)
    here: list[tuple[list[int] | None, int]] = []
    drafts_finalize = close.drafts_finalize

    def noted(*, as_of, subscription_ids=None, **options):
        finalized = drafts_finalize(as_of=as_of, subscription_ids=subscription_ids, **options)
        here.append((subscription_ids, finalized))
        return finalized

    monkeypatch.setattr(close, "drafts_finalize", noted)
    monkeypatch.setattr(close, "FINALIZE_EVERY", 4)

    # when: the close runs in three processes
    result = periods_close(as_of=NOV_1, processes=3)

    # then: the processes finalized every draft (60: each start and closing invoice),
    # so this one, after them, found none left
    assert (result.periods_closed, result.invoices_finalized) == (30, 60)
    assert here == [(None, 0)]
    assert_gap_free("INV-2026", 60)


@pytest.mark.parametrize("how", ["raises", "is killed"])
def test_a_close_process_that_fails_fails_the_close_without_hanging(db, monkeypatch, how):
    # given: 30 subscriptions whose October ended, and one whose close raises or
    # kills its process (inherited by the forked processes)
    subscribers(30)
    doomed = Subscription.objects.order_by("id").values_list("id", flat=True)[4]
    close_locked = close._close_locked

    def failing(subscription):
        if subscription.pk == doomed:
            if how == "is killed":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("cannot close")
        return close_locked(subscription)

    monkeypatch.setattr(close, "_close_locked", failing)

    # when: the close runs in three processes (in a thread, so a hang fails the test)
    outcome: list = []
    runner = threading.Thread(
        daemon=True,
        target=lambda: outcome.append(
            in_threads(1, lambda _: periods_close(as_of=NOV_1, processes=3))
        ),
    )
    runner.start()
    runner.join(timeout=120)

    # then: it ended, with the error, and the other processes' shares are closed
    assert not runner.is_alive(), "the close waited for a process that was gone"
    [errors] = outcome
    assert len(errors) == 1 and "a close process failed" in str(errors[0])
    billed = set(Invoice.objects.filter(reason="period").values_list("subscription", flat=True))
    assert doomed not in billed
    assert len(billed) >= 20  # two processes' shares at least, one group of the third

    # and: a rerun without the failure closes the rest
    monkeypatch.setattr(close, "_close_locked", close_locked)
    assert periods_close(as_of=NOV_1, processes=3).periods_closed == 30 - len(billed)


def test_numbers_stay_gap_free_under_concurrent_finalization(db, settings):
    # given: 80 drafts (their PDFs not rendered: numbering is the question here, and
    # the renders took three quarters of this test's time)
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="acme", name="Acme")
    drafts = [
        invoice_write_draft(
            customer=customer,
            subscription=None,
            reason=Invoice.START,
            period_start=OCT_1,
            period_end=NOV_1,
            lines=[],
            now=OCT_1,
        )
        for _ in range(80)
    ]

    # when: four threads finalize them, each its own share
    def finalize(index: int) -> None:
        for draft in drafts[index::4]:
            invoice_finalize(invoice=draft, now=NOV_1)

    errors = in_threads(4, finalize)

    # then
    assert errors == []
    assert_gap_free("INV-2026", 80)


def test_the_close_runs_in_a_real_celery_worker(db):
    broker = worker_broker()

    # given: subscriptions whose October ended (the task closes what ended by now)
    subscribers(3)
    with (
        tasks_on_the_broker(),
        celery_worker(DEFAULT_QUEUE, name="close", options=("--pool", "solo")),
    ):
        # when
        from billing.tasks import close_periods

        close_periods.delay()

        # then: the worker wrote and finalized the invoices
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Invoice.objects.filter(reason="period", status="finalized").count() == 3:
                break
            time.sleep(0.5)
        assert Invoice.objects.filter(reason="period", status="finalized").count() == 3
        assert broker == settings.CELERY_BROKER_URL
