from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from billing.invoicing.close import periods_close
from common.periods import parse_instant


class Command(BaseCommand):
    help = (
        "Close every billing period that ended at or before --as-of (default now), "
        "then finalize drafts past their grace. What it issues is dated and numbered "
        "now, whatever --as-of says; back-dated, it finalizes only the drafts of the "
        "periods it closes. Safe to run any number of times."
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
        try:
            # Back-dated (--as-of before now): it finalizes only what it closes;
            # the other drafts keep their own schedule (invoices.issue_dates).
            result = periods_close(as_of=moment, processes=processes, sweep=moment >= now)
        except DatabaseError as error:
            # A transaction the database aborted was tried again already
            # (common.aborts): what committed stays, a rerun does the rest.
            raise CommandError(
                f"the database stopped the close ({error}); what was closed and "
                "finalized stays so: run it again to do the rest"
            ) from error
        self.stdout.write(
            f"closed {result.periods_closed} period(s), finalized "
            f"{result.invoices_finalized} invoice(s) as of {moment.isoformat()}"
            # Back-dated, what it issued is still dated when issued: it says so.
            + (f"; issued on {now.date().isoformat()}" if moment < now else "")
        )
