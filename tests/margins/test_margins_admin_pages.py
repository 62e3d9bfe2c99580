"""The margins page in pages (issue 51: 10,000 customers answer in <= 2 s): a
hundred rows a page, sorted by revenue, margin or margin %, the window's total
under every page, the lowest margins and the chart on the first page only, and
the CSV streaming every row in the page's order. The report is replaced by 250
customers of known figures, so the page's part is what is tested; the total
and the chart's month are report.margins_total of the same rows."""

from datetime import UTC, datetime
from decimal import Decimal as D
from unittest import mock

import pytest
import time_machine
from django.utils.html import escape

from billing.margins.ordering import sorted_margins
from billing.margins.report import Margin
from tests.margins.test_margins_admin import staff

pytestmark = pytest.mark.django_db

DEC_5 = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
PAGE = "/admin/billing/marginreport/"
NOVEMBER = "period_start=2026-11-01T00:00&period_end=2026-12-01T00:00&currency=USD"


def row(name: str, revenue: str, cost: str) -> Margin:
    return Margin(
        key={"customer": name},
        revenue=D(revenue),
        cost=D(cost),
        exact_revenue=D(revenue),
        exact_cost=D(cost),
    )


# c000 to c249: revenue 1.00 to 250.00, each costing 3.00 (c000 and c001 at a
# loss, c002 even). Together: 31,375.00 of revenue, 750.00 of cost.
CUSTOMERS = [row(f"c{i:03d}", f"{i + 1}.00", "3.00") for i in range(250)]


@pytest.fixture
def report():
    """The report of 250 customers, in its own order (largest revenue first)."""
    rows = sorted(CUSTOMERS, key=lambda m: -m.revenue)

    def by_views(*, views, **window):
        return dict.fromkeys(views, rows)

    with mock.patch("billing.admin.margins.margins_by", side_effect=by_views) as replaced:
        yield replaced


def get(client, query: str):
    with time_machine.travel(DEC_5, tick=False):
        response = client.get(f"{PAGE}?{NOVEMBER}&{query}")
    assert response.status_code == 200
    return response


def keys(response) -> list[str]:
    return [r["key"] for r in response.context["rows"]]


def test_the_first_page_has_100_rows_the_total_the_lowest_and_the_chart(report):
    response = get(staff("Finance"), "group_by=customer")

    assert keys(response) == [f"c{i:03d}" for i in range(249, 149, -1)]
    page = response.context["page"]
    assert (page["number"], page["pages"], page["rows"]) == (1, 3, 250)
    assert response.context["total"] == {
        "key": "—",
        "revenue": "31,375.00",
        "cost": "750.00",
        "margin": "30,625.00",
        "percent": "97.61%",
        "uncosted": "0",
        "loss": False,
    }
    lowest = [r["key"] for r in response.context["lowest"]]
    assert lowest == ["c000", "c001", "c002", "c003", "c004"]
    # The chart's November is the same rows' total (the window is that month).
    november = response.context["chart"]["months"][4]
    assert (november["revenue"], november["cost"], november["margin"]) == (
        "31,375.00 USD",
        "750.00 USD",
        "30,625.00 USD",
    )
    html = response.content.decode()
    assert html.count('<tr data-key="c') == 100 + 5  # the page and the lowest five
    assert "Rows 1 to 100 of 250" in html
    assert 'id="margins-total"' in html
    assert f'href="?{escape(page["next"])}"' in html
    assert "p=2" in page["next"] and "sort=-revenue" in page["next"]
    report.assert_called_once()  # the window read once: the chart reuses it


def test_a_later_page_has_its_rows_and_the_total_not_the_chart(report):
    client = staff("Finance")
    response = get(client, "group_by=customer&p=3")

    assert keys(response) == [f"c{i:03d}" for i in range(49, -1, -1)]
    assert response.context["total"]["revenue"] == "31,375.00"
    assert response.context["lowest"] is None
    assert response.context["chart"] is None
    # The lowest five stay marked in the table.
    marked = [r["key"] for r in response.context["rows"] if r["lowest"]]
    assert marked == ["c004", "c003", "c002", "c001", "c000"]
    html = response.content.decode()
    assert "Rows 201 to 250 of 250" in html
    assert 'id="margins-chart"' not in html
    assert 'id="margins-first-page"' in html
    # A page past the last is the last; one not a number is the first.
    assert keys(get(client, "group_by=customer&p=99"))[0] == "c049"
    assert keys(get(client, "group_by=customer&p=two"))[0] == "c249"


def test_sorted_by_lowest_margin_then_by_lowest_revenue(report):
    client = staff("Finance")
    by_margin = get(client, "group_by=customer&sort=margin")
    assert keys(by_margin)[:4] == ["c000", "c001", "c002", "c003"]
    links = by_margin.context["sort_links"]
    assert links["margin"]["state"] == "ascending"
    assert "sort=-margin" in links["margin"]["query"]  # clicked again: highest first
    assert links["revenue"]["state"] == ""
    assert "p=" not in links["revenue"]["query"]  # a new order starts at page 1

    by_revenue = get(client, "group_by=customer&sort=revenue&p=2")
    assert keys(by_revenue)[:2] == ["c100", "c101"]
    assert by_revenue.context["sort_links"]["revenue"]["state"] == "ascending"


def test_an_unknown_order_is_refused_on_the_page(report):
    response = get(staff("Finance"), "group_by=customer&sort=name")
    assert "sort" in response.context["form"].errors
    assert response.context.get("rows") is None
    report.assert_not_called()


def test_the_csv_streams_every_row_in_the_pages_order(report):
    client = staff("Finance")
    with time_machine.travel(DEC_5, tick=False):
        response = client.get(f"{PAGE}?{NOVEMBER}&group_by=customer&sort=margin&p=2&format=csv")

    assert response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1 + 250
    assert lines[:3] == [
        "customer,revenue,cost,margin,margin_percent,uncosted_quantity,currency,error,"
        "missing_rates",
        "c000,1.00,3.00,-2.00,-200.00,0,USD,,",
        "c001,2.00,3.00,-1.00,-50.00,0,USD,,",
    ]
    assert lines[-1] == "c249,250.00,3.00,247.00,98.80,0,USD,,"
    # The page's link to it asks for every row: no page in it.
    page = get(client, "group_by=customer&p=2")
    assert "p=" not in page.context["csv_query"]


def test_the_orders_by_margin_percent_put_a_loss_without_revenue_at_its_end():
    rows = [
        row("rich", "100.00", "10.00"),
        row("thin", "100.00", "95.00"),
        row("losing", "0.00", "3.00"),
        row("idle", "0.00", "0.00"),
        row("negative", "10.00", "12.00"),
    ]

    def order(sort: str) -> list[str]:
        return [m.key["customer"] for m in sorted_margins(rows, sort=sort, group_by="customer")]

    assert order("margin_percent") == ["losing", "negative", "thin", "rich", "idle"]
    assert order("-margin_percent") == ["rich", "thin", "negative", "idle", "losing"]
    assert order("margin") == ["losing", "negative", "idle", "thin", "rich"]
    assert order("-margin") == ["rich", "thin", "idle", "negative", "losing"]
    # Ties in revenue by key: the same order every time.
    assert order("-revenue") == ["rich", "thin", "negative", "idle", "losing"]
    assert order("revenue") == ["idle", "losing", "negative", "rich", "thin"]
