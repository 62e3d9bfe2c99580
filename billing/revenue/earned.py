"""Revenue earned in a window [start, end): the one function margins, the
dashboard, the customer page and the revenue reports read (DESIGN.md "Earned
revenue", API.md v1.3). From what was billed and what is accruing:

- Invoice lines (not void, not a threshold invoice's: the period invoice after
  it rates the period's whole usage again), each net of its share of its
  invoice's discount, as stamped when it was written (InvoiceLine.discount_share,
  invoices.totals.discount_shares). A usage line is earned as its
  usage happened within its service period (billing.revenue.usage_shares);
  every other line with a service period (fixed fees, seats, proration, the
  true-up) straight-line over it, by the second; a
  line without one at its invoice's date. What credit notes gave back of a
  line, at the credit note's date; the unused time a cancel or plan change
  credits (billing.invoicing.unused_time), over that time, straight-line.
- What is accruing: each live subscription's period statement for the part
  not invoiced yet (PeriodStatement.invoice_lines), without the minimum
  commitment true-up only the period's end settles: as of now, or as of the
  beat's last refresh over many subscriptions (billing.revenue.accruals).
- What usage drew from paid credits and balances in the window, at what they
  were sold for (wallets.revenue), each customer's and meter's rounded.
- A prepaid commit as drawn, plus breakage at expiry: its invoice's commit line
  and its closing invoices' drawdown lines earn nothing themselves (the usage
  they draw for is earned as it happened); what its access blocks leave
  unused when they expire (what expired, which is what credit notes did not
  take back) is earned at the last instant before the expiry, as the journal
  books it (wallets.journal_entries.journal_commit_expired). One rule for the
  report and the books (billing.journal.deferral, billing.revenue.recognition).

A line is cut into pieces by the usage it priced per combination of its
meter's group_by values (InvoiceLine.usage_groups), its amount shared among
them in proportion to their quantities (largest remainder, ties to the larger
quantity); a line of no grouping meter, and a line stamped before the stamp
existed (its rate card row's values, if any), is one piece. Every view of the
window adds up the same pieces, so totals are the same whatever the view.

Rounding is cumulative: what a piece earned up to a moment is rounded half up,
and a window's part is the difference of two such amounts: adjacent windows
add up exactly, and a piece's parts add up to the piece.

In a report currency (earned_converted): each currency's window read as
above, every piece converted by billing.revenue.conversion (at the rate of the
start of its UTC day, rounded there), a rate missing named on the window and on
its rows, that amount left out.

It stays whole: it is the one earned-revenue function, every source of what
was earned (lines, credit notes, accruals, wallet draws, breakage) read into the
same pieces and parts, so that every view and every window adds up alike."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from functools import lru_cache
from itertools import pairwise

from django.db.models import Count, F, IntegerField, Q, Sum, TextField, Value
from django.db.models.functions import Cast

from billing.journal.deferral import USAGE_KINDS, billed_in_advance
from billing.revenue.accruals import accrued_lines
from billing.revenue.conversion import Conversion, MissingRate
from billing.revenue.plans_in_effect import plans_in_effect
from billing.revenue.usage_shares import Cut, additive, usage_shares
from billing.usage.metering import meter_cache
from common.money import quantize_money, split_money
from common.vocabulary import LineKind
from customers.billing_entities import default_billing_entity
from customers.models import Customer
from invoices.models import CreditNoteLine, Invoice, InvoiceLine
from invoices.totals import NOT_DISCOUNTED
from plans.pricing import EXACT_PRECISION
from plans.rate_card_pricing import Combination, combination_order
from wallets.revenue import commit_breakage, consumed_at_sale_value

ZERO = Decimal(0)
# Lines that earn nothing themselves: the discount (shared among the lines it
# discounts), what threshold invoices billed (their usage is on the period
# invoice), tax, the credit balance applied (a payment), and what is bought in
# advance (credits and balances earn as they are drawn, a prepaid commit as
# drawn plus breakage: its drawdown lines take off the usage it paid for, which
# earns as it happened).
NOT_EARNED = (
    *NOT_DISCOUNTED,
    LineKind.TAX,
    LineKind.CREDITS_APPLIED,
    LineKind.CREDIT_PACK,
    LineKind.CREDITS,
    LineKind.TOP_UP,
    LineKind.COMMIT,
    LineKind.COMMIT_DRAWDOWN,
)
# What a credit note gives back of a drawdown line is earned at its date: a void
# gives the commit nothing back, so what was drawn stays earned (as the journal
# books it, invoices.journal_entries._credited_legs).
NOT_EARNED_CREDITED = tuple(kind for kind in NOT_EARNED if kind != LineKind.COMMIT_DRAWDOWN)
# USAGE_KINDS (billing.journal.deferral): earned as their usage happened; every
# other line straight-line.
VIEWS = ("customer", "plan", "meter", "billing_entity")


@dataclass(frozen=True)
class Piece:
    """Part of a line: `amount` (in the currency's minor unit) earned over
    [start, end) (as its usage happened when `usage`, else straight-line), or
    at `start` when start == end."""

    customer_id: int
    plan: str
    meter: str
    values: Combination
    amount: Decimal
    start: datetime
    end: datetime
    usage: bool
    accrued: bool
    # How many lines alike it stands for (read together for a total: apart=False).
    count: int = 1
    # Read for the books (earned_window's `books`): when the journal booked it
    # (its invoice issued, its credit note dated; None: not yet, a draft or what
    # accrues), and whether it was booked to deferred revenue then, a fee billed
    # in advance (billing.journal.deferral), recognized by the recognition entries.
    booked_at: datetime | None = None
    in_advance: bool = False


@dataclass
class Earned:
    """One row of a view: what was earned from invoiced lines (`billed`) and
    from the part not invoiced yet (`accrued`); in a report currency, the
    rates missing to convert what it leaves out."""

    key: dict
    billed: Decimal = ZERO
    accrued: Decimal = ZERO
    missing_rates: set[MissingRate] = field(default_factory=set)

    @property
    def earned(self) -> Decimal:
        return self.billed + self.accrued


@dataclass
class _Part:
    """A piece's part of the window (or a wallet draw's), in minor units."""

    customer_id: int
    plan: str
    meter: str
    values: Combination
    amount: Decimal
    accrued: bool = False
    # In a report currency: the rates missing to convert what it left out.
    missing: frozenset[MissingRate] = frozenset()
    # As Piece's (read for the books only).
    booked_at: datetime | None = None
    in_advance: bool = False


@dataclass
class EarnedWindow:
    """The window's parts, read once, viewed as many ways as asked (rows_by)."""

    currency: str
    parts: list[_Part] = field(default_factory=list)
    entities: dict[int, str] = field(default_factory=dict)  # customer id -> entity code
    # When what accrues was computed: None for now (the statements read), else the
    # oldest refresh of the stored rows read (billing.revenue.accruals).
    accrued_as_of: datetime | None = None
    # False: read for its total and its plans and meters only, lines alike read
    # together whoever they bill (no customer, seller or property view).
    apart: bool = True
    # False: read for no view by a property (the lines wholly in the window left
    # whole: split or not, they add up to the same in every other view).
    by_property: bool = True
    # In a report currency (earned_converted): every rate missing to convert
    # some of what was earned (left out of the amounts).
    missing_rates: set[MissingRate] = field(default_factory=set)

    @property
    def total(self) -> Earned:
        total = Earned(key={}, missing_rates=set(self.missing_rates))
        for part in self.parts:
            if part.accrued:
                total.accrued += part.amount
            else:
                total.billed += part.amount
        return total

    def rows_by(self, view: str) -> list[Earned]:
        """The window by `view` (VIEWS or a property some meter groups by): one
        row a value, None for a part without one; customers by id (the caller
        names them), largest first."""
        if not self.apart and view not in ("plan", "meter"):
            raise ValueError(f"a window read for its total has no {view} view")
        if not self.by_property and view not in VIEWS:
            raise ValueError(f"a window read for no property has no {view} view")
        grouping = {m.code for m in meter_cache.by_id().values() if view in m.group_by}
        rows: dict[object, Earned] = {}
        for part in self.parts:
            value = self._value(part, view, grouping)
            row = rows.get(value)
            if row is None:
                row = rows[value] = Earned(key={view: value})
            if part.missing:
                row.missing_rates |= part.missing
            if part.accrued:
                row.accrued += part.amount
            else:
                row.billed += part.amount
        return sorted(rows.values(), key=lambda r: (-r.earned, r.key[view] is None, str(r.key)))

    def entities_for(self, customer_ids: Iterable[int]) -> None:
        """Read the sellers of these customers not read yet, in one query."""
        missing = set(customer_ids) - set(self.entities)
        if missing:
            self.entities.update(customer_entities(missing))

    def entity_of(self, customer_id: int) -> str | None:
        """The customer's seller (its billing entity's code), read with those of
        every customer in the window the first time one is asked."""
        if customer_id not in self.entities:
            ids = {part.customer_id for part in self.parts} | {customer_id}
            self.entities.update(customer_entities(ids - set(self.entities)))
        return self.entities.get(customer_id)

    def _value(self, part: _Part, view: str, grouping: set[str]):
        if view == "customer":
            return part.customer_id
        if view == "plan":
            return part.plan or None
        if view == "meter":
            return part.meter or None
        if view == "billing_entity":
            return self.entity_of(part.customer_id)
        if part.meter not in grouping:
            return None
        return dict(part.values).get(view)


def earned_window(
    *,
    start: datetime,
    end: datetime,
    currency: str,
    now: datetime,
    customers: Iterable[int] | None = None,
    apart: bool = True,
    by_property: bool = True,
    conversion: Conversion | None = None,
    books: bool = False,
    unbooked_at: datetime | None = None,
) -> EarnedWindow:
    """What the customers billed in `currency` (these `customers` only, when
    given) earned in [start, end) up to `now` (a window reaching past it ends
    then). `apart` False: for its total
    and its views by plan and meter only, the lines alike read together (the
    same figures, read faster: the dashboard's). `conversion`: in its currency
    (billing.revenue.conversion), each line read with its own period and
    date, the rates missing named on the window and its parts.

    `books`: each part says when the journal booked what earned it and whether
    it was a fee billed in advance (_Part.booked_at, in_advance; the same
    figures, every line read one by one), for the recognition entries and the
    bridge (billing.revenue.recognition). `unbooked_at`: only what the journal
    had not booked before that moment (invoices issued then or later or not
    yet, credit notes dated then or later, what accrues), read for the books."""
    customers = None if customers is None else list(customers)
    books = books or unbooked_at is not None
    read = _Read(books=books, unbooked_at=unbooked_at)
    by_property = by_property and apart
    if conversion is not None and conversion.currency == currency:
        conversion = None
    window = EarnedWindow(currency, apart=apart, by_property=by_property)
    # Nothing is earned ahead of time: a window reaching past now ends now.
    end = max(start, min(end, now))
    adding = additive_meters()
    pieces = [
        *_billed_pieces(
            start, end, currency, customers, adding, apart, by_property, bool(conversion), read
        ),
        *_credited_pieces(start, end, currency, customers, adding, read),
        *_accrued_pieces(window, start, end, currency, customers, now, adding),
    ]
    # In a report currency, where each piece is cut to convert it (its rates' days).
    edges = [
        conversion.cuts(currency, piece.start, min(piece.end, end)) if conversion else ()
        for piece in pieces
    ]
    shares = usage_shares(
        cut
        for piece, cuts in zip(pieces, edges, strict=True)
        for at in (start, end, *cuts)
        if (cut := _cut(piece, at)) is not None
    )
    for piece, cuts in zip(pieces, edges, strict=True):
        missing = frozenset()
        if conversion is None:
            amount = _earned_by(piece, end, shares, currency) - _earned_by(
                piece, start, shares, currency
            )
        else:
            amount, missing = conversion.window_part(
                currency,
                span=(piece.start, piece.end),
                cuts=cuts,
                window=(start, end),
                earned_by=lambda at, piece=piece: _earned_by(piece, at, shares, currency),
            )
        if amount and piece.count != 1:
            amount *= piece.count
        if amount or missing:
            window.parts.append(
                _Part(
                    piece.customer_id,
                    piece.plan,
                    piece.meter,
                    piece.values,
                    amount,
                    piece.accrued,
                    missing,
                    piece.booked_at,
                    piece.in_advance,
                )
            )
    if unbooked_at is not None:
        # What credits drawn and breakage earn the journal books as it happens.
        return window
    _drawn_parts(window, start, end, currency, customers, conversion)
    _breakage_parts(window, start, end, currency, customers, conversion)
    if conversion is not None:
        window.currency = conversion.currency
        window.missing_rates = {part for p in window.parts for part in p.missing}
    return window


def _drawn_parts(window, start, end, currency, customers, conversion) -> None:
    """What usage drew from paid credits and balances in the window (at what
    they were sold for), a part each customer and meter, under the plan in
    effect when it was drawn (billing.revenue.plans_in_effect: a customer moved
    between plans in the window read again span by span); in a report currency,
    the window cut where its rate changes and each part converted at its own."""
    edges = [start, *(conversion.cuts(currency, start, end) if conversion else ()), end]
    for since, until in pairwise(edges):
        drawn = consumed_at_sale_value(
            start=since, end=until, currency=currency, customers=customers
        )
        if not drawn:
            continue
        plans = plans_in_effect(start=since, end=until, customers={d.customer_id for d in drawn})
        found = [(d, plans.single.get(d.customer_id, "")) for d in drawn]
        found = [(d, plan) for d, plan in found if d.customer_id not in plans.split]
        for customer_id, spans in plans.split.items():
            # From the window's start to its end, cut at each change of plan.
            cuts = [since, *(min(max(s.start, since), until) for s in spans[1:]), until]
            for (cut_from, cut_to), span in zip(pairwise(cuts), spans, strict=True):
                found += [
                    (d, span.plan)
                    for d in consumed_at_sale_value(
                        start=cut_from, end=cut_to, currency=currency, customers=[customer_id]
                    )
                    if cut_from < cut_to
                ]
        for d, plan in found:
            amount, missing = quantize_money(d.value, currency), frozenset()
            if conversion is not None:
                amount, missing = conversion.at_moment(currency, amount, since)
            if amount or missing:
                window.parts.append(_Part(d.customer_id, plan, d.meter, (), amount, False, missing))


def _breakage_parts(window, start, end, currency, customers, conversion) -> None:
    """What prepaid commits' access left unused at expiry in the window
    (commit_breakage), a part each customer, under the plan in effect then; in a
    report currency, converted at the rate of the moment it is earned."""
    expired = commit_breakage(start=start, end=end, currency=currency, customers=customers)
    if not expired:
        return
    plans = plans_in_effect(start=start, end=end, customers=set(expired))
    for customer_id, (amount, at) in expired.items():
        plan = plans.single.get(customer_id, "")
        for span in plans.split.get(customer_id, ()):
            if span.start <= at < span.end:
                plan = span.plan
        missing = frozenset()
        if conversion is not None:
            amount, missing = conversion.at_moment(currency, amount, at)
        if amount or missing:
            window.parts.append(
                _Part(customer_id, plan, "", (), amount, False, missing, booked_at=at)
            )


@dataclass(frozen=True)
class _Read:
    """How the invoice lines and credit notes are read (earned_window's `books`
    and `unbooked_at`)."""

    books: bool = False
    unbooked_at: datetime | None = None


def earned_converted(
    *,
    start: datetime,
    end: datetime,
    report_currency: str,
    billed_in: Iterable[str],
    now: datetime,
    customers: Iterable[int] | None = None,
    apart: bool = True,
    by_property: bool = True,
) -> EarnedWindow:
    """earned_window of the customers billed in each of `billed_in` together, in
    `report_currency` (billing.revenue.conversion): one window, its parts all in
    that currency, its `missing_rates` the rates it lacked (their amounts left
    out)."""
    customers = None if customers is None else list(customers)
    billed_in = sorted(set(billed_in))
    conversion = Conversion.load(report_currency, billed_in)
    together = EarnedWindow(report_currency, apart=apart, by_property=by_property and apart)
    for currency in billed_in:
        window = earned_window(
            start=start,
            end=end,
            currency=currency,
            now=now,
            customers=customers,
            apart=apart,
            by_property=by_property,
            conversion=conversion,
        )
        together.parts += window.parts
        together.missing_rates |= window.missing_rates
        together.entities.update(window.entities)
        if window.accrued_as_of is not None:
            together.accrued_as_of = min(
                filter(None, (together.accrued_as_of, window.accrued_as_of))
            )
    return together


def customer_entities(customer_ids: Iterable[int]) -> dict[int, str]:
    """Each customer's seller (billing entity code): its own, else the default."""
    found = dict(
        Customer.objects.filter(pk__in=list(customer_ids)).values_list("pk", "billing_entity__code")
    )
    if any(code is None for code in found.values()):
        fallback = default_billing_entity().code
        found = {pk: code or fallback for pk, code in found.items()}
    return found


def _cut(piece: Piece, at: datetime) -> Cut | None:
    """What must be read to know how much of a usage piece was earned by `at`."""
    if not piece.usage or not piece.start < at < piece.end:
        return None
    return Cut(piece.customer_id, piece.meter, piece.values, piece.start, piece.end, at)


def _earned_by(
    piece: Piece, at: datetime, shares: dict[Cut, Decimal | None], currency: str
) -> Decimal:
    """What the piece earned before `at`, rounded half up to the minor unit."""
    if at <= piece.start:
        return ZERO
    if at >= piece.end:
        return piece.amount
    share = shares.get(_cut(piece, at)) if piece.usage else None
    with localcontext(prec=EXACT_PRECISION):
        if share is None:
            share = Decimal((at - piece.start).total_seconds()) / Decimal(
                (piece.end - piece.start).total_seconds()
            )
        return quantize_money(piece.amount * share, currency)


def _line_pieces(
    *,
    customer_id: int,
    plan: str,
    meter: str,
    kind: str,
    amount: Decimal,
    start: datetime,
    end: datetime,
    groups: list[tuple[Combination, Decimal]],
    currency: str,
    adding: frozenset[str],
    accrued: bool = False,
    count: int = 1,
    booked_at: datetime | None = None,
    in_advance: bool = False,
) -> list[Piece]:
    """A line's amount cut by the usage it priced per combination; earned as
    the usage happened when it is usage of a meter of `adding` (additive_meters)."""
    usage = kind in USAGE_KINDS and meter in adding
    groups = [(combination, quantity) for combination, quantity in groups if quantity]
    if len(groups) < 2:
        shares = [(groups[0][0] if groups else (), amount)]
    else:
        amounts = split_money(
            amount,
            [quantity for _c, quantity in groups],
            currency,
            ties=[combination_order(c) for c, _q in groups],
        )
        shares = [
            (combination, part)
            for (combination, _q), part in zip(groups, amounts, strict=True)
            if part
        ]
    return [
        Piece(
            customer_id,
            plan,
            meter,
            values,
            part,
            start,
            end,
            usage,
            accrued,
            count,
            booked_at,
            in_advance,
        )
        for values, part in shares
    ]


def additive_meters() -> frozenset[str]:
    """The codes of the meters whose quantities add up over time (usage_shares)."""
    return frozenset(meter.code for meter in meter_cache.by_id().values() if additive(meter))


def _stored_groups(usage_groups, group) -> list[tuple[Combination, Decimal]]:
    """A line's usage per combination as stored (InvoiceLine.usage_groups); for a
    line stamped before that, its rate card row's values as one group. Each as
    its JSON or its JSON's text (parsed once per text: a card's rows repeat)."""
    usage_groups, group = _parsed(usage_groups), _parsed(group)
    if usage_groups:
        return [(tuple(sorted(g["values"].items())), Decimal(g["quantity"])) for g in usage_groups]
    return [(tuple(sorted(group.items())), Decimal(1))] if group else []


@lru_cache(maxsize=4096)
def _parsed_text(text: str):
    return json.loads(text)


def _parsed(value):
    if isinstance(value, str):
        return _parsed_text(value) if len(value) < 512 else json.loads(value)
    return value


# A JSON column read as its text, parsed by _parsed.
AS_TEXT = {name: Cast(name, output_field=TextField()) for name in ("usage_groups", "group")}


def _billed_pieces(
    start, end, currency, customers, adding, apart, by_property, own_periods=False, read=None
) -> list[Piece]:
    """The pieces of the invoice lines earning in the window, read three ways:
    the lines wholly in it that need no cutting (no discount to share, no
    usage to split) added up per customer, plan and meter in the database;
    the other lines wholly in it one by one; the lines across an edge or
    without a service period with their periods and dates. Not `apart`: the
    lines of every customer together (customer 0), those alike across an edge
    read once with how many they are. Not `by_property`: a line of a grouping
    meter wholly in the window is not split either (only across an edge, where
    each part is rounded, does the split change a total: those always are).
    `own_periods`: every line read with its own period and date (to convert each at
    its rates: billing.revenue.conversion), none added up or put at the start.
    Read for the books (`read`): every line so, with when it was booked and
    whether it was billed in advance."""
    read = read or _Read()
    own_periods = own_periods or read.books
    customer = F("invoice__customer_id") if apart else Value(0, output_field=IntegerField())
    lines = InvoiceLine.objects.filter(invoice__currency=currency).exclude(
        invoice__status=Invoice.VOID
    )
    lines = lines.exclude(invoice__reason=Invoice.THRESHOLD).exclude(kind__in=NOT_EARNED)
    if customers is not None:
        lines = lines.filter(invoice__customer_id__in=customers)
    if read.unbooked_at is not None:
        lines = lines.filter(
            Q(invoice__finalized_at__isnull=True) | Q(invoice__finalized_at__gte=read.unbooked_at)
        )
    lines = lines.order_by()
    grouping = [m.code for m in meter_cache.by_id().values() if m.group_by and by_property]
    inside = Q(period_start__gte=start, period_end__lte=end, period_end__gt=F("period_start"))
    whole = lines.none() if own_periods else lines.filter(inside)
    summed = (
        whole.filter(invoice__discount=0)
        .exclude(meter__in=grouping)
        .annotate(customer=customer)
        .values_list("customer", "plan", "meter")
        .annotate(total=Sum("amount"))
        .values_list("customer", "plan", "meter", "total")
    )
    pieces = [
        Piece(customer_id, plan, meter, (), amount, start, start, False, False)
        for customer_id, plan, meter, total in summed
        if (amount := quantize_money(total, currency))
    ]
    cut = whole.filter(Q(meter__in=grouping) | ~Q(invoice__discount=0))
    rows = [
        (*row, start, start, 1, None, False)
        for row in cut.values_list(
            "id",
            "invoice_id",
            customer,
            "discount_share",
            "kind",
            "meter",
            "plan",
            "amount",
            AS_TEXT["usage_groups"],
            AS_TEXT["group"],
        )
    ]
    # A line with a service period across an edge, or dated in the window.
    dated = Q(period_start__isnull=True) & (
        Q(invoice__finalized_at__gte=start, invoice__finalized_at__lt=end)
        | Q(
            invoice__finalized_at__isnull=True,
            invoice__created_at__gte=start,
            invoice__created_at__lt=end,
        )
    )
    spanning = Q(period_start__lt=end, period_end__gt=start)
    across = lines.filter(dated | spanning)
    if not own_periods:
        across = across.exclude(inside)
    fields = (
        "kind",
        "meter",
        "plan",
        "amount",
        AS_TEXT["usage_groups"],
        AS_TEXT["group"],
        "period_start",
        "period_end",
        "invoice__finalized_at",
        "invoice__created_at",
    )
    if apart:
        found = across.values_list("id", "invoice_id", customer, "discount_share", *fields)
        alike = [(*row, 1) for row in found]
    else:
        # Lines alike read once, but usage, which is earned as the customer's
        # usage happened, and discounted lines, each with its share.
        alone = Q(kind__in=USAGE_KINDS) | ~Q(invoice__discount=0)
        found = across.filter(alone).values_list(
            "id", "invoice_id", "invoice__customer_id", "discount_share", *fields
        )
        alike = [(*row, 1) for row in found]
        together = across.exclude(alone).values_list(*fields).annotate(n=Count("id"))
        alike += [(0, 0, 0, 0, *row) for row in together]
    for row in alike:
        *line, period_start, period_end, finalized, created, count = row
        in_advance = read.books and billed_in_advance(
            kind=line[4], period_start=period_start, period_end=period_end, issued_at=finalized
        )
        if period_start is None or period_end is None or period_end <= period_start:
            period_start = period_end = finalized or created
        rows.append((*line, period_start, period_end, count, finalized, in_advance))
    for (
        _pk,
        _invoice,
        customer_id,
        discount_share,
        kind,
        meter,
        plan,
        amount,
        usage_groups,
        group,
        period_start,
        period_end,
        count,
        booked_at,
        in_advance,
    ) in rows:
        pieces += _line_pieces(
            customer_id=customer_id,
            plan=plan,
            meter=meter,
            kind=kind,
            amount=quantize_money(amount, currency) - discount_share,
            start=period_start,
            end=period_end,
            groups=_stored_groups(usage_groups, group),
            currency=currency,
            adding=adding,
            count=count,
            booked_at=booked_at,
            in_advance=in_advance,
        )
    return pieces


def _credited_pieces(start, end, currency, customers, adding, read=None) -> list[Piece]:
    """What credit notes gave back of earning lines (before tax, already net of
    the discount): a line crediting unused time (its service period stored:
    billing.invoicing.unused_time) over that time, straight-line, as the fee it
    credits would have earned it; any other at the credit note's date, in the
    window. What it gives back of a drawdown line is earned (NOT_EARNED_CREDITED).
    Read for the books, each says when it was booked (its date) and whether the
    line it credits was billed in advance."""
    read = read or _Read()
    at_their_date = Q(
        period_start__isnull=True,
        credit_note__created_at__gte=start,
        credit_note__created_at__lt=end,
    )
    over_the_time = Q(period_start__lt=end, period_end__gt=start)
    credited = (
        CreditNoteLine.objects.filter(
            at_their_date | over_the_time,
            invoice_line__invoice__currency=currency,
        )
        .exclude(invoice_line__invoice__status=Invoice.VOID)
        .exclude(invoice_line__kind__in=NOT_EARNED_CREDITED)
        .order_by()
    )
    if customers is not None:
        credited = credited.filter(invoice_line__invoice__customer_id__in=customers)
    if read.unbooked_at is not None:
        credited = credited.filter(credit_note__created_at__gte=read.unbooked_at)
    pieces = []
    rows = credited.values_list(
        "invoice_line__invoice__customer_id",
        "invoice_line__plan",
        "invoice_line__meter",
        "invoice_line__kind",
        "amount",
        "credit_note__created_at",
        "period_start",
        "period_end",
        "invoice_line__usage_groups",
        "invoice_line__group",
        "invoice_line__period_start",
        "invoice_line__period_end",
        "invoice_line__invoice__finalized_at",
    )
    for (
        customer_id,
        plan,
        meter,
        kind,
        amount,
        at,
        since,
        until,
        usage_groups,
        group,
        line_start,
        line_end,
        issued_at,
    ) in rows:
        in_advance = read.books and billed_in_advance(
            kind=kind, period_start=line_start, period_end=line_end, issued_at=issued_at
        )
        pieces += _line_pieces(
            customer_id=customer_id,
            plan=plan,
            meter=meter,
            kind=kind,
            amount=-quantize_money(amount, currency),
            start=since or at,
            end=until or at,
            groups=_stored_groups(usage_groups, group),
            currency=currency,
            adding=adding,
            booked_at=at if read.books else None,
            in_advance=in_advance,
        )
    return pieces


def _accrued_pieces(window, start, end, currency, customers, now, adding) -> list[Piece]:
    """The pieces of what live subscriptions' periods bill and no invoice has
    yet (billing.revenue.accruals), noting as of when in `window`."""
    lines, window.accrued_as_of = accrued_lines(
        start=start, end=end, currency=currency, now=now, customers=customers, apart=window.apart
    )
    pieces = []
    for line in lines:
        if line.kind in NOT_EARNED:
            continue  # a drawdown from a prepaid commit: its usage earns
        pieces += _line_pieces(
            customer_id=line.customer_id,
            plan=line.plan,
            meter=line.meter,
            kind=line.kind,
            amount=quantize_money(line.amount, currency),
            start=line.start,
            end=line.end,
            groups=_stored_groups(line.usage_groups, line.group),
            currency=currency,
            adding=adding,
            accrued=True,
        )
    return pieces


def earned_revenue(
    *,
    start: datetime,
    end: datetime,
    currency: str,
    now: datetime,
    view: str = "customer",
    customers: Iterable[int] | None = None,
) -> list[Earned]:
    """earned_window's rows by one view."""
    window = earned_window(start=start, end=end, currency=currency, now=now, customers=customers)
    return window.rows_by(view)
