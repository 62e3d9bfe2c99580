"""Revenue earned in a window [start, end): the one function margins, the
dashboard, the customer page and the revenue reports read (DESIGN.md "Earned
revenue", API.md v1.3). From what was billed and what is accruing:

- Invoice lines (not void, not a threshold invoice's: the period invoice after
  it rates the period's whole usage again), each net of its invoice's discount
  (the discount shared among the lines it was taken from, in proportion,
  to the cent: billing.core.money.split_money). A usage line is earned as its
  usage happened within its service period (billing.revenue.usage_shares);
  every other line with a service period (fixed fees, seats, proration, the
  true-up, a commit and what it draws) straight-line over it, by the second; a
  line without one at its invoice's date. What credit notes gave back of a
  line, at the credit note's date.
- What is accruing: each live subscription's period statement for the part
  not invoiced yet (PeriodStatement.invoice_lines, as of now), without the
  minimum commitment true-up only the period's end settles.
- What usage drew from paid credits and balances in the window, at what they
  were sold for (wallets.revenue), each customer's and meter's rounded.

A line is cut into pieces by the usage it priced per combination of its
meter's group_by values (InvoiceLine.usage_groups), its amount shared among
them in proportion to their quantities (largest remainder, ties to the larger
quantity); a line of no grouping meter, and a line stamped before the stamp
existed (its rate card row's values, if any), is one piece. Every view of the
window adds up the same pieces, so totals are the same whatever the view.

Rounding is cumulative: what a piece earned up to a moment is rounded half up,
and a window's part is the difference of two such amounts: adjacent windows
add up exactly, and a piece's parts add up to the piece."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext

from django.db.models import Q

from billing.core.money import quantize_money, split_money
from billing.core.vocabulary import LineKind
from billing.models import Subscription
from billing.rating.lines import LineInput
from billing.rating.pricing import EXACT_PRECISION
from billing.rating.rate_cards import Combination
from billing.revenue.usage_shares import Cut, additive, usage_shares
from billing.usage.metering import meter_cache
from billing.usage.statement import period_statement
from customers.models import BillingEntity, Customer
from invoices.models import CreditNoteLine, Invoice, InvoiceLine
from wallets.revenue import consumed_at_sale_value

ZERO = Decimal(0)
# What an invoice's discount was not taken from.
NOT_DISCOUNTED = (LineKind.DISCOUNT, LineKind.USAGE_INVOICED)
# Lines that earn nothing themselves: the discount (shared among the lines it
# discounts), what threshold invoices billed (their usage is on the period
# invoice), tax, the credit balance applied (a payment), and what is bought in
# advance (credits and balances earn as they are drawn).
NOT_EARNED = (
    *NOT_DISCOUNTED,
    LineKind.TAX,
    LineKind.CREDITS_APPLIED,
    LineKind.CREDIT_PACK,
    LineKind.CREDITS,
    LineKind.TOP_UP,
)
# Earned as their usage happened; every other line straight-line.
USAGE_KINDS = (LineKind.USAGE, LineKind.OVERAGE, LineKind.UNCOVERED_USAGE, LineKind.LATE_USAGE)
# What accrues of an open period: not the true-up, which only its end settles.
NOT_ACCRUED = (*NOT_EARNED, LineKind.MINIMUM_COMMITMENT)
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


@dataclass
class Earned:
    """One row of a view: what was earned from invoiced lines (`billed`) and
    from the part not invoiced yet (`accrued`)."""

    key: dict
    billed: Decimal = ZERO
    accrued: Decimal = ZERO

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


@dataclass
class EarnedWindow:
    """The window's parts, read once, viewed as many ways as asked (rows_by)."""

    currency: str
    parts: list[_Part] = field(default_factory=list)
    entities: dict[int, str] = field(default_factory=dict)  # customer id -> entity code

    @property
    def total(self) -> Earned:
        total = Earned(key={})
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
        grouping = {m.code for m in meter_cache.by_id().values() if view in m.group_by}
        rows: dict[object, Earned] = {}
        for part in self.parts:
            value = self._value(part, view, grouping)
            row = rows.get(value)
            if row is None:
                row = rows[value] = Earned(key={view: value})
            if part.accrued:
                row.accrued += part.amount
            else:
                row.billed += part.amount
        return sorted(rows.values(), key=lambda r: (-r.earned, r.key[view] is None, str(r.key)))

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
) -> EarnedWindow:
    """What the customers billed in `currency` (these `customers` only, when
    given) earned in [start, end), as of `now`."""
    customers = None if customers is None else list(customers)
    window = EarnedWindow(currency)
    pieces = [
        *_billed_pieces(start, end, currency, customers),
        *_credited_pieces(start, end, currency, customers),
        *_accrued_pieces(start, end, currency, customers, now),
    ]
    shares = usage_shares(
        cut for piece in pieces for at in (start, end) if (cut := _cut(piece, at)) is not None
    )
    for piece in pieces:
        amount = _earned_by(piece, end, shares, currency) - _earned_by(
            piece, start, shares, currency
        )
        if amount:
            window.parts.append(
                _Part(
                    piece.customer_id,
                    piece.plan,
                    piece.meter,
                    piece.values,
                    amount,
                    piece.accrued,
                )
            )
    for drawn in consumed_at_sale_value(
        start=start, end=end, currency=currency, customers=customers
    ):
        if amount := quantize_money(drawn.value, currency):
            window.parts.append(_Part(drawn.customer_id, "", drawn.meter, (), amount))
    return window


def customer_entities(customer_ids: Iterable[int]) -> dict[int, str]:
    """Each customer's seller (billing entity code): its own, else the default."""
    found = dict(
        Customer.objects.filter(pk__in=list(customer_ids)).values_list("pk", "billing_entity__code")
    )
    if any(code is None for code in found.values()):
        default = BillingEntity.objects.filter(is_default=True).values_list("code", flat=True)
        fallback = default.first()
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
    accrued: bool = False,
) -> list[Piece]:
    """A line's amount cut by the usage it priced per combination."""
    usage = kind in USAGE_KINDS and additive(meter_cache.by_code(meter) if meter else None)
    groups = [(combination, quantity) for combination, quantity in groups if quantity]
    if not groups:
        groups = [((), Decimal(1))]
    amounts = split_money(
        amount,
        [quantity for _c, quantity in groups],
        currency,
        ties=[_values_key(c) for c, _q in groups],
    )
    return [
        Piece(customer_id, plan, meter, combination, part, start, end, usage, accrued)
        for (combination, _q), part in zip(groups, amounts, strict=True)
        if part
    ]


def _values_key(combination: Combination) -> tuple:
    return tuple((name, value is not None, value or "") for name, value in combination)


def _stored_groups(usage_groups: list, group: dict | None) -> list[tuple[Combination, Decimal]]:
    """A line's usage per combination as stored (InvoiceLine.usage_groups); for a
    line stamped before that, its rate card row's values as one group."""
    if usage_groups:
        return [(tuple(sorted(g["values"].items())), Decimal(g["quantity"])) for g in usage_groups]
    return [(tuple(sorted(group.items())), Decimal(1))] if group else []


LINE_FIELDS = (
    "id",
    "invoice_id",
    "invoice__customer_id",
    "invoice__discount",
    "invoice__finalized_at",
    "invoice__created_at",
    "kind",
    "meter",
    "plan",
    "amount",
    "period_start",
    "period_end",
    "usage_groups",
    "group",
)


def _billed_pieces(start, end, currency, customers) -> list[Piece]:
    """The pieces of the invoice lines earning in the window."""
    lines = InvoiceLine.objects.filter(invoice__currency=currency).exclude(
        invoice__status=Invoice.VOID
    )
    lines = lines.exclude(invoice__reason=Invoice.THRESHOLD).order_by()
    if customers is not None:
        lines = lines.filter(invoice__customer_id__in=customers)
    # A line with a service period overlapping the window, or dated in it.
    dated = Q(period_start__isnull=True) & (
        Q(invoice__finalized_at__gte=start, invoice__finalized_at__lt=end)
        | Q(
            invoice__finalized_at__isnull=True,
            invoice__created_at__gte=start,
            invoice__created_at__lt=end,
        )
    )
    spanning = Q(period_start__lt=end, period_end__gt=start)
    earning = lines.filter(dated | spanning).exclude(kind__in=NOT_EARNED)
    rows = list(earning.values_list(*LINE_FIELDS))
    discounts = _discount_shares({row[1] for row in rows if row[3]}, currency)
    pieces = []
    for (
        pk,
        _invoice,
        customer_id,
        _discount,
        finalized,
        created,
        kind,
        meter,
        plan,
        amount,
        period_start,
        period_end,
        usage_groups,
        group,
    ) in rows:
        net = quantize_money(amount, currency) - discounts.get(pk, ZERO)
        if period_start is None or period_end is None or period_end <= period_start:
            period_start = period_end = finalized or created
        pieces += _line_pieces(
            customer_id=customer_id,
            plan=plan,
            meter=meter,
            kind=kind,
            amount=net,
            start=period_start,
            end=period_end,
            groups=_stored_groups(usage_groups, group),
            currency=currency,
        )
    return pieces


def _discount_shares(invoice_ids: set[int], currency: str) -> dict[int, Decimal]:
    """Each discounted line's share of its invoice's discount (by line id): the
    discount shared among the lines it was taken from (all but the discount and
    the threshold invoices taken off) in proportion to their amounts, to the cent."""
    by_invoice: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    discounts: dict[int, Decimal] = {}
    rows = (
        InvoiceLine.objects.filter(invoice_id__in=invoice_ids)
        .exclude(kind__in=NOT_DISCOUNTED)
        .order_by("invoice_id", "position")
        .values_list("invoice_id", "id", "amount", "invoice__discount")
    )
    for invoice_id, pk, amount, discount in rows:
        by_invoice[invoice_id].append((pk, quantize_money(amount, currency)))
        discounts[invoice_id] = quantize_money(discount, currency)
    shares = {}
    for invoice_id, lines in by_invoice.items():
        parts = split_money(discounts[invoice_id], [amount for _pk, amount in lines], currency)
        shares.update({pk: part for (pk, _amount), part in zip(lines, parts, strict=True)})
    return shares


def _credited_pieces(start, end, currency, customers) -> list[Piece]:
    """What credit notes dated in the window gave back of earning lines (before
    tax, already net of the discount), as pieces at the credit note's date."""
    credited = (
        CreditNoteLine.objects.filter(
            invoice_line__invoice__currency=currency,
            credit_note__created_at__gte=start,
            credit_note__created_at__lt=end,
        )
        .exclude(invoice_line__invoice__status=Invoice.VOID)
        .exclude(invoice_line__kind__in=NOT_EARNED)
        .order_by()
    )
    if customers is not None:
        credited = credited.filter(invoice_line__invoice__customer_id__in=customers)
    pieces = []
    for customer_id, plan, meter, kind, amount, at, usage_groups, group in credited.values_list(
        "invoice_line__invoice__customer_id",
        "invoice_line__plan",
        "invoice_line__meter",
        "invoice_line__kind",
        "amount",
        "credit_note__created_at",
        "invoice_line__usage_groups",
        "invoice_line__group",
    ):
        pieces += _line_pieces(
            customer_id=customer_id,
            plan=plan,
            meter=meter,
            kind=kind,
            amount=-quantize_money(amount, currency),
            start=at,
            end=at,
            groups=_stored_groups(usage_groups, group),
            currency=currency,
        )
    return pieces


def _accrued_pieces(start, end, currency, customers, now) -> list[Piece]:
    """The pieces of what live subscriptions' periods bill and no invoice has
    yet: their statements' invoice lines as of now (the period's end, when it
    ended and was not closed yet). Also for a window after now: a seat change
    accrues its charge to the period's end, past now."""
    live = Subscription.objects.filter(
        status__in=Subscription.LIVE,
        customer__currency=currency,
        current_period_start__lt=min(end, now),
        current_period_end__gt=start,
    ).select_related("customer", "version__plan")
    if customers is not None:
        live = live.filter(customer_id__in=customers)
    pieces = []
    for subscription in live:
        until = min(now, subscription.current_period_end)
        statement = period_statement(
            subscription,
            start=subscription.current_period_start,
            end=subscription.current_period_end,
            until=until,
        )
        plan = subscription.version.plan.code
        for line in statement.invoice_lines():
            if line.kind in NOT_ACCRUED or not line.amount:
                continue
            pieces += _accrued_line(line, subscription.customer_id, plan, statement, currency)
    return pieces


def _accrued_line(line: LineInput, customer_id: int, plan: str, statement, currency: str):
    line_start = line.period_start or statement.usage_from
    line_end = line.period_end or statement.part.until
    if line_end <= line_start:
        line_start = line_end = statement.part.until
    return _line_pieces(
        customer_id=customer_id,
        plan=line.plan or plan,
        meter=line.meter or "",
        kind=line.kind,
        amount=quantize_money(line.amount, currency),
        start=line_start,
        end=line_end,
        groups=list(line.usage_groups),
        currency=currency,
        accrued=True,
    )


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
