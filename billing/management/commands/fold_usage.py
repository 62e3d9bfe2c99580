import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from billing.usage.folding import usage_fold

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Fold the usage events not folded yet into the rollups (PostgreSQL; ingestion "
        "already does so about every second). Safe to run at any time, also beside "
        "ingestion and other folders, and to kill at any point. With --every, it is "
        "the folder service (docs/running.md): while it folds, ingestion's batches "
        "leave the folds to it."
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
        if every is not None and not 0 <= every <= 3600:
            raise CommandError("--every must be from 0 to 3600 seconds")
        if every is None:
            moved = usage_fold(wait=True)
            self.stdout.write(f"folded {moved} rows of events into the rollups")
            return
        while True:
            started = time.monotonic()
            try:
                usage_fold(wait=True)
            except DatabaseError:
                # The database out of reach (a restart, a failover): the fold rolled
                # back, watermark and all; the next turn folds the same events.
                logger.warning("usage fold failed; trying again", exc_info=True)
                connection.close()
            time.sleep(max(0.0, every - (time.monotonic() - started)))
