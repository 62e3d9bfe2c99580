"""The period close (services): the invoice a subscription starts with, the
close of each period that ended, and the finalization of drafts.

Base fee and seats are billed in advance, usage in arrears: the invoice that
closes a period carries its usage and the next period's fixed fees. A period
closes under its subscription's row lock, in a transaction shared by a group of
subscriptions (CLOSE_GROUP; one by one when the group fails), and a unique
constraint on (subscription, reason, period) makes a rerun, a resumed run or a
concurrent run write every invoice once."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from billing.coupon_rule import running_discount_none
from billing.invoicing.commit_true_ups import commit_true_ups_write
from billing.invoicing.discounts import discounts_end, period_discount_lines
from billing.invoicing.period_lines import (
    bill_usage,
    late_usage_lines,
    record_billed,
)
from billing.locks import subscription_lock, subscriptions_lock
from billing.models import Subscription
from billing.notifications.entitlements import entitlements_announce, entitlements_of
from billing.usage.billed_parts import threshold_billed_none
from billing.usage.metering import meter_cache
from billing.usage.period_fees import (
    closing_lines,
    line_inputs,
    next_period,
    overrides_next,
    proration_text,
    remaining_fraction,
)
from common import customer_text, rawsql
from common.aborts import retried_when_aborted
from common.errors import Conflict
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft, invoices_finalize_due
from plans import rating
from plans.overrides import subscription_spec, terms_spec
from plans.taxes import customer_tax_rates_alike
from plans.validation import VersionSpec
from wallets.commits import (
    commit_of_period_none,
    commit_period_end,
    commits_end_early,
)
from wallets.ledger import period_credits_grant

logger = logging.getLogger(__name__)

# Subscriptions closed in one transaction: a group shares its lock statement and
# its commit (the close of a subscription is a dozen short statements), and
# holds its rows' locks for a group's close (about 0.1 s).
CLOSE_GROUP = 20
# A close process finalizes the drafts due of every this many subscriptions it
# closed, as soon as they are closed: about a finalization batch
# (invoices.services.FINALIZE_BATCH) of drafts.
FINALIZE_EVERY = 100


@dataclass(frozen=True)
class CloseResult:
    periods_closed: int
    invoices_finalized: int


def grant_period_credits(subscription: Subscription, spec: VersionSpec) -> None:
    """The version's credits for the subscription's current period, expiring at its
    end (once per period: see wallets.ledger.period_credits_grant), with the
    version's rollover as it is now: its percent and when a rollover would expire."""
    if spec.credits_per_period:
        period_credits_grant(
            subscription=subscription,
            credits=spec.credits_per_period,
            period_start=subscription.current_period_start,
            period_end=subscription.current_period_end,
            now=subscription.current_period_start,
            rollover_percent=spec.credits_rollover_percent,
            rollover_expires_at=rollover_expiry(subscription, spec),
        )


def rollover_expiry(subscription: Subscription, spec: VersionSpec) -> datetime | None:
    """When credits of the current period that roll over expire: the end of the
    period `credits_rollover_periods` periods after it, on the subscription's
    schedule in the customer's zone (None without a rollover)."""
    if spec.credits_rollover_percent is None or not spec.credits_rollover_periods:
        return None
    end = subscription.current_period_end
    for _ in range(spec.credits_rollover_periods):
        _start, end = next_period(subscription, spec, after=end)
    return end


def subscription_start_invoice(*, subscription: Subscription) -> Invoice | None:
    """The in-advance invoice of the first period: base fee and seats (prorated for
    a partial calendar month), and the plan's credits for it. None during a
    trial, which carries no fixed fee."""
    version = subscription.version
    spec = subscription_spec(subscription)
    grant_period_credits(subscription, spec)
    if not subscription.bills_fixed_fees:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    zone = customer_text.customer_zone(subscription.customer)
    fraction = remaining_fraction(subscription, spec, start)

    def part(whole_price):  # a calendar month's first period: the part of it billed
        return proration_text(subscription, spec, start, whole_price=whole_price)

    with customer_text.speaking(subscription.customer.locale):
        fixed = rating.fixed_lines(
            spec,
            plan_name=version.plan.name,
            seats=subscription.seats,
            label=customer_text.period(start, end, zone) if fraction == 1 else part,
            fraction=fraction,
        )
    invoice = invoice_write_draft(
        customer=subscription.customer,
        subscription=subscription,
        reason=Invoice.START,
        period_start=start,
        period_end=end,
        lines=line_inputs(fixed, start, end),
        now=start,
        version=version,
    )
    return invoice


def _due(subscription: Subscription, as_of: datetime) -> bool:
    return subscription.status in Subscription.LIVE and subscription.current_period_end <= as_of


def _next_terms(subscription: Subscription):
    """The version, overrides and terms the subscription's next period runs on:
    a change scheduled for the period's end, else the current ones."""
    version = subscription.scheduled_version or subscription.version
    overrides = overrides_next(subscription, version)
    return version, overrides, terms_spec(version=version, overrides=overrides)


def _close_locked(subscription: Subscription) -> Subscription:
    """Close the subscription's current period, which has ended: write its draft
    invoice (usage in arrears, late usage, the next period's fixed fees in
    advance, then a running discount's line: billing.invoicing.discounts), apply
    a change scheduled for the period's end, and advance. In the caller's
    transaction, which holds the subscription's row lock (subscriptions_close);
    the subscription as the close left it."""
    zone = customer_text.customer_zone(subscription.customer)
    before = entitlements_of(subscription)
    start, end = subscription.current_period_start, subscription.current_period_end
    usage_from = subscription.usage_from or start
    next_version, next_overrides, next_spec = _next_terms(subscription)
    next_start, next_end = next_period(subscription, next_spec)
    with customer_text.speaking(subscription.customer.locale):
        so_far = bill_usage(subscription, until=end)
        late = late_usage_lines(subscription=subscription, before=usage_from, zone=zone)
        lines = closing_lines(subscription=subscription, lines=[*so_far.lines, *late])
        # Then the discount, before tax (invoice_write_draft taxes what is left).
        lines += period_discount_lines(
            subscription=subscription,
            lines=lines,
            currency=subscription.customer.currency,
            at=end,
        )
    invoice = invoice_write_draft(
        customer=subscription.customer,
        subscription=subscription,
        reason=Invoice.PERIOD,
        period_start=start,
        period_end=end,
        lines=lines,
        now=end,
        # The terms of the period it closes (the next period's fees say their own).
        version=subscription.version,
    )
    record_billed(subscription, until=end, so_far=so_far, invoice=invoice)
    if so_far.commit is not None:
        # The period's commit: its access that ends with the period rolls over or
        # expires; a term that ends with it is ended (a postpaid one trued up).
        ended = commit_period_end(subscription=subscription, end=end, now=end)
        commit_true_ups_write(ended, subscription, now=end)
    if subscription.cancel_at_period_end:
        subscription.status = Subscription.ENDED
        subscription.ended_at = end
        discounts_end(subscription=subscription, at=end)
        # Its commit ends with it: the access left expires (a postpaid one is trued up).
        ended = commits_end_early(subscription=subscription, at=end)
        commit_true_ups_write(ended, subscription, now=end)
    else:
        if subscription.status == Subscription.TRIALING:
            subscription.status = Subscription.ACTIVE
        subscription.version = next_version
        subscription.overrides = next_overrides
        subscription.current_period_start, subscription.current_period_end = (
            next_start,
            next_end,
        )
    subscription.scheduled_version = None
    subscription.next_overrides = None
    subscription.usage_from = None
    # Fixed SQL, with save()'s signals (its audit history row is written alike).
    rawsql.update(
        subscription,
        (
            "status",
            "ended_at",
            "version",
            "overrides",
            "next_overrides",
            "current_period_start",
            "current_period_end",
            "scheduled_version",
            "usage_from",
        ),
    )
    if subscription.status in Subscription.LIVE:
        grant_period_credits(subscription, next_spec)
    reason = "period_start" if subscription.status in Subscription.LIVE else "ended"
    entitlements_announce(subscription=subscription, before=before, reason=reason, now=end)
    return subscription


def drafts_finalize(
    *, as_of: datetime, subscription_ids: list[int] | None = None, give_way: bool = False
) -> int:
    """Finalize the drafts written at least BILLING_INVOICE_GRACE_HOURS before
    `as_of` (only those of these subscriptions, when given; `give_way` as
    invoices_finalize_due)."""
    cutoff = as_of - timedelta(hours=settings.BILLING_INVOICE_GRACE_HOURS)
    return invoices_finalize_due(
        cutoff=cutoff, now=as_of, subscription_ids=subscription_ids, give_way=give_way
    )


def change_invoice_finalize_on_commit(*, invoice: Invoice) -> None:
    """With no grace (BILLING_INVOICE_GRACE_HOURS = 0), finalize the draft a plan
    change or an immediate cancel just wrote once the transaction writing it
    commits, as the beat's next tick would (invoices.services.invoice_finalize:
    numbered, then its PDF, email and Stripe collection, each after its own
    commit): the invoice a preview showed is the one the customer gets, at once.
    With a grace, the beat does it when the grace is over. A failure is logged,
    not raised (the change is committed; the beat finalizes the draft on its next
    tick)."""
    if settings.BILLING_INVOICE_GRACE_HOURS > 0:
        return
    invoice_id = invoice.pk
    transaction.on_commit(lambda: _finalize_if_due(invoice_id), robust=True)


def _finalize_if_due(invoice_id: int) -> None:
    now = datetime.now(UTC)
    # A change dated later (`at` ahead of now) is finalized by the beat at its
    # moment, as any draft: never numbered before it is dated.
    due = Invoice.objects.filter(pk=invoice_id, status=Invoice.DRAFT, created_at__lte=now).first()
    if due is None:
        return
    try:
        invoice_finalize(invoice=due, now=now)
    except Conflict as refused:
        # Finalized by another run first, or refused (its seller lacks a VAT number).
        logger.info("invoice %s not finalized here: %s", invoice_id, refused.message)


def periods_close(
    *, as_of: datetime, fail_at: int | None = None, processes: int = 1, sweep: bool = True
) -> CloseResult:
    """Close every period that ended at or before `as_of`, a group of
    subscriptions per transaction (subscriptions_close), then finalize drafts
    past their grace. Safe to run any number of times, and to run again after a
    failure part way. With `processes` > 1 the due subscriptions are shared out
    among that many forked processes (the row locks keep them apart), each
    finalizing its share's drafts as it goes.

    `as_of` decides which periods close and what they bill, never the date of
    what is issued: that is the moment it is issued (invoices.issue_dates).
    Without `sweep` (a run back-dated: close_periods --as-of) only the drafts of
    the subscriptions it closes are finalized; any other draft, even one billing
    before `as_of`, is left to its own schedule (the beat's)."""
    due = due_subscription_ids(as_of=as_of)
    only = None if sweep else due
    if processes > 1:
        shared = _close_in_processes(ids=due, as_of=as_of, processes=processes)
        # What the processes left: drafts of other subscriptions, and those of a
        # subscription whose closing drafts are still in their grace.
        return CloseResult(
            shared.periods_closed,
            shared.invoices_finalized + drafts_finalize(as_of=as_of, subscription_ids=only),
        )
    closed = _close_due(due, as_of=as_of, fail_at=fail_at)
    return CloseResult(closed, drafts_finalize(as_of=as_of, subscription_ids=only))


def due_subscription_ids(*, as_of: datetime) -> list[int]:
    return list(
        Subscription.objects.filter(status__in=Subscription.LIVE, current_period_end__lte=as_of)
        .order_by("id")
        .values_list("id", flat=True)
    )


def subscriptions_close(*, subscription_ids: list[int], as_of: datetime) -> int:
    """Close the ended periods of these subscriptions (all of them, however many
    have ended), CLOSE_GROUP at a time."""
    return _subscriptions_close(subscription_ids, as_of, finalize=False).periods_closed


def subscriptions_close_and_finalize(
    *, subscription_ids: list[int], as_of: datetime
) -> CloseResult:
    """Close the ended periods of these subscriptions as subscriptions_close does,
    and finalize the drafts due of each FINALIZE_EVERY of them once they are
    closed (drafts_finalize). A close process's share: its finalization runs while
    the other processes close periods, instead of all of it after them. A batch
    the database still aborts after its tries is left, with the rest of its chunk,
    to the finalization after every process has ended (periods_close), which no
    close runs beside (a batch locks the customers with a credit balance, which
    deadlocked with another process's close committing their invoices before that
    lock was FOR NO KEY UPDATE: customers.locks)."""
    return _subscriptions_close(subscription_ids, as_of, finalize=True)


def _subscriptions_close(subscription_ids: list[int], as_of: datetime, *, finalize: bool):
    closed = finalized = 0
    with meter_cache.pinned():
        for first in range(0, len(subscription_ids), FINALIZE_EVERY):
            chunk = subscription_ids[first : first + FINALIZE_EVERY]
            for start in range(0, len(chunk), CLOSE_GROUP):
                closed += _close_group(chunk[start : start + CLOSE_GROUP], as_of)
            if finalize:
                finalized += drafts_finalize(as_of=as_of, subscription_ids=chunk, give_way=True)
    return CloseResult(closed, finalized)


def _close_group(subscription_ids: list[int], as_of: datetime) -> int:
    """Close a group of subscriptions in one transaction: their rows locked by one
    statement (in id order, as any run locks several), one BEGIN and COMMIT for
    all. Each period closes as it would alone; one whose close grants plan
    credits closes alone, after the group (_grants_credits). When the group
    fails, it closes again one subscription per transaction, so that a
    subscription that cannot close fails alone (it raises; those before it are
    closed) and a deadlock with another run costs a retry, not the run; alone, a
    close the database aborts is tried again (common.aborts)."""
    together = len(subscription_ids) > 1
    try:
        if together:
            closed, alone = _close_in_one_transaction(subscription_ids, as_of)
        else:
            closed, alone = retried_when_aborted(
                lambda: _close_in_one_transaction(subscription_ids, as_of),
                what=f"the close of subscription {subscription_ids[0]}",
            )
    except Exception:
        if not together:
            raise
        logger.warning(
            "a group of %s subscriptions failed to close together; closing them one by one",
            len(subscription_ids),
            exc_info=True,
        )
        alone, closed = subscription_ids, 0
    return closed + sum(_close_group([subscription_id], as_of) for subscription_id in alone)


def _close_in_one_transaction(subscription_ids: list[int], as_of: datetime) -> tuple[int, list]:
    """_close_group's transaction: how many periods it closed, and the
    subscriptions of a group left to close alone (_grants_credits)."""
    together = len(subscription_ids) > 1
    with transaction.atomic():
        closed, alone = 0, []
        locked = subscriptions_lock(subscription_ids)
        with rawsql.answered(_group_reads(locked, as_of) if together else {}):
            for subscription in locked:
                if together and _grants_credits(subscription):
                    alone.append(subscription.pk)
                    continue
                # Its next period is closed too when it has ended as well (the row
                # as the close left it says so: no second lock for the common case).
                while _due(subscription, as_of):
                    left = _close_locked(subscription)
                    closed += 1
                    subscription = subscription_lock(left.pk) if _due(left, as_of) else left
    return closed, alone


def _group_reads(subscriptions: list[Subscription], as_of: datetime) -> dict:
    """What most periods have none of, read once for a locked group instead of
    once a period (rawsql.answered): threshold billings, a running discount, a
    commit, and tax rates of the customer's own (the default rates read once for
    those without). Only rows none of the group's closes write: a subscription's
    threshold billings and discounts, a customer's commits and rates. A read with
    other parameters (a subscription's second period due) reads as usual."""
    due = [subscription for subscription in subscriptions if _due(subscription, as_of)]
    if len(due) < 2:
        return {}
    return {
        **threshold_billed_none(
            [(s.pk, s.current_period_start, s.usage_from or s.current_period_start) for s in due]
        ),
        **running_discount_none([s.pk for s in due]),
        **commit_of_period_none(
            [(s.customer_id, s.current_period_start, s.current_period_end) for s in due]
        ),
        **customer_tax_rates_alike(sorted({s.customer_id for s in due})),
    }


def _grants_credits(subscription: Subscription) -> bool:
    """Whether the close grants the next period's plan credits, locking the
    customer's credit wallet (wallets.ledger.period_credits_grant). Such a
    subscription closes in a transaction of its own: a group holding several
    customers' wallets, taken in subscription order, could deadlock with an
    ingest batch, which locks its customers' wallets in wallet order."""
    _version, _overrides, spec = _next_terms(subscription)
    return bool(spec.credits_per_period) and not subscription.cancel_at_period_end


def _close_shard(subscription_ids: list[int], as_of: datetime, results) -> None:
    """A close process's share; it answers None when it fails (and exits 1)."""
    answer = None
    try:
        answer = subscriptions_close_and_finalize(subscription_ids=subscription_ids, as_of=as_of)
    finally:
        results.put(answer)


def _close_in_processes(*, ids: list[int], as_of: datetime, processes: int) -> CloseResult:
    """The due subscriptions shared out among `processes` forked processes, each
    finalizing the drafts due of what it closed as it goes
    (subscriptions_close_and_finalize). It returns once every process has ended,
    and raises when one failed or died without an answer (killed): what closed
    stays closed, a rerun closes the rest."""
    import multiprocessing
    import queue

    from django.db import connections

    connections.close_all()  # each child opens its own connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(target=_close_shard, args=(ids[n::processes], as_of, results))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    answers = []
    while len(answers) < len(children):
        try:
            answers.append(results.get(timeout=1))
        except queue.Empty:
            # A process writes its answer before it exits: none alive, none to come.
            if not any(child.is_alive() for child in children) and results.empty():
                break
    for child in children:
        child.join()
    # A process that answered None or nothing (it raised, it was killed) exits non-zero.
    failed = [child.exitcode for child in children if child.exitcode != 0]
    if failed:
        raise RuntimeError(f"a close process failed (exit {failed}); run it again")
    return CloseResult(
        sum(answer.periods_closed for answer in answers),
        sum(answer.invoices_finalized for answer in answers),
    )


def _close_due(due: list[int], *, as_of: datetime, fail_at: int | None) -> int:
    if fail_at is None:
        return subscriptions_close(subscription_ids=due, as_of=as_of)
    # A test's failure, after the first `fail_at` subscriptions have closed.
    closed = subscriptions_close(subscription_ids=due[:fail_at], as_of=as_of)
    raise RuntimeError(f"injected failure after {closed} closed periods")
