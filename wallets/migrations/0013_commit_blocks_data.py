"""Prepaid commits' access rows (CommitAccess) and their movements (the
prepaid kinds of CommitEntry) become blocks of the customer's commit wallet
(one per currency) and their ledger entries, as wallets.commits writes them
now; nothing else changes: no invoice, no journal entry (a block expired here
was journaled under its old entry's key when it expired, so the block is
noted as moved and the journal's backfill leaves it), no other balance. The
reverse turns them back into access rows and entries."""

from decimal import Decimal

from django.db import migrations

ZERO = Decimal(0)
# Names as the models had them (wallets.models, wallets.commit_models).
PREPAID_KINDS = {"drawdown": "usage", "rollover": "rollover", "expiry": "expiry"}
CREDITED = "credited"
MOVED_NOTE = "Commit access #"  # wallets.journal_backfill.MOVED_NOTE


def _rollover_terms(commit, access, accesses):
    """The rollover percent and expiry a period's access had (old
    wallets.commits._rollover_expiry): the end of the period
    `rollover_periods` after it, none for the term's last."""
    if not commit.rollover_percent or access.kind != "period":
        return None, None
    later = sorted(a.expires_at for a in accesses if a.kind == "period")
    later = [end for end in later if end > access.expires_at][: commit.rollover_periods]
    return (commit.rollover_percent, later[-1]) if later else (None, None)


def _credit_note(apps, commit, occurred_at):
    CreditNote = apps.get_model("invoices", "CreditNote")
    notes = list(CreditNote.objects.filter(invoice_id=commit.invoice_id, created_at=occurred_at))
    return notes[0] if len(notes) == 1 else None


def commits_to_blocks(apps, schema_editor):
    Commit = apps.get_model("wallets", "Commit")
    CommitAccess = apps.get_model("wallets", "CommitAccess")
    CommitEntry = apps.get_model("wallets", "CommitEntry")
    CreditBlock = apps.get_model("wallets", "CreditBlock")
    LedgerEntry = apps.get_model("wallets", "LedgerEntry")
    Wallet = apps.get_model("wallets", "Wallet")
    for commit in Commit.objects.filter(accesses__isnull=False).distinct().order_by("id"):
        wallet, _created = Wallet.objects.get_or_create(
            customer_id=commit.customer_id, kind="commit", currency=commit.currency
        )
        accesses = list(CommitAccess.objects.filter(commit=commit).order_by("id"))
        blocks = {}
        for access in accesses:
            rollover = access.kind == "rollover"
            percent, rolls_until = _rollover_terms(commit, access, accesses)
            blocks[access.pk] = CreditBlock.objects.create(
                wallet=wallet,
                kind="commit",
                source="rollover" if rollover else "commit",
                amount=access.amount,
                remaining=access.remaining,
                price_paid=ZERO if rollover else access.amount,
                currency=commit.currency,
                priority=49 if rollover else 50,
                effective_at=access.available_from,
                expires_at=access.expires_at,
                expired_at=access.expired_at,
                invoice_id=None if rollover else commit.invoice_id,
                subscription_id=commit.subscription_id,
                commit=commit,
                applies_to=list(commit.applies_to),
                rollover_percent=percent,
                rollover_expires_at=rolls_until,
                rolled_over_from=blocks.get(access.rolled_from_id),
                note=f"{MOVED_NOTE}{access.pk}",
                created_at=access.available_from if rollover else commit.created_at,
            )
        balance = wallet.balance
        rows = []
        for access in accesses:
            if access.kind != "rollover":
                balance += access.amount
                rows.append(
                    LedgerEntry(
                        wallet=wallet,
                        block=blocks[access.pk],
                        kind="commit",
                        amount=access.amount,
                        balance_after=balance,
                        occurred_at=commit.created_at,
                    )
                )
        entries = CommitEntry.objects.filter(
            commit=commit, kind__in=[*PREPAID_KINDS, CREDITED]
        ).order_by("id")
        for entry in entries:
            balance += entry.amount
            credited = entry.kind == CREDITED
            note = _credit_note(apps, commit, entry.occurred_at) if credited else None
            rows.append(
                LedgerEntry(
                    wallet=wallet,
                    block=blocks[entry.access_id],
                    kind="credit_note" if credited else PREPAID_KINDS[entry.kind],
                    amount=entry.amount,
                    balance_after=balance,
                    credit_note=note,
                    period_start=entry.period_start,
                    period_end=entry.period_end,
                    invoice_id=entry.invoice_id,
                    occurred_at=entry.occurred_at,
                )
            )
        LedgerEntry.objects.bulk_create(rows)
        Wallet.objects.filter(pk=wallet.pk).update(balance=balance)
        entries.delete()
        CommitAccess.objects.filter(commit=commit).update(rolled_from=None)
        CommitAccess.objects.filter(commit=commit).delete()


OLD_KINDS = {"usage": "drawdown", "rollover": "rollover", "expiry": "expiry"}


def blocks_to_commits(apps, schema_editor):
    Commit = apps.get_model("wallets", "Commit")
    CommitAccess = apps.get_model("wallets", "CommitAccess")
    CommitEntry = apps.get_model("wallets", "CommitEntry")
    CreditBlock = apps.get_model("wallets", "CreditBlock")
    LedgerEntry = apps.get_model("wallets", "LedgerEntry")
    Wallet = apps.get_model("wallets", "Wallet")
    for commit in Commit.objects.filter(blocks__isnull=False).distinct().order_by("id"):
        blocks = list(CreditBlock.objects.filter(commit=commit).order_by("id"))
        accesses = {}
        for block in blocks:
            if block.source == "rollover":
                kind = "rollover"
            else:
                kind = "upfront" if commit.access == "upfront" else "period"
            accesses[block.pk] = CommitAccess.objects.create(
                commit=commit,
                kind=kind,
                amount=block.amount,
                remaining=block.remaining,
                available_from=block.effective_at,
                expires_at=block.expires_at,
                expired_at=block.expired_at,
                rolled_from=accesses.get(block.rolled_over_from_id),
            )
        entries = LedgerEntry.objects.filter(block__commit=commit).order_by("id")
        CommitEntry.objects.bulk_create(
            CommitEntry(
                commit=commit,
                access=accesses[entry.block_id],
                kind=OLD_KINDS.get(entry.kind, CREDITED),
                amount=entry.amount,
                period_start=entry.period_start,
                period_end=entry.period_end,
                invoice_id=entry.invoice_id,
                occurred_at=entry.occurred_at,
            )
            for entry in entries
            if entry.kind != "commit"
        )
        wallet_ids = {block.wallet_id for block in blocks}
        entries.delete()
        CreditBlock.objects.filter(commit=commit).update(rolled_over_from=None)
        CreditBlock.objects.filter(commit=commit).delete()
        for wallet in Wallet.objects.filter(pk__in=wallet_ids):
            if not CreditBlock.objects.filter(wallet=wallet).exists():
                LedgerEntry.objects.filter(wallet=wallet).delete()
                wallet.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0012_commit_blocks"),
        ("invoices", "0027_pdf_render_claims"),
    ]

    operations = [migrations.RunPython(commits_to_blocks, blocks_to_commits)]
