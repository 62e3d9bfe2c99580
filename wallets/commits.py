"""Commits (services and reads): signing one, what a period's statement may
draw from it, recording what the close drew, rolling over and expiring access
at each period's end, the postpaid true-up, and an early end (a cancel at
once: the access left expires or is credited, as finance chooses).

A prepaid commit's access is blocks of its customer's commit wallet, drawn,
rolled over, expired and taken back (wallets.take_back) as the wallet's are.
Every write happens under the commit's subscription's row lock (the close, a
plan change and a cancel hold it already; signing takes it), then the
wallet's, so a period's drawdown is recorded once, by the invoice that bills
it. For each commit: drawn + expired + credited + remaining = amount."""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from billing.locks import subscription_lock
from billing.models import Subscription
from common import rawsql
from common.errors import Conflict
from customers.locks import customer_lock
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote
from plans.commit_drawdown import ROLLOVER, Access, CommitDraw, CommitTerms
from wallets import ledger
from wallets.commit_invoices import commit_invoice
from wallets.commit_models import Commit, CommitEntry
from wallets.commit_terms import CommitRequest, access_schedule, check_request
from wallets.ledger import (
    BlockDraw,
    add_block,
    block_order,
    blocks_expire,
    store_balance,
    wallet_get_or_create,
)
from wallets.locks import wallet_lock
from wallets.models import CreditBlock, LedgerEntry, Wallet

ZERO = Decimal(0)


def commit_sign(
    *, subscription: Subscription, request: CommitRequest, known_meters: set[str], now: datetime
) -> Commit:
    """Sign a commit on the subscription's customer, refused in words when the
    request is wrong or its term overlaps another commit. A prepaid commit is
    invoiced in full at once (`reason: commit`, finalized) and gets its access
    blocks: one per period, or one for the term up front. Its invoice is finalized
    under the subscription's and the wallet's locks: the customer's row is taken
    before them (the lock order, billing.locks)."""
    with transaction.atomic():
        customer_lock(subscription.customer_id)
        subscription = subscription_lock(subscription.pk)
        if subscription.status not in Subscription.LIVE:
            raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
        periods = check_request(request, subscription, known_meters)
        overlapping = Commit.objects.filter(
            customer_id=subscription.customer_id,
            status=Commit.ACTIVE,
            starts_at__lt=request.ends_at,
            ends_at__gt=request.starts_at,
        )
        if overlapping.exists():
            raise Conflict(
                "the customer has a commit over part of this term already",
                words="A customer has one commit at a time: end or cancel the other first.",
            )
        prepaid = request.billing == Commit.PREPAID
        commit = Commit.objects.create(
            customer_id=subscription.customer_id,
            subscription=subscription,
            amount=request.amount,
            currency=request.currency,
            starts_at=request.starts_at,
            ends_at=request.ends_at,
            periods=len(periods),
            billing=request.billing,
            access=request.access if prepaid else "",
            applies_to=list(request.applies_to),
            overage_multiplier=request.overage_multiplier or Decimal(1),
            rollover_percent=request.rollover_percent,
            rollover_periods=request.rollover_periods if request.rollover_percent else None,
            counted=ZERO,
            created_at=now,
        )
        if prepaid:
            wallet = wallet_get_or_create(
                customer=subscription.customer, kind=Wallet.COMMIT, currency=commit.currency
            )
            wallet = wallet_lock(wallet)
            commit.invoice = commit_invoice(commit, subscription, now)
            commit.save(update_fields=["invoice"])
            _access_create(wallet, commit, periods, now)
    return commit


def _access_create(
    wallet: Wallet, commit: Commit, periods: list[tuple[datetime, datetime]], now: datetime
) -> None:
    """The commit's access blocks in its (locked) wallet, each rolling over to
    the end of the period `rollover_periods` after its own (not past the term)."""
    rows = access_schedule(
        access=commit.access, amount=commit.amount, currency=commit.currency, periods=periods
    )
    ends = [until for _from, until, _amount in rows]
    for n, (since, until, amount) in enumerate(rows):
        later = ends[n + 1 : n + 1 + (commit.rollover_periods or 0)]
        rolls = commit.rollover_percent and commit.access == Commit.PER_PERIOD and later
        add_block(
            wallet,
            entry_kind=LedgerEntry.COMMIT,
            now=now,
            amount=amount,
            kind=CreditBlock.COMMIT,
            source=CreditBlock.COMMIT,
            price_paid=amount,
            currency=commit.currency,
            effective_at=since,
            expires_at=until,
            invoice=commit.invoice,
            subscription=commit.subscription,
            commit=commit,
            applies_to=list(commit.applies_to),
            rollover_percent=commit.rollover_percent if rolls else None,
            rollover_expires_at=later[-1] if rolls else None,
        )


_COMMIT_FIELDS = tuple(Commit._meta.concrete_fields)
# Written out: every /usage and statement reads it (usually no row), read ahead with
# the request's other statements (common.rawsql).
_COMMIT_OF_PERIOD = (
    f"SELECT {', '.join(f.column for f in _COMMIT_FIELDS)} FROM {Commit._meta.db_table} "  # noqa: S608 (the model's columns)
    "WHERE customer_id = %s AND status = %s AND starts_at <= %s AND ends_at >= %s "
    "ORDER BY id LIMIT 1"
)


def commit_of_period(*, customer_id: int, start: datetime, end: datetime) -> Commit | None:
    """The customer's commit whose term holds the period [start, end)."""
    found = rawsql.rows(
        _COMMIT_OF_PERIOD,
        [customer_id, Commit.ACTIVE, start, end],
        _COMMIT_FIELDS,
        ahead=True,
    )
    return rawsql.instance(_COMMIT_FIELDS, found[0]) if found else None


def commit_of_period_none(periods: list[tuple[int, datetime, datetime]]) -> dict:
    """Of these periods (customer id, start, end), the commit_of_period reads
    known to find nothing, as common.rawsql.answered takes them: those of
    customers with no commit at all (one statement for all; what a close group
    reads once)."""
    asked = [(customer, [customer, Commit.ACTIVE, start, end]) for customer, start, end in periods]
    return rawsql.answers_where_none(_COMMIT_OF_PERIOD, Commit._meta.db_table, "customer_id", asked)


def commit_terms(*, customer_id: int, start: datetime, end: datetime) -> CommitTerms | None:
    """What the statement of the period [start, end) draws from: the customer's
    commit holding it, with its open access in draw order; None without one."""
    commit = commit_of_period(customer_id=customer_id, start=start, end=end)
    if commit is None:
        return None
    accesses, taken = [], commit.entries.filter(kind=CommitEntry.COUNTED)
    if commit.prepaid:
        accesses = commit.blocks.filter(
            effective_at__lte=start, expires_at__gte=end, expired_at__isnull=True, remaining__gt=0
        )
        taken = LedgerEntry.objects.filter(block__commit=commit, kind=LedgerEntry.USAGE)
    taken = taken.filter(period_start__gte=start, period_end__lte=end)
    taken_earlier = sum((e.amount for e in taken), ZERO)
    return CommitTerms(
        commit.id,
        commit.prepaid,
        tuple(commit.applies_to),
        commit.overage_multiplier,
        tuple(
            Access(b.id, access_kind(b, commit), b.remaining, b.effective_at, b.expires_at)
            for b in sorted(accesses, key=block_order)
        ),
        -taken_earlier if commit.prepaid else taken_earlier,
        ZERO if commit.prepaid else commit.amount - commit.counted,
    )


def commit_draw_record(
    *, draw: CommitDraw, usage_from: datetime, until: datetime, now: datetime, invoice
) -> None:
    """Record what `invoice`'s statement drew (prepaid) or counted (postpaid),
    each entry naming it, under the subscription's row lock its writer holds,
    then the wallet's. The
    access blocks are read again: a draw stated on blocks another invoice has
    drawn since is refused (the caller's transaction fails whole)."""
    commit = Commit.objects.get(pk=draw.terms.id)
    if not commit.prepaid:
        if draw.usage:
            commit.counted += draw.usage
            commit.save(update_fields=["counted"])
            CommitEntry.objects.create(
                commit=commit,
                kind=CommitEntry.COUNTED,
                amount=draw.usage,
                period_start=usage_from,
                period_end=until,
                invoice=invoice,
                occurred_at=now,
            )
        return
    if not draw.draws:
        return
    wallet = wallet_lock(Wallet(pk=CreditBlock.objects.get(pk=draw.draws[0][0]).wallet_id))
    rows = {b.pk: b for b in CreditBlock.objects.filter(pk__in=[b for b, _x in draw.draws])}
    ledger.draw(
        wallet,
        [BlockDraw(rows[block_id], amount) for block_id, amount in draw.draws],
        occurred_at=now,
        period_start=usage_from,
        period_end=until,
        invoice=invoice,
    )


def commit_period_end(*, subscription: Subscription, end: datetime, now: datetime) -> list[Commit]:
    """At the close of the subscription's period ending at `end`: each access of
    its customer's commit that expires by then rolls over (its rollover
    percent, rounded down to the currency) and expires (breakage); a commit
    whose term ends is ended. Under the subscription's row lock (the close's).
    The commits ended, for the close to true up the postpaid ones
    (billing.invoicing.commit_true_ups)."""
    ended = []
    for commit in Commit.objects.filter(
        customer_id=subscription.customer_id, status=Commit.ACTIVE, starts_at__lt=end
    ).order_by("id"):
        expire_access(commit, until=end, now=now)
        if commit.ends_at <= end:
            term_end(commit, now=now)
            ended.append(commit)
    return ended


def expire_access(commit: Commit, *, until: datetime, now: datetime, rollover: bool = True) -> None:
    """Each access block of the commit that expires by `until` rolls over
    (unless `rollover` is off: the commit ends early) and expires, at its
    expiry or at `now` when that is earlier (wallets.ledger.blocks_expire)."""
    due = list(
        commit.blocks.filter(expires_at__lte=until, expired_at__isnull=True)
        .select_related("commit")
        .order_by("expires_at", "id")
    )
    if not due:
        return
    wallet = wallet_lock(Wallet(pk=due[0].wallet_id))
    blocks_expire(wallet, due, now=now, rollover=rollover)
    store_balance(wallet)


def term_end(commit: Commit, *, now: datetime, status: str = Commit.ENDED) -> None:
    """The commit's term is over (or its subscription canceled: `status`): it is
    ended. What a postpaid one's usage did not reach is billed by the caller
    (billing.invoicing.commit_true_ups)."""
    commit.status = status
    commit.ended_at = min(commit.ends_at, now)
    commit.save(update_fields=["status", "ended_at"])


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
    row lock): a prepaid one's access left expired now or, with `leftover`
    "credit", credited by a note on its invoice once the cancel commits. The
    commits ended, for the caller to true up the postpaid ones
    (billing.invoicing.commit_true_ups)."""
    ended = []
    for commit in Commit.objects.filter(subscription=subscription, status=Commit.ACTIVE):
        if commit.prepaid and leftover == CREDIT:
            commit_id = commit.pk
            transaction.on_commit(lambda c=commit_id: _credit_left(c, at), robust=True)
        elif commit.prepaid:
            expire_access(commit, until=commit.ends_at, now=at, rollover=False)
        term_end(commit, now=at, status=Commit.CANCELED)
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


def commit_list(*, customer_id: int):
    return Commit.objects.filter(customer_id=customer_id).order_by("starts_at", "id")


# What a commit's readers (the API, the admin) call its blocks and ledger entries.
PERIOD, UPFRONT = "period", "upfront"
ACCESS_KINDS = [PERIOD, UPFRONT, ROLLOVER]
ENTRY_KINDS = {
    LedgerEntry.USAGE: "drawdown",
    LedgerEntry.ROLLOVER: "rollover",
    LedgerEntry.EXPIRY: "expiry",
    LedgerEntry.CREDIT_NOTE: "credited",
    LedgerEntry.VOID: "credited",
}


def access_kind(block: CreditBlock, commit: Commit) -> str:
    if block.source == CreditBlock.ROLLOVER:
        return ROLLOVER
    return UPFRONT if commit.access == Commit.UPFRONT else PERIOD


def commit_accesses(commit: Commit) -> list[CreditBlock]:
    """The commit's access blocks, each period's and their rollovers, in time order."""
    return list(commit.blocks.order_by("effective_at", "id"))


def commit_ledger(commit: Commit) -> list:
    """The commit's movements, oldest first: its access blocks' ledger entries
    (their grants left out: the commit's invoice says them), or a postpaid
    commit's own entries (counted, trued up)."""
    if not commit.prepaid:
        return list(commit.entries.order_by("id"))
    entries = LedgerEntry.objects.filter(block__commit=commit, kind__in=list(ENTRY_KINDS))
    return list(entries.select_related("block", "invoice").order_by("id"))
