"""The postpaid commit's true-up, written by the close (and by an immediate
cancel) once wallets.commits has ended the commit's term: what its counted usage
fell short of its amount, a draft the beat finalizes (`reason: commit_true_up`);
nothing when the usage met it."""

from collections.abc import Iterable
from datetime import datetime

from django.utils.translation import gettext as _

from billing.models import Subscription
from common import customer_text
from common.vocabulary import LineKind
from invoices.models import Invoice
from wallets.commit_invoices import term_invoice
from wallets.commit_models import Commit, CommitEntry


def commit_true_ups_write(
    commits: Iterable[Commit], subscription: Subscription, *, now: datetime
) -> None:
    """The true-up of each postpaid commit among these ended ones, linked to it."""
    for commit in commits:
        if commit.prepaid:
            continue
        commit.true_up_invoice = true_up_invoice(commit, subscription, now=now)
        if commit.true_up_invoice is not None:
            commit.save(update_fields=["true_up_invoice"])


def true_up_invoice(commit: Commit, subscription: Subscription, *, now: datetime):
    """The postpaid commit's true-up: what its counted usage fell short of its
    amount (None when it reached it), a draft the beat finalizes."""
    missing = commit.amount - commit.counted
    if missing <= 0:
        return None
    CommitEntry.objects.create(
        commit=commit, kind=CommitEntry.TRUE_UP, amount=missing, occurred_at=now
    )
    return term_invoice(
        commit,
        subscription,
        reason=Invoice.COMMIT_TRUE_UP,
        kind=LineKind.COMMIT_TRUE_UP,
        amount=missing,
        describe=lambda term: _(
            "Commit true-up for {term}: {amount} committed, {counted} used"
        ).format(
            term=term,
            amount=customer_text.money(commit.amount, commit.currency),
            counted=customer_text.money(commit.counted, commit.currency),
        ),
        now=now,
    )
