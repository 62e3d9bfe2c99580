"""Reads of wallets: balances, usable blocks, the ledger, uncovered usage."""

from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q, QuerySet

from common import rawsql
from plans.meter_scope import applies
from plans.models import CreditPack
from plans.rating import Uncovered
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet

ZERO = Decimal(0)


def wallet_list(*, customer_id: int) -> list[Wallet]:
    # Not its commit wallets: its commits' access (wallets.commits).
    wallets = Wallet.objects.filter(customer_id=customer_id).exclude(kind=Wallet.COMMIT)
    return list(wallets.select_related("auto_top_up__pack"))


def wallet_balance(*, customer_id: int, kind: str, currency: str = "") -> Decimal:
    """The stored balance (zero when the customer has no such wallet yet)."""
    balance = (
        Wallet.objects.filter(customer_id=customer_id, kind=kind, currency=currency)
        .values_list("balance", flat=True)
        .first()
    )
    return ZERO if balance is None else balance


# Written out (see common.rawsql): the check reads it before every AI call. A block
# without expiry never expires; one whose expiry has passed is no longer usable. The
# customer and the currency are SQL (a placeholder, or a column of an outer query); the
# kind and the moment (twice) are placeholders.
_USABLE_BALANCE = (
    "SELECT SUM(b.remaining) FROM wallets_creditblock b "
    "JOIN wallets_wallet w ON w.id = b.wallet_id "
    "WHERE w.customer_id = {customer} AND w.kind = %s AND w.currency = {currency} "
    "AND b.remaining > 0 AND b.effective_at <= %s AND b.expired_at IS NULL "
    "AND (b.expires_at IS NULL OR b.expires_at > %s)"
)


def usable_balance_sql(*, customer: str = "%s", currency: str = "%s") -> str:
    """The query of a wallet's usable balance (NULL: none), to run alone or as a
    subquery of a read that already has the customer (billing.usage.check):
    `customer` and `currency` are SQL, the placeholder by default; its other
    parameters are the kind, then the moment twice."""
    return _USABLE_BALANCE.format(customer=customer, currency=currency)


USABLE_BALANCE_FIELD = CreditBlock._meta.get_field("remaining")


def wallet_usable_balance(
    *, customer_id: int, kind: str, currency: str = "", now: datetime, meter: str | None = None
) -> Decimal:
    """What the wallet can pay with at `now`: the remainders of its blocks in
    effect and not expired. The stored balance also counts blocks that take
    effect later and blocks past their expiry that the expiry task has not
    reached yet; draw-down takes from neither. With `meter`: only the blocks
    that apply to it (meter_usable_balance)."""
    if meter is not None:
        return meter_usable_balance(
            customer_id=customer_id, kind=kind, currency=currency, meter=meter, now=now
        )
    ((total,),) = rawsql.rows(
        usable_balance_sql(), [customer_id, kind, currency, now, now], (USABLE_BALANCE_FIELD,)
    )
    return ZERO if total is None else total


# Written out (see common.rawsql): the check reads it before every AI call, so
# that a customer none of whose usable blocks (nor its auto top-up's pack) is for some
# meters only, most of them, is answered from the balances as they are. Django stores an
# empty list as the JSON text '[]' (jsonb on PostgreSQL); the customer is SQL, as in
# usable_balance_sql.
_SCOPED = (
    "EXISTS (SELECT 1 FROM wallets_creditblock b "
    "JOIN wallets_wallet w ON w.id = b.wallet_id "
    "WHERE w.customer_id = {customer} AND w.kind <> 'commit' AND b.remaining > 0 "
    "AND b.expired_at IS NULL AND b.applies_to <> '[]') "
    "OR EXISTS (SELECT 1 FROM wallets_autotopup a "
    "JOIN wallets_wallet w ON w.id = a.wallet_id "
    "JOIN plans_creditpack k ON k.id = a.pack_id "
    "WHERE w.customer_id = {customer} AND a.enabled AND k.applies_to <> '[]')"
)


def scoped_sql(*, customer: str = "%s") -> str:
    """The query (a boolean; `customer` is SQL, used twice, no other parameter) of
    whether a customer holds a block, or has an auto top-up whose pack sells one,
    for some meters only: then what it can pay depends on the meter
    (wallet_usable_balance's `meter`). A commit's blocks do not count: the close
    draws them, never a check. Expired and future blocks may count: a
    customer counted by mistake is only read the longer way."""
    return _SCOPED.format(customer=customer)


# The same blocks, one a row with the meters it applies to (a check of a customer
# holding blocks for some meters only reads it).
_USABLE_BLOCKS = _USABLE_BALANCE.replace("SUM(b.remaining)", "b.remaining, b.applies_to", 1)
_USABLE_BLOCK_FIELDS = (USABLE_BALANCE_FIELD, CreditBlock._meta.get_field("applies_to"))


def meter_usable_balance(
    *, customer_id: int, kind: str, currency: str = "", meter: str, now: datetime
) -> Decimal:
    """What the wallet can pay with at `now` for this meter: as
    wallet_usable_balance, counting only the blocks that apply to the meter."""
    blocks = rawsql.rows(
        usable_blocks_sql(), [customer_id, kind, currency, now, now], _USABLE_BLOCK_FIELDS
    )
    return sum((left for left, scope in blocks if applies(scope, meter)), ZERO)


def usable_blocks_sql() -> str:
    return _USABLE_BLOCKS.format(customer="%s", currency="%s")


# Written out (see common.rawsql): the check asks when the credits run short. A
# wallet has at most one auto top-up; the customer is SQL, as in usable_balance_sql.
_AUTO_TOP_UP_CREDITS = (
    "SELECT k.credits FROM wallets_autotopup a "
    "JOIN wallets_wallet w ON w.id = a.wallet_id "
    "JOIN plans_creditpack k ON k.id = a.pack_id "
    "WHERE w.customer_id = {customer} AND w.kind = %s AND a.enabled AND k.active "
    "ORDER BY a.id LIMIT 1"
)


def auto_top_up_credits_sql(*, customer: str = "%s") -> str:
    """The query of the credits the customer's enabled auto top-up would buy when
    its balance runs short (no row, or NULL as a subquery: none), to run alone or
    as a subquery; its other parameter is the credits wallet's kind."""
    return _AUTO_TOP_UP_CREDITS.format(customer=customer)


AUTO_TOP_UP_CREDITS_FIELD = CreditPack._meta.get_field("credits")


def auto_top_up_credits(*, customer_id: int, meter: str | None = None) -> Decimal:
    """The credits of the pack the customer's auto top-up buys when its credit
    balance runs short; zero when it has none enabled, or its pack is no longer
    sold. With `meter`: zero too when the pack's credits do not pay for it."""
    if meter is not None:
        return meter_auto_top_up_credits(customer_id=customer_id, meter=meter)
    found = rawsql.rows(
        auto_top_up_credits_sql(), [customer_id, Wallet.CREDITS], (AUTO_TOP_UP_CREDITS_FIELD,)
    )
    return found[0][0] if found else ZERO


def meter_auto_top_up_credits(*, customer_id: int, meter: str) -> Decimal:
    """auto_top_up_credits when the pack's credits pay for this meter, else zero."""
    pack = (
        CreditPack.objects.filter(
            pk__in=Wallet.objects.filter(
                customer_id=customer_id,
                kind=Wallet.CREDITS,
                auto_top_up__enabled=True,
            ).values("auto_top_up__pack"),
            active=True,
        )
        .values_list("credits", "applies_to")
        .first()
    )
    return pack[0] if pack is not None and applies(pack[1], meter) else ZERO


def blocks_in_effect(*, wallet_ids: list[int], now: datetime) -> QuerySet[CreditBlock]:
    """The blocks of these wallets that can pay now: in effect, not expired,
    something left."""
    return CreditBlock.objects.filter(
        wallet_id__in=wallet_ids,
        remaining__gt=0,
        effective_at__lte=now,
        expired_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def blocks_usable(*, wallet: Wallet, now: datetime) -> QuerySet[CreditBlock]:
    """Blocks that can still be drawn, in draw order."""
    return (
        wallet.blocks.filter(remaining__gt=0, expired_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # No expiry is drawn last: NULLS LAST, which SQLite does not do by default.
        .order_by("priority", F("expires_at").asc(nulls_last=True), "created_at", "id")
    )


def scoped_remainders(
    *, wallet_ids: list[int], now: datetime
) -> dict[int, list[tuple[tuple[str, ...], Decimal]]]:
    """Of each wallet's usable balance, what only some meters can draw: by wallet
    id, (meter codes, remainder) for each set of meters its blocks apply to, in
    code order. Wallets holding nothing for some meters only are left out."""
    totals: dict[int, dict[tuple[str, ...], Decimal]] = {}
    blocks = (
        blocks_in_effect(wallet_ids=wallet_ids, now=now)
        .exclude(applies_to=[])
        .values_list("wallet_id", "applies_to", "remaining")
    )
    for wallet_id, scope, left in blocks:
        parts = totals.setdefault(wallet_id, {})
        key = tuple(sorted(scope))
        parts[key] = parts.get(key, ZERO) + left
    return {wallet_id: sorted(parts.items()) for wallet_id, parts in totals.items()}


def ledger(*, wallet: Wallet) -> QuerySet[LedgerEntry]:
    return wallet.ledger.select_related("block").order_by("-id")


_UNCOVERED = (
    "SELECT u.meter, w.kind, w.currency, SUM(u.quantity), SUM(u.shortfall) "
    "FROM wallets_uncoveredusage u JOIN wallets_wallet w ON w.id = u.wallet_id "
    "WHERE u.customer_id = %s AND u.occurred_at >= %s AND u.occurred_at < %s "
    "GROUP BY u.meter, w.kind, w.currency"
)


def uncovered_totals(
    *, customer_id: int, start: datetime, end: datetime
) -> dict[tuple[str, str, str], Uncovered]:
    """What wallets could not pay for in [start, end), by (meter code, wallet kind,
    wallet currency): units and shortfall. Written out (see common.rawsql):
    every usage read asks."""
    fields = (
        UncoveredUsage._meta.get_field("meter"),
        Wallet._meta.get_field("kind"),
        Wallet._meta.get_field("currency"),
        UncoveredUsage._meta.get_field("quantity"),
        UncoveredUsage._meta.get_field("shortfall"),
    )
    return {
        (meter, kind, currency): Uncovered(units=units, shortfall=shortfall)
        for meter, kind, currency, units, shortfall in rawsql.rows(
            _UNCOVERED, [customer_id, start, end], fields, ahead=True
        )
    }


_MONEY_DRAWN = (
    "SELECT SUM(e.amount) FROM wallets_ledgerentry e "
    "JOIN wallets_wallet w ON w.id = e.wallet_id "
    "WHERE w.customer_id = %s AND w.kind = %s AND w.currency = %s "
    "AND e.kind = %s AND e.occurred_at >= %s AND e.occurred_at < %s"
)


def money_drawn(*, customer_id: int, currency: str, start: datetime, end: datetime) -> Decimal:
    """Money the customer's prepaid balance paid for usage in [start, end).
    Written out (see common.rawsql): a check against a spend limit reads it."""
    ((drawn,),) = rawsql.rows(
        _MONEY_DRAWN,
        [customer_id, Wallet.MONEY, currency, LedgerEntry.USAGE, start, end],
        (LedgerEntry._meta.get_field("amount"),),
        ahead=True,
    )
    return -drawn if drawn else ZERO
