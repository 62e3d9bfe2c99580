from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from billing.journal.models import JournalEntry
from invoices.journal_backfill import invoices_journal_backfill
from wallets.journal_backfill import wallets_journal_backfill


def _documents() -> int:
    return JournalEntry.objects.values("document_key").distinct().count()


class Command(BaseCommand):
    help = (
        "Write the journal entries of documents issued before the journal existed "
        "(invoices, payments, credit notes, refunds, credits consumed and expired, "
        "prepaid commits' access expired). "
        "Safe to run any number of times: a document's entries are written once."
    )

    def handle(self, *args, **options):
        now = datetime.now(UTC)
        before = _documents()
        invoices_journal_backfill(now=now)
        wallets_journal_backfill(now=now)
        self.stdout.write(f"journaled {_documents() - before} document(s)")
