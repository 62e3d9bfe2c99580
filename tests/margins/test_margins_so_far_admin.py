"""The month so far's margins outside the margins page (issue 51): the column
on the customer list (one report call for the page), the line on a customer's
page with its link to the margins page of that customer alone, and the
dashboard's tile; S26's figures, in English, French and German; only to
Finance (billing.view_margins)."""

from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine

from billing.admin import margins_so_far
from billing.admin.margins_so_far import MarginTile
from billing.invoicing.close import periods_close
from customers.models import Customer
from customers.services import customer_create
from tests.margins.test_margins_admin import staff
from tests.margins.test_margins_api import _s26_once, s26, s26_usage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
# November's last half hour: the month so far is the whole of November.
NOV_30_LATE = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
# Before November closes: its usage costed, nothing billed for it yet.
NOV_20_LATE = datetime(2026, 11, 20, 15, 10, tzinfo=UTC)
CUSTOMERS = "/admin/customers/customer/"
# S26's margin written in French and German alike.
COMMA_FIGURES = "3,75 USD (53,57\N{NO-BREAK SPACE}%)"
NOVEMBER_LINK = (
    "/admin/billing/marginreport/?period_start=2026-11-01T00%3A00"
    "&amp;period_end=2026-12-01T00%3A00&amp;group_by=customer&amp;currency=USD"
)


@pytest.fixture
def november(s26):  # noqa: F811
    """S26 with November closed, and a second customer on the list who was
    neither billed nor costed."""
    s26_usage()
    periods_close(as_of=DEC_1)
    customer_create(external_id="globex", name="Globex", currency="USD")


def get(client, url: str, at: datetime = NOV_30_LATE):
    with time_machine.travel(at, tick=False):
        response = client.get(url)
    assert response.status_code == 200
    return response


def test_the_customer_list_shows_s26_with_one_report_call(november):
    counted = mock.patch.object(margins_so_far, "margins", wraps=margins_so_far.margins)
    with counted as report:
        html = get(staff("Finance"), CUSTOMERS).content.decode()

    assert report.call_count == 1
    ((), asked) = report.call_args
    assert sorted(asked["customers"]) == sorted(Customer.objects.values_list("pk", flat=True))
    assert asked["currency"] == "USD"
    assert "Margin (month so far)" in html
    assert '<td class="field-month_margin">3.75 USD (53.57%)</td>' in html
    assert '<td class="field-month_margin">—</td>' in html


def test_before_the_close_the_month_so_far_has_its_accruing_revenue(s26):  # noqa: F811
    s26_usage()
    html = get(staff("Finance"), CUSTOMERS, at=NOV_20_LATE).content.decode()
    # Nothing invoiced yet, the period's statement earning as the usage
    # happened: 2.50 + 2.50 + 2.00 = 7.00, less 3.25 of cost = 3.75 (53.57 %).
    assert '<td class="field-month_margin">3.75 USD (53.57%)</td>' in html


def test_the_customer_page_shows_s26_and_links_to_its_margins(november):
    client = staff("Finance")
    acme = Customer.objects.get(external_id="acme")
    html = get(client, f"{CUSTOMERS}{acme.pk}/change/").content.decode()

    assert "Margin (month so far)" in html
    assert "3.75 USD (53.57%)" in html
    assert f'<a href="{NOVEMBER_LINK}&amp;customer=acme" id="customer-margins-link">' in html

    page = get(client, f"{NOVEMBER_LINK.replace('&amp;', '&')}&customer=acme")
    assert [(r["key"], r["margin"], r["percent"]) for r in page.context["rows"]] == [
        ("acme", "3.75", "53.57%")
    ]
    assert "Customer acme only." in page.content.decode()
    other = get(client, f"{NOVEMBER_LINK.replace('&amp;', '&')}&customer=globex")
    assert other.context["rows"] == []


def test_the_dashboard_tile_shows_s26(november):
    response = get(staff("Finance"), "/admin/")

    assert response.context["margin_tile"] == [
        MarginTile(
            currency="USD",
            revenue="7.00 USD",
            cost="3.25 USD",
            margin="3.75 USD",
            percent="53.57%",
            loss=False,
            url=NOVEMBER_LINK.replace("&amp;", "&"),
        )
    ]
    html = response.content.decode()
    assert "Margin this month" in html
    assert '<td class="figure">7.00 USD</td><td class="figure">3.25 USD</td>' in html
    assert f'<a href="{NOVEMBER_LINK}">USD</a>' in html


def test_the_tile_makes_one_report_call_per_currency(november):
    with mock.patch.object(
        margins_so_far, "month_margins", wraps=margins_so_far.month_margins
    ) as report:
        get(staff("Finance"), "/admin/")
    assert report.call_count == 1


@pytest.mark.parametrize(
    ("language", "column", "figures", "tile"),
    [
        ("fr", "Marge (mois en cours)", COMMA_FIGURES, "Marge ce mois-ci"),
        ("de", "Marge (laufender Monat)", COMMA_FIGURES, "Marge diesen Monat"),
    ],
)
def test_in_french_and_german(november, language, column, figures, tile):
    client = staff("Finance", language)
    html = get(client, CUSTOMERS).content.decode()
    assert column in html
    assert f'<td class="field-month_margin">{figures}</td>' in html
    assert tile in get(client, "/admin/").content.decode()


@pytest.mark.parametrize("role", ["Operations", "Support"])
def test_hidden_without_the_margins_permission(november, role):
    client = staff(role)
    acme = Customer.objects.get(external_id="acme")
    with (
        mock.patch.object(margins_so_far, "margins") as report,
        mock.patch.object(margins_so_far, "month_margins") as months,
    ):
        listed = get(client, CUSTOMERS).content.decode()
        page = get(client, f"{CUSTOMERS}{acme.pk}/change/").content.decode()
        dashboard = get(client, "/admin/")
    assert report.call_count == months.call_count == 0
    for html in (listed, page):
        assert "Margin (month so far)" not in html
        assert "53.57%" not in html
    assert dashboard.context["margin_tile"] is None
    assert "Margin this month" not in dashboard.content.decode()


def test_customers_of_two_currencies_take_one_call_each(november):
    customer_create(external_id="lyon", name="Lyon", currency="EUR")
    customers = list(Customer.objects.order_by("pk"))
    with mock.patch.object(margins_so_far, "margins", wraps=margins_so_far.margins) as report:
        texts = margins_so_far.customers_margin_texts(customers, now=NOV_30_LATE)
    assert sorted(call.kwargs["currency"] for call in report.call_args_list) == ["EUR", "USD"]
    assert {c.external_id: texts[c.pk] for c in customers} == {
        "acme": "3.75 USD (53.57%)",
        "globex": "—",
        "lyon": "—",
    }
