from django.core.management.base import BaseCommand

from billing.journal.functional import functional_missing, journal_functional_fill
from billing.journal.models import JournalEntry


class Command(BaseCommand):
    help = (
        "Set the functional-currency amounts of journal entries written while their "
        "exchange rate was missing, now that finance has entered it (nothing else of an "
        "entry changes). Safe to run any number of times."
    )

    def handle(self, *args, **options):
        filled = journal_functional_fill()
        self.stdout.write(f"filled {filled} document(s)")
        for pair, days in functional_missing(JournalEntry.objects.all()).items():
            shown = ", ".join(day.isoformat() for day in days)
            self.stdout.write(f"still missing: {pair} on {shown}")
