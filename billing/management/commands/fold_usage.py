import time

from django.core.management.base import BaseCommand, CommandError

from billing.usage.folding import usage_fold


class Command(BaseCommand):
    help = (
        "Fold the usage events not folded yet into the rollups (PostgreSQL; ingestion "
        "already does so about every second). Safe to run at any time, also beside "
        "ingestion and other folders, and to kill at any point."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            help="keep folding, this many seconds apart, until stopped",
        )

    def handle(self, *args, every=None, **options):
        if every is not None and not 0 <= every <= 3600:
            raise CommandError("--every must be from 0 to 3600 seconds")
        while True:
            moved = usage_fold(wait=True)
            if every is None:
                self.stdout.write(f"folded {moved} rows of events into the rollups")
                return
            time.sleep(every)
