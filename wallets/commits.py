"""Commits (services and reads): signing one, what a period's statement may
draw from it, recording what the close drew, rolling over and expiring access
at each period's end, the postpaid true-up, and a cancel.

Every write happens under the commit's subscription's row lock (the close, a
plan change and a cancel hold it already; signing takes it), so a period's
drawdown is recorded once, by the invoice that bills it. For each commit at
any moment: drawn + expired + credited + remaining = amount."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from django.db import transaction

from billing.core import customer_text
from billing.core.errors import Conflict, InvalidRequest
from billing.core.money import currency_exponent, quantize_money
from billing.core.periods import period_containing
from billing.locks import subscription_lock
from billing.models import Subscription
from billing.rating.commits import Access, CommitDraw, CommitTerms, draw_order
from billing.rating.pricing import EXACT_PRECISION
from plans.overrides import subscription_spec
from wallets.commit_invoices import commit_invoice, true_up_invoice
from wallets.commit_models import Commit, CommitAccess, CommitEntry

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# A term of more periods than this is refused (ten years of months).
MAX_PERIODS = 120


def _schedule_of(subscription: Subscription):
    """How the subscription's periods run: its customer's zone, its plan's
    interval, whether they follow the calendar."""
    zone = customer_text.customer_zone(subscription.customer)
    interval = subscription_spec(subscription).interval
    return zone, interval, subscription.billing_anchor == Subscription.CALENDAR


def term_periods(
    subscription: Subscription, starts_at: datetime, ends_at: datetime
) -> list[tuple[datetime, datetime]] | None:
    """The subscription's periods [start, end) from `starts_at` to `ends_at`, in
    its customer's zone and at its plan's interval; None when the term does not
    start and end on period boundaries (or runs past MAX_PERIODS)."""
    if starts_at < subscription.anchor_at or ends_at <= starts_at:
        return None
    zone, interval, calendar = _schedule_of(subscription)
    periods, moment = [], starts_at
    while moment < ends_at and len(periods) <= MAX_PERIODS:
        start, end = period_containing(
            subscription.anchor_at,
            zone,
            interval=interval,
            calendar_aligned=calendar,
            moment=moment,
        )
        if start != moment:
            return None
        periods.append((start, end))
        moment = end
    if moment != ends_at or len(periods) > MAX_PERIODS:
        return None
    return periods


def _per_period_amounts(amount: Decimal, periods: int, currency: str) -> list[Decimal]:
    """`amount` shared over `periods`, each rounded to the currency; the last
    takes what rounding left, so that they add up to it exactly."""
    with localcontext(prec=EXACT_PRECISION):
        each = quantize_money(amount / periods, currency)
    return [each] * (periods - 1) + [amount - each * (periods - 1)]


@dataclass(frozen=True)
class CommitRequest:
    """A commit as asked for, read by the API or the admin (numbers as Decimals)."""

    amount: Decimal
    currency: str
    starts_at: datetime
    ends_at: datetime
    billing: str
    access: str = ""
    applies_to: tuple[str, ...] = ()
    overage_multiplier: Decimal | None = None
    rollover_percent: Decimal | None = None
    rollover_periods: int | None = None


def _refuse(message: str, field: str, words: str):
    raise InvalidRequest(message, fields={field: [message]}, words=words)


def _check(request: CommitRequest, subscription: Subscription, known_meters: set[str]) -> list:
    """The request's refusals, in words; the term's periods when it passes."""
    if request.billing not in (Commit.PREPAID, Commit.POSTPAID):
        _refuse("billing must be prepaid or postpaid", "billing", "Choose prepaid or postpaid.")
    if not request.amount.is_finite() or request.amount <= 0:
        _refuse("amount must be positive", "amount", "Type an amount greater than zero.")
    currency = subscription_spec(subscription).currency
    if request.currency != currency:
        _refuse(
            f"the subscription bills in {currency}, not {request.currency}",
            "currency",
            f"A commit is in its subscription's currency: {currency}.",
        )
    if quantize_money(request.amount, currency) != request.amount:
        _refuse(
            f"amount has more decimals than {currency} allows",
            "amount",
            f"{currency} amounts have at most {currency_exponent(currency)} decimals.",
        )
    unknown = [code for code in request.applies_to if code not in known_meters]
    if unknown:
        _refuse(
            f"applies_to names unknown meters: {', '.join(unknown)}",
            "applies_to",
            f"No meter has the code {', '.join(repr(c) for c in unknown)}: name meters "
            "that exist, or none for all usage.",
        )
    if len(set(request.applies_to)) != len(request.applies_to):
        _refuse("applies_to names a meter twice", "applies_to", "Name each meter once.")
    if request.billing == Commit.POSTPAID:
        for name, value in (
            ("access", request.access),
            ("overage_multiplier", request.overage_multiplier),
            ("rollover", request.rollover_percent),
        ):
            if value not in (None, ""):
                _refuse(
                    f"{name} is for prepaid commits only",
                    name,
                    "A postpaid commit draws nothing down: it has no access, overage "
                    "multiplier or rollover. Leave them out, or make the commit prepaid.",
                )
    else:
        if request.access not in (Commit.PER_PERIOD, Commit.UPFRONT):
            _refuse(
                "access must be per_period or upfront", "access", "Choose per_period or upfront."
            )
        multiplier = request.overage_multiplier
        if multiplier is not None and (not multiplier.is_finite() or multiplier < 1):
            _refuse(
                "overage_multiplier must be 1 or more",
                "overage_multiplier",
                "Usage beyond the commit is billed at its price times this: 1 or more.",
            )
        if request.rollover_percent is not None:
            if request.access != Commit.PER_PERIOD:
                _refuse(
                    "rollover is for per_period access",
                    "rollover",
                    "Up-front access is the whole term's already: nothing rolls over.",
                )
            percent = request.rollover_percent
            if not percent.is_finite() or not 0 < percent <= HUNDRED:
                _refuse(
                    "rollover percent must be in (0, 100]",
                    "rollover",
                    "Type a percent from 0 to 100.",
                )
            if not request.rollover_periods or request.rollover_periods < 1:
                _refuse(
                    "rollover expires_after_periods must be 1 or more",
                    "rollover",
                    "Say after how many periods rolled-over access expires (1 or more).",
                )
    periods = term_periods(subscription, request.starts_at, request.ends_at)
    if not periods:
        current = customer_text.period(
            subscription.current_period_start,
            subscription.current_period_end,
            customer_text.customer_zone(subscription.customer),
        )
        _refuse(
            "the term must cover whole periods of the subscription",
            "starts_at",
            "A commit starts and ends on the subscription's period boundaries "
            f"(its current period: {current}).",
        )
    return periods


def commit_sign(
    *, subscription: Subscription, request: CommitRequest, known_meters: set[str], now: datetime
) -> Commit:
    """Sign a commit on the subscription's customer, refused in words when the
    request is wrong or its term overlaps another commit. A prepaid commit is
    invoiced in full at once (`reason: commit`, finalized) and gets its access
    rows: one per period, or one for the term up front."""
    with transaction.atomic():
        subscription = subscription_lock(subscription.pk)
        if subscription.status not in Subscription.LIVE:
            raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
        periods = _check(request, subscription, known_meters)
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


def access_schedule(
    *, access: str, amount: Decimal, currency: str, periods: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, Decimal]]:
    """What a prepaid commit makes available, as (from, until, amount) rows: its
    amount for the whole term up front, or shared over its periods."""
    if access == Commit.UPFRONT:
        return [(periods[0][0], periods[-1][1], amount)]
    amounts = _per_period_amounts(amount, len(periods), currency)
    return [(s, e, a) for a, (s, e) in zip(amounts, periods, strict=True) if a > 0]


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


def commit_of_period(*, customer_id: int, start: datetime, end: datetime) -> Commit | None:
    """The customer's commit whose term holds the period [start, end)."""
    return (
        Commit.objects.filter(
            customer_id=customer_id,
            status=Commit.ACTIVE,
            starts_at__lte=start,
            ends_at__gte=end,
        )
        .order_by("id")
        .first()
    )


def accesses_open(commit: Commit, *, start: datetime, end: datetime) -> list[CommitAccess]:
    """The commit's access usable by the period [start, end), in draw order."""
    rows = commit.accesses.filter(
        available_from__lte=start, expires_at__gte=end, expired_at__isnull=True, remaining__gt=0
    )
    order = {a.id: n for n, a in enumerate(draw_order(map(_access, rows), CommitAccess.ROLLOVER))}
    return sorted(rows, key=lambda row: order[row.id])


def _access(row: CommitAccess) -> Access:
    return Access(row.id, row.kind, row.remaining, row.expires_at)


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
            CommitEntry.objects.create(
                commit=commit,
                access=access,
                kind=CommitEntry.EXPIRY,
                amount=-(left - rolled),
                occurred_at=when,
            )
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


# Reads for the admin's signing form (wallets.commits_admin): where a term may
# start and end, and what signing would make available, without writing.


def periods_from(
    subscription: Subscription, *, moment: datetime, count: int
) -> list[tuple[datetime, datetime]]:
    """`count` consecutive periods [start, end) of the subscription from the one
    holding `moment`, in its customer's zone and at its plan's interval, as
    term_periods reads them."""
    zone, interval, calendar = _schedule_of(subscription)
    periods: list[tuple[datetime, datetime]] = []
    for _n in range(min(count, MAX_PERIODS)):
        periods.append(
            period_containing(
                subscription.anchor_at,
                zone,
                interval=interval,
                calendar_aligned=calendar,
                moment=moment,
            )
        )
        moment = periods[-1][1]
    return periods


def commit_schedule(
    *, subscription: Subscription, request: CommitRequest, known_meters: set[str]
) -> list[tuple[datetime, datetime, Decimal]]:
    """What signing `request` would make available, as (from, until, amount) rows
    in the order commit_sign writes them (none for a postpaid commit). Writes
    nothing; refuses in words as commit_sign does, except for an overlap with
    another commit, which only signing sees (under the subscription's lock)."""
    periods = _check(request, subscription, known_meters)
    if request.billing != Commit.PREPAID:
        return []
    return access_schedule(
        access=request.access, amount=request.amount, currency=request.currency, periods=periods
    )
