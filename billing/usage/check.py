"""The check before an expensive action: may this customer use this much of
this meter now? Reads the live subscription with the wallets in one written-out
query, then the usage of its period (billing.usage.reads), and answers with what
is left under the consumption model (hard cap, overage, credits, balance) and the
spend limit. Reads only."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext

from billing.models import (
    Subscription,
)
from billing.usage.breakdowns import combination_quantity, usage_combinations
from billing.usage.customer_limits import (
    BUDGET,
    LimitSpent,
    applicable_caps,
    limit_refused,
)
from billing.usage.held import NOTHING_HELD, Held
from billing.usage.live import (  # noqa: F401 (read through this module by the API)
    AUTO_TOP_UP,
    SCOPED,
    Live,
    customer_with_live_subscription,
    live_read,
)
from billing.usage.metering import (
    event_group_values,
    meter_cache,
)
from billing.usage.priced import marginal_cost, spend_adding, spend_statement
from billing.usage.reads import (
    exact_quantity,
    period_now,
    units_covered,
    usage_quantities,
)
from common.money import format_decimal, format_money
from common.vocabulary import ALLOWANCE_MODELS, ConsumptionModel
from customers.limits import limits_of
from customers.models import RESTRICTED, SUSPENDED
from plans.feature_grants import granted
from plans.models import Feature, Meter
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION, PER_UNIT
from plans.rate_card_pricing import row_charge, row_for, row_quantity
from wallets import selectors as wallet_selectors

ZERO = Decimal(0)


@dataclass(frozen=True)
class CheckResult:
    """The answer to "may this customer use `quantity` of this meter now?"."""

    allowed: bool
    model: str | None
    reason: str
    used: Decimal | None = None
    included: Decimal | None = None
    remaining: Decimal | None = None
    balance: Decimal | None = None
    currency: str | None = None
    # Set when a soft spend limit is passed: allowed, but finance is alerted.
    spend: Decimal | None = None
    spend_limit: Decimal | None = None
    # A spend-limit refusal: the period's spend before this use, and the money
    # left under the limit (in `currency`; `remaining` stays the units left).
    spend_before: Decimal | None = None
    spend_remaining: Decimal | None = None
    subscription: Subscription | None = None
    # The period the answer counts usage in (the one the clock is in).
    period_start: datetime | None = None
    period_end: datetime | None = None
    # Allowed although the wallet cannot pay for all of it: the charge bills the
    # rest at the close (when_exhausted "bill").
    billed_when_exhausted: bool = False
    # A feature check: the value the plan (or the deal) grants; None: not granted.
    value: object = None
    # A refusal by a limit the customer set (customer_budget_reached,
    # customer_cap_reached): the limit and what was spent against it before this
    # use; `remaining` is what is left under it (money, or units of a quantity cap).
    customer_limit: LimitSpent | None = None
    # An allowed meter check: what this use takes out of its wallet (credits, or
    # money in `currency`), and its price in money where the charge draws money (a
    # hold reserves them: billing.usage.holds).
    draws: Decimal = ZERO
    cost: Decimal | None = None
    # Of an allowed meter check under a credit wallet that bills what it cannot
    # pay: the units of this use it leaves uncovered (billed at the close).
    uncovered: Decimal = ZERO


REASON_MESSAGES = {
    "ok": "allowed",
    "cap_reached": "the included units of this period are used up",
    "insufficient_credits": "the credit wallet cannot pay for this usage",
    "insufficient_balance": "the prepaid balance cannot pay for this usage",
    "spend_limit_reached": "the customer's spend limit for this period is reached",
    "customer_budget_reached": "the budget the customer set for this period is reached",
    "customer_cap_reached": "a cap the customer set for this period is reached",
    "no_subscription": "the customer has no live subscription",
    "feature_not_in_plan": "the customer's plan does not grant this feature",
    "account_restricted": (
        "the account is restricted: an invoice is past due; metered usage is refused "
        "until it is paid"
    ),
    "account_suspended": (
        "the account is suspended: an invoice is past due; usage and features are "
        "refused until it is paid"
    ),
}

# What a customer's standing refuses (invoices.standing): metered usage while
# restricted, features too while suspended.
METER_REFUSED = {RESTRICTED: "account_restricted", SUSPENDED: "account_suspended"}
FEATURE_REFUSED = {SUSPENDED: "account_suspended"}


def spend_limit_reached(result: CheckResult) -> bool:
    """Whether a spend-limit refusal's limit is reached already (else this use
    alone would exceed it)."""
    return result.spend_before >= result.spend_limit


def spend_limit_message(result: CheckResult) -> str:
    """A spend-limit refusal in words: reached, or would be exceeded by this use,
    with the limit and what is left under it."""
    limit = f"{format_money(result.spend_limit, result.currency)} {result.currency}"
    left = f"{format_money(result.spend_remaining, result.currency)} {result.currency}"
    if spend_limit_reached(result):
        return f"the customer's spend limit for this period ({limit}) is reached: {left} left"
    return (
        f"this use would exceed the customer's spend limit for this period ({limit}): "
        f"{left} left under it"
    )


def customer_limit_body(limit: LimitSpent, currency: str) -> dict:
    """A refusal's limit the customer set, as the check's answer says it (JSON)."""

    def amount(value: Decimal) -> str:
        return format_money(value, currency) if limit.money else format_decimal(value)

    body: dict = {"kind": limit.kind}
    if limit.cap is not None:
        body |= {"meter": limit.cap.meter, "when": dict(limit.cap.when)}
    body["amount" if limit.money else "quantity"] = amount(limit.limit)
    body["spent"] = amount(limit.spent)
    if limit.kind == BUDGET:
        body["action"] = limit.action
    return body


def customer_limit_message(result: CheckResult) -> str:
    """A refusal by a limit the customer set, in words: which limit, reached or
    would be passed by this use, and what is left under it."""
    limit = result.customer_limit
    currency = result.currency

    def amount(value: Decimal) -> str:
        if limit.money:
            return f"{format_money(value, currency)} {currency}"
        return format_decimal(value)

    if limit.cap is None:
        what = f"the budget the customer set for this period ({amount(limit.limit)})"
    else:
        values = ", ".join(f"{name} {value}" for name, value in limit.cap.when)
        meter = f"{limit.cap.meter} ({values})" if values else limit.cap.meter
        what = f"the customer's cap on {meter} this period ({amount(limit.limit)})"
    if limit.spent >= limit.limit:
        return f"{what} is reached: {amount(limit.remaining)} left"
    return f"this use would pass {what}: {amount(limit.remaining)} left under it"


def check_message(result: CheckResult, *, meter_code: str) -> str:
    """The reason of a check in words; for a meter the plan does not charge, whether
    the meter exists at all (a typo in the product's code) or the plan lacks it."""
    if result.billed_when_exhausted:
        return "allowed: what the wallet cannot pay for is billed on the period's invoice"
    if result.reason == "spend_limit_reached" and result.spend_before is not None:
        return spend_limit_message(result)
    if result.customer_limit is not None:
        return customer_limit_message(result)
    if result.reason != "meter_not_in_plan":
        return REASON_MESSAGES.get(result.reason, result.reason)
    version = result.subscription.version if result.subscription is not None else None
    if not Meter.objects.filter(code=meter_code).exists():
        return f"there is no meter {meter_code!r}"
    if version is None:
        return f"meter {meter_code!r} is not charged by the customer's plan"
    return f"meter {meter_code!r} is not charged by {version.plan.name} v{version.number}"


def usage_check(
    *,
    customer,
    subscription: Subscription | None,
    meter_code: str,
    quantity: Decimal,
    now: datetime,
    balances: dict | None = None,
    properties: dict | None = None,
    held: Held = NOTHING_HELD,
) -> CheckResult:
    """Answer from the current period's counters and the wallets' balances, for
    every consumption model, then against the customer's spend limit (the
    period's rated spend plus what this use would add). `subscription` is the
    customer's live one (live_read), `balances` the wallets' usable balances at
    `now` if already read (live_read; the others are read); `properties` the
    event's, which pick the row of a rate card (its default row without them);
    `held` what the customer's open holds reserve, counted as used (billing.usage.held).
    Reads only."""
    if subscription is None:
        return CheckResult(False, None, "no_subscription")
    if customer.standing in METER_REFUSED:
        return CheckResult(False, None, METER_REFUSED[customer.standing], subscription=subscription)
    spec = subscription_spec(subscription)
    charge = next((c for c in spec.charges if c.meter == meter_code), None)
    # A meter a published version charges is frozen: the cached definition is it.
    meter = meter_cache.by_code_frozen(meter_code) if charge is not None else None
    if charge is None or meter is None:
        return CheckResult(False, None, "meter_not_in_plan", subscription=subscription)
    # Usage counts in the period the clock is in, also before the close has
    # advanced the subscription past the one that ended.
    period = period_now(subscription=subscription, now=now)
    if period is None:
        return CheckResult(False, None, "no_subscription")
    start, end = period
    meters = {meter.id: meter}
    properties = properties or {}
    # The limits the customer set itself that count this use (customers.limits).
    limits = limits_of(customer)
    caps = applicable_caps(limits, meter_code, properties, meter=meter) if limits.caps else []
    spends = (
        customer.spend_limit is not None
        or limits.stops
        or any(cap.amount is not None for cap in caps)
    )
    if spends or caps:
        # The spend prices every meter the version charges: one read for them all.
        for other in spec.charges:
            found = meter_cache.by_code_frozen(other.meter)
            if found is not None:
                meters[found.id] = found
    # A rate-card row in tiers counts its own usage (priced_row reads it): the
    # meter's total is read only where a limit needs the quantities.
    quantities = None
    if spends or caps or not _row_counts_its_own(charge, meter, properties):
        quantities = usage_quantities(
            customer_id=customer.pk, meters=list(meters.values()), start=start, end=end
        )
    # The combinations the spend's rate cards price and the caps with a `when`
    # count, read once for the row's usage, the spend and the caps.
    rated = {c.meter for c in spec.charges if c.rated} if spends else set()
    capped = {cap.meter for cap in caps if cap.when}
    grouped = [m for m in meters.values() if m.group_by and m.code in rated | capped]
    combinations = {}
    if grouped:
        found = usage_combinations(customer_id=customer.pk, meters=grouped, start=start, end=end)
        combinations = {m.code: found[m.id] for m in grouped}
    card = charge
    charge, used = priced_row(
        charge,
        meter,
        properties,
        used=None if quantities is None else exact_quantity(quantities[meter.id]),
        customer_id=customer.pk,
        span=(start, end),
        combinations=combinations.get(meter.code),
    )
    used += held_used(held, card, charge, meter, properties)
    with localcontext(prec=EXACT_PRECISION):
        result, uncovered_units = charge_standing(
            subscription=subscription,
            spec=spec,
            charge=charge,
            used=used,
            quantity=quantity,
            now=now,
            period=(start, end),
            balances={} if balances is None else dict(balances),
            held=held,
        )
        if not result.allowed:
            return result
        if not (spends or caps):
            return result
        by_code = {m.code: quantities[m.id] for m in meters.values()}
        # The period's spend before this use and with it: what a spend limit, a
        # stop budget and an amount cap count.
        before = after = None
        if spends:
            before = spend_statement(
                subscription=subscription,
                start=start,
                end=end,
                quantities=by_code,
                combinations={c: of_meter for c, of_meter in combinations.items() if c in rated},
            )
            for use in held.uses:
                before = spend_adding(
                    before,
                    meter=use.meter,
                    quantity=use.quantity,
                    properties=use.properties,
                    uncovered_units=use.uncovered,
                )
            after = spend_adding(
                before,
                meter=meter_code,
                quantity=quantity,
                properties=properties,
                uncovered_units=uncovered_units,
            )
        spend = after.total if after is not None else None
        if customer.spend_limit is not None and spend > customer.spend_limit:
            if customer.spend_limit_mode == "soft":
                result = replace(result, spend=spend, spend_limit=customer.spend_limit)
            else:
                # Whether the limit is reached already, and what is left under it.
                spend_before = before.total
                return replace(
                    result,
                    allowed=False,
                    reason="spend_limit_reached",
                    spend=spend,
                    spend_limit=customer.spend_limit,
                    spend_before=spend_before,
                    spend_remaining=max(ZERO, customer.spend_limit - spend_before),
                    currency=customer.currency,
                )
        if not (limits.stops or caps):
            return result
        if held:
            # A cap counts the held quantities as used (the spend counts them above).
            by_code = held.quantities(by_code)
            combinations = held.combinations(combinations)
        refused = limit_refused(
            limits=limits,
            caps=caps,
            quantity=quantity,
            quantities=by_code,
            after=after,
            before=before,
            combinations={c: of_meter for c, of_meter in combinations.items() if c in capped},
            adding=(meter_code, event_group_values(meter, properties)),
        )
    if refused is None:
        return result
    return replace(
        result,
        allowed=False,
        reason="customer_budget_reached" if refused.kind == BUDGET else "customer_cap_reached",
        remaining=refused.remaining,
        currency=customer.currency if refused.money else result.currency,
        customer_limit=refused,
    )


def priced_row(
    charge,
    meter,
    properties: dict,
    *,
    used: Decimal | None,
    customer_id: int,
    span,
    combinations: dict | None = None,
) -> tuple[object, Decimal]:
    """A rate-card charge as the row of these properties prices it (its default
    row without them: rate_cards.row_charge), with the usage that row's tiers
    count (that row's alone); any other charge as it is, with `used` (the meter's
    usage so far; None only where the row counts its own: _row_counts_its_own).
    `combinations`: the meter's usage_combinations in the span, when read already
    (the row's usage is then counted from them, not read)."""
    if not charge.rated:
        return charge, used
    values = event_group_values(meter, properties)
    row = row_charge(charge, values)
    if _tiered(row):
        if combinations is not None:
            used = row_quantity(charge.rates, combinations, values)
        else:
            used = row_used(charge, meter, properties, customer_id=customer_id, span=span)
    return row, used


def _tiered(row) -> bool:
    return row.pricing is not None and row.pricing.scheme != PER_UNIT


def _row_counts_its_own(charge, meter, properties: dict) -> bool:
    """Whether the charge is a rate card whose row for these properties is priced
    in tiers, and so counts that row's usage, not the meter's."""
    return charge.rated and _tiered(row_charge(charge, event_group_values(meter, properties)))


def row_used(card, meter, properties: dict, *, customer_id: int, span) -> Decimal:
    """The period's usage so far of the rate-card row pricing usage with these
    properties: a row whose `when` names every group_by property prices exactly
    that combination, read alone; another, from every combination of the period."""
    values = event_group_values(meter, properties)
    row = row_for(card.rates, values)
    if row is not None and sorted(name for name, _ in row.when) == sorted(meter.group_by):
        return combination_quantity(
            customer_id=customer_id, meter=meter, values=dict(row.when), start=span[0], end=span[1]
        )
    found = usage_combinations(customer_id=customer_id, meters=[meter], start=span[0], end=span[1])[
        meter.id
    ]
    return row_quantity(card.rates, found, values)


def held_used(held: Held, card, charge, meter, properties: dict) -> Decimal:
    """What open holds add to the usage `charge` (the row of the rate card `card`
    that `properties` price with, or `card` itself) counts: a row in tiers counts
    the holds it prices, whatever their values, as its usage; anything else every
    hold of the meter."""
    if not held:
        return ZERO
    if card is not charge and _tiered(charge):
        row = row_for(card.rates, event_group_values(meter, properties))
        return held.quantity(meter.code, card.rates, row)
    return held.quantity(meter.code)


def charge_standing(
    *,
    subscription: Subscription,
    spec,
    charge,
    used: Decimal,
    quantity: Decimal,
    now: datetime,
    period: tuple[datetime, datetime],
    balances: dict | None = None,
    held: Held = NOTHING_HELD,
) -> tuple[CheckResult, Decimal]:
    """Whether `quantity` more of the charge's meter, `used` so far this period,
    fits its consumption model (the spend limit aside), with what is included,
    remaining and the wallet's balance; and the units of it a wallet that bills
    when exhausted cannot pay for. `check` asks with the quantity asked for, the
    entitlements read with zero (and `balances`, the wallets' balances read once
    for all its charges; `held` what open holds take out of the wallets, not
    usable). Reads only."""
    customer = subscription.customer
    base = {
        "model": charge.model,
        "used": used,
        "subscription": subscription,
        "period_start": period[0],
        "period_end": period[1],
    }

    def read(key: tuple[str, str], load) -> Decimal:
        if balances is not None and key in balances:
            return balances[key]
        found = load()
        if balances is not None:
            balances[key] = found
        return found

    # Unless the wallets hold nothing for some meters only (live_read says so, most
    # customers), what they can pay depends on the meter: only its blocks count.
    meter = charge.meter if balances is None or balances.get(SCOPED, True) else None

    def balance_of(kind: str, currency: str = "") -> Decimal:
        found = read(
            (kind, currency) if meter is None else (kind, currency, meter),
            lambda: wallet_selectors.wallet_usable_balance(
                customer_id=customer.pk, kind=kind, currency=currency, now=now, meter=meter
            ),
        )
        # Open holds keep what they hold (of blocks for some meters only too: a
        # hold never lets more through than the wallets could pay).
        return found - held.wallet(kind, currency) if held else found

    def auto_top_up_credits() -> Decimal:
        return read(
            AUTO_TOP_UP if meter is None else (*AUTO_TOP_UP, meter),
            lambda: wallet_selectors.auto_top_up_credits(customer_id=customer.pk, meter=meter),
        )

    uncovered_units = ZERO
    if charge.model in ALLOWANCE_MODELS:
        included = exact_quantity(charge.included_units or ZERO)
        remaining = max(ZERO, included - used)
        if charge.model == ConsumptionModel.HARD_CAP and used + quantity > included:
            refused = CheckResult(
                False, reason="cap_reached", included=included, remaining=remaining, **base
            )
            return refused, ZERO
        return CheckResult(True, reason="ok", included=included, remaining=remaining, **base), ZERO
    elif charge.model == "credits":
        balance = balance_of("credits")
        needed = quantity * charge.credits_per_unit
        covered = balance
        if balance < needed:
            # An auto top-up buys a pack when the balance runs short.
            covered = balance + auto_top_up_credits()
        remaining = units_covered(balance, charge.credits_per_unit)
        short = covered < needed
        # Billed at the close when the charge bills what the wallet cannot pay.
        uncovered_units = (needed - covered) / charge.credits_per_unit if short else ZERO
        if short and not charge.bills_uncovered:
            refused = CheckResult(
                False,
                reason="insufficient_credits",
                remaining=remaining,
                balance=balance,
                **base,
            )
            return refused, ZERO
        result = CheckResult(
            True,
            reason="ok",
            remaining=remaining,
            balance=balance,
            billed_when_exhausted=short,
            draws=max(ZERO, min(needed, covered)),
            uncovered=uncovered_units,
            **base,
        )
    else:
        balance = balance_of("money", spec.currency)
        cost = marginal_cost(charge, used, quantity)
        remaining = None
        if charge.pricing.scheme == "per_unit" and charge.pricing.unit_price > 0:
            remaining = units_covered(balance, charge.pricing.unit_price, charge.pricing.per)
        money = {"balance": balance, "currency": spec.currency, "remaining": remaining}
        short = balance < cost
        if short and not charge.bills_uncovered:
            return CheckResult(False, reason="insufficient_balance", **money, **base), ZERO
        result = CheckResult(
            True,
            reason="ok",
            billed_when_exhausted=short,
            draws=max(ZERO, min(cost, balance)),
            cost=cost,
            **money,
            **base,
        )
    return result, uncovered_units


def feature_check(
    *, subscription: Subscription | None, feature_code: str, now: datetime
) -> CheckResult:
    """May this customer use this feature? Allowed when its plan (with the deal's
    overrides) grants it with any value but false; the value is in the answer
    (a config feature's limit or list). None once the subscription has ended
    with its period (before the close has run), as a meter's check. Reads only:
    the spec is cached."""
    if subscription is None or period_now(subscription=subscription, now=now) is None:
        return CheckResult(False, None, "no_subscription")
    refused = FEATURE_REFUSED.get(subscription.customer.standing)
    if refused:
        return CheckResult(False, None, refused, subscription=subscription)
    grants = granted(subscription_spec(subscription).features)
    value = grants.get(feature_code)
    allowed = feature_code in grants and value is not False
    return CheckResult(
        allowed,
        None,
        "ok" if allowed else "feature_not_in_plan",
        subscription=subscription,
        value=value,
    )


def feature_message(result: CheckResult, *, feature_code: str, exists: bool | None = None) -> str:
    """A feature check's reason in words; a refusal says whether the feature
    exists at all (a typo in the product's code) or the plan does not grant it.
    `exists`: whether it does, when already read (live_read); None reads it."""
    if result.reason == "feature_not_in_plan" and exists is None:
        exists = Feature.objects.filter(code=feature_code).exists()
    if result.reason == "feature_not_in_plan" and not exists:
        return f"there is no feature {feature_code!r}"
    if result.reason == "feature_not_in_plan" and result.value is False:
        return f"the customer's plan grants {feature_code!r} as false"
    return REASON_MESSAGES.get(result.reason, result.reason)
