"""The margins page in the admin (issue 51): S26's figures as the API gives
them, the customers of lowest margin, the months' chart, the CSV export, and a
bad window refused on the page; only Finance reads it."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from billing.invoicing.close import periods_close
from billing.margins.report import Margin, lowest_margins, month_margins
from config.user_language import user_language_set
from customers.services import customer_create
from tests.margins.test_margins_api import (  # noqa: F401 (s26: a fixture)
    _s26_once,
    post_events,
    s26,
    s26_usage,
    tokens_event,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
PAGE = "/admin/billing/marginreport/"
NOVEMBER = "period_start=2026-11-01T00:00&period_end=2026-12-01T00:00"


def staff(role: str, language: str = "en") -> Client:
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user(username=f"{role.lower()}_{language}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    user_language_set(user=user, language=language)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def closed_november(s26):  # noqa: F811
    s26_usage()
    periods_close(as_of=DEC_1)


def get(client: Client, query: str = ""):
    with time_machine.travel(DEC_5, tick=False):
        return client.get(f"{PAGE}?{query}" if query else PAGE)


def test_finance_reads_s26_on_the_page(closed_november):
    response = get(staff("Finance"), f"{NOVEMBER}&group_by=customer&currency=USD")

    assert response.status_code == 200
    (row,) = response.context["rows"]
    assert row == {
        "key": "acme",
        "revenue": "7.00",
        "cost": "3.25",
        "margin": "3.75",
        "percent": "53.57%",
        "uncosted": "0",
        "loss": False,
        "lowest": True,
    }
    html = response.content.decode()
    assert '<td class="figure percent">53.57%</td>' in html
    assert [r["key"] for r in response.context["lowest"]] == ["acme"]
    # The chart's months: July to December 2026, November's figures S26's.
    months = response.context["chart"]["months"]
    assert [m["month"].strftime("%Y-%m") for m in months] == [
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
        "2026-11",
        "2026-12",
    ]
    assert (months[4]["revenue"], months[4]["cost"], months[4]["margin"]) == (
        "7.00 USD",
        "3.25 USD",
        "3.75 USD",
    )
    assert months[5]["revenue"] == "0.00 USD"
    assert html.count("<rect ") == 18  # 6 months x revenue, cost, margin


def test_the_page_by_a_property(closed_november):
    client = staff("Finance")
    response = get(client, f"{NOVEMBER}&group_by=token_type&currency=USD")
    assert [
        (r["key"], r["revenue"], r["cost"], r["percent"]) for r in response.context["rows"]
    ] == [
        ("input", "5.00", "2.25", "55%"),
        ("output", "2.00", "1.00", "50%"),
    ]
    # The lowest customers stay customers, whatever the table's view.
    assert [r["key"] for r in response.context["lowest"]] == ["acme"]


@pytest.mark.parametrize(
    ("language", "percent", "words"),
    [
        ("fr", "53,57\N{NO-BREAK SPACE}%", ["Marges par Client, USD", "Coût"]),
        ("de", "53,57\N{NO-BREAK SPACE}%", ["Margen nach Kunde, USD", "Kosten"]),
    ],
)
def test_the_page_in_french_and_german(closed_november, language, percent, words):
    response = get(staff("Finance", language), f"{NOVEMBER}&group_by=customer&currency=USD")
    (row,) = response.context["rows"]
    assert (row["revenue"], row["percent"]) == ("7,00", percent)
    html = response.content.decode()
    for word in words:
        assert word in html


def test_the_csv_has_the_tables_figures(closed_november):
    response = get(staff("Finance"), f"{NOVEMBER}&group_by=token_type&currency=USD&format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert 'filename="margins-token_type-USD.csv"' in response["Content-Disposition"]
    assert response.streaming
    assert b"".join(response.streaming_content).decode() == (
        "token_type,revenue,cost,margin,margin_percent,uncosted_quantity,currency,error,"
        "missing_rates\n"
        "input,5.00,2.25,2.75,55.00,0,USD,,\n"
        "output,2.00,1.00,1.00,50.00,0,USD,,\n"
    )
    by_customer = get(staff("Operations"), "")  # Operations does not read margins
    assert by_customer.status_code == 302


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "period_start=2026-12-01T00:00&period_end=2026-11-01T00:00",
            "period_end",
            "The end must be after the start.",
        ),
        (
            "period_start=2026-11-01T00:00&period_end=2026-11-01T00:00",
            "period_end",
            "The end must be after the start.",
        ),
        (
            "period_start=2026-11-01T00:30&period_end=2026-12-01T00:00",
            "period_start",
            "Give a time on the hour: costs are computed per hour.",
        ),
        ("period_start=yesterday&period_end=2026-12-01T00:00", "period_start", "Enter a valid"),
    ],
)
def test_a_bad_window_is_refused_on_the_page(closed_november, query, field, message):
    client = staff("Finance")
    response = get(client, query)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html
    assert "Please correct the errors below." in html
    assert response.context.get("rows") is None
    # and no CSV either
    assert get(client, f"{query}&format=csv")["Content-Type"].startswith("text/html")


def test_the_default_window_is_the_month_so_far(closed_november):
    response = get(staff("Finance"))

    form = response.context["form"]
    assert form.cleaned_data["period_start"] == DEC_1
    assert form.cleaned_data["period_end"] == datetime(2026, 12, 5, 11, tzinfo=UTC)
    assert form.cleaned_data["group_by"] == "customer"
    assert form.cleaned_data["currency"] == "USD"
    assert response.context["rows"] == []


@pytest.mark.parametrize("role", ["Operations", "Support"])
def test_only_finance_opens_it_and_finds_it_in_the_sidebar(db, role):
    refused = get(staff(role))
    assert refused.status_code == 302
    assert refused["Location"] == "/admin/"

    finance = staff("Finance")
    with time_machine.travel(DEC_5, tick=False):
        index = finance.get("/admin/").content.decode()
    assert f'href="{PAGE}"' in index


def test_the_lowest_margins_come_first_a_loss_without_revenue_before_all():
    def row(name: str, revenue: str, cost: str) -> Margin:
        return Margin(key={"customer": name}, revenue=D(revenue), cost=D(cost))

    rows = [
        row("rich", "100.00", "10.00"),
        row("thin", "100.00", "95.00"),
        row("losing", "0.00", "3.00"),
        row("idle", "0.00", "0.00"),
        row("negative", "10.00", "12.00"),
        row("ok", "50.00", "25.00"),
    ]
    assert [m.key["customer"] for m in lowest_margins(rows, 3)] == ["losing", "negative", "thin"]
    assert "idle" not in [m.key["customer"] for m in lowest_margins(rows, 10)]


def test_month_margins_are_each_months_own(s26):  # noqa: F811
    # October's usage came before the first cost rate: uncosted, and costs nothing.
    post_events(
        [
            tokens_event("october", "2026-10-31T23:30:00Z", 300_000, "input"),
            tokens_event("november", "2026-11-01T00:30:00Z", 1_000_000, "input"),
        ]
    )
    october = datetime(2026, 10, 1, tzinfo=UTC)
    with time_machine.travel(DEC_1, tick=False):  # November not closed yet
        months = month_margins(months=[(october, NOV_1), (NOV_1, DEC_1)], currency="USD")

    # October's input came before acme's subscription (from Nov 1): no period
    # bills it. November's 1M input accrues at 2.50 per 1M = 2.50, costs 1.25.
    assert [(m.key["month"], m.revenue, m.cost, m.margin, m.uncosted_quantity) for m in months] == [
        (october, D("0.00"), D("0.00"), D("0.00"), D(300_000)),
        (NOV_1, D("2.50"), D("1.25"), D("1.25"), D(0)),
    ]


def test_the_page_opens_in_the_currency_billed_in_the_window(closed_november):
    # A customer in EUR with nothing in December: EUR comes first in the list
    # of currencies, but the month so far is billed in USD alone.
    customer_create(external_id="initech", name="Initech", currency="EUR")
    response = get(staff("Finance"))

    assert response.context["form"].cleaned_data["currency"] == "USD"
    assert [c for c, _ in response.context["form"].fields["currency"].choices] == ["EUR", "USD"]
