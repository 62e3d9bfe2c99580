"""Revenue recognized in the books (API.md v1.4, DESIGN.md "Recognition in the
books"): what an invoice booked to deferred revenue as a fee billed in advance
(billing.journal.deferral) is recognized as the one earned-revenue function
(billing.revenue.earned) says it is earned, by recognition entries (Dr
deferred revenue, Cr revenue per plan or meter) for each period that has
ended, a day or a month of the seller's zone (BILLING_RECOGNITION_PERIOD,
"month" by default). A prepaid commit and credits need none: their drawdowns,
draws and expiries are documents of their own.

A period's entries are what earned_window says the fees billed in advance
earned in it (credit notes on them included), less what earlier entries
recognized for it: an invoice issued late (a late close) is recognized in the
periods it earned in by the next run, and a run with nothing new writes
nothing. Each entry is dated on its period's last day; in a locked month it is
journaled on the first day of the next open month (billing.journal.writer)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing.journal.models import AccountKind, DocumentType, JournalEntry
from billing.journal.writer import Document, Leg, journal_write, month_start, next_month
from billing.revenue.earned import earned_window
from customers.billing_entities import billed_by, billing_entity_zone, default_billing_entity
from customers.models import BillingEntity, Customer

ZERO = Decimal(0)


def recognition_unit() -> str:
    """How finance recognizes: a document per customer and "day" or "month"
    (settings.BILLING_RECOGNITION_PERIOD, checked when the settings load)."""
    return settings.BILLING_RECOGNITION_PERIOD


def period_of(day: date, unit: str) -> tuple[date, date]:
    """The recognition period holding `day`: [its first day, the next's first day)."""
    if unit == "day":
        return day, day + timedelta(days=1)
    first = month_start(day)
    return first, next_month(first)


def midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def periods_ended(*, since: date, now: datetime, zone: str, unit: str) -> list[tuple[date, date]]:
    """The periods from the one holding `since` on that have ended by `now` in `zone`."""
    found = []
    first, after = period_of(since, unit)
    while midnight(after, zone) <= now:
        found.append((first, after))
        first, after = period_of(after, unit)
    return found


@dataclass(frozen=True)
class Seller:
    entity: BillingEntity | None  # None: the default one, not saved (no entity rows)
    code: str
    zone: str
    customers: list[int] | None  # None: every customer


def sellers() -> list[Seller]:
    """The sellers whose books recognize: each entity with the customers it bills
    (without entity rows, the default one billing everyone)."""
    entities = list(BillingEntity.objects.order_by("code"))
    if not entities:
        fallback = default_billing_entity()
        return [Seller(None, fallback.code, billing_entity_zone(fallback), None)]
    return [
        Seller(
            entity,
            entity.code,
            billing_entity_zone(entity),
            list(billed_by(entity).values_list("pk", flat=True)),
        )
        for entity in entities
    ]


def _prefix(unit: str, first: date, currency: str, customer_id: int) -> str:
    return f"recognition:{unit}:{first.isoformat()}:{currency}:{customer_id}:"


def _account(plan: str, meter: str) -> tuple[str, str]:
    """(plan, meter) as a revenue leg carries them: per meter, else per plan
    (invoices.journal_entries.line_leg)."""
    return ("" if meter else plan), meter


def earned_in_advance(
    *, seller: Seller, first: date, after: date, currency: str, now: datetime
) -> dict[int, dict[tuple[str, str], Decimal]]:
    """Customer id -> (plan, meter) -> what the fees billed in advance (issued
    invoices' lines booked to deferred revenue, and credit notes on them) earned
    in the period, by the one earned-revenue function."""
    window = earned_window(
        start=midnight(first, seller.zone),
        end=midnight(after, seller.zone),
        currency=currency,
        now=now,
        customers=seller.customers,
        books=True,
    )
    found: dict[int, dict[tuple[str, str], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for part in window.parts:
        if part.in_advance:
            found[part.customer_id][_account(part.plan, part.meter)] += part.amount
    return found


def _recognized(unit: str, first: date, currency: str, customer_ids) -> tuple[dict, dict]:
    """Customer id -> (plan, meter) -> what recognition entries recognized for
    the period so far (of these customers; None: all); and customer id -> how
    many documents they are."""
    entries = JournalEntry.objects.filter(
        document_type=DocumentType.RECOGNITION,
        document_key__startswith=f"recognition:{unit}:{first.isoformat()}:{currency}:",
    )
    if customer_ids is not None:
        entries = entries.filter(customer_id__in=list(customer_ids))
    done: dict[int, dict[tuple[str, str], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for customer_id, plan, meter, credit, debit in (
        entries.filter(kind=AccountKind.REVENUE)
        .values("customer_id", "plan", "meter")
        .annotate(credit=Sum("credit"), debit=Sum("debit"))
        .values_list("customer_id", "plan", "meter", "credit", "debit")
    ):
        done[customer_id][(plan, meter)] += credit - debit
    documents: dict[int, int] = defaultdict(int)
    keys = entries.order_by().values_list("customer_id", "document_key").distinct()
    for customer_id, _key in keys:
        documents[customer_id] += 1
    return done, documents


def revenue_recognize(*, seller: Seller, first: date, after: date, unit: str, now: datetime) -> int:
    """Write the recognition entries of one seller's period [first, after): per
    customer and currency, what the fees billed in advance earned in it less
    what was recognized for it already (one more document when that is not
    nothing). Idempotent: run again with nothing new, it writes nothing; two
    runs at once write a document once (the second is refused by the journal's
    unique key and writes nothing). How many documents it wrote."""
    currencies = Customer.objects.all()
    if seller.customers is not None:
        currencies = currencies.filter(pk__in=seller.customers)
    written = 0
    for currency in sorted(set(currencies.values_list("currency", flat=True))):
        earned = earned_in_advance(
            seller=seller, first=first, after=after, currency=currency, now=now
        )
        # Those recognized before too: what they earned may have changed since
        # (a void: their recognition is taken back).
        done, documents = _recognized(unit, first, currency, seller.customers)
        for customer_id in sorted(set(earned) | set(done)):
            legs = []
            for (plan, meter), amount in sorted(earned[customer_id].items()):
                left = amount - done[customer_id].get((plan, meter), ZERO)
                if left:
                    legs.append(Leg(AccountKind.REVENUE, -left, meter=meter, plan=plan))
            for (plan, meter), amount in sorted(done[customer_id].items()):
                if (plan, meter) not in earned[customer_id] and amount:
                    legs.append(Leg(AccountKind.REVENUE, amount, meter=meter, plan=plan))
            total = -sum((leg.amount for leg in legs), ZERO)
            if not total and not legs:
                continue
            legs.append(Leg(AccountKind.DEFERRED_REVENUE, total))
            key = f"{_prefix(unit, first, currency, customer_id)}{documents[customer_id] + 1}"
            label = first.strftime("%Y-%m-%d" if unit == "day" else "%Y-%m")
            document = Document(
                type=DocumentType.RECOGNITION,
                number=f"REC-{label}",
                key=key,
                customer_id=customer_id,
                currency=currency,
                on=after - timedelta(days=1),
                memo=f"Revenue recognized {label}",
                seller=seller.entity,
            )
            try:
                with transaction.atomic():
                    if journal_write(document=document, legs=legs, now=now):
                        written += 1
            except IntegrityError:
                continue  # another run wrote it: the next run sees it
    return written


def revenue_recognize_closed(*, now: datetime, since: date | None = None) -> int:
    """The recognition entries of every seller's periods ended by `now`, from
    the one holding `since` (default: the first day of the month before the
    current one, in the seller's zone: a close up to a month late is caught up).
    Safe to run any number of times. How many documents it wrote."""
    unit = recognition_unit()
    written = 0
    for seller in sellers():
        today = now.astimezone(ZoneInfo(seller.zone)).date()
        start = since
        if start is None:
            this_month = month_start(today)
            start = month_start(this_month - timedelta(days=1))
        for first, after in periods_ended(since=start, now=now, zone=seller.zone, unit=unit):
            written += revenue_recognize(
                seller=seller, first=first, after=after, unit=unit, now=now
            )
    return written
