from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from common.periods import parse_instant
from invoices.dunning import dunning_run


class Command(BaseCommand):
    help = (
        "Run the dunning steps due at --as-of (default now) on unpaid invoices, then "
        "work out the customers' standings (what the beat runs). Safe to run any number "
        "of times."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 with an offset; not in the future")

    def handle(self, *args, as_of=None, **options):
        now = datetime.now(UTC)
        moment = now
        if as_of is not None:
            try:
                moment = parse_instant(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of {exc}") from exc
            if moment > now:
                raise CommandError("--as-of is in the future: steps run only once they are due")
        summary = dunning_run(now=moment)
        self.stdout.write(
            f"{summary.done} step(s) done, {summary.skipped} skipped, {summary.held} held by a "
            f"pause; {summary.standings_changed} standing(s) changed as of {moment.isoformat()}"
        )
