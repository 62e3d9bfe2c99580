from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.revenue.recognition import recognition_unit, revenue_recognize_closed
from common.errors import BillingError


class Command(BaseCommand):
    help = (
        "Write the journal's recognition entries (deferred revenue -> revenue) of every "
        "seller's periods that have ended (a day or a month of its zone: "
        "BILLING_RECOGNITION_PERIOD), from the earned-revenue function. Safe to run any "
        "number of times: a period already recognized writes nothing; an invoice issued "
        "late is caught up. Documents of a locked month go to the next open one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="first day to recognize from, YYYY-MM-DD (default: the first day of "
            "last month, in each seller's zone)",
        )

    def handle(self, *args, **options):
        since = None
        if options["since"]:
            try:
                since = date.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError(f"--since must be a day, YYYY-MM-DD: {exc}") from exc
        try:
            written = revenue_recognize_closed(now=timezone.now(), since=since)
        except BillingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"wrote {written} recognition document(s), by {recognition_unit()}")
