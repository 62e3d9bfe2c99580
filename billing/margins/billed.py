"""What the invoices billed in a margins window (billing.margins.report's
revenue): the lines whose service period lies in the window, each net of its
invoice's discount shared pro rata, less what credit notes gave back of them.
Void invoices bill nothing and threshold invoices are left out (the period
invoice after them bills the period's whole usage again).

The lines are read as tuples of the columns a report's views need (the plan
stamped on a line only for the plan view, the JSON group only for a
property's), and `billed_totals` adds up windows' lines without a row a line
where it can: the lines of invoices without a discount grouped by window and
amount, each amount counted once with how many lines bill it. Both net each
line the same way, so a total is the sum of the same figures."""

from datetime import datetime
from decimal import Decimal, localcontext
from typing import NamedTuple

from django.db.models import Case, Count, IntegerField, Value, When

from billing.core.money import quantize_money
from billing.core.vocabulary import LineKind
from billing.rating.pricing import EXACT_PRECISION
from invoices.models import CreditNoteLine, Invoice, InvoiceLine

ZERO = Decimal(0)
# What an invoice's discount was not taken from.
NOT_DISCOUNTED = (LineKind.DISCOUNT, LineKind.USAGE_INVOICED)


class Billed(NamedTuple):
    """One line's part of the revenue: `net` exact, before rounding; `plan`
    and `group` None when not read (the views asked need neither)."""

    customer_id: int
    plan: str | None
    meter: str
    group: dict | None
    kind: str
    net: Decimal


def _window_lines(start: datetime, end: datetime, currency: str, kinds, customers):
    billed = InvoiceLine.objects.filter(
        invoice__currency=currency,
        kind__in=kinds,
        period_start__gte=start,
        period_end__lte=end,
    )
    if customers is not None:
        billed = billed.filter(invoice__customer_id__in=list(customers))
    return (
        billed.exclude(invoice__status=Invoice.VOID)
        .exclude(invoice__reason=Invoice.THRESHOLD)
        .order_by()
    )


def _discount_bases(invoice_ids: set[int]) -> dict[int, Decimal]:
    """What each invoice's discount was taken from: the sum of its lines but
    the discount and usage-invoiced ones."""
    bases: dict[int, Decimal] = {}
    rows = (
        InvoiceLine.objects.filter(invoice_id__in=invoice_ids)
        .exclude(kind__in=NOT_DISCOUNTED)
        .values_list("invoice_id", "amount", "invoice__currency")
    )
    for invoice_id, amount, currency in rows:
        bases[invoice_id] = bases.get(invoice_id, ZERO) + quantize_money(amount, currency)
    return bases


def _net(amount: Decimal, discount: Decimal, base: Decimal) -> Decimal:
    """A line's amount (rounded to the currency) less its share of the
    invoice's discount; in an EXACT_PRECISION context."""
    return amount - discount * amount / base if discount and base > 0 else amount


def billed_lines(
    *,
    start: datetime,
    end: datetime,
    currency: str,
    kinds,
    customers=None,
    with_plan: bool = False,
    with_group: bool = False,
) -> list[Billed]:
    """The window's lines of `kinds` billed in `currency` (of `customers` only,
    when given), net of discount, then what credit notes gave back of them as
    lines of negative net. `with_plan`: the code of the plan that priced each
    line (InvoiceLine.plan); `with_group`: its rate card group."""
    names = ["invoice_id", "invoice__discount", "invoice__customer_id", "meter", "kind", "amount"]
    names += ["plan"] if with_plan else []
    names += ["group"] if with_group else []
    plan_at, group_at = 6, 6 + with_plan
    rows = list(_window_lines(start, end, currency, kinds, customers).values_list(*names))
    bases = _discount_bases({row[0] for row in rows if row[1]})
    lines = []
    with localcontext(prec=EXACT_PRECISION):
        for row in rows:
            net = quantize_money(row[5], currency)
            if row[1]:
                net = _net(net, row[1], bases.get(row[0], ZERO))
            plan = row[plan_at] if with_plan else None
            group = row[group_at] if with_group else None
            lines.append(Billed(row[2], plan, row[3], group, row[4], net))
    return lines + credited_lines(
        start=start,
        end=end,
        currency=currency,
        kinds=kinds,
        customers=customers,
        with_plan=with_plan,
        with_group=with_group,
    )


def _credited(start: datetime, end: datetime, currency: str, kinds, customers):
    credited = CreditNoteLine.objects.filter(
        invoice_line__invoice__currency=currency,
        invoice_line__kind__in=kinds,
        invoice_line__period_start__gte=start,
        invoice_line__period_end__lte=end,
    ).exclude(invoice_line__invoice__status=Invoice.VOID)
    if customers is not None:
        credited = credited.filter(invoice_line__invoice__customer_id__in=list(customers))
    return credited.order_by()


def credited_lines(
    *,
    start: datetime,
    end: datetime,
    currency: str,
    kinds,
    customers=None,
    with_plan: bool = False,
    with_group: bool = False,
) -> list[Billed]:
    """What credit notes gave back of the window's lines (before tax, already
    net of the discount: credit_notes caps a line at its discounted share), as
    lines of negative net under the credited line's customer, plan, meter and
    group. Threshold invoices' lines too: the period invoice takes off what a
    threshold invoice billed, not what was credited of it."""
    names = ["invoice_line__invoice__customer_id", "invoice_line__meter", "invoice_line__kind"]
    names += ["amount"]
    names += ["invoice_line__plan"] if with_plan else []
    names += ["invoice_line__group"] if with_group else []
    plan_at, group_at = 4, 4 + with_plan
    lines = []
    for row in _credited(start, end, currency, kinds, customers).values_list(*names):
        plan = row[plan_at] if with_plan else None
        group = row[group_at] if with_group else None
        net = -quantize_money(row[3], currency)
        lines.append(Billed(row[0], plan, row[1], group, row[2], net))
    return lines


def _which_window(prefix: str, windows: list[tuple[datetime, datetime]]) -> Case:
    """The index of the window a line's service period lies in (null: none),
    the line's fields under `prefix`."""
    return Case(
        *(
            When(
                **{f"{prefix}period_start__gte": start, f"{prefix}period_end__lte": end},
                then=Value(index),
            )
            for index, (start, end) in enumerate(windows)
        ),
        default=Value(None),
        output_field=IntegerField(),
    )


def billed_totals(
    *, windows: list[tuple[datetime, datetime]], currency: str, kinds
) -> list[Decimal]:
    """For each of `windows` (in order, none overlapping), the net of every
    customer's lines of `kinds` in it less what credit notes gave back of
    them: billed_lines' nets added up, exact. Read in one pass for all of
    them, the lines of invoices without a discount and the credited amounts
    as one row a window and amount, with how many lines bill it (a month's
    fees are a few amounts over thousands of lines)."""
    totals = [ZERO] * len(windows)
    if not windows:
        return totals
    span = (windows[0][0], windows[-1][1])
    lines = _window_lines(*span, currency, kinds, None).annotate(window=_which_window("", windows))
    for window, amount, count in (
        lines.filter(invoice__discount=0)
        .values_list("window", "amount")
        .annotate(lines=Count("id"))
        .values_list("window", "amount", "lines")
    ):
        if window is not None:
            totals[window] += quantize_money(amount, currency) * count
    discounted = list(
        lines.exclude(invoice__discount=0).values_list(
            "window", "invoice_id", "invoice__discount", "amount"
        )
    )
    bases = _discount_bases({row[1] for row in discounted if row[0] is not None})
    with localcontext(prec=EXACT_PRECISION):
        nets = [
            (window, _net(quantize_money(amount, currency), discount, bases.get(invoice, ZERO)))
            for window, invoice, discount, amount in discounted
            if window is not None
        ]
    for window, net in nets:
        totals[window] += net
    credited = _credited(*span, currency, kinds, None).annotate(
        window=_which_window("invoice_line__", windows)
    )
    for window, amount, count in (
        credited.values_list("window", "amount")
        .annotate(lines=Count("id"))
        .values_list("window", "amount", "lines")
    ):
        if window is not None:
            totals[window] -= quantize_money(amount, currency) * count
    return totals
