"""The month so far's margins outside the margins page: a column on the
customer list and a line on a customer's page, and the admin dashboard's tile.
The window is the current month in the default billing entity's zone up to
the hour after now (the margins page's default,
billing.admin.margins.month_so_far); every figure is billing.margins.report's,
written out through common.admin_forms. Only for users with
billing.view_margins (Finance). The tile may be asked in a report currency:
one row of every customer, converted by the report (billing.revenue.conversion)."""

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext

from billing.admin.margins import VIEW_MARGINS, customer_currencies, local_input, month_so_far
from billing.margins.report import Margin, margins, month_margins
from common.admin_forms import money_text, percent_text
from customers.billing_entities import billing_entity_zone
from customers.models import BillingEntity

NONE = "—"


def may_view_margins(user) -> bool:
    return user.has_perm(VIEW_MARGINS)


def margin_text(row: Margin | None, currency: str) -> str:
    """A margin and its percent in one cell: '3.75 USD (53.57%)'; without
    revenue, no percent: '-3.25 USD'; '—' for a customer neither billed nor
    costed in the window."""
    if row is None:
        return NONE
    if row.margin_percent is None:
        return money_text(row.margin, currency)
    return f"{money_text(row.margin, currency)} ({percent_text(row.margin_percent)})"


def customers_margin_texts(customers, *, now: datetime) -> dict[int, str]:
    """Each customer's margin of the month so far as margin_text, by id: one
    report call per currency among them (of these customers only), so one for
    a list of customers billed in one currency."""
    start, end = month_so_far(now, billing_entity_zone())
    by_currency: dict[str, list] = {}
    for customer in customers:
        by_currency.setdefault(customer.currency, []).append(customer)
    texts = {}
    for currency, group in sorted(by_currency.items()):
        rows = margins(
            start=start,
            end=end,
            group_by="customer",
            currency=currency,
            customers=[customer.pk for customer in group],
            now=now,
        )
        found = {row.key["customer"]: row for row in rows}
        for customer in group:
            texts[customer.pk] = margin_text(found.get(customer.external_id), currency)
    return texts


def margins_page_url(now: datetime, *, currency: str, customer: str | None = None) -> str:
    """The margins page over the month so far in `currency`; of `customer`
    (an external id) only, when given. Its edges are in the default billing
    entity's zone, the page's own default."""
    zone = billing_entity_zone()
    start, end = month_so_far(now, zone)
    query = {
        "period_start": local_input(start, zone),
        "period_end": local_input(end, zone),
        "group_by": "customer",
        "currency": currency,
    }
    if customer is not None:
        query["customer"] = customer
    return reverse("admin:billing_marginreport_changelist") + "?" + urlencode(query)


def customer_margin(customer, *, now: datetime) -> dict:
    """The line on a customer's page: its margin of the month so far and the
    margins page showing it."""
    return {
        "text": customers_margin_texts([customer], now=now)[customer.pk],
        "url": margins_page_url(now, currency=customer.currency, customer=customer.external_id),
    }


@dataclass(frozen=True)
class MarginTile:
    """One currency's row of the dashboard tile, as display text."""

    currency: str
    revenue: str
    cost: str
    margin: str
    percent: str
    loss: bool
    url: str | None
    # In a report currency: every customer's figures converted into `currency`,
    # and the rates missing to convert some ("JPY->USD from 2026-10-01").
    converted: bool = False
    missing: list[str] | None = None


def report_currency_choices() -> list[str]:
    """The currencies the tile may be asked in: those customers are billed in
    and the sellers' functional currencies."""
    functional = BillingEntity.objects.order_by().values_list("functional_currency", flat=True)
    return sorted(set(customer_currencies()) | {code for code in functional if code})


def margin_tile(*, now: datetime, report_currency: str | None = None) -> list[MarginTile]:
    """Every customer's revenue, cost and margin together in the month so far,
    per currency customers are billed in: one report call each; in
    `report_currency`, one row of them all converted into it (one call)."""
    window = month_so_far(now, billing_entity_zone())
    if report_currency is not None:
        (total,) = month_margins(
            months=[window], currency=report_currency, billed_in=customer_currencies()
        )
        missing = [
            gettext("{pair} from {day}").format(pair=rate.pair, day=rate.day.isoformat())
            for rate in sorted(total.missing_days)
        ]
        return [_tile(total, report_currency, None, converted=True, missing=missing)]
    tiles = []
    for currency in customer_currencies():
        (total,) = month_margins(months=[window], currency=currency)
        tiles.append(_tile(total, currency, margins_page_url(now, currency=currency)))
    return tiles


def _tile(total: Margin, currency: str, url: str | None, **converted) -> MarginTile:
    return MarginTile(
        currency=currency,
        revenue=money_text(total.revenue, currency),
        cost=money_text(total.cost, currency),
        margin=money_text(total.margin, currency),
        percent=percent_text(total.margin_percent),
        loss=total.margin < 0,
        url=url,
        **converted,
    )
