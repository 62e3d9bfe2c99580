"""The usage priced as the close will bill it: the one read of what a
subscription has used in its period and what it will be billed for the usage
not invoiced yet (usage_summary: /usage, the portal, the admin's customer page,
the dashboard's projection), and the spend a check or an alert counts against a
spend limit (period_spend). Quantities come from billing.usage.reads."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from billing.models import Subscription
from billing.usage.metering import event_group_values, meter_cache
from billing.usage.reads import UsageLine, usage_lines
from billing.usage.statement import (
    PeriodStatement,
    part_from,
    period_statement,
    usage_combinations_by_meter,
)
from common.periods import period_share
from plans.models import Meter
from plans.overrides import subscription_spec
from plans.pricing import price_units
from plans.rate_card_pricing import row_charge, row_quantity
from plans.rating import Uncovered
from wallets import selectors as wallet_selectors

ZERO = Decimal(0)


@dataclass(frozen=True)
class UsageSummary:
    """The period's statement as /usage, the portal, the admin and the dashboard
    read it, and the same statement at the usage projected to the period's end
    (`projected`): every figure they show is one of the two statements' (its
    subtotal, what is invoiced, its commit), none added up by a reader."""

    lines: list[UsageLine]  # the usage not invoiced yet: from usage_from
    statement: PeriodStatement
    projected: PeriodStatement

    @cached_property
    def amounts(self) -> dict[str, Decimal]:
        """Meter code -> what the close will bill for its usage not invoiced yet."""
        amounts = self.statement.amounts()
        return {line.meter: amounts.get(line.meter, ZERO) for line in self.lines}


# Quantities that grow with time; a max, a latest value or a distinct count does not.
EXTRAPOLATED = (Meter.COUNT, Meter.SUM)


@dataclass(frozen=True)
class Spend:
    """What a customer spends in part of its period (spend_statement): the
    statement of its fees and priced usage, and the money its prepaid balance
    paid for usage; `combinations` the rate cards' quantities it priced."""

    statement: PeriodStatement
    drawn: Decimal
    combinations: dict

    @cached_property
    def total(self) -> Decimal:
        """What the period's invoices bill for it, net of its share of the
        discount (PeriodStatement.net), and what the balance paid: what a check
        compares with the spend limit and the budget."""
        return self.statement.net + self.drawn


def period_spend(**kwargs) -> Decimal:
    """spend_statement's total: what a spend limit and a budget count."""
    return spend_statement(**kwargs).total


def spend_statement(
    *,
    subscription: Subscription,
    start: datetime,
    end: datetime,
    quantities: dict[str, Decimal] | None = None,
    combinations: dict | None = None,
) -> Spend:
    """What the customer spends in its period [start, end): the period statement
    (billing.usage.statement.period_statement: the fees billed in advance at the
    seats held at each moment, the seat changes, the parts before an immediate
    plan change, the usage of the part under way priced as the close will price
    it with any minimum commitment true-up, what a commit pays, its lines' share
    of the discount), so that the spend is what the period's invoices bill for
    it, net of that share; and the money its prepaid balance
    paid for usage, which no invoice bills (spend_adding: with more usage).
    `quantities` (meter code -> quantity of the part under way) and
    `combinations` (the rate cards', as usage_combinations_by_meter reads them)
    when the caller has read them already. The statement's lines say what each
    meter (and each rate-card row) adds (billing.usage.customer_limits reads caps
    off them)."""
    version = subscription_spec(subscription)
    usage_from = part_from(subscription, start=start, end=end)
    if usage_from != start:
        # The caller read the whole period's usage: the part under way is less.
        quantities = combinations = None
    if quantities is None:
        lines = usage_lines(
            customer_id=subscription.customer_id,
            subscription=subscription,
            start=usage_from,
            end=end,
        )
        quantities = {line.meter: line.quantity for line in lines}
    if combinations is None:
        combinations = usage_combinations_by_meter(
            customer_id=subscription.customer_id, spec=version, start=usage_from, end=end
        )
    statement = period_statement(
        subscription,
        start=start,
        end=end,
        spec=version,
        quantities=quantities,
        combinations=combinations,
        discounted=True,
    )
    drawn = wallet_selectors.money_drawn(
        customer_id=subscription.customer_id, currency=version.currency, start=start, end=end
    )
    return Spend(statement, drawn, combinations)


def spend_adding(
    spend: Spend,
    *,
    meter: str,
    quantity: Decimal,
    properties: dict | None = None,
    uncovered_units: Decimal = ZERO,
) -> Spend:
    """The spend as if `quantity` more of `meter` were used now, with these event
    `properties` (a rate card's row), `uncovered_units` of it beyond what a
    credit wallet that bills when exhausted can pay: the same statement at the
    quantities with it (nothing read again)."""
    statement, drawn = spend.statement, spend.drawn
    version = statement.part.spec
    part = statement.part
    quantities = dict(part.quantities)
    combinations = dict(part.combinations)
    uncovered = dict(part.uncovered)
    used = quantities.get(meter, ZERO)
    quantities[meter] = used + quantity
    charge = next((c for c in version.charges if c.meter == meter), None)
    if charge is not None and charge.rated:
        # A rate card: the row of the event's values, its tiers counting its usage.
        # A meter a published version charges is frozen: the cached definition is it.
        values = event_group_values(meter_cache.by_code_frozen(meter), properties or {})
        of_meter = combinations.get(meter, {})
        used = row_quantity(charge.rates, of_meter, values)
        key = tuple(values.items())
        combinations[meter] = {**of_meter, key: of_meter.get(key, ZERO) + quantity}
        charge = row_charge(charge, values)
    if charge is not None and charge.model == "balance":
        drawn += marginal_cost(charge, used, quantity)
    if charge is not None and charge.bills_uncovered and uncovered_units > 0:
        was = uncovered.get(meter, Uncovered(ZERO, ZERO))
        uncovered[meter] = Uncovered(was.units + uncovered_units, was.shortfall)
    part = replace(part, quantities=quantities, combinations=combinations, uncovered=uncovered)
    return Spend(replace(statement, part=part), drawn, combinations)


def usage_summary(
    *, subscription: Subscription, start: datetime, end: datetime, now: datetime
) -> UsageSummary:
    """The period's statement (billing.usage.statement) as /usage, the portal and
    the admin read it: the lines and amounts of the usage not invoiced yet
    (since an immediate plan change, when one was made in the period; less what
    threshold invoices billed since); the subtotal (the period's fixed fees and
    all its usage so far, invoiced or not) and the projected total (the same
    statement with the usage not invoiced extended linearly to the period's
    end, with any true-up); each with its lines' share of the discount
    (PeriodStatement.discount, .net)."""
    usage_from = part_from(subscription, start=start, end=end)
    lines = usage_lines(
        customer_id=subscription.customer_id, subscription=subscription, start=usage_from, end=end
    )
    statement = period_statement(
        subscription,
        start=start,
        end=end,
        quantities={line.meter: line.quantity for line in lines},
        drafts=True,
        discounted=True,
    )
    # What is counted is this many times its part gone so far (by the second).
    scale = Decimal(1)
    if usage_from < now < end:
        scale = period_share(usage_from, end, whole=(usage_from, now))
    projected = statement.at(
        {
            line.meter: line.quantity * scale if line.aggregation in EXTRAPOLATED else line.quantity
            for line in lines
        }
    )
    # Usage its wallet could not pay for is counted as it stands: the wallet
    # may be topped up before the rest of the period.
    return UsageSummary(lines, statement, projected)


def marginal_cost(charge, used: Decimal, quantity: Decimal) -> Decimal:
    """What `quantity` more units of a balance charge, `used` so far this period,
    draw from the money wallet. Only balance charges draw money per unit."""
    return price_units(used + quantity, charge.pricing) - price_units(used, charge.pricing)
