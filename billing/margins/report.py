"""Margins: revenue earned in a window (billing.revenue.earned, the one
function that says what was earned) against what the usage cost
(billing.margins.costs), by customer, plan, meter, billing entity or a
property some meter groups its usage by.

Revenue is earned_window's: invoice lines net of their discount, usage as it
happened, fees straight-line over their period, credit notes at their date,
the open periods' statements for what is accruing, and what usage drew from
paid credits and balances at what they were sold for. Every view adds up the
same pieces (each in the currency's minor unit), so revenue totals are equal
whatever the view and a view's rows add up to its total. Costs are summed
exactly per row and rounded once; by plan, the cost of usage is under the
plan in effect when it happened (billing.revenue.plans_in_effect).

In a report currency (`billed_in`: the customers billed in those currencies,
every figure in `currency`): revenue is earned_converted's (each piece at the
rate of the start of its UTC day, billing.revenue.conversion) and costs
usage_costs' converted straight into it; a rate missing is named on the row
(`missing_rates`, "JPY->USD") and with its day (`missing_days`), and what it
would have converted is left out (revenue) or uncosted (cost)."""

import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from django.utils import timezone

from billing.margins.costs import usage_costs
from billing.models import Subscription
from billing.revenue.conversion import MissingRate
from billing.revenue.earned import VIEWS, EarnedWindow, earned_converted, earned_window
from billing.revenue.plans_in_effect import plans_in_effect
from billing.usage.metering import meter_cache
from billing.usage.rollups import hour_of
from common.money import format_decimal, format_money, quantize_money
from common.spreadsheet_csv import Figure, SpreadsheetCsv
from customers.models import Customer
from invoices.models import Invoice
from plans.models import PlanVersion
from plans.pricing import EXACT_PRECISION

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
# margin_percent's exact division: a context passed to it rather than a
# localcontext entered for each of 10,000 rows, sorted and ranked by it.
_EXACT = Context(prec=EXACT_PRECISION)


@dataclass
class Margin:
    key: dict
    revenue: Decimal = ZERO
    cost: Decimal = ZERO
    uncosted_quantity: Decimal = ZERO
    # The exact sums, rounded once into revenue and cost.
    exact_revenue: Decimal = field(default=ZERO, repr=False)
    exact_cost: Decimal = field(default=ZERO, repr=False)
    # Why part of the row's usage could not be costed (billing.margins.costs):
    # the row is shown with what could be, and says so.
    problems: set[str] = field(default_factory=set, repr=False)
    # The exchange rates missing to cost part of the row's usage ({"USD->EUR"}):
    # that quantity is in uncosted_quantity.
    missing_rates: set[str] = field(default_factory=set)
    # The rates missing (to cost, or in a report currency to convert revenue),
    # each with the day it is missing from.
    missing_days: set[MissingRate] = field(default_factory=set, repr=False)

    @property
    def error(self) -> str | None:
        """What the row could not compute, in a sentence; None when it computed all."""
        return "; ".join(sorted(self.problems)) or None

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        percent = _EXACT.divide(_EXACT.multiply(self.margin, HUNDRED), self.revenue)
        return percent.quantize(CENT, rounding=ROUND_HALF_UP) + 0


def price_by_properties() -> set[str]:
    """The properties a margin may be grouped by besides customer, plan and
    meter: those some meter groups its usage by."""
    return {name for meter in meter_cache.by_id().values() for name in meter.group_by}


def window_currencies(start: datetime, end: datetime, customers=None) -> list[str]:
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
    if customers is not None:
        subscribed = subscribed.filter(customer_id__in=customers)
        billed = billed.filter(customer_id__in=customers)
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


def margins(
    *,
    start: datetime,
    end: datetime,
    group_by: str,
    currency: str,
    customers=None,
    now: datetime | None = None,
    billed_in: list[str] | None = None,
) -> list[Margin]:
    """Revenue earned, cost and margin in [start, end) (whole UTC hours) per
    key of `group_by` (VIEWS or a property of price_by_properties), in
    `currency`, largest revenue first; of these `customers` (ids) only, when
    given; as of `now` (default: now). `billed_in`: of the customers billed in
    these currencies, converted into `currency` (a report currency)."""
    views = margins_by(
        start=start,
        end=end,
        views=(group_by,),
        currency=currency,
        customers=customers,
        now=now,
        billed_in=billed_in,
    )
    return views[group_by]


def margins_by(
    *,
    start: datetime,
    end: datetime,
    views: tuple[str, ...],
    currency: str,
    customers=None,
    now: datetime | None = None,
    billed_in: list[str] | None = None,
) -> dict[str, list[Margin]]:
    """margins() of each of `views` over the same window, what was earned and
    the costs read once for all of them (the admin page by plan also lists the
    customers of lowest margin)."""
    now = now or timezone.now()
    found = plans_in_effect(start=start, end=end, customers=customers) if "plan" in views else None
    grouped = [_View(name, found.single if name == "plan" else {}) for name in views]
    earned = _earned(
        start=start,
        end=end,
        currency=currency,
        now=now,
        customers=customers,
        by_property=any(view not in VIEWS for view in views),
        billed_in=billed_in,
    )
    usages = usage_costs(
        start=start, end=end, currency=currency, customers=customers, billed_in=billed_in
    )
    for view in grouped:
        view.add_earned(earned)
        if view.name == "plan":
            _add_by_plan(view, found.split, start, end, currency, usages, billed_in)
        else:
            view.add_usages(usages, earned)
    return {view.name: view.rows_in(currency) for view in grouped}


def _earned(*, billed_in: list[str] | None, currency: str, **window) -> EarnedWindow:
    """earned_window in `currency`, or earned_converted of the customers billed
    in `billed_in` into it."""
    if billed_in is None:
        return earned_window(currency=currency, **window)
    return earned_converted(report_currency=currency, billed_in=billed_in, **window)


def _add_by_plan(view, split, start, end, currency, usages, billed_in=None) -> None:
    """Add the usage's costs in [start, end) to the plan view, each under the
    plan that priced it (plans_in_effect): the customers one plan priced under
    theirs (view.plans), and those moved between plans in the window (`split`)
    read again span by span."""
    if split:
        usages = [u for u in usages if u.customer_id not in split]
    view.add_usages(usages)
    for customer_id, spans in split.items():
        # From the window's start to its end, cut at each change; costs by whole
        # hours: the hour a change falls in goes to the plan after it.
        cuts = [start, *(min(max(hour_of(s.start), start), end) for s in spans[1:]), end]
        for n, span in enumerate(spans):
            if cuts[n] < cuts[n + 1]:
                view.add_usages(
                    usage_costs(
                        start=cuts[n],
                        end=cuts[n + 1],
                        currency=currency,
                        customers=[customer_id],
                        billed_in=billed_in,
                    ),
                    plan=span.plan,
                )


def _external_ids(ids: list[int], currency: str) -> dict[int, str]:
    """The external ids of these customers (billed in `currency`), by id: in one
    read of the currency's customers when these are at least half of them (an
    IN list of 10,000 ids cost more to build and plan than the rows it leaves
    out), else by id."""
    if not ids:
        return {}
    customers = Customer.objects.order_by()
    names = {}
    if len(ids) * 2 >= customers.filter(currency=currency).count():
        names = dict(customers.filter(currency=currency).values_list("pk", "external_id"))
    missing = [pk for pk in ids if pk not in names]
    if missing:
        names |= dict(customers.filter(pk__in=missing).values_list("pk", "external_id"))
    return names


class _View:
    """The rows of one view of margins() as the window's figures are added."""

    def __init__(self, name: str, plans: dict[int, str]):
        """`plans`: the plan view's plan of each customer one plan priced in the
        window (plans_in_effect)."""
        self.name = name
        self.by_view = name in VIEWS
        self.plans = plans
        self.grouping = {m.code for m in meter_cache.by_id().values() if name in m.group_by}
        self.rows: dict[object, Margin] = {}  # by the view's value

    def row(self, value) -> Margin:
        found = self.rows.get(value)
        if found is None:
            found = self.rows[value] = Margin(key={self.name: value})
        return found

    def add_earned(self, earned: EarnedWindow) -> None:
        """What was earned, a row a value of the view (earned_window.rows_by)."""
        for row in earned.rows_by(self.name):
            found = self.row(row.key[self.name])
            found.exact_revenue += row.earned
            if row.missing_rates:
                found.missing_days |= row.missing_rates
                found.missing_rates |= {missing.pair for missing in row.missing_rates}

    def add_usages(self, usages: list, earned: EarnedWindow | None = None, plan=None) -> None:
        """Usage costs; `plan`: the plan that priced them all (else the
        customer's); `earned`: whose sellers the billing entity view reads."""
        name, row = self.name, self.row
        if name == "billing_entity" and earned is not None:
            earned.entities_for({usage.customer_id for usage in usages})
        for usage in usages:
            if name == "customer":
                value = usage.customer_id
            elif name == "plan":
                value = plan or self.plans.get(usage.customer_id)
            elif name == "meter":
                value = usage.meter.code
            elif name == "billing_entity":
                value = earned.entity_of(usage.customer_id) if earned else None
            elif usage.meter.code in self.grouping:
                value = dict(usage.values).get(name)
            else:
                value = None
            found = row(value)
            found.exact_cost += usage.cost
            found.uncosted_quantity += usage.uncosted
            if usage.problems:
                found.problems |= usage.problems
            if usage.missing_rates:
                found.missing_rates |= usage.missing_rates
                found.missing_days |= usage.missing_days

    def rows_in(self, currency: str) -> list[Margin]:
        """The rows, rounded once, largest revenue first (customers by their ID)."""
        name = self.name
        if name == "customer":
            names = _external_ids(list(self.rows), currency)
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
        total.problems |= row.problems
        total.missing_rates |= row.missing_rates
        total.missing_days |= row.missing_days
    total.revenue = quantize_money(total.exact_revenue, currency)
    total.cost = quantize_money(total.exact_cost, currency)
    return total


def window_totals(
    *,
    windows: list[tuple[datetime, datetime]],
    currency: str,
    keys: list[dict],
    billed_in: list[str] | None = None,
) -> list[Margin]:
    """Every customer's revenue, cost and margin together in each [start, end)
    of `windows` (in order, none overlapping), under its key of `keys`:
    margins_total of margins() by customer, without a row a customer. The same
    exact figures added up (the lines' nets, the credits consumed, the usage's
    cost), each rounded once; the lines and the usage of windows that follow
    each other read in one pass, the lines a row an amount where they can be
    and the usage a row a meter, combination and window (the customers'
    quantities added up before they are costed). `billed_in`: of the customers
    billed in these currencies, in `currency` (a report currency)."""
    totals = [Margin(key=key) for key in keys]
    runs: list[list[int]] = []  # the windows by runs of each following the one before
    for n, (start, _end) in enumerate(windows):
        if runs and windows[runs[-1][-1]][1] == start:
            runs[-1].append(n)
        else:
            runs.append([n])
    for run in runs:
        _run_totals([windows[n] for n in run], [totals[n] for n in run], currency, billed_in)
    for total in totals:
        total.revenue = quantize_money(total.exact_revenue, currency)
        total.cost = quantize_money(total.exact_cost, currency)
    return totals


def _run_totals(
    windows: list[tuple[datetime, datetime]],
    totals: list[Margin],
    currency: str,
    billed_in: list[str] | None = None,
):
    """window_totals' sums of windows each following the one before."""
    now = timezone.now()
    for total, (start, end) in zip(totals, windows, strict=True):
        earned = _earned(
            start=start, end=end, currency=currency, now=now, apart=False, billed_in=billed_in
        ).total
        total.exact_revenue = earned.earned
        total.missing_days |= earned.missing_rates
        total.missing_rates |= {missing.pair for missing in earned.missing_rates}
    # Window n+1 begins at splits[n]: usage of part n is window n's.
    splits = [start for start, _end in windows[1:]]
    for usage in usage_costs(
        start=windows[0][0],
        end=windows[-1][1],
        currency=currency,
        per_customer=False,
        splits=splits,
        billed_in=billed_in,
    ):
        totals[usage.part].exact_cost += usage.cost
        totals[usage.part].uncosted_quantity += usage.uncosted
        totals[usage.part].problems |= usage.problems
        totals[usage.part].missing_rates |= usage.missing_rates
        totals[usage.part].missing_days |= usage.missing_days


def window_total(
    *, start: datetime, end: datetime, currency: str, key: dict, billed_in: list[str] | None = None
) -> Margin:
    """window_totals of the one window [start, end)."""
    (total,) = window_totals(
        windows=[(start, end)], currency=currency, keys=[key], billed_in=billed_in
    )
    return total


def month_margins(
    *,
    months: list[tuple[datetime, datetime]],
    currency: str,
    known: dict[tuple[datetime, datetime], list[Margin]] | None = None,
    billed_in: list[str] | None = None,
) -> list[Margin]:
    """Every customer's revenue, cost and margin together in each [start, end)
    of `months` (in order; key {"month": start}), from their exact sums rounded
    once: window_totals, the months read in one pass. `known`: margins by
    customer of every customer in `currency` already read for some of these
    windows, by (start, end), added up instead of read again (in `currency`
    and, with `billed_in`, of the customers billed in those, converted)."""
    known = known or {}
    unread = [month for month in months if month not in known]
    read = window_totals(
        windows=unread,
        currency=currency,
        keys=[{"month": start} for start, _end in unread],
        billed_in=billed_in,
    )
    totals = dict(zip(unread, read, strict=True))
    return [
        totals[month]
        if month in totals
        else margins_total(known[month], key={"month": month[0]}, currency=currency)
        for month in months
    ]


def lowest_margins(rows: list[Margin], count: int = 5) -> list[Margin]:
    """The `count` rows of lowest margin %: first those that cost without
    earning (no margin %, a loss), then by margin %, then by margin. A row that
    neither earned nor cost is not among them."""

    ranked = []  # (rank, row), each row's margin % worked out once
    for row in rows:
        percent = row.margin_percent
        if percent is not None:
            ranked.append(((1, percent, row.margin), row))
        elif row.margin < 0:
            ranked.append(((0, ZERO, row.margin), row))
    # The `count` smallest, ties in the rows' order (as sorted()[:count]).
    return [row for _rank, row in heapq.nsmallest(count, ranked, key=lambda pair: pair[0])]


CSV_COLUMNS = [
    "revenue",
    "cost",
    "margin",
    "margin_percent",
    "uncosted_quantity",
    "currency",
    "error",
    "missing_rates",
]
# The last line of a download that failed midway: a reader sees it did not end.
CSV_FAILED = "error: the export stopped here, after {count} of {total} rows; download it again"


def margins_csv_lines(rows, *, group_by: str, currency: str) -> Iterator[str]:
    """The rows as the API gives them, one a line, the header first, the key
    first on each (empty for none), a row's `error` last (empty for none): for a
    streamed download. A row that cannot be written ends the file with a
    CSV_FAILED line, never silently."""
    writer = SpreadsheetCsv()
    yield writer.row([group_by, *CSV_COLUMNS])
    for count, row in enumerate(rows):
        try:
            line = writer.row(_csv_cells(row, group_by, currency))
        except Exception:
            logger.exception("margins CSV: row %s of %s could not be written", count + 1, len(rows))
            yield writer.row([CSV_FAILED.format(count=count, total=len(rows))])
            return
        yield line


def _csv_cells(row: Margin, group_by: str, currency: str) -> list:
    key = row.key[group_by]
    percent = row.margin_percent
    # The key is text (a customer's id, a plan's code, an event's property value).
    return [
        "" if key is None else str(key),
        Figure(format_money(row.revenue, currency)),
        Figure(format_money(row.cost, currency)),
        Figure(format_money(row.margin, currency)),
        None if percent is None else Figure(format(percent, "f")),
        Figure(format_decimal(row.uncosted_quantity)),
        currency,
        row.error or "",
        " ".join(sorted(row.missing_rates)),
    ]


def margins_csv(rows: list[Margin], *, group_by: str, currency: str) -> str:
    """margins_csv_lines in one text."""
    return "".join(margins_csv_lines(rows, group_by=group_by, currency=currency))
