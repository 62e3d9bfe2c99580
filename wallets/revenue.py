"""Revenue recognition for paid credits and prepaid commits, per month and
currency.

A paid block's price is deferred when it is bought, recognized as its credits are
used (at the block's price per credit) and, for what is left when it expires,
recognized as breakage. Credits a credit note on the block's invoice took back
(a partial note's share, or all that was left by a void's) are a purchase
undone: their share of the price leaves `purchased` in the month of the note,
never recognized nor breakage. Promotional credits cost nothing and carry no
revenue. Each block's recognized and taken-back amounts are rounded on their
running totals (the money up to a month's end is the used, or taken-back, share
of its price, rounded once; once nothing is left of a block, what it recognized
is its price less what was taken back), so the months of a block always add up
to exactly what was paid for it."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth

from common.money import format_money, quantize_money
from common.spreadsheet_csv import Figure, SpreadsheetCsv
from wallets.commit_models import Commit
from wallets.models import CreditBlock, LedgerEntry
from wallets.take_back import TAKEN_BACK
from wallets.valuation import block_recognized, block_undone, sale_value

ZERO = Decimal(0)


@dataclass
class RevenueMonth:
    month: date
    currency: str
    deferred_opening: Decimal = ZERO
    purchased: Decimal = ZERO
    recognized: Decimal = ZERO
    breakage: Decimal = ZERO

    @property
    def deferred_closing(self) -> Decimal:
        return self.deferred_opening + self.purchased - self.recognized - self.breakage

    def figures(self) -> list[str]:
        """The five amounts in CSV_COLUMNS order, with the currency's digits."""
        return [
            format_money(value, self.currency)
            for value in (
                self.deferred_opening,
                self.purchased,
                self.recognized,
                self.breakage,
                self.deferred_closing,
            )
        ]


@dataclass
class _Block:
    price: Decimal
    amount: Decimal
    currency: str
    bought: date
    # month -> credits used / expired / taken back by credit notes in it
    used: dict[date, Decimal] = field(default_factory=dict)
    expired: dict[date, Decimal] = field(default_factory=dict)
    taken_back: dict[date, Decimal] = field(default_factory=dict)


def _month(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def _next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


@dataclass(frozen=True)
class Consumed:
    customer_id: int
    meter: str
    value: Decimal  # in the currency's minor unit (rounded on running totals)


def consumed_at_sale_value(
    *, start: datetime, end: datetime, currency: str, customers=None
) -> list[Consumed]:
    """What usage drew from paid blocks (credits and money balances) in [start,
    end), per customer (of these `customers` only, when given) and meter, valued
    at what the blocks were sold for in `currency`: revenue recognized by
    consumption. Rounded on running totals, as block_recognized rounds: what a
    block's draws for a meter were worth up to a moment is rounded to the cent,
    and a window's part is the difference, so that adjacent windows add up.
    Promotional credits were sold for nothing and carry none."""
    drawn: dict[tuple[int, str], Decimal] = {}
    entries = LedgerEntry.objects.filter(
        kind=LedgerEntry.USAGE,
        occurred_at__lt=end,
        block__kind=CreditBlock.PAID,
        block__price_paid__gt=0,
        block__currency=currency,
    )
    if customers is not None:
        entries = entries.filter(wallet__customer_id__in=list(customers))
    for customer_id, meter, before, until, price, amount in (
        entries.values("wallet__customer_id", "meter", "block_id")
        .annotate(
            before=Sum("amount", filter=Q(occurred_at__lt=start), default=ZERO),
            until=Sum("amount"),
        )
        .values_list(
            "wallet__customer_id", "meter", "before", "until", "block__price_paid", "block__amount"
        )
    ):
        if before == until:
            continue
        value = quantize_money(sale_value(price, -until, amount), currency) - quantize_money(
            sale_value(price, -before, amount), currency
        )
        key = (customer_id, meter)
        drawn[key] = drawn.get(key, ZERO) + value
    return [Consumed(c, m, value) for (c, m), value in drawn.items()]


def credit_revenue(*, until: datetime) -> list[RevenueMonth]:
    """Deferred, recognized and breakage revenue of paid credits per month (UTC)
    and currency, from the first purchase to the month holding `until`."""
    blocks: dict[int, _Block] = {
        pk: _Block(price, amount, currency, _month(created))
        for pk, price, amount, currency, created in CreditBlock.objects.filter(
            kind=CreditBlock.PAID, price_paid__gt=0, wallet__kind="credits", created_at__lt=until
        ).values_list("pk", "price_paid", "amount", "currency", "created_at")
    }
    movements = (
        LedgerEntry.objects.filter(
            block_id__in=list(blocks),
            kind__in=(LedgerEntry.USAGE, LedgerEntry.EXPIRY, *TAKEN_BACK),
            occurred_at__lt=until,
        )
        .annotate(month=TruncMonth("occurred_at"))
        .values("block_id", "kind", "month")
        .annotate(total=Sum("amount"))
        .values_list("block_id", "kind", "month", "total")
    )
    for block_id, kind, month, total in movements:
        block = blocks[block_id]
        if kind == LedgerEntry.USAGE:
            target = block.used
        elif kind == LedgerEntry.EXPIRY:
            target = block.expired
        else:
            target = block.taken_back
        target[_month(month)] = target.get(_month(month), ZERO) - total

    months: dict[tuple[date, str], RevenueMonth] = {}
    last = _month(until)

    def row(month: date, currency: str) -> RevenueMonth:
        return months.setdefault((month, currency), RevenueMonth(month, currency))

    for block in blocks.values():
        row(block.bought, block.currency).purchased += block.price
        consumed = taken = ZERO
        recognized_so_far = undone_so_far = ZERO
        month = block.bought
        while month <= last:
            consumed += block.used.get(month, ZERO)
            taken += block.taken_back.get(month, ZERO)
            undone = block_undone(block.price, block.amount, taken, block.currency)
            recognized = block_recognized(
                block.price, block.amount, consumed, taken, block.currency
            )
            current = row(month, block.currency)
            current.recognized += recognized - recognized_so_far
            current.purchased -= undone - undone_so_far
            recognized_so_far, undone_so_far = recognized, undone
            if block.expired.get(month):
                # What was never used nor taken back is breakage, all of it in the
                # month it expired.
                current.breakage += block.price - recognized_so_far - undone_so_far
                break
            month = _next_month(month)

    _commit_movements(row, until=until)

    # Opening balances run on from the previous month, also across empty months.
    result: list[RevenueMonth] = []
    for currency in sorted({c for _, c in months}):
        month = min(m for m, c in months if c == currency)
        opening = ZERO
        while month <= last:
            current = months.get((month, currency)) or RevenueMonth(month, currency)
            current.deferred_opening = opening
            opening = current.deferred_closing
            result.append(current)
            month = _next_month(month)
    return result


def _before(moment: datetime) -> date:
    """The month of the last instant before `moment`: a period's drawdown and its
    access's expiry belong to the period they end (Dec 1, 00:00 is November's end)."""
    return _month(moment - timedelta(microseconds=1))


def _commit_movements(row, *, until: datetime) -> None:
    """Prepaid commits in the same report: invoiced in full when signed
    (deferred), recognized as drawn, breakage as its access expires; a credit
    note's take-back undoes part of the sale. Drawn, expired and credited are
    money already, each as the ledger recorded it."""
    for commit in Commit.objects.filter(billing=Commit.PREPAID, created_at__lt=until):
        row(_month(commit.created_at), commit.currency).purchased += commit.amount
    entries = LedgerEntry.objects.filter(
        block__kind=CreditBlock.COMMIT,
        kind__in=(LedgerEntry.USAGE, LedgerEntry.EXPIRY, *TAKEN_BACK),
        occurred_at__lt=until,
    ).values_list("kind", "amount", "occurred_at", "period_end", "block__currency")
    for kind, amount, occurred_at, period_end, currency in entries:
        if kind == LedgerEntry.USAGE:
            row(_before(period_end or occurred_at), currency).recognized -= amount
        elif kind == LedgerEntry.EXPIRY:
            row(_before(occurred_at), currency).breakage -= amount
        else:
            row(_month(occurred_at), currency).purchased += amount


CSV_COLUMNS = [
    "month",
    "currency",
    "deferred_opening",
    "purchased",
    "recognized",
    "breakage",
    "deferred_closing",
]


def credit_revenue_csv(rows: list[RevenueMonth]) -> str:
    return SpreadsheetCsv(lineterminator="\r\n").text(
        CSV_COLUMNS,
        ([r.month.strftime("%Y-%m"), r.currency, *map(Figure, r.figures())] for r in rows),
    )


def commit_breakage(
    *, start: datetime, end: datetime, currency: str, customers=None
) -> dict[int, tuple[Decimal, datetime]]:
    """Customer id -> the breakage of its prepaid commits in [start, end) and the
    moment of the last one: what each access block had left when it expired (its
    `expiry` ledger entry: what was neither drawn nor rolled over nor taken back
    by a credit note), at the last instant before the expiry (access that ends
    with a period, Dec 1 00:00, is November's breakage, as the journal has it)."""
    entries = LedgerEntry.objects.filter(
        kind=LedgerEntry.EXPIRY,
        block__kind=CreditBlock.COMMIT,
        block__currency=currency,
        occurred_at__gt=start,
        occurred_at__lte=end,
    )
    if customers is not None:
        entries = entries.filter(wallet__customer_id__in=list(customers))
    found: dict[int, tuple[Decimal, datetime]] = {}
    for customer_id, amount, occurred_at in entries.order_by("occurred_at", "pk").values_list(
        "wallet__customer_id", "amount", "occurred_at"
    ):
        total, _last = found.get(customer_id, (ZERO, occurred_at))
        found[customer_id] = (
            total + quantize_money(-amount, currency),
            occurred_at - timedelta(microseconds=1),
        )
    return found
