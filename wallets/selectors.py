"""Reads of wallets: balances, usable blocks, the ledger, uncovered usage."""

from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q, QuerySet

from billing.core import rawsql
from billing.rating.lines import Uncovered
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, UncoveredUsage, Wallet

ZERO = Decimal(0)


def wallet_list(*, customer_id: int) -> list[Wallet]:
    return list(Wallet.objects.filter(customer_id=customer_id).select_related("auto_top_up__pack"))


def wallet_balance(*, customer_id: int, kind: str, currency: str = "") -> Decimal:
    """The stored balance (zero when the customer has no such wallet yet)."""
    balance = (
        Wallet.objects.filter(customer_id=customer_id, kind=kind, currency=currency)
        .values_list("balance", flat=True)
        .first()
    )
    return ZERO if balance is None else balance


# Written out (see billing.core.rawsql): the check reads it before every AI call. A block
# without expiry never expires; one whose expiry has passed is no longer usable.
_USABLE_BALANCE = (
    "SELECT SUM(b.remaining) FROM wallets_creditblock b "
    "JOIN wallets_wallet w ON w.id = b.wallet_id "
    "WHERE w.customer_id = %s AND w.kind = %s AND w.currency = %s "
    "AND b.remaining > 0 AND b.effective_at <= %s AND b.expired_at IS NULL "
    "AND (b.expires_at IS NULL OR b.expires_at > %s)"
)


def wallet_usable_balance(
    *, customer_id: int, kind: str, currency: str = "", now: datetime
) -> Decimal:
    """What the wallet can pay with at `now`: the remainders of its blocks in
    effect and not expired. The stored balance also counts blocks that take
    effect later and blocks past their expiry that the expiry task has not
    reached yet; draw-down takes from neither."""
    ((total,),) = rawsql.rows(
        _USABLE_BALANCE,
        [customer_id, kind, currency, now, now],
        (CreditBlock._meta.get_field("remaining"),),
    )
    return ZERO if total is None else total


def auto_top_up_of(*, customer_id: int) -> AutoTopUp | None:
    return (
        AutoTopUp.objects.filter(
            wallet__customer_id=customer_id,
            wallet__kind=Wallet.CREDITS,
            enabled=True,
            pack__active=True,
        )
        .select_related("pack")
        .first()
    )


def blocks_usable(*, wallet: Wallet, now: datetime) -> QuerySet[CreditBlock]:
    """Blocks that can still be drawn, in draw order."""
    return (
        wallet.blocks.filter(remaining__gt=0, expired_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # No expiry is drawn last: NULLS LAST, which SQLite does not do by default.
        .order_by("priority", F("expires_at").asc(nulls_last=True), "created_at", "id")
    )


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
    wallet currency): units and shortfall. Written out (see billing.core.rawsql):
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
            _UNCOVERED, [customer_id, start, end], fields
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
    Written out (see billing.core.rawsql): a check against a spend limit reads it."""
    ((drawn,),) = rawsql.rows(
        _MONEY_DRAWN,
        [customer_id, Wallet.MONEY, currency, LedgerEntry.USAGE, start, end],
        (LedgerEntry._meta.get_field("amount"),),
    )
    return -drawn if drawn else ZERO
