"""Time limits on a real worker (issue 73: a render ran 720 s and held a worker for
12 minutes, tasks having no limit): a task over its soft limit rolls back and fails, one
over its hard limit is killed; neither is delivered again, and the worker goes on with
the next task. Redis, PostgreSQL and a `celery worker` as docs/running.md runs it."""

import time

import pytest

from config.celery import DEFAULT_QUEUE, app
from customers.models import Customer
from tests.workers import celery_worker, redis_broker, tasks_on_the_broker, workers_wait

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
    redis_broker()
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
