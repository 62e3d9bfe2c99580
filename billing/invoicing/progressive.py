"""Progressive billing: when the usage of a period not yet invoiced reaches the
version's `progressive_billing_threshold`, a threshold invoice bills it at once
(finalized, taxed and collected like any other), so that a heavy user never
runs up a large unpaid amount before the close.

Each threshold invoice rates the whole usage of the part of the period under
way (from its start, or from an immediate plan change) as the close would, and
takes off what the part's earlier threshold invoices billed: graduated tiers go
on across them, and the period's invoices together bill exactly what one
closing invoice would have. Checked after each ingest commits (billing.tasks),
one subscription at a time under its row lock (its customer's taken first:
billing.locks), so that concurrent batches write one invoice per crossing."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from billing.locks import subscription_lock
from billing.models import BilledPeriod, Subscription, ThresholdBilling
from billing.usage.billed_parts import ThresholdBilled
from billing.usage.period_fees import line_inputs
from billing.usage.statement import period_statement
from common import customer_text
from common.errors import Conflict
from common.vocabulary import LineKind
from customers.locks import customer_lock
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from invoices.totals import invoice_totals
from plans import rating
from plans.overrides import subscription_spec

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True)
class _UsageDue:
    """The part of the period under way: its usage rated up to now (no minimum
    commitment: the close settles that), what its threshold invoices billed, and
    the rest, `due`."""

    usage_from: datetime
    usage: list[rating.LineInput]
    before: ThresholdBilled
    due: Decimal
    threshold: Decimal

    @property
    def reached(self) -> bool:
        return self.due >= self.threshold


def _usage_due(subscription: Subscription, now: datetime) -> _UsageDue | None:
    """What the part of the period under way has not invoiced yet; None when the
    subscription has no threshold or no part under way."""
    spec = subscription_spec(subscription)
    threshold = spec.progressive_billing_threshold
    start, end = subscription.current_period_start, subscription.current_period_end
    usage_from = subscription.usage_from or start
    if not threshold or subscription.status not in Subscription.LIVE:
        return None
    # Between a period's end and its close, the close bills what is left.
    if not usage_from < now < end:
        return None
    statement = period_statement(subscription, start=start, end=end, until=now, spec=spec)
    # What goes beyond a commit's access only: its drawdown is one of the lines.
    usage = [line for line in statement.usage if line.kind != LineKind.MINIMUM_COMMITMENT]
    usage += statement.commit_lines
    before = statement.thresholds
    return _UsageDue(
        usage_from,
        usage,
        before,
        invoice_totals(usage, rates=[], currency=spec.currency).total - before.total,
        threshold,
    )


def threshold_invoice_write(*, subscription: Subscription, now: datetime) -> Invoice | None:
    """Write, finalize and collect the subscription's threshold invoice if its
    usage not yet invoiced has reached the threshold; None otherwise. Rates once
    as read, without a lock (most checks stop there), then again under the
    subscription's row lock before writing, so a crossing is billed once whoever
    checks it."""
    found = _usage_due(subscription, now)
    if found is None or not found.reached:
        return None
    with transaction.atomic():
        # The customer's row first (billing.locks): finalizing may touch its credit
        # balance, and a void of a threshold invoice takes it before this lock.
        customer_lock(subscription.customer_id)
        subscription = subscription_lock(subscription.pk)
        with customer_text.speaking(subscription.customer.locale):
            found = _usage_due(subscription, now)
            if found is None or not found.reached:
                return None
            usage_from, usage, before = found.usage_from, found.usage, found.before
            lines = line_inputs(usage, usage_from, now) + before.lines()
        invoice = invoice_write_draft(
            customer=subscription.customer,
            subscription=subscription,
            reason=Invoice.THRESHOLD,
            period_start=usage_from,
            period_end=now,
            lines=lines,
            now=now,
            # Priced at the subscription's terms (_usage_due's statement).
            version=subscription.version,
        )
        # What this invoice bills of each meter: the meter's usage so far less what
        # the part's earlier threshold invoices billed of it.
        billed = {meter: -amount for meter, amount in before.by_meter.items()}
        for line in usage:
            if line.meter:  # not a commit's lines
                billed[line.meter] = billed.get(line.meter, ZERO) + line.amount
        ThresholdBilling.objects.create(
            subscription=subscription,
            invoice=invoice,
            period_start=subscription.current_period_start,
            usage_from=usage_from,
            amount=invoice.subtotal,
            billed={meter: str(amount) for meter, amount in billed.items()},
            created_at=now,
        )
        return invoice_finalize(invoice=invoice, now=now)


def threshold_invoices_write(*, customer_ids, now: datetime) -> list[Invoice]:
    """The threshold invoices these customers' usage has reached (after an
    ingest). One query when none of them bills progressively."""
    # The threshold is the version's, or a deal's own (plans.overrides).
    thresholded = Q(version__progressive_billing_threshold__isnull=False) | Q(
        overrides__has_key="progressive_billing_threshold"
    )
    subscriptions = (
        Subscription.objects.filter(customer_id__in=list(customer_ids))
        .filter(thresholded, status__in=Subscription.LIVE)
        .select_related("customer", "version__plan")
    )
    written = []
    for subscription in subscriptions.order_by("id"):
        try:
            invoice = threshold_invoice_write(subscription=subscription, now=now)
        except Conflict as refused:
            # Its seller cannot issue it yet (invoices.sellers.seller_check): nothing
            # was written; the next check after the entity is fixed bills it, or the close.
            logger.warning("threshold invoice of %s not written: %s", subscription, refused.message)
            continue
        if invoice is not None:
            written.append(invoice)
    return written


def threshold_void_lock(*, invoice: Invoice) -> Subscription:
    """A void of a threshold invoice holds its subscription's row lock first, as
    the writers of the invoices that deduct it do (a threshold invoice, the close,
    a plan change)."""
    return subscription_lock(invoice.subscription_id)


def threshold_void_check(*, invoice: Invoice, held: Subscription, now: datetime) -> None:
    """A voided threshold invoice bills nothing: the next invoice of its part of
    the period bills its usage again. Once that part is closed (its closing or
    plan-change invoice deducted it), no invoice is left to: the void is refused,
    and a credit note (which gives the amount back) is the way."""
    record = ThresholdBilling.objects.get(invoice=invoice)
    closed = BilledPeriod.objects.filter(
        subscription_id=record.subscription_id,
        period_start=record.period_start,
        usage_from=record.usage_from,
    ).first()
    if closed is not None:
        raise Conflict(
            f"the usage billed on {invoice.number} was deducted by the invoice that closed "
            f"its period (usage to {closed.usage_to.isoformat()}); voiding it would leave that "
            "usage unbilled: issue a credit note instead"
        )
