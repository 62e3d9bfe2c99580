"""Real-time wallet effects of ingestion: what each stored event costs on the
customer's credit or money wallet under its live subscription's version, handed
to wallets.ledger.usage_draw inside the ingest transaction."""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal, localcontext

from django.db import connection

from billing.models import Subscription
from billing.usage import reads
from billing.usage.breakdowns import usage_combinations
from billing.usage.metering import MeterDef, meter_cache, values_of_group
from billing.usage.rollups import hour_of
from common import rawsql
from common.vocabulary import DRAWN_MODELS, ConsumptionModel
from plans.models import Charge, Meter, PlanVersion
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION, PER_UNIT, price_units
from plans.rate_card_pricing import kept_row_index, rated_quantities, row_charge
from wallets.drawdown import CustomerDraws, UsageDraw, usage_draw
from wallets.models import Wallet

ZERO = Decimal(0)
ONE = Decimal(1)


# Written out (see common.rawsql): every batch asks, in one round trip, which
# meters some published or archived version charges from a wallet (a meter id a row),
# and which of the batch's customers have a live subscription whose version charges
# one (a customer id a row).
_DRAWN = (
    "SELECT ch.meter_id, CAST(NULL AS bigint) FROM plans_charge ch "
    "JOIN plans_planversion v ON v.id = ch.version_id "
    "WHERE ch.model IN (%s, %s) AND v.status <> %s "
    "UNION ALL "
    "SELECT CAST(NULL AS bigint), s.customer_id FROM billing_subscription s "
    "WHERE s.customer_id {customers} AND s.status IN (%s, %s) AND EXISTS ("
    "SELECT 1 FROM plans_charge ch WHERE ch.version_id = s.version_id AND ch.model IN (%s, %s))"
)
# On PostgreSQL the batch's customers are one array parameter, so that the statement's
# text is the same for every batch (prepared once for each array type psycopg picks by
# the largest id, int2, int4 or int8, where hundreds of placeholders made each batch's
# statement new to psycopg and to the planner).
_DRAWN_POSTGRESQL = _DRAWN.format(customers="= ANY(%s::bigint[])")


def drawn_meters_and_customers(customer_ids: set[int]) -> tuple[set[int], set[int]]:
    """The meters that some published or archived version charges from a wallet,
    and those of the customers whose live subscription's version charges some meter
    from one: one small query a batch, so that batches touching none of them skip
    the rest."""
    ids = sorted(customer_ids)
    if connection.vendor == "postgresql":
        sql, customers = _DRAWN_POSTGRESQL, [ids]
    else:
        sql, customers = _DRAWN.format(customers=f"IN ({', '.join(['%s'] * len(ids))})"), ids
    rows = rawsql.rows(
        sql,
        [*DRAWN_MODELS, PlanVersion.DRAFT, *customers, *Subscription.LIVE, *DRAWN_MODELS],
        (Charge._meta.get_field("meter"), Subscription._meta.get_field("customer")),
    )
    meters, drawing = set(), set()
    for meter_id, customer_id in rows:
        if meter_id is None:
            drawing.add(customer_id)
        else:
            meters.add(meter_id)
    return meters, drawing


def units_of(meter: MeterDef, value: Decimal | None) -> Decimal:
    """An event's units on a wallet-drawn meter: one for a count, its value for a sum
    (catalog validation allows only these two on credits and balance charges)."""
    return ONE if meter.aggregation == Meter.COUNT else value


def usage_draw_for_events(*, events: list, now: datetime) -> None:
    """Draw the wallets of the customers behind `events` (stored, not duplicate),
    in event time order. Customers without a live subscription, or whose version
    charges none of the events' meters from a wallet, are left alone."""
    drawn, drawing = drawn_meters_and_customers({e.customer_id for e in events})
    if not drawn or not drawing:
        return
    relevant = [
        e
        for e in events
        if e.customer_id in drawing and not drawn.isdisjoint([c.meter_id for c in e.contributions])
    ]
    if not relevant:
        return
    subscriptions = {
        s.customer_id: s
        for s in Subscription.objects.filter(
            customer_id__in={e.customer_id for e in relevant}, status__in=Subscription.LIVE
        ).select_related("customer", "version")
    }
    meters = meter_cache.by_id()
    by_customer: dict[int, list] = {}
    for event in sorted(relevant, key=lambda e: (e.timestamp, e.event_id)):
        if event.customer_id in subscriptions:
            by_customer.setdefault(event.customer_id, []).append(event)
    _usage_order_lock(sorted(c for c in by_customer if _priced_on_usage_so_far(subscriptions[c])))
    batch = []
    for customer_id, customer_events in by_customer.items():
        subscription = subscriptions[customer_id]
        draws = _draws(subscription, customer_events, meters, now)
        if draws:
            start, end = _period(subscription, now)
            batch.append(
                CustomerDraws(
                    customer=subscription.customer, period_start=start, period_end=end, draws=draws
                )
            )
    usage_draw(batch=batch, now=now)


# An arbitrary, fixed first key of the per-customer advisory locks below (the
# customer id is the second).
USAGE_ORDER_LOCK = 7310


def _priced_on_usage_so_far(subscription: Subscription) -> bool:
    """Whether a balance charge of the subscription is priced by tiers or packages,
    so that what an event costs depends on the period's usage before it."""
    return any(
        c.model == ConsumptionModel.BALANCE and any(p.scheme != PER_UNIT for p in c.pricings)
        for c in subscription_spec(subscription).charges
    )


def _usage_order_lock(customer_ids: list[int]) -> None:
    """Concurrent batches of these customers draw one after the other: the lock is
    taken before the period's usage so far is read and held to commit, so a batch
    reads the usage of every batch drawn before it (on PostgreSQL batches append
    to the rollup tail without waiting on each other: billing.usage.folding).
    Taken in customer order, so that two batches cannot deadlock. On SQLite a
    writing transaction already excludes every other."""
    if not customer_ids or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, c)) "
            "FROM (SELECT unnest(%s::int[]) AS c ORDER BY 1) AS ordered",
            [USAGE_ORDER_LOCK, customer_ids],
        )


def _period(subscription: Subscription, now: datetime) -> tuple[datetime, datetime]:
    """The period `now` falls in (also between a period's end and its close)."""
    period = reads.period_now(subscription=subscription, now=now)
    if period is None:  # ends with the period that ended: the close has not run yet
        return subscription.current_period_start, subscription.current_period_end
    return period


def uncovered_at(subscription: Subscription, timestamp: datetime) -> datetime:
    """When an event's uncovered units are dated: the start of its hour, or the
    start of the part of the period it falls in when that is later (a period or
    an immediate plan change starting mid-hour), so that one batch writes one row
    per meter and hour, each in the part of the period of its events. An event
    before the current period (late) keeps its own time: the boundaries of the
    period it belongs to are not at hand."""
    if timestamp < subscription.current_period_start:
        return timestamp
    bounds = (
        subscription.current_period_start,
        subscription.usage_from or subscription.current_period_start,
        subscription.current_period_end,
    )
    return max([hour_of(timestamp), *(b for b in bounds if b <= timestamp)])


def _draws(subscription: Subscription, events: list, meters: dict, now: datetime) -> list:
    spec = subscription_spec(subscription)
    charges = {c.meter: c for c in spec.charges if c.model in DRAWN_MODELS}
    if not charges:
        return []
    currency = spec.currency
    # Tiered and package prices depend on the period's usage so far: each event
    # costs what it adds to the period's amount.
    so_far = _period_usage_before(subscription, events, charges, meters, now)
    draws = []
    for event in events:
        at = uncovered_at(subscription, event.timestamp)
        for contribution in event.contributions:
            meter = meters.get(contribution.meter_id)
            charge = charges.get(meter.code) if meter else None
            if charge is None:
                continue
            units = units_of(meter, contribution.value)
            if units <= 0:
                continue
            key = meter.code
            if charge.rates:
                # A rate card: the row of the event's values prices it, its tiers
                # counting that row's usage.
                values = values_of_group(meter, contribution.group)
                key = (meter.code, kept_row_index(charge.rates, values))
                charge = row_charge(charge, values)
            with localcontext(prec=EXACT_PRECISION):
                if charge.model == ConsumptionModel.CREDITS:
                    draws.append(
                        UsageDraw(
                            Wallet.CREDITS,
                            "",
                            meter.code,
                            units,
                            units * charge.credits_per_unit,
                            at,
                        )
                    )
                    continue
                if charge.pricing.scheme == PER_UNIT:
                    cost = price_units(units, charge.pricing)
                else:
                    before = so_far[key]
                    so_far[key] = before + units
                    cost = price_units(before + units, charge.pricing) - price_units(
                        before, charge.pricing
                    )
            if cost > 0:
                draws.append(UsageDraw(Wallet.MONEY, currency, meter.code, units, cost, at))
    return draws


def _period_usage_before(
    subscription: Subscription, events: list, charges: dict, meters: dict, now: datetime
) -> dict[str, Decimal]:
    """For balance charges priced by tiers or packages: the period's quantity
    before this batch (this batch's events are already in the rollups)."""
    tiered = [
        m
        for m in meters.values()
        if m.code in charges
        and charges[m.code].model == ConsumptionModel.BALANCE
        and any(p.scheme != PER_UNIT for p in charges[m.code].pricings)
    ]
    if not tiered:
        return {}
    start, end = _period(subscription, now)
    plain = [m for m in tiered if not charges[m.code].rates]
    carded = [m for m in tiered if charges[m.code].rates]
    after = reads.usage_quantities(
        customer_id=subscription.customer_id, meters=plain, start=start, end=end
    )
    # A rate card's rows: each row's quantity (keyed (meter code, row index)).
    combinations = usage_combinations(
        customer_id=subscription.customer_id, meters=carded, start=start, end=end
    )
    for meter in carded:
        rows = rated_quantities(charges[meter.code].rates, combinations[meter.id])
        after.update({(meter.code, index): quantity for index, quantity in rows})
    so_far: dict = defaultdict(lambda: ZERO)
    so_far.update({m.code: after[m.id] for m in plain})
    so_far.update({key: q for key, q in after.items() if isinstance(key, tuple)})
    # The batch's events are counted in `after` already: those in the same range.
    for event in events:
        if not start <= event.timestamp < end:
            continue
        for c in event.contributions:
            meter = meters.get(c.meter_id)
            if meter is None or meter not in tiered:
                continue
            key = meter.code
            if charges[meter.code].rates:
                values = values_of_group(meter, c.group)
                key = (meter.code, kept_row_index(charges[meter.code].rates, values))
            so_far[key] = max(ZERO, so_far[key] - units_of(meter, c.value))
    return so_far
