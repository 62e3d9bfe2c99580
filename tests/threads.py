"""Concurrency tests' ways to run work at the same moment: all released together
(run_at_once), or one after another while the first holds its locks
(first_then_second)."""

import threading
import time

from django.db import connection, transaction

from billing.core.errors import Conflict


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
