"""Tasks only the tests' workers load (`celery worker --include tests.worker_tasks`),
to show what a worker does with a task over its time limits. Each leaves notes (a
customer named by the note) that the test reads in the database."""

import time
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction

from customers.models import Customer

# Longer than any limit the tests give these tasks.
OVERSTAY_SECONDS = 60


def note(label: str) -> None:
    Customer.objects.create(external_id=label, name=label, currency="USD")


@shared_task(name="tests.worker_tasks.overstay", acks_late=True)
def overstay(label: str, ignore_soft_limit: bool) -> None:
    """Outlast the time limits inside a transaction. At the soft limit the transaction
    rolls back and the task notes it, then fails; `ignore_soft_limit`: it goes on
    (a task stuck where the soft limit cannot reach it), until the hard one kills it."""
    note(f"{label}:started:{uuid.uuid4().hex[:8]}")
    try:
        with transaction.atomic():
            note(f"{label}:inside")
            time.sleep(OVERSTAY_SECONDS)
    except SoftTimeLimitExceeded:
        note(f"{label}:soft")
        if not ignore_soft_limit:
            raise
        time.sleep(OVERSTAY_SECONDS)
    note(f"{label}:done")


@shared_task(name="tests.worker_tasks.note", acks_late=True)
def note_task(label: str) -> None:
    note(label)
