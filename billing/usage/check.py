"""The check before an expensive action: may this customer use this much of
this meter now? Reads the live subscription with the wallets in one written-out
query, then the usage of its period (billing.usage.reads), and answers with what
is left under the consumption model (hard cap, overage, credits, balance) and the
spend limit. Reads only."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext
from functools import cache

from billing.core import rawsql
from billing.core.vocabulary import ALLOWANCE_MODELS, ConsumptionModel
from billing.models import (
    Subscription,
)
from billing.rating.pricing import EXACT_PRECISION, PER_UNIT
from billing.rating.rate_cards import row_charge, row_for, row_quantity
from billing.usage.breakdowns import combination_quantity, usage_combinations
from billing.usage.metering import (
    event_group_values,
    meter_cache,
)
from billing.usage.priced import marginal_cost, period_spend
from billing.usage.reads import (
    exact_quantity,
    period_now,
    units_covered,
    usage_quantities,
)
from customers.models import Customer
from plans.feature_grants import granted
from plans.models import Feature, Meter, Plan, PlanVersion
from plans.overrides import subscription_spec
from wallets import selectors as wallet_selectors
from wallets.models import Wallet

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
    subscription: Subscription | None = None
    # The period the answer counts usage in (the one the clock is in).
    period_start: datetime | None = None
    period_end: datetime | None = None
    # Allowed although the wallet cannot pay for all of it: the charge bills the
    # rest at the close (when_exhausted "bill").
    billed_when_exhausted: bool = False
    # A feature check: the value the plan (or the deal) grants; None: not granted.
    value: object = None


REASON_MESSAGES = {
    "ok": "allowed",
    "cap_reached": "the included units of this period are used up",
    "insufficient_credits": "the credit wallet cannot pay for this usage",
    "insufficient_balance": "the prepaid balance cannot pay for this usage",
    "spend_limit_reached": "the customer's spend limit for this period is reached",
    "no_subscription": "the customer has no live subscription",
    "feature_not_in_plan": "the customer's plan does not grant this feature",
}


def check_message(result: CheckResult, *, meter_code: str) -> str:
    """The reason of a check in words; for a meter the plan does not charge, whether
    the meter exists at all (a typo in the product's code) or the plan lacks it."""
    if result.billed_when_exhausted:
        return "allowed: what the wallet cannot pay for is billed on the period's invoice"
    if result.reason != "meter_not_in_plan":
        return REASON_MESSAGES.get(result.reason, result.reason)
    version = result.subscription.version if result.subscription is not None else None
    if not Meter.objects.filter(code=meter_code).exists():
        return f"there is no meter {meter_code!r}"
    if version is None:
        return f"meter {meter_code!r} is not charged by the customer's plan"
    return f"meter {meter_code!r} is not charged by {version.plan.name} v{version.number}"


# What a check and a usage read need of a customer, its live subscription, the
# subscription's version and plan (the check sits in front of every AI call: fewer
# columns, less to build). Other fields load on access.
_LIVE_PARTS = (
    (
        "c",
        rawsql.model_fields(
            Customer,
            ("id", "external_id", "currency", "timezone", "spend_limit", "spend_limit_mode"),
        ),
    ),
    (
        "s",
        rawsql.model_fields(
            Subscription,
            (
                "id",
                "customer_id",
                "version_id",
                "scheduled_version_id",
                "status",
                "seats",
                "started_at",
                "anchor_at",
                "billing_anchor",
                "current_period_start",
                "current_period_end",
                "cancel_at_period_end",
                "usage_from",
                "overrides",
            ),
        ),
    ),
    ("v", rawsql.model_fields(PlanVersion, ("id", "plan_id", "status", "currency", "interval"))),
    ("p", rawsql.model_fields(Plan, ("id", "code", "name"))),
)


_LIVE_FIELDS = tuple(f for _, fields in _LIVE_PARTS for f in fields)


_LIVE_FROM = (
    " FROM customers_customer c"
    " LEFT JOIN billing_subscription s ON s.customer_id = c.id AND s.status IN (%s, %s)"
    " LEFT JOIN plans_planversion v ON v.id = s.version_id"
    " LEFT JOIN plans_plan p ON p.id = v.plan_id"
    " WHERE c.external_id = %s"
)


# Read with the subscription when asked (`now`): the usable balances of the wallets a
# charge may pay from, the customer's credits and its money in the version's currency
# (NULL without a subscription), the credits an auto top-up would add, and whether any
# of it is for some meters only, as charge_standing takes them: (kind, currency) ->
# balance, AUTO_TOP_UP -> credits, SCOPED -> whether balances depend on the meter.
_BALANCE_COLUMNS = (
    "(" + wallet_selectors.usable_balance_sql(customer="c.id") + ")",
    "(" + wallet_selectors.usable_balance_sql(customer="c.id", currency="v.currency") + ")",
    "(" + wallet_selectors.auto_top_up_credits_sql(customer="c.id") + ")",
    "(" + wallet_selectors.scoped_sql(customer="c.id") + ")",
)
AUTO_TOP_UP = ("credits", "auto top-up")
SCOPED = "scoped"
_FEATURE_COLUMN = "EXISTS (SELECT 1 FROM plans_feature f WHERE f.code = %s)"


@cache
def _live_sql(*, balances: bool, feature: bool) -> str:
    columns = [f"{alias}.{f.column}" for alias, fields in _LIVE_PARTS for f in fields]
    if balances:
        columns += _BALANCE_COLUMNS
    if feature:
        columns.append(_FEATURE_COLUMN)
    # Column names from the models; values are parameters.
    return "SELECT " + ", ".join(columns) + _LIVE_FROM


@dataclass(frozen=True)
class Live:
    """A customer, its live subscription (with its version and plan), and what a
    check reads with them."""

    customer: Customer | None
    subscription: Subscription | None
    # At the moment asked: (wallet kind, currency) -> usable balance, and
    # AUTO_TOP_UP -> the credits an auto top-up adds (charge_standing's `balances`).
    balances: dict = field(default_factory=dict)
    # Whether a feature of the code asked exists (None: not asked).
    feature_exists: bool | None = None


def live_read(*, external_id: str, now: datetime | None = None, feature: str | None = None) -> Live:
    """The customer with this external_id and its live subscription (with its
    version and plan), either None when there is none: one query, written out (a
    check is on every AI call's path). At most one subscription is live (a partial
    unique index), so the join gives at most one row. The same query reads, with
    `now`, the usable balances at that moment of the wallets a charge may pay
    from, and with `feature`, whether that feature exists (a refusal's message
    says so): one round trip for what a check reads besides the usage."""
    extra_fields: tuple = ()
    params: list = []
    if now is not None:
        extra_fields += (wallet_selectors.USABLE_BALANCE_FIELD,) * 2
        extra_fields += (wallet_selectors.AUTO_TOP_UP_CREDITS_FIELD, None)
        params += [Wallet.CREDITS, "", now, now, Wallet.MONEY, now, now, Wallet.CREDITS]
    if feature is not None:
        extra_fields += (None,)
        params.append(feature)
    found = rawsql.rows(
        _live_sql(balances=now is not None, feature=feature is not None),
        [*params, *Subscription.LIVE, external_id],
        _LIVE_FIELDS + extra_fields,
    )
    if not found:
        return Live(None, None)
    values = iter(found[0])
    customer, subscription, version, plan = (
        [next(values) for _ in fields] for _, fields in _LIVE_PARTS
    )
    credits, money, auto, scoped = (
        [next(values) for _ in range(4)] if now is not None else [None] * 4
    )
    exists = None if feature is None else bool(next(values))
    customer = rawsql.instance(_LIVE_PARTS[0][1], customer)
    if subscription[0] is None:
        return Live(customer, None, feature_exists=exists)
    subscription = rawsql.instance(_LIVE_PARTS[1][1], subscription)
    subscription.version = rawsql.instance(_LIVE_PARTS[2][1], version)
    subscription.version.plan = rawsql.instance(_LIVE_PARTS[3][1], plan)
    subscription.customer = customer
    balances = {}
    if now is not None:
        balances = {
            (Wallet.CREDITS, ""): ZERO if credits is None else credits,
            (Wallet.MONEY, subscription.version.currency): ZERO if money is None else money,
            AUTO_TOP_UP: ZERO if auto is None else auto,
            SCOPED: bool(scoped),
        }
    return Live(customer, subscription, balances, exists)


def customer_with_live_subscription(
    *, external_id: str
) -> tuple[Customer | None, Subscription | None]:
    """live_read's customer and live subscription."""
    live = live_read(external_id=external_id)
    return live.customer, live.subscription


def usage_check(
    *,
    customer,
    subscription: Subscription | None,
    meter_code: str,
    quantity: Decimal,
    now: datetime,
    balances: dict | None = None,
    properties: dict | None = None,
) -> CheckResult:
    """Answer from the current period's counters and the wallets' balances, for
    every consumption model, then against the customer's spend limit (the
    period's rated spend plus what this use would add). `subscription` is the
    customer's live one (live_read), `balances` the wallets' usable balances at
    `now` if already read (live_read; the others are read); `properties` the
    event's, which pick the row of a rate card (its default row without them).
    Reads only."""
    if subscription is None:
        return CheckResult(False, None, "no_subscription")
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
    if customer.spend_limit is not None:
        # The spend prices every meter the version charges: one read for them all.
        for other in spec.charges:
            found = meter_cache.by_code_frozen(other.meter)
            if found is not None:
                meters[found.id] = found
    quantities = usage_quantities(
        customer_id=customer.pk, meters=list(meters.values()), start=start, end=end
    )
    charge, used = priced_row(
        charge,
        meter,
        properties or {},
        used=exact_quantity(quantities[meter.id]),
        customer_id=customer.pk,
        span=(start, end),
    )
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
        )
        if not result.allowed:
            return result
        if customer.spend_limit is None:
            return result
        spend = period_spend(
            subscription=subscription,
            start=start,
            end=end,
            adding=(meter_code, quantity),
            adding_uncovered=uncovered_units,
            quantities={m.code: quantities[m.id] for m in meters.values()},
            properties=properties,
        )
    if spend <= customer.spend_limit:
        return result
    if customer.spend_limit_mode == "soft":
        return replace(result, spend=spend, spend_limit=customer.spend_limit)
    return replace(
        result,
        allowed=False,
        reason="spend_limit_reached",
        spend=spend,
        spend_limit=customer.spend_limit,
    )


def priced_row(
    charge, meter, properties: dict, *, used: Decimal, customer_id: int, span
) -> tuple[object, Decimal]:
    """A rate-card charge as the row of these properties prices it (its default
    row without them: rate_cards.row_charge), with the usage that row's tiers
    count (that row's alone); any other charge as it is, with `used`."""
    if not charge.rated:
        return charge, used
    row = row_charge(charge, event_group_values(meter, properties))
    if row.pricing is not None and row.pricing.scheme != PER_UNIT:
        used = row_used(charge, meter, properties, customer_id=customer_id, span=span)
    return row, used


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
) -> tuple[CheckResult, Decimal]:
    """Whether `quantity` more of the charge's meter, `used` so far this period,
    fits its consumption model (the spend limit aside), with what is included,
    remaining and the wallet's balance; and the units of it a wallet that bills
    when exhausted cannot pay for. `check` asks with the quantity asked for, the
    entitlements read with zero (and `balances`, the wallets' balances read once
    for all its charges). Reads only."""
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
        return read(
            (kind, currency) if meter is None else (kind, currency, meter),
            lambda: wallet_selectors.wallet_usable_balance(
                customer_id=customer.pk, kind=kind, currency=currency, now=now, meter=meter
            ),
        )

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
        result = CheckResult(True, reason="ok", billed_when_exhausted=short, **money, **base)
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
