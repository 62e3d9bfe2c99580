"""The folder service, `manage.py fold_usage --every S` (docs/running.md): while it
folds, the batches leave the folds to it; a database error does not stop it."""

import logging
import os
import random
import subprocess
import sys
import time

import pytest
import time_machine
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
    make_meters,
    random_events,
)


class _Stop(Exception):
    """Ends the folder's endless loop in a test."""


def test_the_folder_logs_a_database_error_and_folds_on_at_its_next_turn(monkeypatch, caplog):
    outcomes = iter([OperationalError("the server closed the connection"), 7, _Stop()])
    calls = []

    def usage_fold(**kwargs):
        calls.append(kwargs)
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    sleeps = []
    monkeypatch.setattr(fold_usage, "usage_fold", usage_fold)
    monkeypatch.setattr(fold_usage.time, "sleep", sleeps.append)
    with caplog.at_level(logging.WARNING), pytest.raises(_Stop):
        fold_usage.Command().handle(every=0.5)
    assert calls == [{"wait": True}] * 3
    assert "usage fold failed" in caplog.text
    # A fold starts every 0.5 s: the sleep is what is left of the turn.
    assert len(sleeps) == 2 and all(0 < s <= 0.5 for s in sleeps)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_leave_the_folds_to_a_running_folder_which_folds_every_event(settings, monkeypatch):
    """A real folder process folds every 0.2 s beside batches stored here, whose
    clock comes due every batch: each of their folds finds the turn taken, and the
    folder alone brings every rollup up to the events."""
    settings.BILLING_FOLD_MS = 1000
    for external_id in CUSTOMERS:
        customer_create(external_id=external_id, name=external_id, currency="USD")
    meters = [meter_cache.by_id()[m.id] for m in make_meters()]
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
    }
    folder = subprocess.Popen(
        [sys.executable, "manage.py", "fold_usage", "--every", "0.2"], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        with connection.cursor() as cursor:
            while time.monotonic() < deadline and folder.poll() is None:
                cursor.execute(f"SELECT 1 FROM {WATERMARK_TABLE} WHERE bound_taken_at IS NOT NULL")  # noqa: S608
                if cursor.fetchone():
                    break
                time.sleep(0.05)
        assert folder.poll() is None, "the folder stopped"

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
            time.sleep(0.4)  # six batches over 2.5 s: a turn lasts 1 s
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
