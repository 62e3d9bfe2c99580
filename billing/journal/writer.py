"""Writing a document's journal entries, in the document's own transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from billing.journal.accounts import AccountBook
from billing.journal.functional import (
    FunctionalLeg,
    booked_receivable,
    booking_waits,
    functional_amounts,
    rate_moment,
    receivable_rows,
    settled_amount,
    split,
    stored_rate,
)
from billing.journal.models import AccountKind, JournalEntry, JournalPeriodLock
from common.errors import Conflict
from customers.billing_entities import customer_billing_entity
from customers.models import BillingEntity, Customer
from plans.exchange_rates import rate_at

ZERO = Decimal(0)


class JournalUnbalanced(Conflict):
    """A document's legs do not balance: its transaction is refused."""


@dataclass(frozen=True)
class Leg:
    """One amount on one of our accounts: positive a debit, negative a credit."""

    kind: str
    amount: Decimal
    meter: str = ""
    plan: str = ""
    tax_rate: str = ""
    memo: str = ""
    # The document whose receivable this leg settles ("invoice:42"): credited in
    # the functional currency at what that document booked, the difference to
    # the document's exchange differences leg (billing.journal.functional).
    settles: str = ""


@dataclass(frozen=True)
class Document:
    """What the entries are of: its type, its number (or reference), the key
    that makes them written once, its customer, currency and day, and its seller
    (the entity whose books they are in: an invoice's issuer; None, the
    customer's entity, or the default one when it names none)."""

    type: str
    number: str
    key: str
    customer_id: int
    currency: str
    on: datetime | date
    memo: str = ""
    seller: BillingEntity | None = None


@dataclass
class _Batch:
    """What a batch of documents reads once (journal_batch)."""

    book: AccountBook | None = None
    locked: frozenset[date] | None = None
    rows: list = field(default_factory=list)
    rates: dict = field(default_factory=dict)
    sellers: dict = field(default_factory=dict)


_batch: ContextVar[_Batch | None] = ContextVar("journal_batch", default=None)


@contextmanager
def journal_batch() -> Iterator[None]:
    """Documents journaled in this block (inside one transaction: a batch of the
    close's finalizations) read finance's accounts and its locked months once, not
    once a document, and their entries are written together as the block ends:
    three statements a document fewer. A mapping changed or a month locked while
    the block runs applies from the next block (as from the next document outside
    one), like any change committed during a document's own transaction. A
    document written twice fails the transaction at the block's end instead of at
    once; nothing in the block reads the journal."""
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield
        JournalEntry.objects.bulk_create(batch.rows, batch_size=1000)
    finally:
        _batch.reset(token)


def _account_book(kinds: set[str]) -> AccountBook:
    batch = _batch.get()
    if batch is None:
        return AccountBook(kinds)
    if batch.book is None:
        batch.book = AccountBook(set(AccountKind.values))
    return batch.book


def _locked_months(since: date) -> set[date]:
    """The months locked (a lock in force, not lifted) from `since` on."""
    batch = _batch.get()
    if batch is None:
        return set(
            JournalPeriodLock.objects.filter(month__gte=since, lifted_at__isnull=True).values_list(
                "month", flat=True
            )
        )
    if batch.locked is None:
        batch.locked = frozenset(
            JournalPeriodLock.objects.filter(lifted_at__isnull=True).values_list("month", flat=True)
        )
    return {month for month in batch.locked if month >= since}


def _seller(document: Document) -> BillingEntity:
    """The entity whose books the document is in (Document.seller)."""
    if document.seller is not None:
        return document.seller
    batch = _batch.get()
    if batch is not None and document.customer_id in batch.sellers:
        return batch.sellers[document.customer_id]
    customer = Customer.objects.select_related("billing_entity").get(pk=document.customer_id)
    seller = customer_billing_entity(customer)
    if batch is not None:
        batch.sellers[document.customer_id] = seller
    return seller


def _rate(currency: str, functional_currency: str, day: date) -> Decimal | None:
    """1 `currency` in the functional currency on the document's day (a batch
    asks the database once a pair and day)."""
    if currency == functional_currency:
        return Decimal(1)
    batch = _batch.get()
    key = (currency, functional_currency, day)
    if batch is not None and key in batch.rates:
        return batch.rates[key]
    rate = rate_at(currency, functional_currency, rate_moment(day))
    if batch is not None:
        batch.rates[key] = rate
    return rate


def _booked(key: str, *, excluding: str) -> tuple[Decimal, Decimal | None]:
    """What is left of a document's receivable (transaction, functional): its
    entries and those of the documents that settled part of it since (credit
    notes, credit balance applied, payments), written or pending in the batch,
    but the document `excluding` (the one being written)."""
    batch = _batch.get()
    pending = [
        row
        for row in (batch.rows if batch is not None else ())
        if (row.document_key == key or row.settles == key) and row.document_key != excluding
    ]
    return booked_receivable(
        [
            *receivable_rows(key, excluding=excluding),
            *(
                (r.kind, r.debit, r.credit, r.functional_debit, r.functional_credit)
                for r in pending
            ),
        ]
    )


def _functional(
    merged: list[Leg], document: Document, functional_currency: str, day: date
) -> tuple[list[Decimal] | None, Decimal | None]:
    """Each leg's functional amount and the rate (billing.journal.functional);
    (None, None) while the day's rate, or the booking of a receivable it
    settles, is missing."""
    rate = _rate(document.currency, functional_currency, day)
    if rate is None:
        return None, None
    legs = []
    for leg in merged:
        fixed = None
        if leg.settles:
            booked = _booked(leg.settles, excluding=document.key)
            if booking_waits(booked):
                return None, None
            fixed = settled_amount(booked, leg.amount, functional_currency)
        legs.append(FunctionalLeg(leg.kind, leg.amount, fixed))
    amounts = functional_amounts(
        legs, rate=rate, currency=document.currency, functional_currency=functional_currency
    )
    return amounts, rate


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def document_day(on: datetime | date) -> date:
    """A document's day in the journal: its UTC day (finance's books are kept in
    one zone, whatever the customer's)."""
    return on.astimezone(UTC).date() if isinstance(on, datetime) else on


def booking_date(day: date) -> date:
    """The day a document of `day` is journaled: its own, or the first day of the
    first open month after it when its month is locked."""
    month = month_start(day)
    locked = _locked_months(month)
    if month not in locked:
        return day
    while month in locked:
        month = next_month(month)
    return month


def _merged(legs: list[Leg]) -> list[Leg]:
    """Legs on the same account with the same memo netted, in first-seen order;
    zero legs dropped, but an exchange differences leg (a functional amount
    only)."""
    totals: dict[tuple, Decimal] = {}
    for leg in legs:
        key = (leg.kind, leg.meter, leg.plan, leg.tax_rate, leg.memo, leg.settles)
        totals[key] = totals.get(key, ZERO) + leg.amount
    return [
        Leg(k[0], amount, k[1], k[2], k[3], k[4], k[5])
        for k, amount in totals.items()
        if amount or k[0] == AccountKind.EXCHANGE_DIFFERENCES
    ]


def journal_write(*, document: Document, legs: list[Leg], now: datetime) -> list[JournalEntry]:
    """Write a document's entries: one per account (legs on one account netted).
    Refused with JournalUnbalanced, so the caller's transaction fails whole,
    when debits and credits differ. A document written already (its key) is
    refused by the unique constraint (IntegrityError); writers that may run again ask
    journal_written first. A document whose legs net to nothing writes nothing.

    Each entry carries the seller (Document.seller) and its amount in the
    seller's functional currency at the rate of the document's day, the document
    balanced in both currencies (billing.journal.functional); null functional
    amounts while that rate is missing (journal_functional_fill sets them)."""
    merged = _merged(legs)
    if not any(leg.amount for leg in merged):
        return []
    total = sum((leg.amount for leg in merged), ZERO)
    if total != 0:
        raise JournalUnbalanced(
            f"the journal of {document.type} {document.number} does not balance: debits "
            f"and credits differ by {total} {document.currency}"
        )
    book = _account_book({leg.kind for leg in merged})
    day = document_day(document.on)
    booked = booking_date(day)
    seller = _seller(document)
    functional, rate = _functional(merged, document, seller.functional_currency, day)
    if functional is not None:
        # An exchange differences leg settling at the booked rate is written when
        # there is a difference.
        kept = [
            (leg, amount)
            for leg, amount in zip(merged, functional, strict=True)
            if leg.amount or amount
        ]
    else:
        kept = [(leg, None) for leg in merged]
    rows = []
    for line, (leg, amount) in enumerate(kept):
        account = book.resolve(leg.kind, meter=leg.meter, plan=leg.plan, tax_rate=leg.tax_rate)
        f_debit, f_credit = split(amount) if amount is not None else (None, None)
        rows.append(
            JournalEntry(
                date=booked,
                document_date=day,
                document_type=document.type,
                document=document.number[:64],
                document_key=document.key,
                line=line,
                customer_id=document.customer_id,
                kind=leg.kind,
                meter=leg.meter,
                plan=leg.plan,
                tax_rate=leg.tax_rate,
                account=account.code,
                account_name=account.name,
                debit=leg.amount if leg.amount > 0 else ZERO,
                credit=-leg.amount if leg.amount < 0 else ZERO,
                currency=document.currency,
                memo=(leg.memo or document.memo)[:255],
                written_at=now,
                billing_entity=seller.code,
                functional_currency=seller.functional_currency,
                functional_debit=f_debit,
                functional_credit=f_credit,
                rate=None if rate is None else stored_rate(rate),
                settles=leg.settles,
            )
        )
    # A second write of the same document fails the caller's transaction on the
    # unique constraint (document_key, line).
    batch = _batch.get()
    if batch is not None:
        batch.rows.extend(rows)  # written as the batch ends (journal_batch)
        return rows
    return JournalEntry.objects.bulk_create(rows)


def journal_written(keys: list[str]) -> set[str]:
    """Which of these document keys have entries."""
    return set(
        JournalEntry.objects.filter(document_key__in=keys)
        .values_list("document_key", flat=True)
        .distinct()
    )
