"""The journal in each seller's functional currency: one rule turns a document's
legs into functional amounts, at the exchange rate of the document's day
(plans.exchange_rates), each leg rounded, the document balanced; a receivable
settled (by a payment, a credit note, the credit balance applied) is credited
at its share of what is left of it as the invoice booked it, the difference
going to exchange differences, so that a receivable settled whole is nothing in
either currency.

A rate missing when a document is written leaves its functional amounts and
rate null (a finance user would rather wait for the real rate than book a
guess): the trial balance and the Xero export refuse, naming the pair and the
days (functional_missing); once finance enters the rate, journal_functional_fill
sets the functional amounts of those entries, and nothing else (their
transaction amounts, accounts and dates stay as written)."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, localcontext

from django.db import transaction
from django.db.models import Q

from billing.journal.models import AccountKind, JournalEntry
from common.errors import InvalidRequest
from common.money import EXACT_DIGITS, quantize_amount, quantize_money
from plans.exchange_rates import RateBook, pair_name

ZERO = Decimal(0)
ONE = Decimal(1)


def rate_moment(day: date) -> datetime:
    """The moment whose rate a document of `day` is converted at: the start of its
    (UTC) day, so a document's rate is the day's whatever its hour, and the same
    when its entries are filled later from their stored day."""
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class FunctionalLeg:
    """What the rule reads of a leg: its transaction amount (positive a debit),
    its account kind, and a functional amount fixed already (a settled
    receivable's), else None."""

    kind: str
    amount: Decimal
    fixed: Decimal | None = None


def functional_amounts(
    legs: Sequence[FunctionalLeg], *, rate: Decimal, currency: str, functional_currency: str
) -> list[Decimal]:
    """Each leg's functional amount: its amount at `rate` rounded to the
    functional currency's minor unit (the amount itself in one currency), or
    the amount fixed for it. The document then balances: what rounding or a
    settlement leaves goes to its exchange differences leg when it has one (a
    payment's), else to its largest leg (the first of equals)."""
    if currency == functional_currency:
        amounts = [leg.amount if leg.fixed is None else leg.fixed for leg in legs]
    else:
        with localcontext(prec=EXACT_DIGITS):
            amounts = [
                quantize_money(leg.amount * rate, functional_currency)
                if leg.fixed is None
                else leg.fixed
                for leg in legs
            ]
    left = sum(amounts, ZERO)
    if left:
        exchange = [i for i, leg in enumerate(legs) if leg.kind == AccountKind.EXCHANGE_DIFFERENCES]
        free = [i for i, leg in enumerate(legs) if leg.fixed is None] or list(range(len(legs)))
        target = exchange[0] if exchange else max(free, key=lambda i: abs(legs[i].amount))
        amounts[target] -= left
    return amounts


def booked_receivable(rows: Iterable[tuple]) -> tuple[Decimal, Decimal | None]:
    """(transaction, functional) debit balance of a document's receivable rows
    (kind, debit, credit, functional_debit, functional_credit); functional None
    when any is missing."""
    amount, functional = ZERO, ZERO
    for kind, debit, credit, f_debit, f_credit in rows:
        if kind != AccountKind.RECEIVABLE:
            continue
        amount += debit - credit
        if functional is None or f_debit is None:
            functional = None
            continue
        functional += f_debit - f_credit
    return amount, functional


def receivable_rows(key: str, *, excluding: str):
    """The receivable entries (kind, debit, credit, functional debit and credit)
    of document `key` and of the documents settling part of it (`settles`), but
    those of document `excluding`: what is left of it to settle."""
    return (
        JournalEntry.objects.filter(Q(document_key=key) | Q(settles=key))
        .filter(kind=AccountKind.RECEIVABLE)
        .exclude(document_key=excluding)
        .values_list("kind", "debit", "credit", "functional_debit", "functional_credit")
    )


def booking_waits(booked: tuple[Decimal, Decimal | None]) -> bool:
    """Whether a receivable's booking has no functional amount yet (its rate was
    missing): what settles it waits for it."""
    booked_amount, booked_functional = booked
    return bool(booked_amount) and booked_functional is None


def settled_amount(
    booked: tuple[Decimal, Decimal | None], amount: Decimal, functional_currency: str
) -> Decimal | None:
    """What settling `amount` of a receivable of which `booked` (transaction,
    functional) is left is in the functional currency: its share of what is
    left, rounded (all of it when it settles the rest); None when nothing was
    booked (a document journaled before the journal existed and not backfilled:
    settled at the day's rate) or the booking waits (booking_waits)."""
    booked_amount, booked_functional = booked
    if booked_functional is None or not booked_amount:
        return None
    with localcontext(prec=EXACT_DIGITS):
        return quantize_money(booked_functional * amount / booked_amount, functional_currency)


def stored_rate(rate: Decimal) -> Decimal:
    """The rate as an entry keeps it (10 decimals, as every amount column)."""
    return quantize_amount(rate)


def split(amount: Decimal) -> tuple[Decimal, Decimal]:
    """(debit, credit) of a signed amount."""
    return (amount, ZERO) if amount > 0 else (ZERO, -amount if amount < 0 else ZERO)


def functional_missing(entries) -> dict[str, list[date]]:
    """Pair ("USD->EUR") -> the document days whose rate is missing, of these
    entries (a queryset)."""
    rows = (
        entries.filter(rate__isnull=True)
        .values_list("currency", "functional_currency", "document_date")
        .distinct()
        .order_by("currency", "functional_currency", "document_date")
    )
    missing: dict[str, list[date]] = defaultdict(list)
    for currency, functional_currency, day in rows:
        missing[pair_name(currency, functional_currency)].append(day)
    return dict(missing)


def functional_missing_refusal(entries, *, what: str) -> None:
    """Refuse (400, field `missing_rates`) `what` when some of these entries wait
    for an exchange rate: naming each pair and its days, and how to fill them."""
    missing = functional_missing(entries)
    if not missing:
        return
    described = [
        f"{pair} on {', '.join(day.isoformat() for day in days[:10])}"
        + (f" and {len(days) - 10} more days" if len(days) > 10 else "")
        for pair, days in missing.items()
    ]
    raise InvalidRequest(
        f"{what} needs exchange rates that are missing: {'; '.join(described)}. Enter them "
        "(POST /api/v1/exchange-rates), then fill the journal's functional amounts "
        "(manage.py journal_fill_rates, or the journal's admin action)",
        fields={"missing_rates": described},
    )


@transaction.atomic
def journal_functional_fill() -> int:
    """Set the functional amounts and rate of the entries written while their
    rate was missing, for each document whose day now has one (documents in day
    order, so an invoice is filled before the payment that settles it); nothing
    else of an entry changes. Returns how many documents were filled. Safe to run
    any number of times: a filled entry is never read again (it has a rate)."""
    waiting = list(
        JournalEntry.objects.select_for_update()
        .filter(rate__isnull=True)
        .order_by("document_date", "id")
    )
    if not waiting:
        return 0
    book = RateBook.load({(entry.currency, entry.functional_currency) for entry in waiting})
    documents: dict[str, list[JournalEntry]] = {}
    for entry in waiting:
        documents.setdefault(entry.document_key, []).append(entry)
    filled = []
    for entries in documents.values():
        first = entries[0]
        moment = rate_moment(first.document_date)
        rate = book.rate(first.currency, first.functional_currency, moment)
        if rate is None:
            continue
        legs = []
        for entry in sorted(entries, key=lambda e: e.line):
            fixed = None
            if entry.settles:
                booked = booked_receivable(
                    receivable_rows(entry.settles, excluding=entry.document_key)
                )
                if booking_waits(booked):
                    break  # its invoice waits for a rate too
                fixed = settled_amount(
                    booked, entry.debit - entry.credit, entry.functional_currency
                )
            legs.append((entry, FunctionalLeg(entry.kind, entry.debit - entry.credit, fixed)))
        else:
            amounts = functional_amounts(
                [leg for _, leg in legs],
                rate=rate,
                currency=first.currency,
                functional_currency=first.functional_currency,
            )
            for (entry, _), amount in zip(legs, amounts, strict=True):
                entry.functional_debit, entry.functional_credit = split(amount)
                entry.rate = stored_rate(rate)
                filled.append(entry)
            # A payment later in the run reads this invoice's booking from the table.
            JournalEntry.objects.bulk_update(
                [entry for entry, _ in legs], ["functional_debit", "functional_credit", "rate"]
            )
    return len({entry.document_key for entry in filled})
