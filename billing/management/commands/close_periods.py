from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from billing.core.periods import parse_instant
from billing.invoicing.close import periods_close


class Command(BaseCommand):
    help = (
        "Close every billing period that ended at or before --as-of (default now), "
        "then finalize drafts past their grace. Safe to run any number of times."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 with an offset; not in the future")
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="close in this many processes at once (about one per core)",
        )

    def handle(self, *args, as_of=None, processes=1, **options):
        if not 1 <= processes <= 64:
            raise CommandError("--processes must be from 1 to 64")
        now = datetime.now(UTC)
        if as_of is None:
            moment = now
        else:
            try:
                moment = parse_instant(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of {exc}") from exc
            if moment > now:
                raise CommandError("--as-of is in the future: periods close only once they end")
        result = periods_close(as_of=moment, processes=processes)
        self.stdout.write(
            f"closed {result.periods_closed} period(s), finalized "
            f"{result.invoices_finalized} invoice(s) as of {moment.isoformat()}"
        )
