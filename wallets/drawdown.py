"""Usage drawn from prepaid credits and money balances, at ingestion.

Usage never takes a balance below zero: what a wallet cannot cover is recorded
as uncovered usage. A balance that falls under its threshold raises its alert
and, where set, buys the auto top-up (wallets.purchases)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from customers.models import Customer
from plans.meter_scope import applies, draw_in_order
from wallets import ledger
from wallets.alerts import auto_top_up_alert_raise, low_balance_alert_raise
from wallets.journal_entries import journal_credits_consumed
from wallets.ledger import BlockDraw, block_order, usable_blocks, wallets_ensure
from wallets.locks import wallets_lock
from wallets.models import AutoTopUp, CreditBlock, UncoveredUsage, Wallet
from wallets.purchases import auto_top_up_request, buy_pack_locked, paid_through_stripe

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageDraw:
    """One event's cost on one wallet: `cost` credits or money for `units` of a
    meter; what the wallet cannot pay is recorded as uncovered usage of the
    moment `at` (in the same part of the same period as the event, so that it
    is billed, or re-billed as late usage, with the usage it belongs to)."""

    kind: str
    currency: str
    meter: str
    units: Decimal
    cost: Decimal
    at: datetime


@dataclass
class CustomerDraws:
    customer: Customer
    # The period [start, end) alerts belong to (the live subscription's current period).
    period_start: datetime
    period_end: datetime
    draws: list[UsageDraw]


@dataclass
class _Drawing:
    """One locked wallet while a batch's usage is drawn from it: the batch plans
    each event's draw on what its blocks have left (`left`, `balance`), and the
    ledger's one writer of draws (wallets.ledger.draw) takes what was planned out of
    the blocks and the balance, with one entry a block and meter, before a pack is
    bought and when the batch ends."""

    wallet: Wallet
    blocks: list[CreditBlock]
    auto: AutoTopUp | None
    balance: Decimal
    # Block id -> what it has left once the planned draws are taken.
    left: dict[int, Decimal] = field(init=False)
    # (block, meter) -> [amount, units] planned since the last draw was written.
    pending: dict[tuple[int, str], list[Decimal]] = field(default_factory=dict)
    # (meter, at) -> [units, shortfall]
    uncovered: dict[tuple[str, datetime], list[Decimal]] = field(default_factory=dict)
    top_ups: list[CreditBlock] = field(default_factory=list)
    # With Stripe: this batch asked for its auto top-up pack already.
    top_up_requested: bool = False
    # (block, meter) -> all the batch drew, in draw order, and the first ledger
    # entry written: the journal's document of the batch (wallets.journal_entries).
    drawn: dict[tuple[int, str], Decimal] = field(default_factory=dict)
    first_entry_id: int | None = None

    def __post_init__(self) -> None:
        self.left = {block.pk: block.remaining for block in self.blocks}

    def flush(self, now: datetime) -> None:
        if not self.pending:
            return
        by_pk = {block.pk: block for block in self.blocks}
        written = ledger.draw(
            self.wallet,
            [
                BlockDraw(by_pk[block_id], amount, meter, units)
                for (block_id, meter), (amount, units) in self.pending.items()
            ],
            occurred_at=now,
        )
        if self.first_entry_id is None:
            self.first_entry_id = written[0].pk
        self.pending = {}

    def available(self, meter: str) -> Decimal:
        """What the blocks in effect can still pay for this meter. The stored
        balance also counts blocks that take effect later, which cannot pay now,
        and blocks for other meters."""
        return sum(
            (self.left[block.pk] for block in self.blocks if applies(block.applies_to, meter)),
            ZERO,
        )

    def take(self, draw: UsageDraw) -> None:
        """Plan the event's cost on the blocks that apply to its meter, in draw
        order (wallets.ledger.block_order)."""
        wanted = draw.cost
        for block, taken in draw_in_order(self.blocks, wanted, draw.meter, left=self.left):
            self.left[block.pk] -= taken
            wanted -= taken
            share = draw.units * taken / draw.cost
            pending = self.pending.setdefault((block.pk, draw.meter), [ZERO, ZERO])
            pending[0] += taken
            pending[1] += share
            self.drawn[(block.pk, draw.meter)] = (
                self.drawn.get((block.pk, draw.meter), ZERO) + taken
            )
        self.balance -= draw.cost - wanted
        if wanted > 0:
            missing = self.uncovered.setdefault((draw.meter, draw.at), [ZERO, ZERO])
            missing[0] += draw.units * wanted / draw.cost
            missing[1] += wanted

    def top_up(self, customer: Customer, now: datetime) -> None:
        pack = self.auto.pack
        if paid_through_stripe(pack.price.amount):
            # Paid before it is granted: a pending purchase, charged after the
            # ingest commits. Meanwhile the balance is what it is (short usage
            # stays uncovered), and one request a batch is enough.
            if not self.top_up_requested:
                self.top_up_requested = True
                auto_top_up_request(customer=customer, pack=pack, now=now)
            return
        # The purchase writes its own block and ledger entry; what was drawn so far
        # is written first, so the ledger keeps its order.
        self.flush(now)
        block = buy_pack_locked(
            self.wallet,
            customer=customer,
            pack=pack,
            source=CreditBlock.AUTO_TOP_UP,
            now=now,
        )
        self.blocks.append(block)
        self.blocks.sort(key=block_order)
        self.left[block.pk] = block.remaining
        self.top_ups.append(block)
        self.balance = self.wallet.balance

    def journal(self, customer: Customer, now: datetime) -> None:
        if self.first_entry_id is not None:
            journal_credits_consumed(
                customer_id=customer.pk,
                wallet_id=self.wallet.pk,
                blocks=self.blocks,
                drawn=self.drawn,
                first_entry_id=self.first_entry_id,
                now=now,
            )

    def save(self, customer: Customer, now: datetime) -> None:
        self.flush(now)
        self.journal(customer, now)
        UncoveredUsage.objects.bulk_create(
            UncoveredUsage(
                wallet=self.wallet,
                customer=customer,
                meter=meter,
                quantity=units,
                shortfall=shortfall,
                occurred_at=at,
            )
            for (meter, at), (units, shortfall) in self.uncovered.items()
        )


def usage_draw(*, batch: list[CustomerDraws], now: datetime) -> None:
    """Draw a batch's usage from the customers' wallets, event by event in the
    order given, inside the caller's (the ingest) transaction.

    Locks every wallet involved in id order (no deadlock between batches). A
    wallet that cannot cover an event pays what it has and the rest is recorded
    as uncovered usage; the balance never goes below zero. A block pays only for
    the meters it applies to (every meter when its `applies_to` is empty). With auto top-up on,
    one pack is bought each time the balance crosses the threshold downwards,
    and one when an event finds the balance short, so that concurrent batches buy
    exactly the packs their crossings call for (they are serialized by the lock).
    Low balance and auto top-up alerts are raised once per period."""
    keys = {(cd.customer.pk, d.kind, d.currency) for cd in batch for d in cd.draws}
    if not keys:
        return
    wallets_ensure(keys=keys)
    locked = wallets_lock(keys=keys)
    usable = usable_blocks([w.pk for w in locked.values()], now)
    autos = {
        a.wallet_id: a
        for a in AutoTopUp.objects.filter(
            # A pack no longer sold is not bought automatically either.
            wallet_id__in=[w.pk for w in locked.values()],
            enabled=True,
            pack__active=True,
        ).select_related("pack")
    }
    for customer_draws in batch:
        customer = customer_draws.customer
        drawings: dict[tuple, _Drawing] = {}
        for draw in customer_draws.draws:
            key = (customer.pk, draw.kind, draw.currency)
            drawing = drawings.get(key)
            if drawing is None:
                wallet = locked[key]
                drawing = drawings[key] = _Drawing(
                    wallet=wallet,
                    blocks=usable[wallet.pk],
                    auto=autos.get(wallet.pk),
                    balance=wallet.balance,
                )
            auto = drawing.auto
            # A short balance buys the pack only when its credits pay for the meter.
            if (
                auto
                and applies(auto.pack.applies_to, draw.meter)
                and drawing.available(draw.meter) < draw.cost
            ):
                drawing.top_up(customer, now)
            before = drawing.balance
            drawing.take(draw)
            if auto and before > auto.threshold >= drawing.balance:
                drawing.top_up(customer, now)
        period = (customer_draws.period_start, customer_draws.period_end)
        for drawing in drawings.values():
            drawing.save(customer, now)
            # A pack bought in the batch tells the balance it left: no low balance alert.
            if not drawing.top_ups:
                low_balance_alert_raise(
                    wallet=drawing.wallet, customer=customer, period=period, now=now
                )
            for block in drawing.top_ups:
                auto_top_up_alert_raise(
                    block=block, wallet=drawing.wallet, customer=customer, period=period, now=now
                )
