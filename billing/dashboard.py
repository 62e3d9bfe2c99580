"""The figures on the admin's index page: billing at a glance, read-only.

A handful of aggregate queries, none per subscription, except to project usage:
projected revenue rates each live subscription whose version prices usage
(an overage charge), whose plan changed immediately in its period or that has
a deal or a running discount, with billing.usage.priced.usage_summary, three or
so queries each, so that it is
computed only while there are at most PROJECTION_RATING_LIMIT of them. Every
other subscription's projection does not depend on its usage and is computed
once per (version, status, seats), but that of a calendar month's first period,
part of a whole one: its share of the fees is the one the period statement bills
(billing.usage.statement.period_statement: period_share against
Subscription.whole_period), computed for each, with no query.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from django.contrib import admin
from django.db.models import Count, Exists, F, Min, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from billing.admin.margins_so_far import margin_tile, may_view_margins, report_currency_choices
from billing.admin.outbound_pause import outbound_pause_banner
from billing.models import Discount, Subscription, SubscriptionChange
from billing.usage.metering import meter_cache
from billing.usage.priced import usage_summary
from billing.usage.statement import PeriodStatement, statement_of
from common.admin_forms import money_text
from common.money import is_known_currency, quantize_money
from common.periods import month_start, period_share
from customers.billing_entities import billing_entity_zone
from invoices import selectors as invoice_selectors
from invoices.models import Invoice
from plans.models import PlanVersion
from plans.selectors import version_spec
from wallets.revenue import credit_revenue

ZERO = Decimal(0)

# Subscriptions whose usage is priced are rated one by one (a few queries each);
# beyond this many the page says so rather than take seconds to load.
PROJECTION_RATING_LIMIT = 200


@dataclass(frozen=True)
class Amount:
    currency: str
    amount: Decimal
    count: int = 0

    @property
    def text(self) -> str:
        return money_text(self.amount, self.currency)


@dataclass(frozen=True)
class BilledAmount:
    """One currency's invoices issued in a month: their totals (gross), what
    credit notes took off them since (Invoice.credited) and the difference,
    what they bill net (`amount`)."""

    currency: str
    gross: Decimal
    credited: Decimal
    count: int = 0

    @property
    def amount(self) -> Decimal:
        return self.gross - self.credited

    @property
    def text(self) -> str:
        return money_text(self.amount, self.currency)

    @property
    def gross_text(self) -> str:
        return money_text(self.gross, self.currency)

    @property
    def credited_text(self) -> str:
        return money_text(self.credited, self.currency)


@dataclass
class Projection:
    """One currency's projected revenue for the live subscriptions' current periods."""

    currency: str
    subscriptions: int = 0
    # Fixed fees, usage billed on a plan-change invoice in the period, and the
    # true-ups of versions that price no usage: known now.
    committed: Decimal = ZERO
    # Projected usage (with its true-ups) of the subscriptions whose usage is priced.
    usage: Decimal = ZERO
    # Subscriptions whose usage is priced but was not rated (over the limit).
    unrated: int = 0
    # The periods' own lines' share of their discounts (PeriodStatement.discount):
    # of their fees in advance as stamped, of their closing invoices projected.
    discounts: Decimal = ZERO

    @property
    def total(self) -> Decimal | None:
        """After discounts, before tax."""
        return None if self.unrated else self.committed + self.usage - self.discounts

    @property
    def discounts_text(self) -> str:
        return money_text(self.discounts, self.currency)

    @property
    def text(self) -> str:
        if self.total is None:
            return "-"
        return money_text(self.total, self.currency)

    @property
    def committed_text(self) -> str:
        return money_text(self.committed, self.currency)


@dataclass(frozen=True)
class PaymentProblem:
    """One kind of failed payment: how many invoices, their totals per currency,
    and the invoice list's query string that shows them."""

    label: str
    count: int
    totals: list[Amount]
    query: str


@dataclass(frozen=True)
class DeferredRevenue:
    currency: str
    month: date
    amount: Decimal

    @property
    def text(self) -> str:
        return money_text(self.amount, self.currency)


@dataclass
class DashboardFigures:
    now: datetime
    month_start: datetime
    active: int
    trialing: int
    billed_this_month: list[BilledAmount]
    projected: list[Projection]
    # Why some usage was not projected; None when all of it was.
    projection_note: str | None
    drafts: int
    oldest_draft_at: datetime | None
    payment_problems: list[PaymentProblem]
    # None when the viewer may not see the credit revenue report.
    deferred_credit_revenue: list[DeferredRevenue] | None = field(default=None)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `now` (the credit revenue report's months too)."""
    now = now.astimezone(UTC)
    return month_start(now), month_start(now, months=1)


def _totals(invoices) -> list[Amount]:
    rows = (
        invoices.order_by()
        .values("currency")
        .annotate(total=Sum("total"), n=Count("id"))
        .order_by("currency")
        .values_list("currency", "total", "n")
    )
    # Rounded once more: SQLite sums decimals as floats.
    return [Amount(c, quantize_money(total, c), n) for c, total, n in rows]


def billed_this_month(*, now: datetime) -> list[BilledAmount]:
    """The invoices issued (finalized) this UTC month and not since voided or given
    up on (finalized or paid), per currency: their totals, what their credit notes
    took off, and net of those."""
    start, end = month_bounds(now)
    rows = (
        Invoice.objects.filter(
            status__in=(Invoice.FINALIZED, Invoice.PAID),
            finalized_at__gte=start,
            finalized_at__lt=end,
        )
        .order_by()
        .values("currency")
        .annotate(gross=Sum("total"), credited=Sum("credited"), n=Count("id"))
        .order_by("currency")
        .values_list("currency", "gross", "credited", "n")
    )
    # Rounded once more: SQLite sums decimals as floats.
    return [
        BilledAmount(c, quantize_money(gross, c), quantize_money(credited, c), n)
        for c, gross, credited, n in rows
    ]


def payment_problems(*, now: datetime) -> list[PaymentProblem]:
    """Invoices whose payment failed: given up on (uncollectible), and finalized
    ones past their due date and still unpaid."""
    uncollectible = Invoice.objects.filter(status=Invoice.UNCOLLECTIBLE)
    past_due = invoice_selectors.past_due(Invoice.objects.all(), now=now)
    problems = [
        PaymentProblem(
            gettext("Uncollectible"),
            uncollectible.count(),
            _totals(uncollectible),
            "status__exact=uncollectible",
        ),
        PaymentProblem(
            gettext("Past due, unpaid"), past_due.count(), _totals(past_due), "due=past"
        ),
    ]
    # Stripe payment failures go here: one more PaymentProblem row (e.g. "Stripe
    # payment failed", the count and totals of the failed attempts, and the query
    # string of the admin list that shows them), read from the payment records.
    return problems


def _is_usage_priced(spec) -> bool:
    """True when the version bills usage in arrears (an overage charge): its
    projection depends on the usage. Hard caps are never billed and credits and
    balance charges are paid from wallets, so without an overage charge a
    version's projection is its fixed fees and its minimum commitment."""
    return any(charge.model == "overage" for charge in spec.charges)


# An immediate plan change in the current period: the usage since it is rated at
# the new version, the part before it was billed on the plan-change invoice.
# A deal (overrides of the version's terms) is the subscription's own, and so is a
# running discount (a coupon): rated alone too.
RATED_ALONE = (
    Q(usage_from__gt=F("current_period_start"))
    # A seat change in the period: its seats are not the period's throughout.
    | Q(
        Exists(
            SubscriptionChange.objects.filter(
                subscription=OuterRef("pk"),
                kind=SubscriptionChange.SEATS,
                effective_at__gte=OuterRef("current_period_start"),
            )
        )
    )
    | ~Q(overrides={})
    # A running discount, or one that took its share of the period's fees in
    # advance before it ended (at the close before).
    | Q(
        Exists(
            Discount.objects.filter(subscription=OuterRef("pk")).filter(
                Q(ended_at__isnull=True) | Q(ended_at__gte=OuterRef("current_period_start"))
            )
        )
    )
)


def projected_revenue(*, now: datetime) -> tuple[list[Projection], str | None]:
    """Each currency's revenue for the live subscriptions' current periods, as the
    close will bill it: fixed fees (none during a trial; a calendar month's first
    period for its share of a month, as period_statement bills it), and usage
    extended linearly to the period's end and priced with any minimum commitment
    true-up. Wallet-drawn usage (credits,
    balance) is revenue of the purchases that funded it, not projected here.

    A subscription whose version prices usage, whose plan or seats changed in
    the period, or that has a deal or a discount (running, or ended at its
    period's start), is projected one by one at what usage_summary projects for
    it, net of its lines' share of the discount (PeriodStatement.net),
    the figures /usage and the portal show:
    after a plan change, the part of the period before it at the earlier
    version's fees and invoiced usage, and the usage since it at the current
    version's prices. Every other subscription's projection does not depend on
    its usage and is counted once per (version, status, seats)."""
    live = Subscription.objects.filter(status__in=Subscription.LIVE)
    groups = list(
        live.values("version_id", "status", "seats")
        .annotate(n=Count("id"), changed=Count("id", filter=RATED_ALONE))
        .order_by("version_id", "status", "seats")
        .values_list("version_id", "status", "seats", "n", "changed")
    )
    versions = PlanVersion.objects.select_related("plan").in_bulk({g[0] for g in groups})
    specs = {pk: version_spec(version=version) for pk, version in versions.items()}
    projections: dict[str, Projection] = {}

    def of(currency: str) -> Projection:
        return projections.setdefault(currency, Projection(currency))

    statements: dict[tuple, PeriodStatement] = {}

    def unused(version_id: int, seats: int, fraction: Decimal = Decimal(1)) -> PeriodStatement:
        """The statement of a period at the version with no usage (pure: each
        computed once a page, as subscriptions started together share one)."""
        key = (version_id, seats, fraction)
        if key not in statements:
            statements[key] = statement_of(
                specs[version_id], seats=seats, quantities={}, fraction=fraction
            )
        return statements[key]

    to_rate: dict[str, int] = defaultdict(int)
    for version_id, _, _, n, changed in groups:
        spec = specs[version_id]
        to_rate[spec.currency] += n if _is_usage_priced(spec) else changed
    rate_each = sum(to_rate.values()) <= PROJECTION_RATING_LIMIT

    for version_id, status, seats, n, changed in groups:
        spec = specs[version_id]
        projection = of(spec.currency)
        projection.subscriptions += n
        # Those rated one by one are counted there; unrated, by their fixed fees here.
        grouped = n
        if rate_each:
            grouped -= n if _is_usage_priced(spec) else changed
        statement = unused(version_id, seats)
        if Subscription.fixed_fees_billed_while(status):
            projection.committed += grouped * statement.fixed
        if not _is_usage_priced(spec):
            projection.committed += grouped * statement.usage_total

    usage_priced_versions = [pk for pk, spec in specs.items() if _is_usage_priced(spec)]
    # A calendar month's first period is part of a whole one: its fees are billed,
    # and its minimum commitment counted, for the share period_statement gives it
    # (period_share against Subscription.whole_period), not the whole counted above.
    first_periods = live.filter(Subscription.first_calendar_period()).select_related("customer")
    if rate_each:
        first_periods = first_periods.exclude(version_id__in=usage_priced_versions).exclude(
            RATED_ALONE
        )
    for subscription in first_periods:
        spec = specs[subscription.version_id]
        start, end = subscription.current_period_start, subscription.current_period_end
        share = period_share(
            start, end, whole=subscription.whole_period(start, end, interval=spec.interval)
        )
        whole = unused(subscription.version_id, subscription.seats)
        part = unused(subscription.version_id, subscription.seats, share)
        if subscription.bills_fixed_fees:
            of(spec.currency).committed += part.fixed - whole.fixed
        if not _is_usage_priced(spec):
            of(spec.currency).committed += part.usage_total - whole.usage_total

    if not rate_each:
        for currency, n in to_rate.items():
            of(currency).unrated = n
        note = gettext(
            "{count} subscriptions price their usage, changed plan in their period or have "
            "a deal or a discount: too many to rate on a page load (at most {limit}); see the "
            "close benchmark (bench/close.py) for rating at this scale. Shown: their fixed "
            "fees only."
        ).format(count=sum(to_rate.values()), limit=PROJECTION_RATING_LIMIT)
        return _sorted(projections), note

    rated = live.filter(Q(version_id__in=usage_priced_versions) | RATED_ALONE).select_related(
        "customer", "version__plan"
    )
    with meter_cache.pinned():
        for subscription in rated:
            summary = usage_summary(
                subscription=subscription,
                start=subscription.current_period_start,
                end=subscription.current_period_end,
                now=now,
            )
            spec = specs[subscription.version_id]
            projection = of(spec.currency)
            projected = summary.projected.total
            # The period's own lines' share, as its invoices are stamped: the
            # discount on the next period's fees in advance is the next period's.
            projection.discounts += summary.projected.discount
            if _is_usage_priced(spec):
                known = summary.statement.known
                projection.committed += known
                projection.usage += projected - known
            else:
                projection.committed += projected
    return _sorted(projections), None


def _sorted(projections: dict[str, Projection]) -> list[Projection]:
    return [projections[currency] for currency in sorted(projections)]


def deferred_credit_revenue(*, now: datetime) -> list[DeferredRevenue]:
    """Per currency, what paid credits still owe at the end of the latest month of
    the credit revenue report (its deferred closing balance, up to `now`)."""
    latest: dict[str, DeferredRevenue] = {}
    for row in credit_revenue(until=now):
        if row.currency not in latest or row.month > latest[row.currency].month:
            latest[row.currency] = DeferredRevenue(row.currency, row.month, row.deferred_closing)
    return [latest[currency] for currency in sorted(latest)]


def dashboard_figures(*, now: datetime, with_credit_revenue: bool = True) -> DashboardFigures:
    """Billing at a glance, at `now`. `with_credit_revenue`: also the deferred
    credit revenue (its report reads every paid credit block)."""
    counts = Subscription.objects.aggregate(
        active=Count("id", filter=Q(status=Subscription.ACTIVE)),
        trialing=Count("id", filter=Q(status=Subscription.TRIALING)),
    )
    drafts = Invoice.objects.filter(status=Invoice.DRAFT).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    projected, note = projected_revenue(now=now)
    return DashboardFigures(
        now=now,
        month_start=month_bounds(now)[0],
        active=counts["active"],
        trialing=counts["trialing"],
        billed_this_month=billed_this_month(now=now),
        projected=projected,
        projection_note=note,
        drafts=drafts["n"],
        oldest_draft_at=drafts["oldest"],
        payment_problems=payment_problems(now=now),
        deferred_credit_revenue=deferred_credit_revenue(now=now) if with_credit_revenue else None,
    )


def admin_index(request):
    """The admin's index page with the dashboard above the app list (config/urls.py
    routes /admin/ here, ahead of the admin site's own index). Shown to whoever may
    view invoices; the deferred credit revenue to whoever may read its report, and
    the month so far's margins (billing.admin.margins_so_far) to whoever may read
    the margins report, in each currency or converted into the one the page's
    selector asks (`report_currency`; an unknown code: the page says so, 400); to
    everyone, while sending is paused after a restore, a banner saying so
    (billing.admin.outbound_pause)."""
    user = request.user
    now = timezone.now()
    asked = request.GET.get("report_currency") or None
    refused = asked is not None and not is_known_currency(asked)
    dashboard = None
    if user.has_perm("invoices.view_invoice") or user.has_perm("invoices.change_invoice"):
        dashboard = dashboard_figures(
            now=now,
            with_credit_revenue=user.has_perm("wallets.view_credit_revenue"),
        )
    tile = None
    if may_view_margins(user):
        tile = margin_tile(now=now, report_currency=None if refused else asked)
    context = {
        "dashboard": dashboard,
        "margin_tile": tile,
        "margin_zone": billing_entity_zone(),
        "report_currency": None if refused else asked,
        "report_currency_choices": sorted(
            {*report_currency_choices(), *([asked] if asked and not refused else [])}
        )
        if tile is not None
        else [],
        "report_currency_refused": asked if refused else None,
        "outbound_pause": outbound_pause_banner(request),
    }
    response = admin.site.index(request, extra_context=context)
    if refused:
        response.status_code = 400
    return response
