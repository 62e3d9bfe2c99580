"""What the limits a customer set itself (customers.limits) allow, and what was
spent against each this period: the one reading of them for `check` (which
refuses with customer_budget_reached or customer_cap_reached), the portal, the
API's GET and the budget's alerts (billing.usage.alerts).

A budget counts what a spend limit counts (billing.usage.priced: the period's
fees, priced usage, the money its prepaid balance paid). A cap counts one meter's
usage this period whose properties match its `when`: in units (a quantity cap),
or in money (an amount cap): what the period statement's lines bill for that
usage, a line's amount shared among the values it priced in proportion to their
quantities (a rate-card row prices its own values only). Reads only."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.models import Subscription
from billing.usage.breakdowns import usage_combinations
from billing.usage.metering import MeterDef, event_group_values, meter_cache
from billing.usage.priced import Spend, spend_statement
from billing.usage.reads import period_now, subscription_live, usage_quantities
from billing.usage.statement import statement_of
from common.vocabulary import ConsumptionModel, LineKind
from customers.limits import Cap, Limits, limits_of, limits_set
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION
from plans.rate_card_pricing import card_rows

ZERO = Decimal(0)
BUDGET = "budget"
CAP = "cap"


@dataclass(frozen=True)
class LimitSpent:
    """One limit and what was spent against it in the period: money in the
    customer's currency (a budget, an amount cap) or the meter's units (a
    quantity cap)."""

    kind: str  # BUDGET or CAP
    limit: Decimal
    spent: Decimal
    money: bool
    cap: Cap | None = None
    # A budget's: "stop" or "alert".
    action: str = ""

    @property
    def remaining(self) -> Decimal:
        return max(ZERO, self.limit - self.spent)

    @property
    def percent(self) -> Decimal:
        """How much of the limit is spent, in percent (may pass 100)."""
        return self.spent * 100 / self.limit if self.limit else ZERO


def applicable_caps(
    limits: Limits, meter_code: str, properties: dict, *, meter: MeterDef | None = None
) -> list[Cap]:
    """The caps that count usage of this meter with these event properties;
    `meter` its definition when read already."""
    caps = [cap for cap in limits.caps if cap.meter == meter_code]
    if not caps:
        return []
    if meter is None:
        meter = meter_cache.by_code(meter_code)
    values = event_group_values(meter, properties) if meter is not None else {}
    return [cap for cap in caps if cap.matches(values)]


def _matching(of_meter: dict, cap: Cap) -> Decimal:
    """The quantity of a meter's combinations (tuples of (name, value)) that match
    the cap."""
    return sum((q for key, q in of_meter.items() if cap.matches(dict(key))), ZERO)


def _priced_usage(spend: Spend, cap: Cap) -> list:
    """The usage lines that price the cap's meter's usage in the spend: the
    statement's, or for a balance charge (drawn from the prepaid balance as it
    happens, so no line bills it) the lines its pricing gives the period's usage,
    which is what it drew (the tier walk over the period's usage, covered or
    not): of a rate card, only the rows that price values the cap counts (a row's
    tiers count the row's own usage)."""
    meter = cap.meter
    part = spend.statement.part
    charge = next((c for c in part.spec.charges if c.meter == meter), None)
    if charge is None or charge.model != ConsumptionModel.BALANCE:
        return spend.statement.usage
    priced = replace(charge, model=ConsumptionModel.OVERAGE, included_units=ZERO)
    quantity = part.quantities.get(meter, ZERO)
    combinations = part.combinations.get(meter)
    if charge.rated and combinations is not None and cap.when:
        row_of = card_rows(charge.rates)
        rows = {row_of(key) for key in combinations if cap.matches(dict(key))}
        combinations = {key: q for key, q in combinations.items() if row_of(key) in rows}
        quantity = sum(combinations.values(), ZERO)
    drawn = statement_of(
        replace(part.spec, charges=(priced,), minimum_commitment=None),
        seats=0,
        quantities={meter: quantity},
        fixed_fees=False,
        combinations={} if combinations is None else {meter: combinations},
    )
    return drawn.usage


def cap_amount(cap: Cap, spend: Spend, of_meter: dict | None) -> Decimal:
    """What the spend bills (or draws from the prepaid balance) for the usage the
    cap counts: what the parts before an immediate plan change billed for its
    meter, and each usage line of its meter, in the share of the line's quantities
    (its stamped rate-card combinations, else `of_meter`, the meter's combinations)
    that match the cap. Usage paid in credits or under a hard cap has no amount (the
    plan's check refuses such a cap: amount_cap_refusals)."""
    total = ZERO
    with localcontext(prec=EXACT_PRECISION):
        # The parts before an immediate plan change: what their invoice billed for
        # the meter (its values shared in the period's proportions).
        for part in spend.statement.earlier:
            billed = part.billed.get(cap.meter)
            if not billed or not Decimal(billed["amount"]):
                continue
            amount = Decimal(billed["amount"])
            whole = sum((of_meter or {}).values(), ZERO)
            if not cap.when:
                total += amount
            elif whole:
                total += amount * _matching(of_meter, cap) / whole
        for line in _priced_usage(spend, cap):
            if line.meter != cap.meter or line.kind == LineKind.MINIMUM_COMMITMENT:
                continue
            if not cap.when:
                total += line.amount
                continue
            groups = dict(line.usage_groups) if line.usage_groups else (of_meter or {})
            whole = sum(groups.values(), ZERO)
            if whole:
                total += line.amount * _matching(groups, cap) / whole
    return total


def cap_quantity(cap: Cap, *, quantities: dict, of_meter: dict | None) -> Decimal:
    """The usage the cap counts, in the meter's units."""
    if not cap.when:
        return quantities.get(cap.meter, ZERO)
    return _matching(of_meter or {}, cap)


def meter_combinations(
    *, customer_id: int, caps: list[Cap], start: datetime, end: datetime
) -> dict[str, dict]:
    """The combinations of the meters caps with a `when` count, by meter code."""
    meters = [m for m in {meter_cache.by_code(c.meter) for c in caps if c.when} if m and m.group_by]
    if not meters:
        return {}
    found = usage_combinations(customer_id=customer_id, meters=meters, start=start, end=end)
    return {meter.code: found[meter.id] for meter in meters}


def limits_spent(*, customer, subscription: Subscription | None, now: datetime) -> list[LimitSpent]:
    """Each limit the customer set and what was spent against it in the period
    the clock is in (none spent without a live subscription): the budget first,
    then the caps in the order set."""
    limits = limits_of(customer)
    if not limits.any:
        return []
    period = period_now(subscription=subscription, now=now) if subscription else None
    if period is None:
        return _nothing_spent(limits)
    start, end = period
    spec = subscription_spec(subscription)
    meters = list(meter_cache.by_codes(c.meter for c in spec.charges).values())
    by_id = usage_quantities(customer_id=customer.pk, meters=meters, start=start, end=end)
    quantities = {m.code: by_id[m.id] for m in meters}
    with localcontext(prec=EXACT_PRECISION):
        spend = spend_statement(
            subscription=subscription, start=start, end=end, quantities=quantities
        )
    combinations = meter_combinations(
        customer_id=customer.pk, caps=list(limits.caps), start=start, end=end
    )
    found = []
    if limits.budget is not None:
        found.append(LimitSpent(BUDGET, limits.budget, spend.total, True, action=limits.action))
    for cap in limits.caps:
        of_meter = combinations.get(cap.meter) or spend.combinations.get(cap.meter)
        if cap.amount is not None:
            found.append(LimitSpent(CAP, cap.amount, cap_amount(cap, spend, of_meter), True, cap))
        else:
            used = cap_quantity(cap, quantities=quantities, of_meter=of_meter)
            found.append(LimitSpent(CAP, cap.quantity, used, False, cap))
    return found


def _nothing_spent(limits: Limits) -> list[LimitSpent]:
    found = []
    if limits.budget is not None:
        found.append(LimitSpent(BUDGET, limits.budget, ZERO, True, action=limits.action))
    for cap in limits.caps:
        limit = cap.amount if cap.amount is not None else cap.quantity
        found.append(LimitSpent(CAP, limit, ZERO, cap.amount is not None, cap))
    return found


def limit_refused(
    *,
    limits: Limits,
    caps: list[Cap],
    quantity: Decimal,
    quantities: dict,
    after: Spend | None,
    before: Spend | None,
    combinations: dict,
    adding: tuple[str, dict] | None = None,
) -> LimitSpent | None:
    """The first of the customer's limits that `quantity` more of the meter would
    pass, or that is reached already (its caps that count it, then a `stop`
    budget), with what was spent against it before this use; None when all allow
    it. Money is what the period's lines bill (rounded as billed). `after` is the
    period's spend with this use and `before` without it (needed when a stop
    budget or an amount cap applies), `quantities` the meters' usage before it,
    `combinations` meter_combinations' for `caps`;
    `adding` (meter code, the event's group values) counts this use into them."""
    for cap in caps:
        of_meter = combinations.get(cap.meter)
        if of_meter is None and after is not None:
            of_meter = after.combinations.get(cap.meter)
        if cap.quantity is not None:
            used = cap_quantity(cap, quantities=quantities, of_meter=combinations.get(cap.meter))
            if used + quantity > cap.quantity:
                return LimitSpent(CAP, cap.quantity, used, False, cap)
            continue
        amount = cap_amount(cap, after, _with(of_meter, adding, quantity))
        if amount >= cap.amount:
            spent = cap_amount(cap, before, combinations.get(cap.meter))
            # At the limit exactly: refused only once it is reached already (a use
            # that costs less than a cent adds nothing to the lines billed).
            if amount > cap.amount or spent >= cap.amount:
                return LimitSpent(CAP, cap.amount, spent, True, cap)
    if limits.stops and after.total >= limits.budget:
        spent = before.total
        if after.total > limits.budget or spent >= limits.budget:
            return LimitSpent(BUDGET, limits.budget, spent, True, action=limits.action)
    return None


def _with(of_meter: dict | None, adding: tuple[str, dict] | None, quantity: Decimal):
    """A meter's combinations with this use counted under its values."""
    if of_meter is None or adding is None:
        return of_meter
    key = tuple(adding[1].items())
    return {**of_meter, key: of_meter.get(key, ZERO) + quantity}


# Charges whose usage has no amount a cap could count.
NO_AMOUNT = {
    ConsumptionModel.CREDITS: gettext_noop("is paid in credits on your plan"),
    ConsumptionModel.HARD_CAP: gettext_noop("is never billed past its included units on your plan"),
}


def amount_cap_refusals(customer, stored: dict) -> dict[str, list[str]]:
    """The amount caps (of a stored document) on a meter the customer's live plan
    counts in credits or stops at a hard cap: usage that has no amount to count, so
    such a cap could never refuse anything; cap it by quantity."""
    caps = stored.get("caps") or ()
    if not any("amount" in cap for cap in caps):
        return {}
    subscription = subscription_live(customer_id=customer.pk)
    if subscription is None:
        return {}
    models = {c.meter: c.model for c in subscription_spec(subscription).charges}
    refusals = {}
    for index, cap in enumerate(caps):
        why = NO_AMOUNT.get(models.get(cap["meter"]))
        if "amount" in cap and why:
            refusals[f"caps.{index}.amount"] = [
                _("meter {meter} {why}: cap it by quantity").format(meter=cap["meter"], why=_(why))
            ]
    return refusals


def limits_save(*, customer, document: object, by: str, via: str, now: datetime):
    """Set the customer's limits (customers.limits.limits_set) after checking them
    against its plan too (amount_cap_refusals): the one way the API, the portal and
    the admin save them. Raises InvalidRequest naming each field; nothing changed."""
    return limits_set(
        customer=customer,
        document=document,
        by=by,
        via=via,
        now=now,
        refusals=lambda stored: amount_cap_refusals(customer, stored),
    )
