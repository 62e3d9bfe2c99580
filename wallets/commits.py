"""Commits (services and reads): signing one, what a period's statement may
draw from it, recording what the close drew, rolling over and expiring access
at each period's end, the postpaid true-up, and a cancel.

Every write happens under the commit's subscription's row lock (the close, a
plan change and a cancel hold it already; signing takes it), so a period's
drawdown is recorded once, by the invoice that bills it. For each commit at
any moment: drawn + expired + credited + remaining = amount."""

from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from django.db import transaction

from billing.core import rawsql
from billing.core.errors import Conflict
from billing.core.money import currency_exponent
from billing.locks import subscription_lock
from billing.models import Subscription
from billing.rating.commits import Access, CommitDraw, CommitTerms, draw_order
from billing.rating.pricing import EXACT_PRECISION
from customers.locks import customer_lock
from wallets.commit_invoices import commit_invoice, true_up_invoice
from wallets.commit_models import Commit, CommitAccess, CommitEntry
from wallets.commit_terms import CommitRequest, access_schedule, check_request
from wallets.journal_entries import journal_commit_expired

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def commit_sign(
    *, subscription: Subscription, request: CommitRequest, known_meters: set[str], now: datetime
) -> Commit:
    """Sign a commit on the subscription's customer, refused in words when the
    request is wrong or its term overlaps another commit. A prepaid commit is
    invoiced in full at once (`reason: commit`, finalized) and gets its access
    rows: one per period, or one for the term up front. Its invoice is finalized
    under the subscription's lock: the customer's row is taken before it (the lock
    order, billing.locks)."""
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
            _access_create(commit, periods)
            commit.invoice = commit_invoice(commit, subscription, now)
            commit.save(update_fields=["invoice"])
    return commit


def _access_create(commit: Commit, periods: list[tuple[datetime, datetime]]) -> None:
    kind = CommitAccess.UPFRONT if commit.access == Commit.UPFRONT else CommitAccess.PERIOD
    rows = [
        (kind, a, s, e)
        for s, e, a in access_schedule(
            access=commit.access, amount=commit.amount, currency=commit.currency, periods=periods
        )
    ]
    CommitAccess.objects.bulk_create(
        CommitAccess(
            commit=commit,
            kind=kind,
            amount=amount,
            remaining=amount,
            available_from=s,
            expires_at=e,
        )
        for kind, amount, s, e in rows
        if amount > 0
    )


_COMMIT_FIELDS = tuple(Commit._meta.concrete_fields)
# Written out: every /usage and statement reads it (usually no row), read ahead with
# the request's other statements (billing.core.rawsql).
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
    known to find nothing, as billing.core.rawsql.answered takes them: those of
    customers with no commit at all (one statement for all; what a close group
    reads once)."""
    asked = [(customer, [customer, Commit.ACTIVE, start, end]) for customer, start, end in periods]
    return rawsql.answers_where_none(_COMMIT_OF_PERIOD, Commit._meta.db_table, "customer_id", asked)


def accesses_open(commit: Commit, *, start: datetime, end: datetime) -> list[CommitAccess]:
    """The commit's access usable by the period [start, end), in draw order."""
    rows = commit.accesses.filter(
        available_from__lte=start, expires_at__gte=end, expired_at__isnull=True, remaining__gt=0
    )
    order = {a.id: n for n, a in enumerate(draw_order(map(_access, rows)))}
    return sorted(rows, key=lambda row: order[row.id])


def _access(row: CommitAccess) -> Access:
    return Access(row.id, row.kind, row.remaining, row.available_from, row.expires_at)


def commit_terms(*, customer_id: int, start: datetime, end: datetime) -> CommitTerms | None:
    """What the statement of the period [start, end) draws from: the customer's
    commit holding it, with its open access in draw order; None without one."""
    commit = commit_of_period(customer_id=customer_id, start=start, end=end)
    if commit is None:
        return None
    accesses = accesses_open(commit, start=start, end=end) if commit.prepaid else []
    kind = CommitEntry.DRAWDOWN if commit.prepaid else CommitEntry.COUNTED
    taken = commit.entries.filter(kind=kind, period_start__gte=start, period_end__lte=end)
    taken_earlier = sum((e.amount for e in taken), ZERO)
    return CommitTerms(
        commit.id,
        commit.prepaid,
        tuple(commit.applies_to),
        commit.overage_multiplier,
        tuple(map(_access, accesses)),
        -taken_earlier if commit.prepaid else taken_earlier,
        ZERO if commit.prepaid else commit.amount - commit.counted,
    )


def commit_draw_record(
    *, draw: CommitDraw, usage_from: datetime, until: datetime, now: datetime
) -> None:
    """Record what an invoice's statement drew (prepaid) or counted (postpaid),
    under the subscription's row lock its writer holds. The access rows are read
    again: a draw stated on rows another invoice has drawn since is refused (the
    caller's transaction fails whole)."""
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
                occurred_at=now,
            )
        return
    rows = {a.pk: a for a in CommitAccess.objects.filter(pk__in=[a for a, _x in draw.draws])}
    for access_id, amount in draw.draws:
        row = rows[access_id]
        if row.remaining < amount:
            raise Conflict(f"commit access {access_id} has {row.remaining} left, not {amount}")
        row.remaining -= amount
        row.save(update_fields=["remaining"])
        CommitEntry.objects.create(
            commit=commit,
            access=row,
            kind=CommitEntry.DRAWDOWN,
            amount=-amount,
            period_start=usage_from,
            period_end=until,
            occurred_at=now,
        )


def commit_entries_invoiced(*, subscription: Subscription, until: datetime, invoice) -> None:
    """Name the invoice that billed the drawdown (or count) just recorded up to
    `until` on its entries (record_billed writes them before the invoice)."""
    CommitEntry.objects.filter(
        commit__subscription=subscription,
        kind__in=(CommitEntry.DRAWDOWN, CommitEntry.COUNTED),
        period_end=until,
        invoice__isnull=True,
    ).update(invoice=invoice)


def _rollover_expiry(commit: Commit, access: CommitAccess) -> datetime | None:
    """When the rollover of a period's access expires: the end of the period
    `rollover_periods` after it, not past the term; None when nothing rolls
    over (no rollover, or the term's last period)."""
    if not commit.rollover_percent or access.kind != CommitAccess.PERIOD:
        return None
    ends = list(
        commit.accesses.filter(kind=CommitAccess.PERIOD, expires_at__gt=access.expires_at)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)[: commit.rollover_periods]
    )
    return ends[-1] if ends else None


def commit_period_end(*, subscription: Subscription, end: datetime, now: datetime) -> None:
    """At the close of the subscription's period ending at `end`: each access of
    its customer's commit that expires by then rolls over (its rollover
    percent, rounded down to the currency) and expires (breakage); a commit
    whose term ends is ended, and a postpaid one trued up. Under the
    subscription's row lock (the close's)."""
    for commit in Commit.objects.filter(
        customer_id=subscription.customer_id, status=Commit.ACTIVE, starts_at__lt=end
    ).order_by("id"):
        expire_access(commit, until=end, now=now)
        if commit.ends_at <= end:
            term_end(commit, subscription, now=now)


def expire_access(commit: Commit, *, until: datetime, now: datetime, rollover: bool = True) -> None:
    """Each access of the commit that expires by `until` rolls over (unless
    `rollover` is off: the commit ends early) and expires, at its expiry or at
    `now` when that is earlier."""
    due = commit.accesses.filter(expires_at__lte=until, expired_at__isnull=True).order_by(
        "expires_at", "id"
    )
    for access in due:
        left = access.remaining
        rolled = ZERO
        expires = _rollover_expiry(commit, access) if rollover else None
        when = min(access.expires_at, now)
        if left > 0 and expires is not None:
            with localcontext(prec=EXACT_PRECISION):
                share = left * commit.rollover_percent / HUNDRED
            minor = Decimal(1).scaleb(-currency_exponent(commit.currency))
            rolled = share.quantize(minor, rounding=ROUND_DOWN)
        if rolled > 0:
            into = CommitAccess.objects.create(
                commit=commit,
                kind=CommitAccess.ROLLOVER,
                amount=rolled,
                remaining=rolled,
                available_from=access.expires_at,
                expires_at=expires,
                rolled_from=access,
            )
            CommitEntry.objects.create(
                commit=commit,
                access=access,
                kind=CommitEntry.ROLLOVER,
                amount=-rolled,
                occurred_at=access.expires_at,
            )
            CommitEntry.objects.create(
                commit=commit,
                access=into,
                kind=CommitEntry.ROLLOVER,
                amount=rolled,
                occurred_at=access.expires_at,
            )
        if left - rolled > 0:
            expiry = CommitEntry.objects.create(
                commit=commit,
                access=access,
                kind=CommitEntry.EXPIRY,
                amount=-(left - rolled),
                occurred_at=when,
            )
            # Breakage, in the transaction that records it (billing.journal).
            journal_commit_expired(entry=expiry, now=now)
        access.remaining = ZERO
        access.expired_at = now
        access.save(update_fields=["remaining", "expired_at"])


def term_end(
    commit: Commit, subscription: Subscription, *, now: datetime, status: str = Commit.ENDED
) -> None:
    """The commit's term is over (or its subscription canceled: `status`): a
    postpaid one bills what its usage did not reach (`reason: commit_true_up`),
    and it is ended."""
    if not commit.prepaid:
        commit.true_up_invoice = true_up_invoice(commit, subscription, now=now)
    commit.status = status
    commit.ended_at = min(commit.ends_at, now)
    commit.save(update_fields=["status", "ended_at", "true_up_invoice"])


def commit_list(*, customer_id: int):
    return Commit.objects.filter(customer_id=customer_id).order_by("starts_at", "id")
