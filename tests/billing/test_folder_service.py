"""The folder service, `manage.py fold_usage --every S` (docs/running.md): while it
folds, the batches leave the folds to it; a database error does not stop it."""

import io
import logging
import random
import subprocess
import sys
import time

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from billing.management.commands import fold_usage
from billing.usage import folding
from billing.usage.folding import WATERMARK_TABLE, unfolded_events
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from customers.services import customer_create
from tests.billing.test_folding import (
    CUSTOMERS,
    NOW,
    ROOT,
    assert_rollups_exact,
    folder_env,
    make_meters,
    random_events,
)


class _Stop(Exception):
    """Ends the folder's endless loop in a test."""


def test_the_folder_folds_on_past_database_errors_and_keeps_its_turns_apart(
    monkeypatch, caplog, settings
):
    """Two failed folds (waits of 0.5 then 1 s: twice as long after each failure),
    then folds taking 0.3 and 0.7 s: the next starts 0.5 s after the one before, or
    at once."""
    settings.BILLING_FOLD_MS = 1000
    clock = [0.0]
    failure = OperationalError("the server closed the connection")
    outcomes = iter([(0.1, failure), (0.1, failure), (0.3, 7), (0.7, 7), (0, _Stop())])
    calls, sleeps, closed = [], [], []

    def usage_fold(**kwargs):
        calls.append(kwargs)
        took, outcome = next(outcomes)
        clock[0] += took
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def sleep(seconds):
        sleeps.append(round(seconds, 6))
        clock[0] += seconds

    monkeypatch.setattr(fold_usage, "usage_fold", usage_fold)
    monkeypatch.setattr(fold_usage.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(fold_usage.time, "sleep", sleep)
    monkeypatch.setattr(fold_usage.connection, "close", lambda: closed.append(True))
    with caplog.at_level(logging.WARNING), pytest.raises(_Stop):
        fold_usage.Command().handle(every=0.5)
    # Without waiting on other folders or on batches in flight (wait=False).
    assert calls == [{}] * 5
    assert sleeps == [0.5, 1.0, 0.2, 0.0]
    assert closed == [True, True]
    assert caplog.text.count("usage fold failed") == 2


@pytest.mark.parametrize("every", ["0", "-1", "3601"])
def test_the_folder_refuses_an_interval_out_of_range(every):
    with pytest.raises(CommandError, match="--every"):
        call_command("fold_usage", "--every", every)


def test_the_folder_warns_when_it_folds_no_more_often_than_the_batches(settings, monkeypatch):
    settings.BILLING_FOLD_MS = 1000

    def usage_fold(**kwargs):
        raise _Stop

    monkeypatch.setattr(fold_usage, "usage_fold", usage_fold)
    err = io.StringIO()
    with pytest.raises(_Stop):
        call_command("fold_usage", "--every", "1", stderr=err)
    assert "the batches fold too" in err.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_leave_the_folds_to_a_running_folder_which_folds_every_event(settings, monkeypatch):
    """A real folder process folds every 0.2 s beside batches stored here over 5 s,
    whose clock comes due every batch: each of their folds finds the turn taken, and
    the folder alone brings every rollup up to the events."""
    # The batches' turns last 3 s: a folder folding every 0.2 s keeps them with room
    # to spare on a busy machine; one folding only every 5 s would not.
    settings.BILLING_FOLD_MS = 3000
    for external_id in CUSTOMERS:
        customer_create(external_id=external_id, name=external_id, currency="USD")
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    env = folder_env()
    folder = subprocess.Popen(
        [sys.executable, "manage.py", "fold_usage", "--every", "0.2"], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        started = False
        with connection.cursor() as cursor:
            while not started and time.monotonic() < deadline and folder.poll() is None:
                cursor.execute(f"SELECT 1 FROM {WATERMARK_TABLE} WHERE bound_taken_at IS NOT NULL")  # noqa: S608
                started = cursor.fetchone() is not None
                time.sleep(0.05)
        assert started, "the folder took no turn"

        # The batches' folds here, and the folds this process did (none: the turn
        # is the folder's whenever a batch's clock comes due).
        attempts, folded_here = [], []
        real_fold, real_fold_through = folding.usage_fold, folding.fold_through

        def attempt(**kwargs):
            attempts.append(kwargs)
            return real_fold(**kwargs)

        def fold_through(*args, **kwargs):
            folded_here.append(args)
            return real_fold_through(*args, **kwargs)

        monkeypatch.setattr(folding, "usage_fold", attempt)
        monkeypatch.setattr(folding, "fold_through", fold_through)
        rng = random.Random(11)
        for first in range(0, 600, 100):
            monkeypatch.setattr(folding.fold_clock, "_last", float("-inf"))
            with time_machine.travel(NOW, tick=False):
                events_ingest(events=random_events(rng, 100, first=first))
            time.sleep(0.8)  # six batches over 5 s
        assert len(attempts) == 6
        assert folded_here == []
        deadline = time.monotonic() + 60
        while unfolded_events() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert unfolded_events() == 0
        assert folder.poll() is None
    finally:
        folder.terminate()
        folder.wait(timeout=30)
    assert_rollups_exact(meters)
