"""A commit ended early. (What a credit note on a commit's invoice takes back
of its access blocks is the wallet's take-back: wallets.take_back.)

When its subscription is canceled at once, a commit ends: a prepaid one's
access left expires (breakage) or is credited (a credit note on its invoice,
issued once the cancel commits), as finance chooses; a postpaid one is trued up
at once."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from billing.models import Subscription
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote
from wallets.commit_models import Commit
from wallets.commits import expire_access, term_end

ZERO = Decimal(0)
EXPIRE = "expire"
CREDIT = "credit"
LEFTOVERS = (EXPIRE, CREDIT)


def access_left(commit: Commit, *, drawn: Decimal = ZERO) -> Decimal:
    """The commit's access not drawn nor expired, the term's future periods
    included, less `drawn` (what an invoice about to be written draws): what
    an immediate cancel expires or credits."""
    left = commit.blocks.filter(expired_at__isnull=True).aggregate(left=Sum("remaining"))["left"]
    return (left or ZERO) - drawn


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
