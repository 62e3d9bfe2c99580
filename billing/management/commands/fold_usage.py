import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import Error, connection

from billing.usage.folding import folds, usage_fold

logger = logging.getLogger(__name__)

# After a database error the folder waits twice as long before each next try (the
# database restarting, or not migrated yet), up to this.
LONGEST_RETRY_SECONDS = 30.0


class Command(BaseCommand):
    help = (
        "Fold the usage events not folded yet into the rollups (PostgreSQL; ingestion "
        "already does so about every two seconds; SQLite has nothing to fold). Safe to "
        "run at any time, also beside ingestion and other folders, and to kill at any "
        "point. With --every, it is "
        "the folder service (docs/running.md): while it folds more often than "
        "BILLING_FOLD_MS, the batches leave the folds to it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            help=(
                "keep folding until stopped, a fold starting every this many seconds "
                "(at once after a fold that took longer)"
            ),
        )

    def handle(self, *args, every=None, **options):
        if every is None:
            moved = usage_fold(wait=True)
            self.stdout.write(f"folded {moved} rows of events into the rollups")
            return
        if not 0 < every <= 3600:
            raise CommandError("--every must be more than 0 and at most 3600 seconds")
        if every * 1000 >= settings.BILLING_FOLD_MS:
            self.stderr.write(
                f"warning: folds every {every:g} s, not more often than the batches' "
                f"turns (BILLING_FOLD_MS={settings.BILLING_FOLD_MS}): the batches fold too"
            )
        if not folds():
            # scripts/run.sh starts the folder on every database, as production does;
            # here each turn returns at once without a query.
            self.stdout.write(
                f"This database ({connection.vendor}) writes the rollups as events are stored: "
                "nothing to fold; idling until stopped"
            )
            self.stdout.flush()
        retry = every
        while True:
            started = time.monotonic()
            try:
                # As a batch does: a fold another folder is at work on, or a bound the
                # batches in flight hold back for more than a moment (one waiting on a
                # wallet's lock, say), is left to the next turn, so that the batches
                # arriving meanwhile never queue behind this one's exclusive lock.
                usage_fold()
            except Error:
                # The database out of reach (a restart, a failover): the fold rolled
                # back, watermark and all; a later turn folds the same events.
                logger.warning("usage fold failed; trying again in %g s", retry, exc_info=True)
                connection.close()
                time.sleep(retry)
                retry = min(retry * 2, max(every, LONGEST_RETRY_SECONDS))
                continue
            retry = every
            time.sleep(max(0.0, every - (time.monotonic() - started)))
