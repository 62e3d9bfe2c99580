"""Concurrency tests' ways to run work at the same moment: all released together
(run_at_once), or one after another while the first holds its locks
(first_then_second); and the error of a transaction the database aborts
(deadlock_detected)."""

import threading
import time

from django.db import OperationalError, connection, transaction
from psycopg.errors import DeadlockDetected

from common.errors import Conflict


def deadlock_detected() -> OperationalError:
    """What Django raises when PostgreSQL aborts a transaction to end a deadlock
    (raised by a test inside the transaction, which then rolls back whole)."""
    try:
        raise OperationalError("deadlock detected") from DeadlockDetected("deadlock detected")
    except OperationalError as error:
        return error


def run_at_once(work, clients: int = 4) -> list:
    """Run work(index) for index in range(clients), each in its own thread and
    database connection (closed after), all released together. Returns the results
    in index order; re-raises the first failure."""
    barrier = threading.Barrier(clients)
    results: list = [None] * clients
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads), "a worker is stuck (deadlock?)"
    if errors:
        raise errors[0]
    return results


def first_then_second(first, second, *, hold: float = 0.5) -> tuple:
    """Run `first` in a transaction of its own kept open `hold` seconds after it is
    done, and `second` (in another thread and connection) once `first` is done, so
    that `second` meets the locks `first` holds. Returns both results (or the
    Conflict raised)."""
    done = threading.Event()
    results: list = [None, None]

    def run(i: int, work) -> None:
        try:
            if i == 0:
                with transaction.atomic():
                    results[0] = work()
                    done.set()
                    time.sleep(hold)
            else:
                assert done.wait(timeout=30)
                results[1] = work()
        except Conflict as refused:
            results[i] = refused
        finally:
            done.set()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker is stuck (deadlock?)"
    return tuple(results)


def waiting_for_locks() -> int:
    """How many of this database's sessions wait for a lock now. Inside a
    transaction PostgreSQL keeps its first view of the activity: cleared first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def beside_a_close(work, *, first, then) -> list[BaseException]:
    """Run `work` (which locks customers) while a close writes an invoice of
    customer `first`, then, once `work` has ended or waits for a lock, one of
    `then`, in one transaction. A close's foreign keys are checked as it commits,
    in the order it wrote, each taking a key share of the customer's row; here
    each is checked as its row is written, so that the test says when. Returns
    what either raised (a deadlock aborts one of them)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from plans.rating import LineInput
    from tests.factories import period_draft

    jan_1, feb_1 = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    fee = [LineInput("base_fee", "Base fee", None, Decimal(1), Decimal(1), Decimal(1))]
    wrote, ended = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def close() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            period_draft(first, fee, start=jan_1, end=feb_1)
            wrote.set()
            deadline = time.monotonic() + 20
            while not ended.is_set() and not waiting_for_locks():
                assert time.monotonic() < deadline, "the other work neither ended nor waited"
                time.sleep(0.02)
            period_draft(then, fee, start=jan_1, end=feb_1)

    def beside() -> None:
        assert wrote.wait(timeout=20)
        try:
            work()
        finally:
            ended.set()

    def run(target) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # handed to the test
                failed.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=guarded)
        thread.start()
        return thread

    threads = [run(close), run(beside)]
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a path is stuck"
    return failed
