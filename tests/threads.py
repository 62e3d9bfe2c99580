"""Concurrency tests' one way to run work at the same moment."""

import threading

from django.db import connection


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
