"""What a customer's open holds reserve at a moment (billing.usage.holds writes
them): the quantities they count as used, per meter and per rate-card row, and
what they take out of the wallets while open. A check counts it as usage already
made (billing.usage.check); holds past their expiry count for nothing, swept or
not."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from billing.hold_models import Hold
from billing.usage.metering import event_group_values, meter_cache
from common import rawsql
from plans.rate_card_pricing import row_for

ZERO = Decimal(0)


@dataclass(frozen=True)
class HeldUse:
    meter: str
    quantity: Decimal
    properties: dict
    # The units of it a credit wallet that bills what it cannot pay left uncovered
    # when it was held (Hold.uncovered_units): billed, so counted in the spend.
    uncovered: Decimal = ZERO


@dataclass(frozen=True)
class Held:
    """Open holds' reservations: `uses` the quantities (as spend_adding takes
    them), `credits` and `money` (currency -> amount) what they hold of the
    wallets."""

    uses: tuple[HeldUse, ...] = ()
    credits: Decimal = ZERO
    money: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.uses)

    def quantity(self, meter: str, rates: tuple | None = None, row=None) -> Decimal:
        """The quantity held of `meter`; with a rate card's `rates` and one of its
        rows, of the holds that row prices only (as its tiers count its usage)."""
        total = ZERO
        for use in self.uses:
            if use.meter != meter:
                continue
            if rates is not None:
                found = meter_cache.by_code_frozen(meter)
                values = event_group_values(found, use.properties) if found else None
                if values is None or row_for(rates, values) is not row:
                    continue
            total += use.quantity
        return total

    def quantities(self, by_code: dict[str, Decimal]) -> dict[str, Decimal]:
        """`by_code` (meter code -> quantity used) with the held quantities added."""
        out = dict(by_code)
        for use in self.uses:
            if use.meter in out:
                out[use.meter] += use.quantity
        return out

    def combinations(self, by_meter: dict[str, dict]) -> dict[str, dict]:
        """Rate cards' and caps' usage per combination (meter code -> {values key:
        quantity}, as usage_combinations reads them) with the held quantities added
        to their combinations."""
        out = {code: dict(of_meter) for code, of_meter in by_meter.items()}
        for use in self.uses:
            if use.meter not in out:
                continue
            found = meter_cache.by_code_frozen(use.meter)
            if found is None:
                continue
            key = tuple(event_group_values(found, use.properties).items())
            out[use.meter][key] = out[use.meter].get(key, ZERO) + use.quantity
        return out

    def wallet(self, kind: str, currency: str = "") -> Decimal:
        """What the holds take out of the wallets of this kind (and currency)."""
        return self.credits if kind == "credits" else self.money.get(currency, ZERO)


NOTHING_HELD = Held()


@dataclass(frozen=True)
class HoldsSeen:
    """What a period's usage page shows of the holds: those open now, and how many
    closed in the period without a charge, by why (failed, cancelled, expired)."""

    open: list
    not_charged: dict[str, int]
    # What the open holds keep back of the wallets: money by currency, and credits.
    money: dict[str, Decimal] = field(default_factory=dict)
    credits: Decimal = ZERO


_SEEN_FIELDS = rawsql.model_fields(
    Hold,
    (
        "id",
        "public_id",
        "meter",
        "quantity",
        "amount",
        "currency",
        "held_money",
        "held_credits",
        "status",
        "reason",
        "expires_at",
    ),
)
# One statement (read ahead with a usage read's others: common.rawsql): the holds open
# at the moment and those closed in the period without a charge.
_SEEN_SQL = (
    "SELECT " + ", ".join(f.column for f in _SEEN_FIELDS) + " FROM billing_hold"  # noqa: S608 (the model's columns)
    " WHERE customer_id = %s AND ((status = %s AND expires_at > %s)"
    " OR (status IN (%s, %s) AND closed_at >= %s AND closed_at < %s))"
    " ORDER BY expires_at, id"
)


def holds_seen(*, customer_id: int, start: datetime, end: datetime, now: datetime) -> HoldsSeen:
    """The customer's holds open at `now` and those of [start, end) that billed
    nothing (released or expired), counted by why."""
    found = rawsql.rows(
        _SEEN_SQL,
        [customer_id, Hold.OPEN, now, Hold.RELEASED, Hold.EXPIRED, start, end],
        _SEEN_FIELDS,
        ahead=True,
    )
    open_now = []
    counts: dict[str, int] = {}
    for values in found:
        hold = rawsql.instance(_SEEN_FIELDS, values)
        if hold.status == Hold.OPEN:
            open_now.append(hold)
            continue
        why = Hold.EXPIRED if hold.status == Hold.EXPIRED else hold.reason
        counts[why] = counts.get(why, 0) + 1
    credits, money = kept_back((h.held_credits, h.held_money, h.currency) for h in open_now)
    return HoldsSeen(open_now, counts, money, credits)


def kept_back(holds) -> tuple[Decimal, dict[str, Decimal]]:
    """What open holds keep back of the wallets, from each one's (credits held,
    money held, currency): the credits, and the money by currency (a currency only
    where some is held)."""
    credits = ZERO
    money: dict[str, Decimal] = {}
    for held_credits, held_money, currency in holds:
        credits += held_credits
        if held_money:
            money[currency] = money.get(currency, ZERO) + held_money
    return credits, money


def held_of(live, *, now: datetime) -> Held:
    """What the open holds of a customer read by billing.usage.live.live_read
    reserve at `now`: read only where that read saw one (Live.holds)."""
    return held_open(customer_id=live.customer.pk, now=now) if live.holds else NOTHING_HELD


def held_open(*, customer_id: int, now: datetime) -> Held:
    """What the customer's holds open at `now` reserve."""
    rows = Hold.objects.filter(customer_id=customer_id, status=Hold.OPEN, expires_at__gt=now)
    found = list(
        rows.values_list(
            "meter",
            "quantity",
            "properties",
            "uncovered_units",
            "held_credits",
            "held_money",
            "currency",
        ).order_by("pk")
    )
    if not found:
        return NOTHING_HELD
    credits, money = kept_back(row[4:] for row in found)
    return Held(tuple(HeldUse(*row[:4]) for row in found), credits, money)
