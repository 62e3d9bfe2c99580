"""What the open periods bill and no invoice has yet: the lines of each live
subscription's period statement for the part under way, as of a moment, less
the minimum commitment true-up only the period's end settles.

Earned revenue (billing.revenue.earned) reads them from the statements
themselves when a question covers few subscriptions (ACCRUED_LIVE_LIMIT), and
from the rows the beat keeps (AccruedLine, refreshed by `accruals_refresh`)
beyond that: the same statement's lines, as of the last refresh (the answer
says when), so that a report over ten thousand subscriptions reads rows
instead of rating each one."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Min, Q, Sum
from django.db.models.functions import Coalesce

from billing.models import AccruedLine, Subscription
from billing.usage.statement import period_statement
from common.money import quantize_money
from common.vocabulary import ConsumptionModel, LineKind
from invoices.services import usage_groups_as_stored
from plans.models import PlanVersion
from plans.rating import LineInput
from plans.selectors import version_spec
from plans.validation import VersionSpec

# Beyond this many subscriptions accruing in a question's scope, their stored
# rows are read instead of their statements.
ACCRUED_LIVE_LIMIT = 200
# What accrues of an open period: what its closing invoice bills but the true-up,
# the threshold invoices taken off (their usage is the statement's), and tax.
NOT_ACCRUED = (LineKind.MINIMUM_COMMITMENT, LineKind.USAGE_INVOICED, LineKind.DISCOUNT)
REFRESH_CHUNK = 200


@dataclass(frozen=True)
class Accrued:
    """One line accruing: a subscription's customer, the plan that priced it,
    what it bills and over which service period."""

    customer_id: int
    plan: str
    kind: str
    meter: str
    group: dict | None
    usage_groups: list  # as InvoiceLine.usage_groups stores them
    amount: Decimal
    start: datetime
    end: datetime


def may_accrue(spec: VersionSpec) -> bool:
    """Whether a period at these terms may bill anything not invoiced yet: usage
    (any charge but a hard cap: a credits charge may bill what its wallet could
    not pay for) or a seat change (a seat price)."""
    return bool(spec.seat_price) or any(
        charge.model != ConsumptionModel.HARD_CAP for charge in spec.charges
    )


def accruing(*, start: datetime, end: datetime, currency: str, now: datetime, customers=None):
    """The live subscriptions whose part under way overlaps [start, end) before
    `now` and whose terms may accrue (may_accrue)."""
    live = Subscription.objects.filter(
        status__in=Subscription.LIVE,
        customer__currency=currency,
        current_period_start__lt=min(end, now),
        current_period_end__gt=start,
    )
    if customers is not None:
        live = live.filter(customer_id__in=customers)
    versions = set(live.values_list("version_id", flat=True).distinct())
    may = [
        version.pk
        for version in PlanVersion.objects.filter(pk__in=versions)
        if may_accrue(version_spec(version=version))
    ]
    return live.filter(version_id__in=may)


def accrued_now(subscription: Subscription, now: datetime) -> list[Accrued]:
    """The subscription's lines accruing as of `now` (the period's end, when it
    ended and was not closed yet), from its period statement."""
    until = min(now, subscription.current_period_end)
    statement = period_statement(
        subscription,
        start=subscription.current_period_start,
        end=subscription.current_period_end,
        until=until,
    )
    plan = subscription.version.plan.code
    currency = statement.currency
    found = []
    for line in statement.invoice_lines():
        if line.kind in NOT_ACCRUED or not line.amount:
            continue
        found.append(_accrued(line, subscription.customer_id, plan, statement, currency))
    return found


def _accrued(line: LineInput, customer_id: int, plan: str, statement, currency: str) -> Accrued:
    start = line.period_start or statement.usage_from
    end = line.period_end or statement.part.until
    return Accrued(
        customer_id,
        line.plan or plan,
        line.kind,
        line.meter or "",
        None if line.group is None else dict(line.group),
        usage_groups_as_stored(line.usage_groups),
        quantize_money(line.amount, currency),
        start,
        max(start, end),
    )


def accrued_lines(
    *, start: datetime, end: datetime, currency: str, now: datetime, customers=None, apart=True
) -> tuple[list[Accrued], datetime | None]:
    """What accrues in [start, end) for the customers billed in `currency`
    (these `customers` only, when given), and as of when: now, from the
    statements, when at most ACCRUED_LIVE_LIMIT subscriptions accrue; else the
    stored rows of the parts still under way, as of their oldest refresh (not
    `apart`: those wholly in the window added up per plan, kind and meter, as
    customer 0, for a total; those across an edge each with its customer, whose
    usage says how much of it the window earned)."""
    if start >= now:
        return [], None
    subscriptions = accruing(
        start=start, end=end, currency=currency, now=now, customers=customers
    ).select_related("version__plan")
    if subscriptions.count() <= ACCRUED_LIVE_LIMIT:
        return [line for s in subscriptions for line in accrued_now(s, now)], None
    rows = AccruedLine.objects.filter(
        subscription__in=subscriptions,
        period_start=F("subscription__current_period_start"),
        usage_from=Coalesce("subscription__usage_from", "subscription__current_period_start"),
        line_start__lt=end,
        line_end__gte=start,
    )
    as_of = rows.aggregate(oldest=Min("as_of"))["oldest"]
    fields = ("plan", "kind", "meter", "group", "usage_groups", "amount", "line_start", "line_end")
    found = []
    if not apart:
        inside = Q(line_start__gte=start, line_end__lte=end)
        summed = (
            rows.filter(inside)
            .values_list("plan", "kind", "meter")
            .annotate(total=Sum("amount"))
            .values_list("plan", "kind", "meter", "total")
        )
        found += [
            Accrued(0, plan, kind, meter, None, [], total, start, start)
            for plan, kind, meter, total in summed
        ]
        rows = rows.exclude(inside)
    found += [
        Accrued(*row) for row in rows.values_list("customer_id", *fields).iterator(chunk_size=5000)
    ]
    return found, as_of


def accruals_refresh(*, now: datetime, subscription_ids: Iterable[int] | None = None) -> int:
    """Store each live subscription's lines accruing as of `now` (of these
    `subscription_ids` only, when given), replacing what was stored for it, a
    few subscriptions a transaction. How many subscriptions were refreshed."""
    live = Subscription.objects.filter(status__in=Subscription.LIVE, current_period_start__lt=now)
    if subscription_ids is not None:
        live = live.filter(pk__in=list(subscription_ids))
    ids = list(live.order_by("pk").values_list("pk", flat=True))
    for first in range(0, len(ids), REFRESH_CHUNK):
        chunk = ids[first : first + REFRESH_CHUNK]
        with transaction.atomic():
            AccruedLine.objects.filter(subscription_id__in=chunk).delete()
            subscriptions = Subscription.objects.filter(pk__in=chunk).select_related(
                "customer", "version__plan"
            )
            rows = []
            for subscription in subscriptions:
                if not may_accrue(version_spec(version=subscription.version)):
                    continue
                usage_from = subscription.usage_from or subscription.current_period_start
                rows += [
                    AccruedLine(
                        subscription=subscription,
                        customer_id=line.customer_id,
                        currency=subscription.customer.currency,
                        period_start=subscription.current_period_start,
                        usage_from=usage_from,
                        kind=line.kind,
                        meter=line.meter,
                        plan=line.plan,
                        group=line.group,
                        usage_groups=line.usage_groups,
                        amount=line.amount,
                        line_start=line.start,
                        line_end=line.end,
                        as_of=now,
                    )
                    for line in accrued_now(subscription, now)
                ]
            AccruedLine.objects.bulk_create(rows)
    return len(ids)
