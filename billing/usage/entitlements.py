"""What a customer is entitled to now, in one read: the features its plan (with
its deal) grants, and per metered feature its consumption model, what is
included, used and remaining, from the same reads and rules as `check`
(billing.usage.check.charge_standing with nothing more asked), open holds counted
as used as check counts them."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext

from billing.models import Subscription
from billing.usage.check import (
    FEATURE_REFUSED,
    METER_REFUSED,
    CheckResult,
    charge_standing,
    held_used,
    priced_row,
)
from billing.usage.held import NOTHING_HELD, Held
from billing.usage.metering import meter_cache
from billing.usage.reads import exact_quantity, period_now, usage_quantities
from customers.models import GOOD
from plans.feature_grants import granted
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION

ZERO = Decimal(0)


@dataclass(frozen=True)
class Entitlements:
    subscription: Subscription | None
    features: dict[str, object]  # feature code -> value granted
    meters: dict[str, CheckResult]  # meter code -> its standing, nothing more asked
    period_start: datetime | None = None
    period_end: datetime | None = None
    # The customer's standing (invoices.standing): restricted refuses every meter,
    # suspended every feature too, as check does.
    standing: str = GOOD


def customer_entitlements(
    *,
    customer,
    subscription: Subscription | None,
    now: datetime,
    balances: dict | None = None,
    held: Held = NOTHING_HELD,
) -> Entitlements:
    """The customer's entitlements at `now`; none without a live subscription.
    `balances`: the wallets' usable balances at `now` if already read (live_read);
    `held`: what its open holds reserve, counted as used as check counts it."""
    if subscription is None:
        return Entitlements(None, {}, {}, standing=customer.standing)
    period = period_now(subscription=subscription, now=now)
    if period is None:  # it ended with its period, which the close has not run yet
        return Entitlements(None, {}, {}, standing=customer.standing)
    spec = subscription_spec(subscription)
    features = granted(spec.features)
    start, end = period
    metered = [
        (charge, meter)
        for charge in spec.charges
        if (meter := meter_cache.by_code_frozen(charge.meter)) is not None
    ]
    quantities = usage_quantities(
        customer_id=customer.pk, meters=[meter for _, meter in metered], start=start, end=end
    )
    meters = {}
    balances = {} if balances is None else dict(balances)  # each wallet read once
    with localcontext(prec=EXACT_PRECISION):
        for card, meter in metered:
            # A rate card stands as check answers without properties: its default row.
            charge, used = priced_row(
                card,
                meter,
                {},
                used=exact_quantity(quantities[meter.id]),
                customer_id=customer.pk,
                span=(start, end),
            )
            used += held_used(held, card, charge, meter, {})
            # What stands now, and whether one more unit fits, as check answers
            # it (the spend limit aside).
            standing, one_more = (
                charge_standing(
                    subscription=subscription,
                    spec=spec,
                    charge=charge,
                    used=used,
                    quantity=quantity,
                    now=now,
                    period=(start, end),
                    balances=balances,
                    held=held,
                )[0]
                for quantity in (ZERO, Decimal(1))
            )
            meters[charge.meter] = replace(standing, allowed=one_more.allowed)
    refused = METER_REFUSED.get(customer.standing)
    if refused:
        meters = {code: replace(m, allowed=False, reason=refused) for code, m in meters.items()}
    if customer.standing in FEATURE_REFUSED:
        features = {}
    return Entitlements(subscription, features, meters, start, end, customer.standing)
