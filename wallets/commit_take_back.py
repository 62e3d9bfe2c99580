"""A commit ended early, and what a credit note on a commit's invoice takes back.

A credit note on a prepaid commit's invoice (registered with
invoices.reactions.TAKE_BACKS by wallets.apps) takes the amount it credits
(before tax) out of the commit's access not drawn yet, latest first (the term's
future periods), with a `credited` entry each; what was drawn or expired stays
billed: a note for more than is left is refused with the numbers.

When its subscription is canceled at once, a commit ends: a prepaid one's
access left expires (breakage) or is credited (a credit note on its invoice,
issued once the cancel commits), as finance chooses; a postpaid one is trued up
at once."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.core.errors import Conflict
from billing.core.money import format_money
from billing.locks import subscription_lock
from billing.models import Subscription
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from wallets.commit_models import Commit, CommitAccess, CommitEntry
from wallets.commits import expire_access, term_end

ZERO = Decimal(0)
EXPIRE = "expire"
CREDIT = "credit"
LEFTOVERS = (EXPIRE, CREDIT)


@dataclass(frozen=True)
class AccessTakeBack:
    access: CommitAccess
    amount: Decimal

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.access.commit.currency)} of the commit's access"


def commit_take_back_lock(*, invoice: Invoice) -> Subscription | None:
    """The commit's subscription row, locked after the customer's (the note's
    first lock), as every writer of a commit holds it."""
    return subscription_lock(invoice.subscription_id) if invoice.subscription_id else None


def _left(commit: Commit) -> list[CommitAccess]:
    return list(
        commit.accesses.filter(expired_at__isnull=True, remaining__gt=0).order_by(
            "-expires_at", "-id"
        )
    )


def access_left(commit: Commit, *, drawn: Decimal = ZERO) -> Decimal:
    """The commit's access not drawn nor expired, the term's future periods
    included, less `drawn` (what an invoice about to be written draws): what
    an immediate cancel expires or credits."""
    return sum((row.remaining for row in _left(commit)), ZERO) - drawn


def commit_take_back_plan(
    *, invoice: Invoice, credited_before: Decimal, credited_after: Decimal
) -> list[AccessTakeBack]:
    """What a note crediting the invoice from `credited_before` to
    `credited_after` (before tax) takes out of the commit's access left. Reads
    only; Conflict with the numbers when less is left."""
    wanted = credited_after - credited_before
    commit = Commit.objects.filter(invoice=invoice).first()
    if commit is None or wanted <= 0:
        return []
    rows = _left(commit)
    left = sum((row.remaining for row in rows), ZERO)
    if wanted > left:
        currency = commit.currency
        raise Conflict(
            f"{format_money(commit.amount - left, currency)} of the "
            f"{format_money(commit.amount, currency)} {currency} committed on this invoice "
            f"was already drawn or expired; at most {format_money(left, currency)} can be "
            "credited"
        )
    parts = []
    for row in rows:
        if wanted <= 0:
            break
        taken = min(row.remaining, wanted)
        parts.append(AccessTakeBack(row, taken))
        wanted -= taken
    return parts


def commit_take_back_write(
    *, parts: list[AccessTakeBack], held, note: CreditNote, now: datetime
) -> None:
    for part in parts:
        access = part.access
        access.remaining -= part.amount
        access.save(update_fields=["remaining"])
        CommitEntry.objects.create(
            commit=access.commit,
            access=access,
            kind=CommitEntry.CREDITED,
            amount=-part.amount,
            occurred_at=now,
        )


def commits_end_early(
    *, subscription: Subscription, at: datetime, leftover: str = EXPIRE
) -> list[Commit]:
    """End the subscription's commits at `at` (its immediate cancel, under its
    row lock): a postpaid one trued up now, a prepaid one's access left expired
    now or, with `leftover` "credit", credited by a note on its invoice once the
    cancel commits. The commits ended."""
    ended = []
    for commit in Commit.objects.filter(subscription=subscription, status=Commit.ACTIVE):
        if commit.prepaid and leftover == CREDIT:
            commit_id = commit.pk
            transaction.on_commit(lambda c=commit_id: _credit_left(c, at), robust=True)
        elif commit.prepaid:
            expire_access(commit, until=commit.ends_at, now=at, rollover=False)
        term_end(commit, subscription, now=at, status=Commit.CANCELED)
        ended.append(commit)
    return ended


def _credit_left(commit_id: int, now: datetime) -> None:
    """A credit note on the commit's invoice for all its access left."""
    commit = Commit.objects.select_related("invoice").get(pk=commit_id)
    left = access_left(commit)
    if left <= 0 or commit.invoice is None:
        return
    line = commit.invoice.lines.order_by("position").first()
    credit_note_issue(
        invoice=commit.invoice,
        lines=[CreditLineInput(invoice_line=line.pk, amount=left)],
        reason=CreditNote.ORDER_CHANGE,
        memo="Commit ended early: its access left is credited",
        now=now,
    )
