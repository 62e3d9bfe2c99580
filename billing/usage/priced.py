"""The usage priced as the close will bill it: the one read of what a
subscription has used in its period and what it will be billed for the usage
not invoiced yet (usage_summary: /usage, the portal, the admin's customer page,
the dashboard's projection), and the spend a check or an alert counts against a
spend limit (period_spend). Quantities come from billing.usage.reads."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.core.periods import period_share
from billing.core.vocabulary import DRAWN_MODELS, ConsumptionModel
from billing.models import Subscription
from billing.rating.lines import Uncovered, fixed_lines, total, usage_and_true_up
from billing.rating.pricing import price_units
from billing.usage.billed_parts import earlier_parts, threshold_billed
from billing.usage.reads import UsageLine, usage_lines
from plans.models import Meter
from plans.overrides import subscription_spec, terms_spec
from plans.validation import VersionSpec
from wallets import selectors as wallet_selectors
from wallets.models import Wallet

ZERO = Decimal(0)


def uncovered_usage(
    *, customer_id: int, spec: VersionSpec, start: datetime, end: datetime
) -> dict[str, Uncovered]:
    """What the wallets of `spec`'s credits and balance charges could not pay for
    in [start, end), by meter code: the credit wallet's for a credits charge, the
    money wallet in the version's currency for a balance charge."""
    drawn = [c for c in spec.charges if c.model in DRAWN_MODELS]
    if not drawn:
        return {}
    totals = wallet_selectors.uncovered_totals(customer_id=customer_id, start=start, end=end)
    found = {}
    for charge in drawn:
        if charge.model == ConsumptionModel.CREDITS:
            key = (charge.meter, Wallet.CREDITS, "")
        else:
            key = (charge.meter, Wallet.MONEY, spec.currency)
        if key in totals:
            found[charge.meter] = totals[key]
    return found


@dataclass(frozen=True)
class UsageSummary:
    lines: list[UsageLine]  # the usage not invoiced yet: from usage_from
    amounts: dict[str, Decimal]  # meter code -> what the close will bill for it
    base_fee: Decimal
    subtotal: Decimal
    projected_total: Decimal
    # Where the usage not invoiced starts: the period's start, or an immediate
    # plan change in it; and the period's usage invoiced already: before then,
    # and on threshold invoices since (`amounts` are net of these).
    usage_from: datetime | None = None
    invoiced: Decimal = Decimal(0)
    # Credits and balance charges: what their wallets could not pay for (billed
    # at the close by a charge that bills when exhausted), by meter code.
    uncovered: dict[str, Uncovered] | None = None
    # The period's fixed fees in subtotal and projected_total (its parts before
    # an immediate plan change at their own version).
    fixed: Decimal = Decimal(0)
    # The usage part of projected_total: the part under way's usage (its
    # threshold invoices' too) extended to the period's end, priced with any
    # true-up. A running discount is taken off it and the next period's fees
    # (billing.invoicing.discounts.projected_discount).
    projected_usage: Decimal = Decimal(0)


# Quantities that grow with time; a max, a latest value or a distinct count does not.
EXTRAPOLATED = (Meter.COUNT, Meter.SUM)


def period_spend(
    *,
    subscription: Subscription,
    start: datetime,
    end: datetime,
    adding: tuple[str, Decimal] | None = None,
    adding_uncovered: Decimal = ZERO,
    quantities: dict[str, Decimal] | None = None,
) -> Decimal:
    """What the customer spends in [start, end) of its period: fixed fees, priced
    usage with any minimum commitment true-up (as the close would rate it), the
    money its prepaid balance paid for usage, and the usage wallets could not pay
    for that the close bills. With `adding` (meter, quantity): as if that much
    more were used now, `adding_uncovered` units of it beyond what a credit
    wallet that bills when exhausted can pay. `quantities` (meter code ->
    quantity in the range) when the caller has read them already."""
    version = subscription_spec(subscription)
    if quantities is None:
        lines = usage_lines(
            customer_id=subscription.customer_id, subscription=subscription, start=start, end=end
        )
        quantities = {line.meter: line.quantity for line in lines}
    else:
        quantities = dict(quantities)
    drawn = wallet_selectors.money_drawn(
        customer_id=subscription.customer_id, currency=version.currency, start=start, end=end
    )
    uncovered = uncovered_usage(
        customer_id=subscription.customer_id, spec=version, start=start, end=end
    )
    if adding is not None:
        meter, extra = adding
        quantities[meter] = quantities.get(meter, ZERO) + extra
        charge = next((c for c in version.charges if c.meter == meter), None)
        if charge is not None and charge.model == "balance":
            drawn += marginal_cost(charge, quantities[meter] - extra, extra)
        if charge is not None and charge.bills_uncovered and adding_uncovered > 0:
            was = uncovered.get(meter, Uncovered(ZERO, ZERO))
            uncovered[meter] = Uncovered(was.units + adding_uncovered, was.shortfall)
    # Fees and commitment for the part of a whole period the range is, as the close.
    share = period_share(
        start, end, whole=subscription.whole_period(start, end, interval=version.interval)
    )
    # Only the amounts count here: no line names (and no plan to load for them).
    fixed = fixed_lines(version, plan_name="", seats=subscription.seats, label="", fraction=share)
    usage = usage_and_true_up(version, quantities=quantities, share=share, uncovered=uncovered)
    return total(fixed) + total(usage) + drawn


def usage_summary(
    *, subscription: Subscription, start: datetime, end: datetime, now: datetime
) -> UsageSummary:
    """The period's usage priced by the subscription's version, as the close will
    bill it: the lines and amounts of the usage not invoiced yet (since an
    immediate plan change, when one was made in the period: the usage before it
    is on the plan-change invoice; less what threshold invoices billed since);
    the subtotal (the period's fixed fees and all its usage so far, invoiced or
    not) and the projected total (the usage not invoiced extended linearly to
    the period's end, then priced, with any true-up). Fees and commitment count
    for the part of a whole period [start, end) is, as the close bills them
    (Subscription.whole_period)."""
    version = subscription_spec(subscription)
    whole = subscription.whole_period(start, end, interval=version.interval)
    current = (start, end) == (subscription.current_period_start, subscription.current_period_end)
    usage_from = subscription.usage_from if current and subscription.usage_from else start
    # The period's earlier parts, billed on a plan-change invoice at their version.
    earlier = earlier_parts(subscription=subscription, start=start, end=end, usage_from=usage_from)
    # And the part under way's threshold invoices (progressive billing).
    thresholds = threshold_billed(
        subscription=subscription, period_start=start, usage_from=usage_from
    )
    lines = usage_lines(
        customer_id=subscription.customer_id, subscription=subscription, start=usage_from, end=end
    )
    quantities = {line.meter: line.quantity for line in lines}
    share = period_share(usage_from, end, whole=whole)
    # A trial carries no fixed fee (the close bills none for it).
    trial = current and subscription.status == Subscription.TRIALING
    fixed = (
        ZERO
        if trial
        else total(
            fixed_lines(
                version,
                plan_name=subscription.version.plan.name,
                seats=subscription.seats,
                label="",
                fraction=share,
            )
        )
    )
    earlier_invoiced = ZERO
    for part in earlier:
        fixed += total(
            fixed_lines(
                terms_spec(version=part.version, overrides=part.overrides),
                plan_name=part.version.plan.name,
                seats=subscription.seats,
                label="",
                fraction=period_share(part.usage_from, part.usage_to, whole=whole),
            )
        )
        earlier_invoiced += sum(
            (Decimal(billed["amount"]) for billed in part.billed.values()), ZERO
        )
    uncovered = uncovered_usage(
        customer_id=subscription.customer_id, spec=version, start=usage_from, end=end
    )
    rated = usage_and_true_up(version, quantities=quantities, share=share, uncovered=uncovered)
    on_thresholds = thresholds.by_meter
    amounts = {
        line.meter: sum((r.amount for r in rated if r.meter == line.meter), ZERO)
        - on_thresholds.get(line.meter, ZERO)
        for line in lines
    }
    usage_not_invoiced = sum(amounts.values(), ZERO)
    invoiced = earlier_invoiced + thresholds.total
    # What is counted is this many times its part gone so far (by the second).
    scale = Decimal(1)
    if usage_from < now < end:
        scale = period_share(usage_from, end, whole=(usage_from, now))
    projected = {
        line.meter: line.quantity * scale if line.aggregation in EXTRAPOLATED else line.quantity
        for line in lines
    }
    # Usage its wallet could not pay for is counted as it stands: the wallet
    # may be topped up before the rest of the period.
    projected_usage = usage_and_true_up(
        version, quantities=projected, share=share, uncovered=uncovered
    )
    return UsageSummary(
        lines=lines,
        amounts=amounts,
        base_fee=version.base_fee,
        subtotal=fixed + invoiced + usage_not_invoiced,
        # The projection prices the part's whole usage, its threshold invoices' too.
        projected_total=fixed + earlier_invoiced + total(projected_usage),
        usage_from=usage_from,
        invoiced=invoiced,
        uncovered=uncovered,
        fixed=fixed,
        projected_usage=total(projected_usage),
    )


def marginal_cost(charge, used: Decimal, quantity: Decimal) -> Decimal:
    """What `quantity` more units of a balance charge, `used` so far this period,
    draw from the money wallet. Only balance charges draw money per unit."""
    return price_units(used + quantity, charge.pricing) - price_units(used, charge.pricing)
