"""The bridge between the revenue report and the books (GET
/api/v1/revenue/bridge): for a seller and a window of whole days in its zone,
in its functional currency, what the one earned-revenue function says was
earned, what the journal booked as revenue (revenue, breakage, less
discounts), and the balances that tell them apart:

- accrued: what was earned by a moment and the books had not booked as revenue
  by that day: what open periods accrue, invoices not issued yet (drafts, a
  late close) or issued that day or later, credit notes dated that day or
  later; and what fees billed in advance earned in the recognition period
  under way, which its recognition entries book once it ends;
- deferred: the journal's deferred revenue (fees billed in advance, prepaid
  commits and credits not earned yet), shown beside them.

earned = journal revenue + accrued closing - accrued opening: the difference
says by how much they do not, 0.00 when every period ended has been recognized
(billing.revenue.recognition) and no lock moved a document."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import Q, Sum

from billing.journal.functional import rate_moment
from billing.journal.models import AccountKind, JournalEntry
from billing.revenue.earned import earned_window
from billing.revenue.recognition import Seller, midnight, period_of, recognition_unit

ZERO = Decimal(0)
# Since when what was not booked yet is read (before any invoice this installation wrote).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The journal's revenue accounts: revenue and breakage credited, discounts debited.
REVENUE_KINDS = (AccountKind.REVENUE, AccountKind.BREAKAGE, AccountKind.DISCOUNTS)


@dataclass(frozen=True)
class RevenueBridge:
    currency: str
    earned: Decimal
    journal_revenue: Decimal
    deferred_opening: Decimal
    deferred_closing: Decimal
    accrued_opening: Decimal
    accrued_closing: Decimal

    @property
    def difference(self) -> Decimal:
        return self.earned - self.journal_revenue - (self.accrued_closing - self.accrued_opening)


def _books(seller: Seller, currency: str):
    """The seller's journal entries in its functional currency."""
    return JournalEntry.objects.filter(billing_entity=seller.code, currency=currency)


def _credit_balance(entries) -> Decimal:
    totals = entries.aggregate(credit=Sum("credit", default=ZERO), debit=Sum("debit", default=ZERO))
    return totals["credit"] - totals["debit"]


def accrued_at(*, seller: Seller, day: date, currency: str, now: datetime) -> Decimal:
    """What was earned before `day` (midnight in the seller's zone) and the
    journal had not booked as revenue by that day (an entry's day is its
    document's UTC day, billing.journal.writer.document_day)."""
    moment = midnight(day, seller.zone)
    unbooked = earned_window(
        start=EPOCH,
        end=moment,
        currency=currency,
        now=now,
        customers=seller.customers,
        unbooked_at=rate_moment(day),
    )
    # A fee billed in advance that was issued is booked by the recognition entries.
    total = sum(
        (p.amount for p in unbooked.parts if not p.in_advance),
        ZERO,
    )
    first, _after = period_of(day, recognition_unit())
    if first < day:
        # Recognized once its period ends: what it earned since that period began.
        under_way = earned_window(
            start=midnight(first, seller.zone),
            end=moment,
            currency=currency,
            now=now,
            customers=seller.customers,
            books=True,
        )
        total += sum(
            (p.amount for p in under_way.parts if p.in_advance),
            ZERO,
        )
    return total


def revenue_bridge(
    *, seller: Seller, currency: str, first: date, after: date, now: datetime
) -> RevenueBridge:
    """The bridge of [first, after) (days in the seller's zone) in `currency`
    (the seller's functional currency)."""
    earned = earned_window(
        start=midnight(first, seller.zone),
        end=midnight(after, seller.zone),
        currency=currency,
        now=now,
        customers=seller.customers,
    ).total.earned
    books = _books(seller, currency)
    revenue = books.filter(kind__in=REVENUE_KINDS, date__gte=first, date__lt=after)
    deferred = books.filter(kind=AccountKind.DEFERRED_REVENUE)
    return RevenueBridge(
        currency=currency,
        earned=earned,
        journal_revenue=_credit_balance(revenue),
        deferred_opening=_credit_balance(deferred.filter(Q(date__lt=first))),
        deferred_closing=_credit_balance(deferred.filter(Q(date__lt=after))),
        accrued_opening=accrued_at(seller=seller, day=first, currency=currency, now=now),
        accrued_closing=accrued_at(seller=seller, day=after, currency=currency, now=now),
    )
