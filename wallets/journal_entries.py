"""The journal entries of wallets: credits (or prepaid money) used are revenue
at what they were sold for (Dr deferred revenue, Cr revenue per meter), and
what expires unused is breakage (Dr deferred revenue, Cr breakage). Valued as
wallets.revenue values them, on each block's running totals, so that the
journal and the revenue report say the same to the cent. Their sale (the
purchase invoice) is journaled with the invoice (invoices.journal_entries).
A prepaid commit's access block that expires unused is breakage too, at face
value; its drawdown is on the closing invoice."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum

from billing.journal.models import AccountKind, DocumentType
from billing.journal.writer import Document, Leg, journal_write
from wallets.models import CreditBlock, LedgerEntry
from wallets.valuation import block_recognized, block_undone

ZERO = Decimal(0)


def priced(block: CreditBlock) -> bool:
    """Whether the block was sold: promotional and free credits carry no revenue."""
    return block.kind == CreditBlock.PAID and block.price_paid > 0


def taken_back(block_ids: list[int]) -> dict[int, Decimal]:
    """Block id -> what credit notes took back of it so far (positive)."""
    rows = (
        LedgerEntry.objects.filter(block_id__in=block_ids, kind__in=LedgerEntry.TAKEN_BACK)
        .values("block_id")
        .annotate(total=Sum("amount"))
        .values_list("block_id", "total")
    )
    return {block_id: -total for block_id, total in rows}


def consumption_legs(
    block: CreditBlock, used_before: Decimal, draws: list[tuple[str, Decimal]], taken: Decimal
) -> list[Leg]:
    """The legs of `draws` (meter, amount drawn) from a block that had
    `used_before` used: each meter's revenue is the step of the block's running
    recognized total (block_recognized) its draw makes."""
    legs = []
    used = used_before
    before = block_recognized(block.price_paid, block.amount, used, taken, block.currency)
    for meter, amount in draws:
        used += amount
        after = block_recognized(block.price_paid, block.amount, used, taken, block.currency)
        legs += [
            Leg(AccountKind.DEFERRED_REVENUE, after - before),
            Leg(AccountKind.REVENUE, before - after, meter=meter),
        ]
        before = after
    return legs


def journal_credits_consumed(
    *,
    customer_id: int,
    wallet_id: int,
    blocks: list[CreditBlock],
    drawn: dict[tuple[int, str], Decimal],
    first_entry_id: int,
    now: datetime,
) -> None:
    """One document for what a batch drew from a wallet's sold blocks
    (`drawn`: (block id, meter) -> amount, in draw order; each block's
    `remaining` is after the batch). Keyed by the batch's first ledger entry."""
    by_id = {block.pk: block for block in blocks if priced(block)}
    wanted = [(key, amount) for key, amount in drawn.items() if key[0] in by_id and amount]
    if not wanted:
        return
    taken = taken_back(sorted({block_id for (block_id, _), _ in wanted}))
    per_block: dict[int, list[tuple[str, Decimal]]] = {}
    for (block_id, meter), amount in wanted:
        per_block.setdefault(block_id, []).append((meter, amount))
    legs_by_currency: dict[str, list[Leg]] = {}
    for block_id, draws in per_block.items():
        block = by_id[block_id]
        back = taken.get(block_id, ZERO)
        used_after = block.amount - block.remaining - back
        used_before = used_after - sum((amount for _, amount in draws), ZERO)
        legs_by_currency.setdefault(block.currency, []).extend(
            consumption_legs(block, used_before, draws, back)
        )
    for currency, legs in sorted(legs_by_currency.items()):
        journal_write(
            document=Document(
                type=DocumentType.CONSUMPTION,
                number=f"WALLET-{wallet_id}",
                key=f"consumption:{first_entry_id}:{currency}",
                customer_id=customer_id,
                currency=currency,
                on=now,
            ),
            legs=legs,
            now=now,
        )


def expiry_legs(block: CreditBlock, left: Decimal, taken: Decimal) -> list[Leg]:
    """What a sold block that expires with `left` unused still defers: all of
    its price neither recognized nor taken back becomes breakage."""
    used = block.amount - left - taken
    recognized = block_recognized(block.price_paid, block.amount, used, taken, block.currency)
    undone = block_undone(block.price_paid, block.amount, taken, block.currency)
    breakage = block.price_paid - recognized - undone
    return [
        Leg(AccountKind.DEFERRED_REVENUE, breakage),
        Leg(AccountKind.BREAKAGE, -breakage),
    ]


def journal_credits_expired(
    *, customer_id: int, block: CreditBlock, left: Decimal, now: datetime
) -> None:
    """The breakage of a sold block expiring with `left` (before any rollover)
    unused; a block expires once (wallets.ledger.credits_expire)."""
    if not priced(block) or left <= 0:
        return
    journal_write(
        document=Document(
            type=DocumentType.EXPIRY,
            number=f"BLOCK-{block.pk}",
            key=f"expiry:{block.pk}",
            customer_id=customer_id,
            currency=block.currency,
            on=block.expires_at or now,
        ),
        legs=expiry_legs(block, left, taken_back([block.pk]).get(block.pk, ZERO)),
        now=now,
    )


def commit_expiry_key(block: CreditBlock) -> str:
    """The journal key of a commit block's breakage (a block expires once)."""
    return f"commit_expiry:block:{block.pk}"


def journal_commit_expired(*, block: CreditBlock, entry: LedgerEntry, now: datetime) -> None:
    """The breakage of a prepaid commit's access block expiring unused (`entry`,
    its `expiry` ledger entry, negative): Dr deferred revenue, Cr breakage, at
    its face value (the commit's invoice deferred the amount committed, one for
    one). A rollover stays deferred and writes nothing. Written once."""
    expired = -entry.amount
    if expired <= 0:
        return
    journal_write(
        document=Document(
            type=DocumentType.COMMIT_EXPIRY,
            number=f"COMMIT-{block.commit_id}",
            key=commit_expiry_key(block),
            customer_id=entry.wallet.customer_id,
            currency=block.currency,
            # The day of the last instant before it: access that ends with a
            # period (Dec 1, 00:00) is November's breakage, as wallets.revenue has it.
            on=entry.occurred_at - timedelta(microseconds=1),
        ),
        legs=[
            Leg(AccountKind.DEFERRED_REVENUE, expired),
            Leg(AccountKind.BREAKAGE, -expired),
        ],
        now=now,
    )
