"""What a credit note on a purchase invoice takes back of what the invoice sold
(registered with invoices.reactions.TAKE_BACKS by wallets.apps): every credit
note on it, the one a void issues for all that is left included.

A note's share is what it credits (before tax) over the invoice's taxable
amount, the base the credit notes' limits use (a purchase invoice has one line,
which sold its blocks). Each block the invoice sold gives back its amount times
the share, credits in proportion and money by amount, rounded on the running
total (the share credited by this note and those before it, less what those
took), so that notes crediting the whole line take back exactly the whole
block, never more. It leaves the block in the note's transaction, under the
wallet's lock, with a ledger entry of its own (`credit_note`, or `void` for a
void's note) linked to the block and the note. A share the block no longer
holds (part of it was used or expired) is refused with the numbers and the most
that can still be credited: the customer keeps what they used. (A prepaid
commit's invoice sold its access blocks: _commit_plan.)"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from billing.locks import subscription_lock
from common.errors import Conflict
from common.money import (
    currency_exponent,
    format_decimal,
    format_money,
    quantize_amount,
    quantize_money,
)
from invoices.models import CreditNote, Invoice
from plans.meter_scope import draw_in_order
from wallets.commit_models import Commit
from wallets.ledger import store_balance
from wallets.locks import wallet_lock
from wallets.models import CreditBlock, LedgerEntry, Wallet

ZERO = Decimal(0)
# Ledger entries of what credit notes (a void's included) took back.
TAKEN_BACK = LedgerEntry.TAKEN_BACK


@dataclass(frozen=True)
class BlockTakeBack:
    """What a credit note takes back of one block: `amount` credits, or money of
    the block's wallet's currency."""

    block: CreditBlock
    amount: Decimal

    def __str__(self) -> str:
        wallet = self.block.wallet
        if wallet.kind == Wallet.COMMIT:
            return f"{format_money(self.amount, wallet.currency)} of the commit's access"
        if wallet.kind == Wallet.MONEY:
            return f"{format_money(self.amount, wallet.currency)} {wallet.currency} of the balance"
        return f"{format_decimal(self.amount)} credits"


def _sold(invoice: Invoice):
    """The blocks the invoice sold: a commit's, its access and their rollovers."""
    if invoice.reason == Invoice.COMMIT:
        return CreditBlock.objects.filter(commit__invoice=invoice)
    return CreditBlock.objects.filter(invoice=invoice)


def take_back_lock(*, invoice: Invoice) -> dict[int, Wallet]:
    """Lock the wallets holding the blocks the invoice sold (one, as sold today)
    in id order, before the invoice's lock: the order a sale takes the wallet and
    invoice locks in; a commit's subscription first, as every writer of a commit
    holds it. The caller holds the customer's, which comes first
    (invoices.credit_notes.credit_note_locks, billing.locks). A block's wallet and
    invoice never change, so they are read before the lock."""
    if invoice.reason == Invoice.COMMIT and invoice.subscription_id:
        subscription_lock(invoice.subscription_id)
    wallet_ids = sorted(set(_sold(invoice).values_list("wallet_id", flat=True)))
    return {wallet_id: wallet_lock(Wallet(pk=wallet_id)) for wallet_id in wallet_ids}


def _share(block: CreditBlock, credited: Decimal, taxable: Decimal) -> Decimal:
    """What notes crediting `credited` of the invoice's `taxable` amount take
    back of the block in all: exactly the block when everything is credited."""
    if credited >= taxable:
        return block.amount
    if credited <= 0:
        return ZERO
    exact = block.amount * credited / taxable
    if block.wallet.kind == Wallet.MONEY:
        return quantize_money(exact, block.wallet.currency)
    return quantize_amount(exact)


def _taken(
    block: CreditBlock, credited_before: Decimal, credited_after: Decimal, taxable: Decimal
) -> Decimal:
    return _share(block, credited_after, taxable) - _share(block, credited_before, taxable)


def _most_creditable(
    block: CreditBlock, credited_before: Decimal, taxable: Decimal, currency: str
) -> Decimal:
    """The most a note can still credit (before tax, in the invoice's currency)
    and find its share in what the block holds."""
    if block.remaining >= block.amount - _share(block, credited_before, taxable):
        return taxable - credited_before
    # The credited total whose share is all the block gave and still holds,
    # rounded to the minor unit, then down by a unit while its share is more.
    ceiling = _share(block, credited_before, taxable) + block.remaining
    credited = min(quantize_money(ceiling * taxable / block.amount, currency), taxable)
    unit = Decimal(1).scaleb(-currency_exponent(currency))
    while credited > credited_before and (
        _taken(block, credited_before, credited, taxable) > block.remaining
    ):
        credited -= unit
    return max(credited - credited_before, ZERO)


def _refusal(block: CreditBlock, most: Decimal, currency: str) -> str:
    """Why a share of the block cannot be taken back: how much of it was used
    (or expired), in the wallet's terms, and the most that can be credited."""
    wallet = block.wallet
    money = wallet.kind == Wallet.MONEY

    def amount(value: Decimal) -> str:
        return format_money(value, wallet.currency) if money else format_decimal(value)

    totals = dict(
        LedgerEntry.objects.filter(block=block, kind__in=(LedgerEntry.EXPIRY, *TAKEN_BACK))
        .values("kind")
        .annotate(total=Sum("amount"))
        .values_list("kind", "total")
    )
    expired = -totals.get(LedgerEntry.EXPIRY, ZERO)
    taken = -sum((totals.get(kind, ZERO) for kind in TAKEN_BACK), ZERO)
    used = block.amount - block.remaining - expired - taken
    what = f"{wallet.currency} topped up" if money else "credits sold"
    sold = f"{amount(block.amount)} {what} on this invoice"
    if expired and not used:
        gone = f"{amount(expired)} of the {sold} expired"
    else:
        gone = f"{amount(used)} of the {sold} were already used"
        if expired:
            gone += f" and {amount(expired)} expired"
    if most > 0:
        return f"{gone}; at most {quantize_money(most, currency)} of this line can be credited"
    return f"{gone}; nothing more of this line can be credited"


def take_back_plan(
    *, invoice: Invoice, credited_before: Decimal, credited_after: Decimal
) -> list[BlockTakeBack]:
    """What a credit note taking the invoice's credited amount (before tax) from
    `credited_before` to `credited_after` takes back of each block the invoice
    sold. Reads only; Conflict, with the numbers and the most that can still be
    credited, when a block no longer holds its share. An invoice that granted
    nothing (no block links to it) has nothing to take back."""
    if invoice.reason == Invoice.COMMIT:
        return _commit_plan(invoice, credited_after - credited_before)
    taxable = invoice.taxable_amount
    if taxable <= 0 or credited_after <= credited_before:
        return []
    blocks = list(
        CreditBlock.objects.filter(invoice=invoice).select_related("wallet").order_by("id")
    )
    parts = [
        BlockTakeBack(block, _taken(block, credited_before, credited_after, taxable))
        for block in blocks
    ]
    short = [part.block for part in parts if part.amount > part.block.remaining]
    if short:
        most = min(
            _most_creditable(block, credited_before, taxable, invoice.currency) for block in blocks
        )
        raise Conflict(_refusal(short[0], most, invoice.currency))
    return [part for part in parts if part.amount > 0]


def _commit_plan(invoice: Invoice, wanted: Decimal) -> list[BlockTakeBack]:
    """What a note crediting `wanted` (before tax) of a commit's invoice takes out
    of its access blocks left, latest first (the term's future periods); what
    was drawn or expired stays billed: Conflict with the numbers."""
    commit = Commit.objects.filter(invoice=invoice).first()
    if commit is None or wanted <= 0:
        return []
    rows = list(
        _sold(invoice)
        .filter(expired_at__isnull=True, remaining__gt=0)
        .select_related("wallet")
        .order_by("-expires_at", "-id")
    )
    left = sum((row.remaining for row in rows), ZERO)
    if wanted > left:
        currency = commit.currency
        raise Conflict(
            f"{format_money(commit.amount - left, currency)} of the "
            f"{format_money(commit.amount, currency)} {currency} committed on this invoice "
            f"was already drawn or expired; at most {format_money(left, currency)} can be "
            "credited"
        )
    return [BlockTakeBack(block, taken) for block, taken in draw_in_order(rows, wanted)]


def take_back_write(
    *, parts: list[BlockTakeBack], held: dict[int, Wallet], note: CreditNote, now: datetime
) -> None:
    """Take the planned parts out of their blocks and wallets, which the caller
    holds locked (take_back_lock; the plan was read under those locks):
    one ledger entry each, of minus the amount, with the balance after it and
    the credit note."""
    kind = LedgerEntry.VOID if note.voids_invoice else LedgerEntry.CREDIT_NOTE
    for part in parts:
        block, wallet = part.block, held[part.block.wallet_id]
        block.remaining -= part.amount
        block.save(update_fields=["remaining"])
        wallet.balance -= part.amount
        store_balance(wallet)
        LedgerEntry.objects.create(
            wallet=wallet,
            block=block,
            kind=kind,
            amount=-part.amount,
            balance_after=wallet.balance,
            credit_note=note,
            occurred_at=now,
        )
