"""The margins page in the admin (Billing > Margins): revenue, cost and margin
over a window by customer, plan, meter, billing entity or a property some
meter groups by, the customers of lowest margin, the last six months as a
chart, and the table as CSV. The window's edges are typed in a time zone the
page names (by default the default billing entity's), on the hour in UTC.
The table comes a page of PAGE_ROWS rows at a time, sorted by revenue,
margin or margin %, with the window's total under it; the lowest margins and
the chart are on its first page; the CSV streams every row in the same order.
Every figure comes from billing.margins.report and is shown through
common.admin_forms; the page adds nothing up. Reading it needs
billing.view_margins (Finance)."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.margin_chart import month_chart
from billing.margins.ordering import DEFAULT_SORT, sorted_margins
from billing.margins.report import (
    VIEWS,
    lowest_margins,
    margins_by,
    margins_csv_lines,
    margins_total,
    month_margins,
    price_by_properties,
    window_currencies,
)
from billing.models import MarginReport
from billing.usage.rollups import hour_of
from common.admin_forms import RecordAdmin, amount_text, percent_text, quantity_text
from common.periods import month_start, on_the_hour
from customers.billing_entities import billing_entity_zone
from customers.models import Customer
from plans.validation import available_timezones

VIEW_MARGINS = "billing.view_margins"
# What an <input type="datetime-local"> sends and shows.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
CHART_MONTHS = 6
LOWEST = 5
PAGE_ROWS = 100
SORT_CHOICES = [
    ("-revenue", _("Revenue, highest first")),
    ("revenue", _("Revenue, lowest first")),
    ("margin", _("Margin, lowest first")),
    ("-margin", _("Margin, highest first")),
    ("margin_percent", _("Margin %, lowest first")),
    ("-margin_percent", _("Margin %, highest first")),
]


def customer_currencies() -> list[str]:
    """The currencies customers are billed in (USD when there is none yet)."""
    used = Customer.objects.order_by("currency").values_list("currency", flat=True).distinct()
    return list(used) or ["USD"]


def month_so_far(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """The current month of `zone` up to the hour after `now`, in UTC. Costs are
    hourly: in a zone not a whole number of hours from UTC the month begins at
    the start of the UTC hour its midnight falls in."""
    hour = hour_of(now.astimezone(UTC))
    return hour_of(month_start(now.astimezone(ZoneInfo(zone)))), hour + timedelta(hours=1)


def zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone, UTC first."""
    return [("UTC", "UTC")] + [(z, z) for z in sorted(available_timezones()) if z != "UTC"]


def local_input(moment: datetime, zone: str) -> str:
    """A moment as the page's datetime-local inputs show it, in `zone`."""
    return moment.astimezone(ZoneInfo(zone)).strftime(LOCAL_INPUT)


class MarginsForm(forms.Form):
    """The window's edges are typed in the zone chosen (`tz`) and cleaned into
    UTC, where they must fall on the hour."""

    tz = forms.ChoiceField(
        label=_("Time zone"),
        help_text=_("The zone the window's edges and months are in."),
    )
    period_start = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("Included, on the hour."),
    )
    period_end = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("Excluded, on the hour."),
    )
    group_by = forms.ChoiceField(label=_("Grouped by"))
    currency = forms.ChoiceField(label=_("Currency"))
    sort = forms.ChoiceField(label=_("Sorted by"), choices=SORT_CHOICES)

    def __init__(self, *args, zone: str, **kwargs):
        """`zone`: the zone shown when the data names none or an unknown one."""
        super().__init__(*args, **kwargs)
        given = self.data.get("tz")
        self.zone = given if given in available_timezones() else zone
        self.fields["tz"].choices = zone_choices()
        self.fields["period_start"].label = gettext("From ({zone})").format(zone=self.zone)
        self.fields["period_end"].label = gettext("To ({zone})").format(zone=self.zone)
        views = {
            "customer": _("Customer"),
            "plan": _("Plan"),
            "meter": _("Meter"),
            "billing_entity": _("Billing entity"),
        }
        self.fields["group_by"].choices = [(v, views[v]) for v in VIEWS] + [
            (name, gettext("Property: {name}").format(name=name))
            for name in sorted(price_by_properties())
        ]
        self.fields["currency"].choices = [(c, c) for c in customer_currencies()]

    def full_clean(self):
        # The edges are read as times of the zone chosen (Django's DateTimeField
        # reads them in the current zone, and refuses a time a change of clocks
        # skips or repeats there).
        with timezone.override(ZoneInfo(self.zone)):
            super().full_clean()

    def _on_the_hour(self, name: str) -> datetime | None:
        moment = self.cleaned_data.get(name)
        if moment is None:
            return None
        moment = moment.astimezone(UTC)
        if not on_the_hour(moment):
            refused = gettext("Give a time on the hour: costs are computed per hour.")
            if self.zone != "UTC":
                # A zone a half or quarter hour from UTC: say what the hour is.
                utc = gettext("In UTC that is {time}.").format(time=moment.strftime("%H:%M"))
                refused = f"{refused} {utc}"
            raise forms.ValidationError(refused)
        return moment

    def clean_period_start(self):
        return self._on_the_hour("period_start")

    def clean_period_end(self):
        return self._on_the_hour("period_end")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start is not None and end is not None and end <= start:
            self.add_error("period_end", gettext("The end must be after the start."))
        return cleaned


def row_texts(row, group_by: str, currency: str) -> dict:
    """One row as finance reads it: its key and figures in the user's convention."""
    key = row.key[group_by]
    texts = {
        "key": "—" if key is None else str(key),
        "revenue": amount_text(row.revenue, currency),
        "cost": amount_text(row.cost, currency),
        "margin": amount_text(row.margin, currency),
        "percent": percent_text(row.margin_percent),
        "uncosted": quantity_text(row.uncosted_quantity),
        "loss": row.margin < 0,
    }
    said = [row.error] if row.error else []  # part of its usage could not be costed: why
    if row.missing_rates:
        said.append(
            gettext(
                "No exchange rate {pairs} in effect: the usage costed in another currency "
                "is counted as uncosted. Add the rate under Exchange rates."
            ).format(pairs=", ".join(sorted(row.missing_rates)))
        )
    if said:
        texts["error"] = "; ".join(said)
    return texts


def chart_month_firsts(now: datetime, zone: str) -> list[date]:
    """The first day of each of the last CHART_MONTHS months of `zone`: what the
    chart names its months by. Not read from a month's start in UTC, which lies
    in the month before in any zone east of UTC (Paris's October starts at
    22:00 UTC on 30 Sep)."""
    local = now.astimezone(ZoneInfo(zone))
    return [
        month_start(local, months=n).astimezone(local.tzinfo).date()
        for n in range(1 - CHART_MONTHS, 1)
    ]


def chart_months(now: datetime, zone: str) -> list[tuple[datetime, datetime]]:
    """The last CHART_MONTHS months of `zone`, the current one so far last (as
    month_so_far: the page's default window), each edge on its UTC hour."""
    local = now.astimezone(ZoneInfo(zone))
    edges = [hour_of(month_start(local, months=n)) for n in range(1 - CHART_MONTHS, 1)]
    return [*pairwise(edges), month_so_far(now, zone)]


def default_currency(start: datetime, end: datetime) -> str:
    """The currency the page opens in: the window's one currency, else the
    first of the window's, else of the customers'."""
    choices = customer_currencies()
    return next((c for c in window_currencies(start, end) if c in choices), choices[0])


def query_with(data, **changes) -> str:
    """The page's query with `changes` (None: left out), for a link."""
    query = data.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return query.urlencode()


# The table's sortable columns: the order a first click asks, and the other way.
SORTABLE = {
    "revenue": ("-revenue", "revenue"),
    "margin": ("margin", "-margin"),
    "percent": ("margin_percent", "-margin_percent"),
}


def sort_links(data, sort: str) -> dict:
    """Per sortable column, the link that sorts by it (the other way when it is
    the order shown) and how it is sorted now: "ascending", "descending" or ""."""
    links = {}
    for column, (first, other) in SORTABLE.items():
        shown = sort in (first, other)
        asked = other if sort == first else first
        state = ("descending" if sort.startswith("-") else "ascending") if shown else ""
        links[column] = {"query": query_with(data, sort=asked, p=None), "state": state}
    return links


def page_links(data, page) -> dict:
    """Where a page of the table stands and the links to the others (the
    paginator's elided range: None for a gap)."""
    paginator = page.paginator
    numbers = paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
    return {
        "number": page.number,
        "pages": paginator.num_pages,
        "rows": paginator.count,
        "rows_text": quantity_text(paginator.count),
        "first_row": quantity_text(page.start_index()),
        "last_row": quantity_text(page.end_index()),
        "links": [
            {
                "number": n,
                "query": None if n == paginator.ELLIPSIS else query_with(data, p=str(n)),
                "current": n == page.number,
            }
            for n in numbers
        ],
        "first": query_with(data, p=None),
        "previous": query_with(data, p=str(page.number - 1)) if page.has_previous() else None,
        "next": query_with(data, p=str(page.number + 1)) if page.has_next() else None,
    }


@admin.register(MarginReport)
class MarginReportAdmin(RecordAdmin):
    """No records: the list page is the report."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_MARGINS)

    def get_urls(self):
        return [
            path(
                "",
                self.admin_site.admin_view(self.margins_view),
                name="billing_marginreport_changelist",
            )
        ]

    def margins_view(self, request):
        if not self.has_view_permission(request):
            messages.error(request, gettext("You may not view the margins report."))
            return redirect(reverse("admin:index"))
        now = timezone.now()
        data = request.GET.copy()
        given = data.get("tz")
        zone = given if given in available_timezones() else billing_entity_zone()
        start, end = month_so_far(now, zone)
        defaults = {
            "tz": zone,
            "period_start": local_input(start, zone),
            "period_end": local_input(end, zone),
            "group_by": "customer",
            "sort": DEFAULT_SORT,
        }
        for name, value in defaults.items():
            data.setdefault(name, value)
        if "currency" not in data:
            data["currency"] = default_currency(start, end)
        form = MarginsForm(data, zone=zone)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Margins"),
            "form": form,
            "opts": self.model._meta,
        }
        if not form.is_valid():
            messages.error(request, gettext("Please correct the errors below."))
            return TemplateResponse(request, "admin/billing/margins.html", context)
        cleaned = form.cleaned_data
        group_by, currency = cleaned["group_by"], cleaned["currency"]
        window = {"start": cleaned["period_start"], "end": cleaned["period_end"]}
        only = request.GET.get("customer")
        if only:
            # The customer page's link: that customer's margins alone.
            window["customers"] = list(
                Customer.objects.filter(external_id=only).values_list("pk", flat=True)
            )
        # The page by another view lists the customers of lowest margin on its
        # first page too: both views from one read of the window.
        views = (group_by, "customer") if group_by != "customer" else (group_by,)
        both = margins_by(**window, views=views, currency=currency, now=now)
        computed = both[group_by]
        rows = sorted_margins(computed, sort=cleaned["sort"], group_by=group_by)
        if request.GET.get("format") == "csv":
            response = StreamingHttpResponse(
                margins_csv_lines(rows, group_by=group_by, currency=currency),
                content_type="text/csv",
            )
            response["Content-Disposition"] = (
                f'attachment; filename="margins-{group_by}-{currency}.csv"'
            )
            return response
        page = Paginator(rows, PAGE_ROWS).get_page(request.GET.get("p"))
        first = page.number == 1
        lowest, chart = [], None
        if first or group_by == "customer":
            by_customer = both["customer"]
            lowest = lowest_margins(by_customer, LOWEST)
        if first:
            # The window's margins by customer, of every customer, when it is one
            # of the chart's months (the default window is): not read twice.
            known = {} if only else {(window["start"], window["end"]): by_customer}
            months = month_margins(
                months=chart_months(now, form.zone), currency=currency, known=known
            )
            chart = month_chart(months, currency, firsts=chart_month_firsts(now, form.zone))
        lowest_keys = {row.key["customer"] for row in lowest}
        texts = [row_texts(row, group_by, currency) for row in page.object_list]
        for text, row in zip(texts, page.object_list, strict=True):
            text["lowest"] = group_by == "customer" and row.key["customer"] in lowest_keys
        total = margins_total(computed, key={group_by: None}, currency=currency)
        context |= {
            "group_by": group_by,
            "view_label": dict(form.fields["group_by"].choices)[group_by],
            "currency": currency,
            "zone": form.zone,
            "rows": texts,
            "total": row_texts(total, group_by, currency) if computed else None,
            "page": page_links(data, page),
            "sort_links": sort_links(data, cleaned["sort"]),
            "lowest": [row_texts(row, "customer", currency) for row in lowest] if first else None,
            "chart": chart,
            "csv_query": query_with(data, p=None),
            "only_customer": only or None,
        }
        return TemplateResponse(request, "admin/billing/margins.html", context)
