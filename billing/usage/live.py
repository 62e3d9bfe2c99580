"""The read a check (and an entitlements answer) starts with: the customer, its
live subscription with its version and plan, and at the moment asked the usable
balances of its wallets, in one written-out query (a check is on every AI
call's path). The customer's standing comes with it (invoices.standing saves it
on the customer), so refusing a restricted account costs no other query."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache

from billing.models import Hold, Subscription
from common import rawsql
from customers.models import Customer
from plans.models import Plan, PlanVersion
from wallets import selectors as wallet_selectors
from wallets.models import Wallet

ZERO = Decimal(0)


# What a check and a usage read need of a customer, its live subscription, the
# subscription's version and plan (the check sits in front of every AI call: fewer
# columns, less to build). Other fields load on access.
_LIVE_PARTS = (
    (
        "c",
        rawsql.model_fields(
            Customer,
            (
                "id",
                "external_id",
                "currency",
                "timezone",
                "spend_limit",
                "spend_limit_mode",
                "standing",
                # The limits the customer set (customers.limits): {} for most.
                "limits",
            ),
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
# balance, AUTO_TOP_UP -> credits, SCOPED -> whether balances depend on the meter; and
# whether the customer has an open hold.
_BALANCE_COLUMNS = (
    "(" + wallet_selectors.usable_balance_sql(customer="c.id") + ")",
    "(" + wallet_selectors.usable_balance_sql(customer="c.id", currency="v.currency") + ")",
    "(" + wallet_selectors.auto_top_up_credits_sql(customer="c.id") + ")",
    "(" + wallet_selectors.scoped_sql(customer="c.id") + ")",
    # Whether an open hold reserves anything (billing.usage.held reads what).
    "EXISTS (SELECT 1 FROM billing_hold h WHERE h.customer_id = c.id"
    " AND h.status = %s AND h.expires_at > %s)",
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
    # Whether an open hold reserves anything at the moment asked.
    holds: bool = False


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
        extra_fields += (wallet_selectors.AUTO_TOP_UP_CREDITS_FIELD, None, None)
        params += [Wallet.CREDITS, "", now, now, Wallet.MONEY, now, now, Wallet.CREDITS]
        params += [Hold.OPEN, now]
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
    credits, money, auto, scoped, holds = (
        [next(values) for _ in range(5)] if now is not None else [None] * 5
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
    return Live(customer, subscription, balances, exists, bool(holds))


def customer_with_live_subscription(
    *, external_id: str
) -> tuple[Customer | None, Subscription | None]:
    """live_read's customer and live subscription."""
    live = live_read(external_id=external_id)
    return live.customer, live.subscription
