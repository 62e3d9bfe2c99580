"""A transaction the database aborts to break a deadlock or a serialization
conflict, tried again: the batch jobs' way (the close's groups, its finalization
batches) to go on past one instead of ending the run."""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL's SQLSTATEs of a transaction aborted to let others go on: a
# serialization failure and a deadlock. Anything else is not tried again.
ABORTED = frozenset({"40001", "40P01"})
# Tries of one transaction in all, and the wait before the second (doubled after).
ATTEMPTS = 4
FIRST_WAIT = 0.05


def aborted_by_database(error: BaseException) -> bool:
    """Whether the database aborted the transaction for others' sake (ABORTED):
    it rolled back whole, and the same work may simply run again."""
    cause = error.__cause__ if isinstance(error, DatabaseError) else None
    return getattr(cause, "sqlstate", None) in ABORTED


def retried_when_aborted(work: Callable[[], T], *, what: str, attempts: int = ATTEMPTS) -> T:
    """Run `work`, one transaction of its own, again when the database aborts it
    (aborted_by_database), up to `attempts` tries in all, each after a wait twice
    the one before with jitter, so that two runs that deadlocked do not meet
    again in step; the last abort is raised. Inside a caller's transaction the
    abort is the caller's (its transaction is lost): raised at once."""
    attempt = 1
    while True:
        try:
            return work()
        except DatabaseError as error:
            retried = attempt < attempts and not connection.in_atomic_block
            if not (retried and aborted_by_database(error)):
                raise
            wait = FIRST_WAIT * 2 ** (attempt - 1) * (1 + random.random())  # noqa: S311 (jitter, not a secret)
            attempt += 1
            logger.warning(
                "%s aborted by the database (%s); try %s of %s in %.2f s",
                what,
                error.__cause__.sqlstate,
                attempt,
                attempts,
                wait,
            )
        time.sleep(wait)
