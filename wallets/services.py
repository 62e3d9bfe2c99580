"""Writes to wallets: grants, purchases, top-ups, usage draw-down, expiry.

Every balance change holds the wallet's row lock (wallets.locks), appends one
ledger entry per block it touches with the balance after it, and keeps the
stored balance equal to the sum of the blocks' remainders. Usage never takes a
balance below zero: what a wallet cannot cover is recorded as uncovered usage.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.core.errors import Conflict, InvalidRequest
from billing.core.money import format_decimal, format_money, quantize_money
from billing.models import Subscription
from billing.notifications import alerts
from customers.models import Customer
from invoices import payments
from invoices.models import Invoice, Purchase
from invoices.services import LineInput, invoice_create_purchase
from plans.models import CreditPack
from wallets.locks import wallet_lock, wallets_lock
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, UncoveredUsage, Wallet

ZERO = Decimal(0)


def wallet_get_or_create(*, customer: Customer, kind: str, currency: str = "") -> Wallet:
    """The customer's wallet of that kind (and currency), created on first use. Two
    callers creating it at once get the same row (the unique constraint decides)."""
    wallets_ensure(keys={(customer.pk, kind, currency)})
    return Wallet.objects.get(customer=customer, kind=kind, currency=currency)


def wallets_ensure(*, keys: set[tuple[int, str, str]]) -> None:
    """Create the missing wallets among (customer id, kind, currency) keys."""
    Wallet.objects.bulk_create(
        [Wallet(customer_id=c, kind=k, currency=cur) for c, k, cur in sorted(keys)],
        ignore_conflicts=True,
    )


def _store_balance(wallet: Wallet) -> None:
    """Write a locked wallet's new balance. The ledger is the balance's history, so
    this bypasses the model's audit history (kept for settings changed by people)."""
    wallet.updated_at = timezone.now()
    Wallet.objects.filter(pk=wallet.pk).update(balance=wallet.balance, updated_at=wallet.updated_at)


def _block_order(block: CreditBlock) -> tuple:
    # Priority, then soonest expiry (none: last), then oldest.
    return (
        block.priority,
        block.expires_at is None,
        block.expires_at or block.created_at,
        block.created_at,
        block.pk,
    )


def _usable_blocks(wallet_ids: list[int], now: datetime) -> dict[int, list[CreditBlock]]:
    usable: dict[int, list[CreditBlock]] = {w: [] for w in wallet_ids}
    blocks = (
        CreditBlock.objects.filter(
            wallet_id__in=wallet_ids,
            remaining__gt=0,
            effective_at__lte=now,
            expired_at__isnull=True,
        )
        .exclude(expires_at__lte=now)
        .order_by("id")
    )
    for block in blocks:
        usable[block.wallet_id].append(block)
    for blocks_of_wallet in usable.values():
        blocks_of_wallet.sort(key=_block_order)
    return usable


def _add_block(
    wallet: Wallet,
    *,
    entry_kind: str,
    now: datetime,
    amount: Decimal,
    kind: str,
    source: str,
    **fields,
) -> CreditBlock:
    """Add a block to a locked wallet and write its ledger entry."""
    block = CreditBlock.objects.create(
        wallet=wallet,
        kind=kind,
        source=source,
        amount=amount,
        remaining=amount,
        created_at=now,
        effective_at=fields.pop("effective_at", None) or now,
        **fields,
    )
    wallet.balance += amount
    _store_balance(wallet)
    LedgerEntry.objects.create(
        wallet=wallet,
        block=block,
        kind=entry_kind,
        amount=amount,
        balance_after=wallet.balance,
        occurred_at=now,
    )
    return block


def _check_minor_digits(name: str, amount: Decimal, currency: str) -> None:
    # Refused, not rounded: the invoice must say what the caller asked for.
    if quantize_money(amount, currency) != amount:
        raise InvalidRequest(
            f"{name} has more decimals than {currency} allows",
            fields={name: ["too many decimal places"]},
        )


def _positive(name: str, value) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number", fields={name: ["must be > 0"]})
    return value


def _check_expiry(expires_at: datetime | None, *, effective_at: datetime) -> None:
    if expires_at is not None and expires_at <= effective_at:
        raise InvalidRequest(
            "expires_at must be after the block takes effect",
            fields={"expires_at": ["must be later than effective_at (default: now)"]},
        )


def credits_grant(
    *,
    customer: Customer,
    credits: Decimal,
    kind: str = CreditBlock.PROMOTIONAL,
    price: Decimal | None = None,
    priority: int = 50,
    effective_at: datetime | None = None,
    expires_at: datetime | None = None,
    note: str = "",
    now: datetime,
) -> tuple[CreditBlock, Invoice | None]:
    """Add credits. Promotional credits are free; paid credits need the price the
    customer pays for the block, which is invoiced at once (a finalized purchase
    invoice) and becomes deferred revenue."""
    credits = _positive("credits", credits)
    if kind not in dict(CreditBlock.KINDS):
        raise InvalidRequest("kind must be paid or promotional", fields={"kind": ["unknown"]})
    if kind == CreditBlock.PROMOTIONAL and price not in (None, ZERO):
        raise InvalidRequest(
            "promotional credits are free", fields={"price": ["only paid credits have a price"]}
        )
    if kind == CreditBlock.PAID:
        if price is None or not price.is_finite() or price < 0:
            raise InvalidRequest(
                "paid credits need the price paid for them",
                fields={"price": ["required for paid credits, >= 0"]},
            )
        _check_minor_digits("price", price, customer.currency)
    effective_at = effective_at or now
    _check_expiry(expires_at, effective_at=effective_at)
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        invoice = None
        if price:
            invoice = invoice_create_purchase(
                customer=customer,
                lines=[
                    LineInput(
                        kind="credits",
                        description=f"{format_decimal(credits)} credits",
                        meter=None,
                        quantity=credits,
                        unit_price=None,
                        amount=price,
                    )
                ],
                now=now,
            )
        block = _add_block(
            wallet,
            entry_kind=LedgerEntry.GRANT
            if kind == CreditBlock.PROMOTIONAL
            else LedgerEntry.PURCHASE,
            now=now,
            amount=credits,
            kind=kind,
            source=CreditBlock.GRANT,
            price_paid=price or ZERO,
            currency=customer.currency if price is not None else "",
            priority=priority,
            effective_at=effective_at,
            expires_at=expires_at,
            invoice=invoice,
            note=note[:255],
        )
    return block, invoice


def _pack_line(pack: CreditPack, credits: Decimal, price: Decimal) -> LineInput:
    """The invoice line of a pack sold at `price`."""
    description = f"{pack.name or pack.code}: {format_decimal(credits)} credits"
    return LineInput("credit_pack", description, None, Decimal(1), price, price)


def _top_up_line(currency: str, amount: Decimal) -> LineInput:
    """The invoice line of a money top-up."""
    return LineInput(
        "top_up", f"Prepaid balance top-up ({currency})", None, Decimal(1), amount, amount
    )


def _check_pack(customer: Customer, pack: CreditPack) -> None:
    if not pack.active:
        raise InvalidRequest(f"credit pack {pack.code!r} is no longer sold", fields={"pack": []})
    if str(pack.price.currency) != customer.currency:
        raise InvalidRequest(
            f"credit pack {pack.code!r} is priced in {pack.price.currency}; "
            f"customer {customer.external_id!r} pays in {customer.currency}",
            fields={"pack": ["wrong currency"]},
        )


def _buy_pack_locked(
    wallet: Wallet, *, customer: Customer, pack: CreditPack, source: str, now: datetime
) -> CreditBlock:
    price = quantize_money(pack.price.amount, customer.currency)
    invoice = invoice_create_purchase(
        customer=customer,
        lines=[_pack_line(pack, pack.credits, price)],
        now=now,
    )
    return _add_block(
        wallet,
        entry_kind=LedgerEntry.AUTO_TOP_UP
        if source == CreditBlock.AUTO_TOP_UP
        else LedgerEntry.PURCHASE,
        now=now,
        amount=pack.credits,
        kind=CreditBlock.PAID,
        source=source,
        price_paid=price,
        currency=customer.currency,
        pack=pack,
        invoice=invoice,
    )


def credit_pack_purchase(
    *, customer: Customer, pack: CreditPack, now: datetime
) -> tuple[CreditBlock, Invoice]:
    """Sell a pack: a paid block of its credits and a finalized purchase invoice
    for its price, in one transaction under the credit wallet's lock."""
    _check_pack(customer, pack)
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        block = _buy_pack_locked(
            wallet, customer=customer, pack=pack, source=CreditBlock.PACK, now=now
        )
    return block, block.invoice


def _check_top_up(customer: Customer, amount: Decimal, currency: str) -> Decimal:
    amount = _positive("amount", amount)
    if currency != customer.currency:
        raise InvalidRequest(
            f"customer {customer.external_id!r} pays in {customer.currency}, not {currency}",
            fields={"currency": [f"must be {customer.currency}"]},
        )
    _check_minor_digits("amount", amount, currency)
    return amount


def money_top_up(
    *, customer: Customer, amount: Decimal, currency: str, now: datetime
) -> tuple[CreditBlock, Invoice]:
    """Add prepaid money to the customer's money wallet, invoiced at once."""
    amount = _check_top_up(customer, amount, currency)
    with transaction.atomic():
        wallet = wallet_lock(
            wallet_get_or_create(customer=customer, kind=Wallet.MONEY, currency=currency)
        )
        invoice = invoice_create_purchase(
            customer=customer,
            lines=[_top_up_line(currency, amount)],
            now=now,
        )
        block = _add_block(
            wallet,
            entry_kind=LedgerEntry.TOP_UP,
            now=now,
            amount=amount,
            kind=CreditBlock.PAID,
            source=CreditBlock.TOP_UP,
            price_paid=amount,
            currency=currency,
            invoice=invoice,
        )
    return block, invoice


# Voiding a purchase invoice (invoices.services.invoice_void, registered in
# WalletsConfig.ready): what it sold leaves the wallet again.


def purchase_void_lock(*, invoice: Invoice) -> dict[int, Wallet]:
    """Lock the wallets holding the blocks a purchase invoice sold (one, as sold
    today), in id order, before the void locks the invoice: the order the sale
    took its locks in. A block's wallet and invoice never change, so they are read
    before the lock."""
    wallet_ids = sorted(
        set(CreditBlock.objects.filter(invoice=invoice).values_list("wallet_id", flat=True))
    )
    return {wallet_id: wallet_lock(Wallet(pk=wallet_id)) for wallet_id in wallet_ids}


def _used_message(block: CreditBlock, wallet: Wallet) -> str:
    """Why a sold block cannot be taken back whole: how much of it was used (or
    expired), in the wallet's terms."""
    money = wallet.kind == Wallet.MONEY

    def amount(value: Decimal) -> str:
        return format_money(value, wallet.currency) if money else format_decimal(value)

    expiries = LedgerEntry.objects.filter(block=block, kind=LedgerEntry.EXPIRY)
    expired = -(expiries.aggregate(total=Sum("amount"))["total"] or ZERO)
    used = block.amount - block.remaining - expired
    what = f"{wallet.currency} topped up" if money else "credits sold"
    sold = f"{amount(block.amount)} {what} on this invoice"
    if not used:
        return f"{amount(expired)} of the {sold} expired; issue a credit note instead"
    gone = f"{amount(used)} of the {sold} were already used"
    if expired:
        gone += f" and {amount(expired)} expired"
    return f"{gone}; issue a credit note for the unused part instead"


def purchase_void_take_back(*, invoice: Invoice, held: dict[int, Wallet], now: datetime) -> None:
    """Take back what a purchase invoice being voided sold, under its wallets'
    locks (purchase_void_lock) and the invoice's, in the void's transaction: each
    block leaves its wallet whole, with a `void` ledger entry of minus its amount
    and the balance after it. Refused (Conflict, nothing written) when any of it
    was used or expired: the customer keeps what they used, and a credit note
    for the unused part is the correction. An invoice that granted nothing (no
    block links to it) has nothing to take back."""
    blocks = list(CreditBlock.objects.filter(invoice=invoice).order_by("id"))
    for block in blocks:
        if block.remaining != block.amount:
            raise Conflict(_used_message(block, held[block.wallet_id]))
    for block in blocks:
        wallet = held[block.wallet_id]
        taken = block.remaining
        block.remaining = ZERO
        block.save(update_fields=["remaining"])
        wallet.balance -= taken
        _store_balance(wallet)
        LedgerEntry.objects.create(
            wallet=wallet,
            block=block,
            kind=LedgerEntry.VOID,
            amount=-taken,
            balance_after=wallet.balance,
            occurred_at=now,
        )


# Purchases paid through Stripe before anything is granted (invoices.payments).


def paid_through_stripe(amount: Decimal) -> bool:
    """Whether a sale of this price is paid through Stripe before it is granted:
    with STRIPE_API_KEY set, and something to pay."""
    return payments.enabled() and amount.is_finite() and amount > 0


def _checkout_urls(success_url: str, cancel_url: str) -> tuple[str, str]:
    success_url = success_url or settings.STRIPE_CHECKOUT_SUCCESS_URL
    if not success_url:
        raise InvalidRequest(
            "a Checkout purchase needs a success_url (or the STRIPE_CHECKOUT_SUCCESS_URL setting)",
            fields={"success_url": ["required"]},
        )
    return success_url, cancel_url or settings.STRIPE_CHECKOUT_CANCEL_URL


def _order(
    *,
    customer: Customer,
    kind: str,
    checkout: bool,
    success_url: str,
    cancel_url: str,
    now: datetime,
    **details,
) -> Purchase:
    if not payments.enabled():
        raise InvalidRequest(
            "paying through Stripe needs STRIPE_API_KEY; without it purchases are invoiced",
            fields={"checkout": ["Stripe payments are not configured"]},
        )
    urls = _checkout_urls(success_url, cancel_url) if checkout else None
    with transaction.atomic():
        purchase = payments.purchase_create(
            customer=customer,
            kind=kind,
            channel=Purchase.CHECKOUT if checkout else Purchase.CHARGE,
            now=now,
            **details,
        )
    if urls is not None:
        # After the commit: a call to Stripe never runs inside a transaction.
        purchase = payments.purchase_checkout_open(
            purchase=purchase, success_url=urls[0], cancel_url=urls[1], now=now
        )
    return purchase


def credit_pack_order(
    *,
    customer: Customer,
    pack: CreditPack,
    checkout: bool,
    success_url: str = "",
    cancel_url: str = "",
    now: datetime,
) -> Purchase:
    """Sell a pack through Stripe: a pending purchase at the pack's price now,
    paid on a Checkout page (`checkout`: the purchase carries its URL) or charged
    to the saved payment method by a worker after commit. Nothing is granted
    here: purchase_fulfil grants the credits when the payment succeeds. Opening
    the Checkout Session calls Stripe: not inside a transaction."""
    _check_pack(customer, pack)
    return _order(
        customer=customer,
        kind=Purchase.CREDIT_PACK,
        checkout=checkout,
        success_url=success_url,
        cancel_url=cancel_url,
        now=now,
        pack=pack,
        credits=pack.credits,
        amount=quantize_money(pack.price.amount, customer.currency),
    )


def money_top_up_order(
    *,
    customer: Customer,
    amount: Decimal,
    currency: str,
    checkout: bool,
    success_url: str = "",
    cancel_url: str = "",
    now: datetime,
) -> Purchase:
    """A money top-up through Stripe, as credit_pack_order sells a pack: the
    balance grows when the payment succeeds."""
    amount = _check_top_up(customer, amount, currency)
    return _order(
        customer=customer,
        kind=Purchase.TOP_UP,
        checkout=checkout,
        success_url=success_url,
        cancel_url=cancel_url,
        now=now,
        amount=amount,
    )


def auto_top_up_request(*, customer: Customer, pack: CreditPack, now: datetime) -> Purchase | None:
    """With Stripe, in the ingest transaction under the credit wallet's lock: ask
    for one auto top-up pack, charged to the saved payment method by a worker
    once the transaction commits (no call to Stripe under the lock), granted when
    the charge succeeds, tried again per the retry policy when it fails. One is
    pending at a time per customer (checked under the lock the caller holds, and a
    partial unique constraint): a short balance asks for nothing more until that
    one has succeeded or failed. None when one is pending already."""
    if Purchase.objects.filter(
        customer=customer, channel=Purchase.AUTO_TOP_UP, status=Purchase.PENDING
    ).exists():
        return None
    try:
        with transaction.atomic():
            return payments.purchase_create(
                customer=customer,
                kind=Purchase.CREDIT_PACK,
                channel=Purchase.AUTO_TOP_UP,
                pack=pack,
                credits=pack.credits,
                amount=quantize_money(pack.price.amount, customer.currency),
                now=now,
            )
    except IntegrityError:
        return None


def _alert_period_start(customer: Customer, now: datetime) -> datetime:
    """The current period of the customer's live subscription (alerts belong to
    one), or `now` for a customer without one."""
    start = (
        Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE)
        .order_by("-current_period_start")
        .values_list("current_period_start", flat=True)
        .first()
    )
    return start or now


def purchase_fulfil(*, purchase: Purchase, reference: str, now: datetime) -> CreditBlock:
    """Grant what a purchase paid through Stripe buys, once: a paid block of its
    credits (or money) at the price recorded when it was ordered, and its
    purchase invoice, finalized and paid with `reference` (the Stripe payment).
    Under the wallet's lock, then the purchase's; a purchase granted already
    returns its block. Called by invoices.payments when the payment succeeds,
    whatever the purchase's status was by then: money received is granted. An
    auto top-up raises the auto_top_up alert.

    Usage that arrived while the payment was pending stays uncovered: the grant
    pays for what comes after it."""
    money = purchase.kind == Purchase.TOP_UP
    currency = purchase.currency
    with transaction.atomic():
        wallet = wallet_lock(
            wallet_get_or_create(
                customer=purchase.customer,
                kind=Wallet.MONEY if money else Wallet.CREDITS,
                currency=currency if money else "",
            )
        )
        purchase = (
            Purchase.objects.select_for_update(of=("self",))
            .select_related("pack", "customer", "block")
            .get(pk=purchase.pk)
        )
        if purchase.block_id is not None:
            return purchase.block
        customer, amount = purchase.customer, purchase.amount
        if money:
            line = _top_up_line(currency, amount)
            entry_kind, source, granted = LedgerEntry.TOP_UP, CreditBlock.TOP_UP, amount
        else:
            line = _pack_line(purchase.pack, purchase.credits, amount)
            automatic = purchase.channel == Purchase.AUTO_TOP_UP
            entry_kind = LedgerEntry.AUTO_TOP_UP if automatic else LedgerEntry.PURCHASE
            source = CreditBlock.AUTO_TOP_UP if automatic else CreditBlock.PACK
            granted = purchase.credits
        invoice = invoice_create_purchase(
            customer=customer, lines=[line], now=now, paid_reference=reference
        )
        block = _add_block(
            wallet,
            entry_kind=entry_kind,
            now=now,
            amount=granted,
            kind=CreditBlock.PAID,
            source=source,
            price_paid=amount,
            currency=currency,
            pack=purchase.pack,
            invoice=invoice,
        )
        purchase.status = Purchase.PAID
        purchase.paid_at = now
        purchase.closed_at = None
        purchase.block = block
        purchase.invoice = invoice
        purchase.save(update_fields=["status", "paid_at", "closed_at", "block", "invoice"])
        if source == CreditBlock.AUTO_TOP_UP:
            alerts.alert_raise(
                customer=customer,
                kind="auto_top_up",
                period_start=_alert_period_start(customer, now),
                key=f"block:{block.pk}",
                payload={
                    "pack": purchase.pack.code,
                    "credits": format_decimal(block.amount),
                    "price": format_money(block.price_paid, block.currency),
                    "currency": block.currency,
                    "invoice": invoice.number,
                    "balance": format_decimal(wallet.balance),
                },
                now=now,
            )
    return block


def auto_top_up_set(
    *, customer: Customer, enabled: bool, threshold: Decimal, pack: CreditPack
) -> AutoTopUp:
    """Turn auto top-up on or off for the customer's credit wallet. Turning it off
    is always possible, also when its pack is no longer sold."""
    if not isinstance(threshold, Decimal) or not threshold.is_finite() or threshold < 0:
        raise InvalidRequest("threshold must be a number >= 0", fields={"threshold": [">= 0"]})
    if enabled:
        _check_pack(customer, pack)
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        setting, _ = AutoTopUp.objects.update_or_create(
            wallet=wallet, defaults={"enabled": enabled, "threshold": threshold, "pack": pack}
        )
    return setting


def period_credits_grant(
    *,
    subscription,
    credits: Decimal,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
) -> CreditBlock | None:
    """Grant a plan's credits for one period, expiring at its end. Idempotent per
    (subscription, period): a second call grants nothing (checked under the
    wallet's lock, and backed by a unique constraint)."""
    customer = subscription.customer
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        if CreditBlock.objects.filter(
            wallet=wallet,
            source=CreditBlock.PERIOD_GRANT,
            subscription=subscription,
            period_start=period_start,
        ).exists():
            return None
        return _add_block(
            wallet,
            entry_kind=LedgerEntry.PERIOD_GRANT,
            now=now,
            amount=credits,
            kind=CreditBlock.PROMOTIONAL,
            source=CreditBlock.PERIOD_GRANT,
            subscription=subscription,
            period_start=period_start,
            effective_at=period_start,
            expires_at=period_end,
        )


@dataclass(frozen=True, slots=True)
class UsageDraw:
    """One event's cost on one wallet: `cost` credits or money for `units` of a meter."""

    kind: str
    currency: str
    meter: str
    units: Decimal
    cost: Decimal


@dataclass
class CustomerDraws:
    customer: Customer
    # The period alerts belong to (the live subscription's current period).
    period_start: datetime
    draws: list[UsageDraw]


@dataclass
class _Drawing:
    """One locked wallet while a batch's usage is drawn from it."""

    wallet: Wallet
    blocks: list[CreditBlock]
    auto: AutoTopUp | None
    entries: list[LedgerEntry] = field(default_factory=list)
    # (block, meter) -> [amount, units] drawn since the last entry was written.
    pending: dict[tuple[int, str], list[Decimal]] = field(default_factory=dict)
    pending_from: Decimal = ZERO
    uncovered: dict[str, list[Decimal]] = field(default_factory=dict)
    touched: dict[int, CreditBlock] = field(default_factory=dict)
    top_ups: list[CreditBlock] = field(default_factory=list)
    # With Stripe: this batch asked for its auto top-up pack already.
    top_up_requested: bool = False

    def flush(self, now: datetime) -> None:
        running = self.pending_from
        for (block_id, meter), (amount, units) in self.pending.items():
            running -= amount
            self.entries.append(
                LedgerEntry(
                    wallet=self.wallet,
                    block_id=block_id,
                    kind=LedgerEntry.USAGE,
                    amount=-amount,
                    balance_after=running,
                    meter=meter,
                    quantity=units,
                    occurred_at=now,
                )
            )
        self.pending = {}
        self.pending_from = self.wallet.balance

    def available(self) -> Decimal:
        """What the blocks in effect can still pay. The stored balance also counts
        blocks that take effect later, which cannot pay now."""
        return sum((block.remaining for block in self.blocks), ZERO)

    def take(self, draw: UsageDraw) -> None:
        wanted = draw.cost
        for block in self.blocks:
            if wanted <= 0:
                break
            taken = min(block.remaining, wanted)
            if taken <= 0:
                continue
            block.remaining -= taken
            wanted -= taken
            self.touched[block.pk] = block
            share = draw.units * taken / draw.cost
            pending = self.pending.setdefault((block.pk, draw.meter), [ZERO, ZERO])
            pending[0] += taken
            pending[1] += share
        self.wallet.balance -= draw.cost - wanted
        if wanted > 0:
            missing = self.uncovered.setdefault(draw.meter, [ZERO, ZERO])
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
        self.flush(now)
        # The purchase writes its own block and ledger entry; entries written so far
        # go first so the ledger keeps its order.
        LedgerEntry.objects.bulk_create(self.entries)
        self.entries = []
        self._save_blocks()
        block = _buy_pack_locked(
            self.wallet,
            customer=customer,
            pack=pack,
            source=CreditBlock.AUTO_TOP_UP,
            now=now,
        )
        self.blocks.append(block)
        self.blocks.sort(key=_block_order)
        self.top_ups.append(block)
        self.pending_from = self.wallet.balance

    def _save_blocks(self) -> None:
        if self.touched:
            CreditBlock.objects.bulk_update(self.touched.values(), ["remaining"])
            self.touched = {}

    def save(self, customer: Customer, now: datetime) -> None:
        self.flush(now)
        LedgerEntry.objects.bulk_create(self.entries)
        self._save_blocks()
        _store_balance(self.wallet)
        UncoveredUsage.objects.bulk_create(
            UncoveredUsage(
                wallet=self.wallet,
                customer=customer,
                meter=meter,
                quantity=units,
                shortfall=shortfall,
                occurred_at=now,
            )
            for meter, (units, shortfall) in self.uncovered.items()
        )


def usage_draw(*, batch: list[CustomerDraws], now: datetime) -> None:
    """Draw a batch's usage from the customers' wallets, event by event in the
    order given, inside the caller's (the ingest) transaction.

    Locks every wallet involved in id order (no deadlock between batches). A
    wallet that cannot cover an event pays what it has and the rest is recorded
    as uncovered usage; the balance never goes below zero. With auto top-up on,
    one pack is bought each time the balance crosses the threshold downwards,
    and one when an event finds the balance short, so that concurrent batches buy
    exactly the packs their crossings call for (they are serialized by the lock).
    Low balance and auto top-up alerts are raised once per period."""
    keys = {(cd.customer.pk, d.kind, d.currency) for cd in batch for d in cd.draws}
    if not keys:
        return
    wallets_ensure(keys=keys)
    locked = wallets_lock(keys=keys)
    usable = _usable_blocks([w.pk for w in locked.values()], now)
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
                    pending_from=wallet.balance,
                )
            auto = drawing.auto
            if auto and drawing.available() < draw.cost:
                drawing.top_up(customer, now)
            before = drawing.wallet.balance
            drawing.take(draw)
            if auto and before > auto.threshold >= drawing.wallet.balance:
                drawing.top_up(customer, now)
        for drawing in drawings.values():
            drawing.save(customer, now)
            _balance_alerts(drawing, customer, customer_draws.period_start, now)


def _balance_alerts(
    drawing: _Drawing, customer: Customer, period_start: datetime, now: datetime
) -> None:
    wallet = drawing.wallet
    name = wallet.kind if wallet.kind == Wallet.CREDITS else f"money:{wallet.currency}"

    def amount(value: Decimal) -> str:
        # Money as money ("0.00"), credits as a plain number.
        if wallet.kind == Wallet.MONEY:
            return format_money(value, wallet.currency)
        return format_decimal(value)

    threshold = wallet.low_balance_threshold
    if threshold is None:
        threshold = ZERO
    if wallet.balance <= threshold and not drawing.top_ups:
        alerts.alert_raise(
            customer=customer,
            kind="low_balance",
            period_start=period_start,
            key=f"{name}:{format_decimal(threshold)}",
            payload={
                "wallet": wallet.kind,
                "currency": wallet.currency or None,
                "balance": amount(wallet.balance),
                "threshold": amount(threshold),
            },
            now=now,
        )
    for block in drawing.top_ups:
        alerts.alert_raise(
            customer=customer,
            kind="auto_top_up",
            period_start=period_start,
            key=f"block:{block.pk}",
            payload={
                "pack": block.pack.code,
                "credits": format_decimal(block.amount),
                "price": format_money(block.price_paid, block.currency),
                "currency": block.currency,
                "invoice": block.invoice.number,
                "balance": format_decimal(wallet.balance),
            },
            now=now,
        )


def credits_expire(*, now: datetime) -> int:
    """Expire every block whose expiry time has passed: one ledger entry of minus
    its remainder each, under its wallet's lock. Safe to run any number of times
    (an expired block is marked and never expires twice). Returns the number of
    blocks expired."""
    wallet_ids = list(
        CreditBlock.objects.filter(expires_at__lte=now, remaining__gt=0, expired_at__isnull=True)
        .values_list("wallet_id", flat=True)
        .distinct()
        .order_by("wallet_id")
    )
    expired = 0
    for wallet_id in wallet_ids:
        with transaction.atomic():
            wallet = wallet_lock(Wallet(pk=wallet_id))
            blocks = CreditBlock.objects.filter(
                wallet=wallet, expires_at__lte=now, remaining__gt=0, expired_at__isnull=True
            ).order_by("expires_at", "id")
            for block in blocks:
                lost = block.remaining
                wallet.balance -= lost
                block.remaining = ZERO
                block.expired_at = now
                block.save(update_fields=["remaining", "expired_at"])
                LedgerEntry.objects.create(
                    wallet=wallet,
                    block=block,
                    kind=LedgerEntry.EXPIRY,
                    amount=-lost,
                    balance_after=wallet.balance,
                    occurred_at=block.expires_at,
                )
                expired += 1
            _store_balance(wallet)
    return expired
