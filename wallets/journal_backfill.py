"""The journal of wallet movements made before the journal existed: credits
(and prepaid money) consumed from sold blocks, sold blocks expired, and
prepaid commits' access expired.
Consumption is journaled live per ingested batch, keyed by the batch's first
ledger entry; here, each usage entry older than the first batch journaled live
is a document of its own ("consumption:backfill:<entry>"), valued on its
block's running totals as the live writer values them. Safe to run any number
of times."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.journal.models import DocumentType, JournalEntry
from billing.journal.writer import Document, journal_write, journal_written
from wallets.journal_entries import (
    commit_expiry_key,
    consumption_legs,
    journal_commit_expired,
    journal_credits_expired,
    priced,
)
from wallets.models import CreditBlock, LedgerEntry

ZERO = Decimal(0)
BACKFILL_PREFIX = "consumption:backfill:"
CHUNK = 500


def _live_start() -> int | None:
    """The first ledger entry the live writer journaled, if any."""
    first = (
        JournalEntry.objects.filter(document_type=DocumentType.CONSUMPTION)
        .exclude(document_key__startswith=BACKFILL_PREFIX)
        .order_by("id")
        .values_list("document_key", flat=True)
        .first()
    )
    return None if first is None else int(first.split(":")[1])


def _block_consumption(block: CreditBlock, before: int | None, now: datetime) -> None:
    entries = list(
        LedgerEntry.objects.filter(
            block=block, kind__in=(LedgerEntry.USAGE, *LedgerEntry.TAKEN_BACK)
        ).order_by("pk")
    )
    keys = {f"{BACKFILL_PREFIX}{e.pk}" for e in entries if e.kind == LedgerEntry.USAGE}
    done = journal_written(sorted(keys))
    used = taken = ZERO
    for entry in entries:
        if entry.kind != LedgerEntry.USAGE:
            taken -= entry.amount
            continue
        key = f"{BACKFILL_PREFIX}{entry.pk}"
        if (before is None or entry.pk < before) and key not in done:
            journal_write(
                document=Document(
                    type=DocumentType.CONSUMPTION,
                    number=f"WALLET-{block.wallet_id}",
                    key=key,
                    customer_id=block.wallet.customer_id,
                    currency=block.currency,
                    on=entry.occurred_at,
                ),
                legs=consumption_legs(block, used, [(entry.meter, -entry.amount)], taken),
                now=now,
            )
        used -= entry.amount


# Blocks moved from commits' access rows (migration 0013) were journaled as those.
MOVED_NOTE = "Commit access #"


def _commit_expiries(now: datetime) -> None:
    """The breakage of each commit block's expiry that has none."""
    last = 0
    query = (
        LedgerEntry.objects.filter(kind=LedgerEntry.EXPIRY, block__kind=CreditBlock.COMMIT)
        .exclude(block__note__startswith=MOVED_NOTE)
        .select_related("block", "wallet")
    )
    while rows := list(query.filter(pk__gt=last).order_by("pk")[:CHUNK]):
        last = rows[-1].pk
        done = journal_written([commit_expiry_key(row.block) for row in rows])
        with transaction.atomic():
            for row in rows:
                if commit_expiry_key(row.block) not in done:
                    journal_commit_expired(block=row.block, entry=row, now=now)


def wallets_journal_backfill(*, now: datetime) -> None:
    """Journal the consumption and expiry of sold blocks, and the expiry of
    commits' access, that have no entries."""
    before = _live_start()
    blocks = CreditBlock.objects.filter(kind=CreditBlock.PAID, price_paid__gt=0).select_related(
        "wallet"
    )
    for block in blocks.order_by("pk").iterator(chunk_size=500):
        if not priced(block):
            continue
        with transaction.atomic():
            _block_consumption(block, before, now)
            expiry = (
                LedgerEntry.objects.filter(block=block, kind=LedgerEntry.EXPIRY)
                .values_list("amount", flat=True)
                .first()
            )
            if expiry and not journal_written([f"expiry:{block.pk}"]):
                journal_credits_expired(
                    customer_id=block.wallet.customer_id, block=block, left=-expiry, now=now
                )
    _commit_expiries(now)
