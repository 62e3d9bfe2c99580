"""The data migration that moves prepaid commits' access rows and entries into
blocks and ledger entries of a commit wallet (wallets migration 0013) on a
populated database: a prepaid commit with rollover, periods closed with usage,
part taken back by a credit note, a postpaid commit beside it. Their rows are
turned into the access rows and entries the commits kept before (the
migration's reverse), then moved forward again: every amount, balance,
invoice, journal entry and API answer is what it was."""

from datetime import UTC, datetime
from decimal import Decimal as D
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.invoicing.close import periods_close
from billing.journal.models import JournalEntry
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from tests.factories import api_client
from tests.wallets.test_commits import catalog, customer_on_plan, post_usage, sign
from wallets.commit_models import Commit, CommitEntry
from wallets.commits import ENTRY_KINDS, access_kind, commit_accesses, commit_ledger
from wallets.ledger import credits_grant
from wallets.models import Wallet

__all__ = ["catalog"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

moved = import_module("wallets.migrations.0013_commit_blocks_data")

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
PREPAID = {
    "amount": "3000.00",
    "currency": "USD",
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2027-02-01T00:00:00Z",
    "billing": "prepaid",
    "access": "per_period",
    "applies_to": ["llm_tokens"],
    "overage_multiplier": "1.10",
    "rollover": {"percent": "50", "expires_after_periods": 1},
}
POSTPAID = {
    "amount": "600.00",
    "currency": "USD",
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2027-01-01T00:00:00Z",
    "billing": "postpaid",
}


@pytest.fixture
def before_apps():
    """The models as they stand between the migration's schema steps (access
    rows and blocks both), with the access table and column made again."""
    apps = (
        MigrationExecutor(connection)
        .loader.project_state(("wallets", "0013_commit_blocks_data"))
        .apps
    )
    entry = apps.get_model("wallets", "CommitEntry")
    with connection.schema_editor() as editor:
        editor.create_model(apps.get_model("wallets", "CommitAccess"))
        editor.add_field(entry, entry._meta.get_field("access"))
    return apps


def numbered(ids: list) -> dict:
    return {pk: n for n, pk in enumerate(ids)}


def commit_state(commit: Commit) -> dict:
    """What the commit holds and did, its ids replaced by positions."""
    blocks = commit_accesses(commit)
    at = numbered([b.pk for b in blocks])
    ledger = commit_ledger(commit)
    return {
        "blocks": [
            (
                access_kind(b, commit),
                b.amount,
                b.remaining,
                b.price_paid,
                b.priority,
                b.effective_at,
                b.expires_at,
                b.expired_at,
                b.created_at,
                b.invoice_id,
                b.applies_to,
                b.rollover_percent,
                b.rollover_expires_at,
                at.get(b.rolled_over_from_id),
            )
            for b in blocks
        ],
        "ledger": [
            (
                ENTRY_KINDS.get(e.kind, e.kind),
                e.amount,
                at.get(getattr(e, "block_id", None)),
                getattr(e, "balance_after", None),
                getattr(e, "credit_note_id", None),
                e.period_start,
                e.period_end,
                e.invoice_id,
                e.occurred_at,
            )
            for e in ledger
        ],
        "totals": old_totals(ledger, blocks),
    }


def old_totals(entries, accesses) -> tuple:
    """Drawn, expired, credited and remaining: amount committed, in all."""

    def total(*kinds):
        return -sum((e.amount for e in entries if ENTRY_KINDS.get(e.kind, e.kind) in kinds), D(0))

    left = sum((a.remaining for a in accesses), D(0))
    return total("drawdown"), total("expiry"), total("credited"), left


def api_answer(commit: Commit) -> dict:
    body = api_client("read").get(f"/api/v1/customers/acme/commits/{commit.pk}").json()
    at = numbered([a["id"] for a in body["accesses"]])
    for access in body["accesses"]:
        access["id"] = at[access["id"]]
    for n, entry in enumerate(body["entries"]):
        entry["id"], entry["access"] = n, at.get(entry["access"])
    return body


def world_state() -> dict:
    return {
        "commits": {c.pk: commit_state(c) for c in Commit.objects.order_by("pk")},
        "api": api_answer(Commit.objects.get(customer__external_id="acme")),
        "wallets": sorted(Wallet.objects.values_list("customer_id", "kind", "currency", "balance")),
        "invoices": [
            (i.number, i.reason, i.status, i.total, [(x.kind, x.amount) for x in i.lines.all()])
            for i in Invoice.objects.order_by("pk")
        ],
        "notes": list(CreditNote.objects.order_by("pk").values_list("number", "total")),
        "journal": list(JournalEntry.objects.order_by("pk").values()),
    }


# PostgreSQL: its fixture alters tables inside the test's transaction, which SQLite's
# schema editor refuses (its foreign key checks cannot be turned off mid-transaction).
@pytest.mark.postgres
def test_moving_commits_to_blocks_changes_no_balance_invoice_or_journal_entry(before_apps):
    # given: acme's prepaid commit with 50% rollover: 800.00 drawn in November
    # (100.00 rolls over, 100.00 expires), 1,150.00 of usage in December (the
    # rollover first, then December's access, 50.00 beyond it), 500.00 taken back
    # by a credit note; credits beside it; beta's postpaid commit counting usage
    acme, _subscription = customer_on_plan("acme")
    assert sign("acme", PREPAID).status_code == 201
    credits_grant(customer=acme, credits=D("40"), now=NOV_1)
    _beta, _subscription = customer_on_plan("beta")
    assert sign("beta", POSTPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=800_000)
    post_usage("beta", datetime(2026, 11, 10, tzinfo=UTC), tokens=250_000)
    periods_close(as_of=DEC_1)
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=1_150_000)
    periods_close(as_of=JAN_1)
    commit = Commit.objects.get(customer=acme)
    credit_note_issue(
        invoice=commit.invoice,
        lines=[CreditLineInput(commit.invoice.lines.get().pk, D("500.00"))],
        reason="order_change",
        now=JAN_1,
    )
    before = world_state()
    assert before["commits"][commit.pk]["totals"] == (
        D("1900.00"),
        D("100.00"),
        D("500.00"),
        D("500.00"),
    )
    # and the rows as the commits kept them before the migration
    moved.blocks_to_commits(before_apps, None)
    access = before_apps.get_model("wallets", "CommitAccess")
    entry = before_apps.get_model("wallets", "CommitEntry")
    assert not commit.blocks.exists()
    assert not Wallet.objects.filter(kind=Wallet.COMMIT).exists()
    old_rows = access.objects.filter(commit_id=commit.pk)
    old_entries = entry.objects.filter(commit_id=commit.pk)
    assert old_totals(list(old_entries), list(old_rows)) == before["commits"][commit.pk]["totals"]
    assert old_rows.filter(kind="rollover").count() == 1

    # when: the migration moves them
    moved.commits_to_blocks(before_apps, None)

    # then: nothing is left of the access rows and the prepaid entries, and all
    # the rest reads as before
    assert not access.objects.exists()
    kept = set(CommitEntry.objects.values_list("kind", flat=True))
    assert kept == {CommitEntry.COUNTED, CommitEntry.TRUE_UP}
    after = world_state()
    assert after == before
