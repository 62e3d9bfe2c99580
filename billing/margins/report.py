"""Margins: what was billed for usage in a window against what it cost
(billing.margins.costs), by customer, plan, meter or a rate card's property.

Revenue is the contract's (API.md "Costs and margins"): the lines of kinds
usage, overage, uncovered_usage and late_usage whose service period lies in
the window, net of their invoice's discount shared pro rata over its lines
(what the discount was taken from: every line but the discount lines and the
"usage invoiced earlier" ones), before tax; the fixed fees (base_fee, seats,
minimum_commitment) likewise for the customer and plan views; and what usage
drew from paid credits and balances in the window, at what they were sold
for (wallets.revenue). Void invoices bill nothing, and threshold invoices are
left out: the period invoice after them rates the period's whole usage again
(and takes theirs off), so its lines hold all of it. What credit notes gave
back of those lines (a threshold invoice's too) is taken off, in the window of
the line credited, whenever the note was issued. By a property, revenue
is the lines' `group` (their rate card row's `when`): a row not naming the
property (the default row) counts under null. Each figure is rounded once."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from billing.core.money import format_decimal, format_money, quantize_money
from billing.core.vocabulary import LineKind
from billing.margins.costs import usage_costs
from billing.models import Subscription
from billing.rating.pricing import EXACT_PRECISION
from billing.usage.metering import meter_cache
from customers.models import Customer
from invoices.models import CreditNoteLine, Invoice, InvoiceLine
from plans.models import PlanVersion
from wallets.revenue import consumed_at_sale_value

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
VIEWS = ("customer", "plan", "meter")
USAGE_KINDS = (LineKind.USAGE, LineKind.OVERAGE, LineKind.UNCOVERED_USAGE, LineKind.LATE_USAGE)
FEE_KINDS = (LineKind.BASE_FEE, LineKind.SEATS, LineKind.MINIMUM_COMMITMENT)
# What an invoice's discount was not taken from.
NOT_DISCOUNTED = (LineKind.DISCOUNT, LineKind.USAGE_INVOICED)


@dataclass
class Margin:
    key: dict
    revenue: Decimal = ZERO
    cost: Decimal = ZERO
    uncosted_quantity: Decimal = ZERO
    # The exact sums, rounded once into revenue and cost.
    exact_revenue: Decimal = field(default=ZERO, repr=False)
    exact_cost: Decimal = field(default=ZERO, repr=False)

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        with localcontext(prec=EXACT_PRECISION):
            percent = self.margin * HUNDRED / self.revenue
        return percent.quantize(CENT, rounding=ROUND_HALF_UP) + 0


def price_by_properties() -> set[str]:
    """The properties a margin may be grouped by besides customer, plan and
    meter: those some meter groups its usage by."""
    return {name for meter in meter_cache.by_id().values() for name in meter.group_by}


def window_currencies(start: datetime, end: datetime) -> list[str]:
    """The currencies a report over [start, end) may be asked in without naming
    one: those of the customers with a subscription or a (not void) invoice in
    the window; when there is none, the customers' one currency, or the one
    currency the published plans are priced in; else every customer's. Sorted;
    a report names its currency when this is one, and asks for one otherwise."""
    subscribed = (
        Subscription.objects.filter(started_at__lt=end).exclude(ended_at__lte=start).order_by()
    )
    billed = Invoice.objects.filter(period_start__lt=end, period_end__gt=start).exclude(
        status=Invoice.VOID
    )
    active = set(subscribed.values_list("customer__currency", flat=True).distinct()) | set(
        billed.order_by().values_list("currency", flat=True).distinct()
    )
    if active:
        return sorted(active)
    billing = sorted(Customer.objects.order_by().values_list("currency", flat=True).distinct())
    if len(billing) > 1:
        priced = set(
            PlanVersion.objects.filter(status=PlanVersion.PUBLISHED)
            .order_by()
            .values_list("currency", flat=True)
            .distinct()
        )
        if len(priced) == 1:
            return sorted(priced)
    return billing


def _customer_plans(start: datetime, end: datetime) -> dict[int, str]:
    """Each customer's plan in the window: that of its latest subscription
    begun before the window's end and not ended before its start."""
    plans = {}
    for customer_id, code in (
        Subscription.objects.filter(started_at__lt=end)
        .exclude(ended_at__lt=start)
        .order_by("started_at", "id")
        .values_list("customer_id", "version__plan__code")
    ):
        plans[customer_id] = code
    return plans


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


def _billed_lines(start: datetime, end: datetime, currency: str, kinds, customers) -> list[dict]:
    billed = InvoiceLine.objects.filter(
        invoice__currency=currency,
        kind__in=kinds,
        period_start__gte=start,
        period_end__lte=end,
    )
    if customers is not None:
        billed = billed.filter(invoice__customer_id__in=list(customers))
    lines = list(
        billed.exclude(invoice__status=Invoice.VOID)
        .exclude(invoice__reason=Invoice.THRESHOLD)
        .values(
            "invoice_id",
            "invoice__discount",
            "invoice__customer_id",
            "invoice__subscription__version__plan__code",
            "meter",
            "group",
            "amount",
            "kind",
        )
    )
    bases = _discount_bases({line["invoice_id"] for line in lines if line["invoice__discount"]})
    with localcontext(prec=EXACT_PRECISION):
        for line in lines:
            amount = quantize_money(line["amount"], currency)
            base = bases.get(line["invoice_id"], ZERO)
            discount = line["invoice__discount"]
            line["net"] = amount - discount * amount / base if discount and base > 0 else amount
    return lines + _credited_lines(start, end, currency, kinds, customers)


def _credited_lines(start: datetime, end: datetime, currency: str, kinds, customers) -> list[dict]:
    """What credit notes gave back of the window's lines (before tax, already
    net of the discount: credit_notes caps a line at its discounted share), as
    lines of negative net under the credited line's customer, plan, meter and
    group. Threshold invoices' lines too: the period invoice takes off what a
    threshold invoice billed, not what was credited of it."""
    credited = CreditNoteLine.objects.filter(
        invoice_line__invoice__currency=currency,
        invoice_line__kind__in=kinds,
        invoice_line__period_start__gte=start,
        invoice_line__period_end__lte=end,
    ).exclude(invoice_line__invoice__status=Invoice.VOID)
    if customers is not None:
        credited = credited.filter(invoice_line__invoice__customer_id__in=list(customers))
    names = {
        "invoice_line__invoice__customer_id": "invoice__customer_id",
        "invoice_line__invoice__subscription__version__plan__code": (
            "invoice__subscription__version__plan__code"
        ),
        "invoice_line__meter": "meter",
        "invoice_line__group": "group",
        "invoice_line__kind": "kind",
    }
    return [
        {names[name]: value for name, value in row.items() if name in names}
        | {"net": -quantize_money(row["amount"], currency)}
        for row in credited.values(*names, "amount")
    ]


def margins(
    *, start: datetime, end: datetime, group_by: str, currency: str, customers=None
) -> list[Margin]:
    """Revenue, cost and margin in [start, end) (whole UTC hours) per key of
    `group_by` (VIEWS or a property of price_by_properties), in `currency`,
    largest revenue first; of these `customers` (ids) only, when given."""
    views = margins_by(
        start=start, end=end, views=(group_by,), currency=currency, customers=customers
    )
    return views[group_by]


def margins_by(
    *, start: datetime, end: datetime, views: tuple[str, ...], currency: str, customers=None
) -> dict[str, list[Margin]]:
    """margins() of each of `views` over the same window, the window's lines,
    consumption and costs read once for all of them (the admin page by plan
    also lists the customers of lowest margin)."""
    plans = _customer_plans(start, end) if "plan" in views else {}
    grouped = [_View(name, plans) for name in views]
    kinds = USAGE_KINDS + (FEE_KINDS if any(v.with_fees for v in grouped) else ())
    for line in _billed_lines(start, end, currency, kinds, customers):
        for view in grouped:
            view.add_line(line)
    if any(view.by_view for view in grouped):
        for consumed in consumed_at_sale_value(
            start=start, end=end, currency=currency, customers=customers
        ):
            for view in grouped:
                view.add_consumed(consumed)
    for usage in usage_costs(start=start, end=end, currency=currency, customers=customers):
        for view in grouped:
            view.add_usage(usage)
    return {view.name: view.rows_in(currency) for view in grouped}


class _View:
    """The rows of one view of margins() as the window's figures are added."""

    def __init__(self, name: str, plans: dict[int, str]):
        self.name = name
        self.by_view = name in VIEWS
        self.with_fees = name in ("customer", "plan")
        self.kinds = set(USAGE_KINDS + (FEE_KINDS if self.with_fees else ()))
        self.plans = plans
        self.grouping = {m.code for m in meter_cache.by_id().values() if name in m.group_by}
        self.rows: dict[tuple, Margin] = {}

    def row(self, value) -> Margin:
        key = (value,)
        return self.rows.get(key) or self.rows.setdefault(key, Margin(key={self.name: value}))

    def value(self, customer_id: int, meter_code: str, plan: str | None = None):
        if self.name == "customer":
            return customer_id
        if self.name == "plan":
            return plan or self.plans.get(customer_id)
        return meter_code

    def add_line(self, line: dict) -> None:
        if line["kind"] not in self.kinds:
            return
        if self.by_view:
            if self.name == "meter" and not line["meter"]:
                return
            value = self.value(
                line["invoice__customer_id"],
                line["meter"],
                line["invoice__subscription__version__plan__code"],
            )
        elif line["group"] is None or line["meter"] not in self.grouping:
            return
        else:
            value = line["group"].get(self.name)
        self.row(value).exact_revenue += line["net"]

    def add_consumed(self, consumed) -> None:
        if not self.by_view or (self.name == "meter" and not consumed.meter):
            return
        self.row(self.value(consumed.customer_id, consumed.meter)).exact_revenue += consumed.value

    def add_usage(self, usage) -> None:
        if self.by_view:
            value = self.value(usage.customer_id, usage.meter.code)
        elif usage.meter.code in self.grouping:
            value = dict(usage.values).get(self.name)
        else:
            return
        found = self.row(value)
        found.exact_cost += usage.cost
        found.uncosted_quantity += usage.uncosted

    def rows_in(self, currency: str) -> list[Margin]:
        """The rows, rounded once, largest revenue first (customers by their ID)."""
        name = self.name
        if name == "customer":
            names = dict(
                Customer.objects.filter(pk__in=[key for (key,) in self.rows]).values_list(
                    "pk", "external_id"
                )
            )
            for margin in self.rows.values():
                margin.key = {"customer": names.get(margin.key["customer"])}
        for margin in self.rows.values():
            margin.revenue = quantize_money(margin.exact_revenue, currency)
            margin.cost = quantize_money(margin.exact_cost, currency)
        return sorted(
            self.rows.values(),
            key=lambda m: (-m.revenue, m.key[name] is None, str(m.key[name])),
        )


def margins_total(rows: list[Margin], *, key: dict, currency: str) -> Margin:
    """The rows together under `key`: their exact sums, rounded once (so the
    total's revenue may differ by a cent from the sum of the rounded rows')."""
    total = Margin(key=key)
    for row in rows:
        total.exact_revenue += row.exact_revenue
        total.exact_cost += row.exact_cost
        total.uncosted_quantity += row.uncosted_quantity
    total.revenue = quantize_money(total.exact_revenue, currency)
    total.cost = quantize_money(total.exact_cost, currency)
    return total


def month_margins(
    *,
    months: list[tuple[datetime, datetime]],
    currency: str,
    known: dict[tuple[datetime, datetime], list[Margin]] | None = None,
) -> list[Margin]:
    """Every customer's revenue, cost and margin together in each [start, end)
    of `months` (key {"month": start}), from their exact sums rounded once.
    `known`: margins by customer of every customer in `currency` already read
    for some of these windows, by (start, end), not read again."""
    known = known or {}
    totals = []
    for start, end in months:
        rows = known.get((start, end))
        if rows is None:
            rows = margins(start=start, end=end, group_by="customer", currency=currency)
        totals.append(margins_total(rows, key={"month": start}, currency=currency))
    return totals


def lowest_margins(rows: list[Margin], count: int = 5) -> list[Margin]:
    """The `count` rows of lowest margin %: first those that cost without
    earning (no margin %, a loss), then by margin %, then by margin. A row that
    neither earned nor cost is not among them."""

    def rank(row: Margin) -> tuple:
        if row.margin_percent is None:
            return (0, ZERO, row.margin)
        return (1, row.margin_percent, row.margin)

    ranked = [row for row in rows if row.margin_percent is not None or row.margin < 0]
    return sorted(ranked, key=rank)[:count]


CSV_COLUMNS = ["revenue", "cost", "margin", "margin_percent", "uncosted_quantity", "currency"]


class _Line:
    """A file-like object csv.writer writes one line into, handed back as text."""

    def write(self, text: str) -> str:
        return text


def margins_csv_lines(rows, *, group_by: str, currency: str) -> Iterator[str]:
    """The rows as the API gives them, one a line, the header first, the key
    first on each (empty for none): for a streamed download."""
    writer = csv.writer(_Line(), lineterminator="\n")
    yield writer.writerow([group_by, *CSV_COLUMNS])
    for row in rows:
        key = row.key[group_by]
        percent = row.margin_percent
        yield writer.writerow(
            [
                "" if key is None else key,
                format_money(row.revenue, currency),
                format_money(row.cost, currency),
                format_money(row.margin, currency),
                "" if percent is None else format(percent, "f"),
                format_decimal(row.uncosted_quantity),
                currency,
            ]
        )


def margins_csv(rows: list[Margin], *, group_by: str, currency: str) -> str:
    """margins_csv_lines in one text."""
    return "".join(margins_csv_lines(rows, group_by=group_by, currency=currency))
