"""The wallet ledger: wallets, credit blocks and their grants, balances and
expiry.

Every balance change holds the wallet's row lock (wallets.locks), appends one
ledger entry per block it touches with the balance after it, and keeps the
stored balance equal to the sum of the blocks' remainders."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Subscription
from common import customer_text
from common.customer_text import money_text
from common.errors import Conflict, InvalidRequest
from common.money import quantize_amount, quantize_money
from customers.models import Customer
from invoices.models import Invoice
from invoices.services import invoice_create_purchase
from plans.meter_scope import meter_scope_checked
from plans.rating import LineInput
from wallets.journal_entries import journal_commit_expired, journal_credits_expired
from wallets.locks import wallet_lock
from wallets.models import CreditBlock, LedgerEntry, Wallet
from wallets.selectors import blocks_in_effect

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


def store_balance(wallet: Wallet) -> None:
    """Write a locked wallet's new balance. The ledger is the balance's history, so
    this bypasses the model's audit history (kept for settings changed by people)."""
    wallet.updated_at = timezone.now()
    Wallet.objects.filter(pk=wallet.pk).update(balance=wallet.balance, updated_at=wallet.updated_at)


def block_order(block: CreditBlock) -> tuple:
    # Priority, then soonest expiry (none: last), then oldest.
    return (
        block.priority,
        block.expires_at is None,
        block.expires_at or block.created_at,
        block.created_at,
        block.pk,
    )


def usable_blocks(wallet_ids: list[int], now: datetime) -> dict[int, list[CreditBlock]]:
    usable: dict[int, list[CreditBlock]] = {w: [] for w in wallet_ids}
    blocks = blocks_in_effect(wallet_ids=wallet_ids, now=now).order_by("id")
    for block in blocks:
        usable[block.wallet_id].append(block)
    for blocks_of_wallet in usable.values():
        blocks_of_wallet.sort(key=block_order)
    return usable


def add_block(
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
    store_balance(wallet)
    LedgerEntry.objects.create(
        wallet=wallet,
        block=block,
        kind=entry_kind,
        amount=amount,
        balance_after=wallet.balance,
        occurred_at=now,
    )
    return block


@dataclass(frozen=True, slots=True)
class BlockDraw:
    """What one draw takes out of one block: an amount and, for usage counted by
    meter, the meter and the units it paid for."""

    block: CreditBlock
    amount: Decimal
    meter: str = ""
    quantity: Decimal | None = None


def draw(
    wallet: Wallet,
    draws: Sequence[BlockDraw],
    *,
    occurred_at: datetime,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    invoice: Invoice | None = None,
) -> list[LedgerEntry]:
    """The one writer of what usage draws from a wallet: ingestion's batches
    (wallets.drawdown) and the close's commit draws (wallets.commits), under the
    wallet's row lock the caller holds. Each draw comes out of its block (refused,
    Conflict, when the block holds less: the caller's transaction fails whole) and
    out of the balance, in the order given, with one usage entry each carrying the
    balance after it (and the period and invoice of a close's draw); the blocks,
    the entries and the balance are written once for all of them."""
    entries = []
    for each in draws:
        block = each.block
        if block.remaining < each.amount:
            raise Conflict(f"credit block {block.pk} has {block.remaining} left, not {each.amount}")
        block.remaining -= each.amount
        wallet.balance -= each.amount
        entries.append(
            LedgerEntry(
                wallet=wallet,
                block=block,
                kind=LedgerEntry.USAGE,
                amount=-each.amount,
                balance_after=wallet.balance,
                meter=each.meter,
                quantity=each.quantity,
                period_start=period_start,
                period_end=period_end,
                invoice=invoice,
                occurred_at=occurred_at,
            )
        )
    if not entries:
        return entries
    written = LedgerEntry.objects.bulk_create(entries)
    CreditBlock.objects.bulk_update({d.block.pk: d.block for d in draws}.values(), ["remaining"])
    store_balance(wallet)
    return written


def check_minor_digits(name: str, amount: Decimal, currency: str) -> None:
    # Refused, not rounded: the invoice must say what the caller asked for.
    if quantize_money(amount, currency) != amount:
        raise InvalidRequest(
            f"{name} has more decimals than {currency} allows",
            fields={name: ["too many decimal places"]},
            words=(
                f"{currency} amounts have {_digits_words(currency)}: "
                f"type {money_text(quantize_money(amount, currency), currency)} or another "
                "amount they allow"
            ),
        )


def _digits_words(currency: str) -> str:
    """'at most 2 decimals', 'no decimals' (JPY)."""
    digits = -quantize_money(Decimal(1), currency).as_tuple().exponent
    return f"at most {digits} decimals" if digits else "no decimals"


def positive(name: str, value) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidRequest(
            f"{name} must be a positive number",
            fields={name: ["must be > 0"]},
            words="Type an amount greater than zero.",
        )
    return value


def check_expiry(expires_at: datetime | None, *, effective_at: datetime) -> None:
    if expires_at is not None and expires_at <= effective_at:
        raise InvalidRequest(
            "expires_at must be after the block takes effect",
            fields={"expires_at": ["must be later than effective_at (default: now)"]},
            words=(
                f"The credits would expire ({expires_at:%Y-%m-%d %H:%M} UTC) before they "
                f"take effect ({effective_at:%Y-%m-%d %H:%M} UTC): choose a later expiry "
                "or leave it empty for never."
            ),
        )


def credits_description(customer: Customer, credits: Decimal) -> str:
    """'1,000 credits', in the customer's language."""
    with customer_text.speaking(customer.locale):
        return _("{credits} credits").format(credits=customer_text.quantity(credits))


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
    applies_to: list[str] | None = None,
    now: datetime,
) -> tuple[CreditBlock, Invoice | None]:
    """Add credits. Promotional credits are free; paid credits need the price the
    customer pays for the block, which is invoiced at once (a finalized purchase
    invoice) and becomes deferred revenue. `applies_to`: the meters the credits
    pay for (none: every meter)."""
    credits = positive("credits", credits)
    applies_to = meter_scope_checked(applies_to or [])
    if kind not in CreditBlock.GRANTED:
        raise InvalidRequest("kind must be paid or promotional", fields={"kind": ["unknown"]})
    if kind == CreditBlock.PROMOTIONAL and price not in (None, ZERO):
        raise InvalidRequest(
            "promotional credits are free",
            fields={"price": ["only paid credits have a price"]},
            words="Promotional credits are free: leave the price empty, or sell the credits.",
        )
    if kind == CreditBlock.PAID:
        if price is None or not price.is_finite() or price < 0:
            raise InvalidRequest(
                "paid credits need the price paid for them",
                fields={"price": ["required for paid credits, >= 0"]},
                words="Type the price paid for the credits (zero or more).",
            )
        check_minor_digits("price", price, customer.currency)
    effective_at = effective_at or now
    check_expiry(expires_at, effective_at=effective_at)
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        invoice = None
        if price:
            invoice = invoice_create_purchase(
                customer=customer,
                lines=[
                    LineInput(
                        kind="credits",
                        description=credits_description(customer, credits),
                        meter=None,
                        quantity=credits,
                        unit_price=None,
                        amount=price,
                    )
                ],
                now=now,
            )
        block = add_block(
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
            applies_to=applies_to,
        )
    return block, invoice


def period_credits_grant(
    *,
    subscription,
    credits: Decimal,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    rollover_percent: Decimal | None = None,
    rollover_expires_at: datetime | None = None,
) -> CreditBlock | None:
    """Grant a plan's credits for one period, expiring at its end; with a
    rollover, `rollover_percent` of what is left then rolls over into a block
    expiring at `rollover_expires_at` (credits_expire), as stored on the block
    now. Idempotent per (subscription, period): a second call grants nothing
    (checked under the wallet's lock, and backed by a unique constraint)."""
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
        return add_block(
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
            rollover_percent=rollover_percent,
            rollover_expires_at=rollover_expires_at if rollover_percent is not None else None,
        )


def credits_expire(*, now: datetime) -> int:
    """Expire every block whose expiry time has passed: one ledger entry of minus
    its remainder each, under its wallet's lock; a period's plan credits that
    roll over carry their share of it into a rollover block first
    (rollover_carry). Safe to run any number of times, at once (an expired
    block is marked under the lock and never expires twice). Returns the number
    of blocks expired."""
    # A commit's access expires with the close of its period (wallets.commits), not here.
    wallet_ids = list(
        CreditBlock.objects.filter(expires_at__lte=now, remaining__gt=0, expired_at__isnull=True)
        .exclude(kind=CreditBlock.COMMIT)
        .values_list("wallet_id", flat=True)
        .distinct()
        .order_by("wallet_id")
    )
    expired = 0
    for wallet_id in wallet_ids:
        with transaction.atomic():
            wallet = wallet_lock(Wallet(pk=wallet_id))
            due = (
                CreditBlock.objects.filter(
                    wallet=wallet, expires_at__lte=now, remaining__gt=0, expired_at__isnull=True
                )
                .exclude(kind=CreditBlock.COMMIT)
                .select_related("subscription")
                .order_by("expires_at", "id")
            )
            # Again while there are any: a rollover made here may be past its own expiry.
            while blocks := list(due.all()):
                expired += blocks_expire(wallet, blocks, now=now)
            store_balance(wallet)
    return expired


def blocks_expire(
    wallet: Wallet, blocks: list[CreditBlock], *, now: datetime, rollover: bool = True
) -> int:
    """Expire these due blocks of a locked wallet (credits_expire's; a commit's at
    its close, or at `now` when it ends early): each carries its rollover first
    (unless `rollover` is off), loses the rest with a ledger entry, and its
    breakage is journaled. The caller stores the balance."""
    expired = 0
    for block in blocks:
        left = block.remaining
        rolled = rollover_carry(wallet, block) if rollover else ZERO
        lost = block.remaining - rolled
        wallet.balance -= lost
        block.remaining = ZERO
        block.expired_at = now
        block.save(update_fields=["remaining", "expired_at"])
        entry = None
        if lost:
            entry = LedgerEntry.objects.create(
                wallet=wallet,
                block=block,
                kind=LedgerEntry.EXPIRY,
                amount=-lost,
                balance_after=wallet.balance,
                occurred_at=min(block.expires_at, now),
            )
        if block.kind != CreditBlock.COMMIT:
            journal_credits_expired(customer_id=wallet.customer_id, block=block, left=left, now=now)
        elif entry is not None:
            journal_commit_expired(block=block, entry=entry, now=now)
        expired += 1
    return expired


def _goes_on_after(subscription: Subscription | None, moment: datetime) -> bool:
    """Whether the subscription is still running after `moment`: not ended at or
    before it, and not ending then (a cancel at that period's end, which the
    close may not have applied yet)."""
    if subscription is None:
        return False
    if subscription.ended_at is not None:
        return subscription.ended_at > moment
    if subscription.status not in Subscription.LIVE:
        return False
    return not (subscription.cancel_at_period_end and subscription.current_period_end <= moment)


def rollover_carry(wallet: Wallet, block: CreditBlock) -> Decimal:
    """At the expiry of a period's plan credits (or commit access) that roll over
    (in blocks_expire, under the wallet's lock, the block not yet marked
    expired): carry the block's rollover percent of what is left, rounded down
    to what an amount (money: its minor unit) stores, into a new block of its
    kind that takes effect at the period's end and expires when the grant said,
    drawn before the next periods' (a priority step ahead) and never rolled
    over again. Two ledger entries: the balance does not move. Nothing for plan
    credits when the subscription ended with the period. Returns what was
    carried; the rest is the caller's to expire."""
    if block.rollover_percent is None:
        return ZERO
    if block.source == CreditBlock.PERIOD_GRANT and not _goes_on_after(
        block.subscription, block.expires_at
    ):
        return ZERO
    with localcontext(prec=100):  # exact before the one rounding
        share = block.remaining * block.rollover_percent / 100
    if wallet.currency:
        rolled = quantize_money(share, wallet.currency, down=True)
    else:
        rolled = quantize_amount(share, down=True)
    if rolled <= 0:
        return ZERO
    wallet.balance -= rolled
    LedgerEntry.objects.create(
        wallet=wallet,
        block=block,
        kind=LedgerEntry.ROLLOVER,
        amount=-rolled,
        balance_after=wallet.balance,
        occurred_at=block.expires_at,
    )
    add_block(
        wallet,
        entry_kind=LedgerEntry.ROLLOVER,
        now=block.expires_at,
        amount=rolled,
        kind=block.kind,
        source=CreditBlock.ROLLOVER,
        priority=block.priority - 1,
        subscription=block.subscription,
        commit_id=block.commit_id,
        currency=block.currency,
        applies_to=block.applies_to,
        rolled_over_from=block,
        effective_at=block.expires_at,
        expires_at=block.rollover_expires_at,
    )
    return rolled
