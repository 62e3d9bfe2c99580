"""Time limits on a real worker (issue 73: a render ran 720 s and held a worker for
12 minutes, tasks having no limit): a task over its soft limit rolls back and fails, one
over its hard limit is killed; neither is delivered again, and the worker goes on with
the next task. Redis or RabbitMQ, PostgreSQL and a `celery worker` as docs/running.md
runs it."""

import os
import signal
import time
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from config.celery import BULK_QUEUE, DEFAULT_QUEUE, app
from customers.models import Customer
from customers.services import customer_create
from invoices.models import Invoice, PdfRender
from invoices.services import invoice_finalize
from invoices.tasks import render_invoice_pdf
from plans.rating import LineInput
from tests.factories import period_draft
from tests.workers import celery_worker, tasks_on_the_broker, worker_broker, workers_wait

SOFT, HARD = 1, 3


def notes() -> list[str]:
    return sorted(Customer.objects.values_list("external_id", flat=True))


def wait_for_note(label: str, timeout: float) -> float:
    """Seconds until the note `label` is written; fails after `timeout`."""
    start = time.monotonic()
    while not Customer.objects.filter(external_id=label).exists():
        assert time.monotonic() - start < timeout, f"no {label!r} in {timeout} s: {notes()}"
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_over_its_time_limits_is_stopped_not_redelivered_and_the_worker_goes_on():
    worker_broker()
    limits = {"CELERY_TASK_SOFT_TIME_LIMIT": str(SOFT), "CELERY_TASK_TIME_LIMIT": str(HARD)}
    with (
        tasks_on_the_broker(),
        celery_worker(
            DEFAULT_QUEUE,
            name="limits",
            env=limits,
            options=("--concurrency", "1", "--include", "tests.worker_tasks"),
        ) as worker,
    ):
        workers_wait(worker)
        # given: one process, and two tasks that would each hold it for a minute
        app.send_task("tests.worker_tasks.overstay", ("soft", False), queue=DEFAULT_QUEUE)
        app.send_task("tests.worker_tasks.overstay", ("hard", True), queue=DEFAULT_QUEUE)
        # when: a task comes after them
        app.send_task("tests.worker_tasks.note", ("after",), queue=DEFAULT_QUEUE)

        # then: it ran once the first was stopped at its soft limit (1 s) and the
        # second killed at its hard one (3 s), not after two minutes
        took = wait_for_note("after", timeout=45)
        # a redelivered task would start again at once
        time.sleep(HARD + 1)

    print(f"the third task ran {took:.1f} s after it was sent")
    assert took < 30
    written = notes()
    started = [label.split(":started:")[0] for label in written if ":started:" in label]
    # each ran once; the soft limit reached both, rolled their transactions back
    # (no :inside), and neither finished
    assert sorted(started) == ["hard", "soft"]
    assert [label for label in written if ":started:" not in label] == [
        "after",
        "hard:soft",
        "soft:soft",
    ]


def invoice_of(owner, lines: int) -> Invoice:
    """A finalized invoice of `lines` usage lines: its render is sent to the broker
    (bulk) as the finalization commits, unless BILLING_INVOICE_PDFS is off."""
    draft = period_draft(
        owner,
        [
            LineInput("usage", f"Agent run {n}", None, D(1), D("0.01"), D("0.01"))
            for n in range(lines)
        ],
    )
    invoice_finalize(invoice=draft, now=datetime.now(UTC))
    return Invoice.objects.get(pk=draft.pk)


def wait_until(what: str, condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not in {timeout} s"
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_huge_render_over_its_time_limit_is_given_up_once_and_the_bulk_worker_goes_on(
    tmp_path, settings
):
    worker_broker()
    # the renders sent by hand below, none on finalization
    settings.BILLING_INVOICE_PDFS = False
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    rendered = Invoice.objects.exclude(pdf_sha256="")
    with (
        tasks_on_the_broker(),
        celery_worker(BULK_QUEUE, name="bulk", env={"MEDIA_ROOT": str(tmp_path)}) as worker,
    ):
        workers_wait(worker)
        # given: the worker's process has rendered a PDF (its fonts loaded)
        first = invoice_of(acme, 3)
        render_invoice_pdf.delay(first.pk)
        wait_until("the first render", rendered.filter(pk=first.pk).exists, timeout=60)

        # when: a render of 3,000 lines (tens of seconds) is sent with limits of 2 and
        # 5 s (a task's limits travel in its message), then a small one
        huge = invoice_of(acme, 3000)
        render_invoice_pdf.apply_async((huge.pk,), soft_time_limit=2, time_limit=5)
        small = invoice_of(acme, 3)
        render_invoice_pdf.delay(small.pk)

        # then: the small one is rendered once the huge one was stopped
        wait_until("the small render", rendered.filter(pk=small.pk).exists, timeout=60)
        # and the huge one, delivered once, is given up, not tried again
        render_invoice_pdf.delay(huge.pk)
        time.sleep(2)

    assert Invoice.objects.get(pk=huge.pk).pdf_sha256 == ""
    render = PdfRender.objects.get(invoice=huge)
    assert (render.attempts, render.failed_at is not None, render.last_error) == (
        1,
        True,
        "the render took longer than its time limit",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_render_whose_process_is_killed_is_delivered_again_three_times_then_given_up(
    tmp_path,
):
    worker_broker()
    # given: a customer without an address (no email), an invoice that takes a minute
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    with (
        tasks_on_the_broker(),
        celery_worker(BULK_QUEUE, name="bulk", env={"MEDIA_ROOT": str(tmp_path)}) as worker,
    ):
        workers_wait(worker)
        huge = invoice_of(acme, 3000)
        claims = PdfRender.objects.filter(invoice=huge).exclude(claimant="")
        for attempt in (1, 2, 3):
            # when: its render is under way, its process is killed (as for memory)
            wait_until(
                f"claim {attempt}",
                lambda attempt=attempt: claims.filter(attempts=attempt).exists(),
                timeout=60,
            )
            [pool] = app.control.inspect([worker]).stats()[worker]["pool"]["processes"]
            os.kill(pool, signal.SIGKILL)
        # then: delivered again a fourth time, it gives up without rendering
        wait_until(
            "given up",
            lambda: PdfRender.objects.filter(invoice=huge, failed_at__isnull=False).exists(),
            timeout=60,
        )
        # and the worker goes on with the next render
        small = invoice_of(acme, 3)
        wait_until(
            "the next render",
            lambda: Invoice.objects.exclude(pdf_sha256="").filter(pk=small.pk).exists(),
            timeout=60,
        )

    render = PdfRender.objects.get(invoice=huge)
    assert (render.attempts, render.claimant, render.last_error) == (
        3,
        "",
        "3 renders died before they recorded",
    )
    assert Invoice.objects.get(pk=huge.pk).pdf_sha256 == ""
