"""One report currency (issue 93, API.md v1.4 `report_currency`, S41): revenue,
margins and the dashboard's tile convert every amount at the exchange rate in
effect at the start of the (UTC) day it was earned, a rate missing is named
(`missing_rates`) and its amount left out, never counted as zero.

S41: three customers on three plans (USD 2.50, EUR 2.30, JPY 390 per 1M
tokens), 10M tokens each in October; from 1 Sep 1 USD = 0.92 EUR and 1 USD =
156 JPY. October in USD: 25.00 + 23.00 / 0.92 + 3,900 / 156 = 75.00."""

from datetime import UTC, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.margins.report import margins, window_total
from billing.revenue.conversion import Conversion, MissingRate
from billing.revenue.earned import earned_converted
from customers.services import customer_create
from plans.exchange_rate_rules import exchange_rate_create
from tests.factories import api_client, llm_tokens_meter, subscribe
from tests.margins.test_margins_admin import staff

pytestmark = pytest.mark.django_db

MILLION = "1000000"
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, 12, tzinfo=UTC)
OCT_25 = datetime(2026, 10, 25, 12, tzinfo=UTC)
OCTOBER = "from=2026-10-01&to=2026-11-01&tz=UTC"
MARGINS_OCTOBER = "period_start=2026-10-01&period_end=2026-11-01&tz=UTC"
# Where each customer is: its currency, zone and price of 1M tokens.
CUSTOMERS = {
    "new-york": ("USD", "America/New_York", "2.50"),
    "paris": ("EUR", "Europe/Paris", "2.30"),
    "tokyo": ("JPY", "Asia/Tokyo", "390"),
}


def usd_to(quote: str, rate: str, at: datetime = SEP_1) -> None:
    exchange_rate_create(base="USD", quote=quote, rate=D(rate), effective_from=at, source="ECB")


def usd_cost_per_million(cost: str) -> None:
    created = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "llm_tokens",
            "when": {},
            "unit_cost": cost,
            "per": MILLION,
            "currency": "USD",
            "effective_from": "2026-09-01T00:00:00Z",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()


def tokens(customer: str, count: int, at: str) -> dict:
    return {
        "id": f"{customer}-{at}",
        "customer": customer,
        "event_name": "llm.tokens",
        "timestamp": at,
        "properties": {"tokens": count, "model": "gpt-4o", "token_type": "input"},
    }


def post_events(events: list[dict]) -> None:
    posted = api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    assert posted.status_code == 202, posted.json()
    assert posted.json()["accepted"] == len(events), posted.json()


def s41(tokyo_usage=(("2026-10-10T06:00:00Z", 10_000_000),)) -> None:
    """S41's three plans and customers subscribed from 1 Oct (each in its own
    zone), 10M tokens each in October (Tokyo's as `tokyo_usage` says)."""
    llm_tokens_meter()
    for external_id, (currency, zone, price) in CUSTOMERS.items():
        created = api_client("admin").post(
            "/api/v1/plans",
            {
                "code": f"pro-{currency.lower()}",
                "name": f"Pro {currency}",
                "currency": currency,
                "charges": [
                    {
                        "meter": "llm_tokens",
                        "model": "overage",
                        "included_units": "0",
                        "pricing": {"scheme": "per_unit", "unit_price": price, "per": MILLION},
                    }
                ],
                "publish": True,
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        customer = customer_create(
            external_id=external_id, name=external_id, currency=currency, timezone_name=zone
        )
        # from midnight on 1 Oct where the customer is: its October a period
        start = datetime(2026, 10, 1, tzinfo=ZoneInfo(zone))
        subscribe(customer, f"pro-{currency.lower()}", start=start, billing_anchor="calendar")
    with time_machine.travel(OCT_25, tick=False):
        post_events(
            [
                tokens("new-york", 10_000_000, "2026-10-12T15:00:00Z"),
                tokens("paris", 10_000_000, "2026-10-20T09:00:00Z"),
                *(tokens("tokyo", count, at) for at, count in tokyo_usage),
            ]
        )


def october_closed() -> None:
    with time_machine.travel(NOV_3, tick=False):
        periods_close(as_of=NOV_3)


def revenue(query: str) -> dict:
    with time_machine.travel(NOV_3, tick=False):
        answer = api_client("finance:read").get(f"/api/v1/revenue?{OCTOBER}&{query}")
    assert answer.status_code == 200, answer.json()
    return answer.json()


def earned_by_key(answer: dict, key: str) -> dict:
    return {row["key"][key]: row["earned"] for row in answer["results"]}


def test_s41_october_in_usd_is_75_00_whatever_the_view():
    # given: S41, October invoiced (25.00 USD, 23.00 EUR, 3,900 JPY)
    s41()
    usd_to("EUR", "0.92")
    usd_to("JPY", "156")
    october_closed()

    # when: October's revenue is asked in USD
    by_customer = revenue("report_currency=USD")
    by_plan = revenue("report_currency=USD&group_by=plan")

    # then: each customer's 25.00, 75.00 together, in USD, no rate missing
    assert by_customer["currency"] == "USD"
    assert earned_by_key(by_customer, "customer") == {
        "new-york": "25.00",
        "paris": "25.00",
        "tokyo": "25.00",
    }
    assert [(row["billed"], row["currency"]) for row in by_customer["results"]] == [
        ("25.00", "USD")
    ] * 3
    assert earned_by_key(by_plan, "plan") == {
        "pro-usd": "25.00",
        "pro-eur": "25.00",
        "pro-jpy": "25.00",
    }
    assert by_customer["missing_rates"] == []
    total = earned_converted(
        start=OCT_1, end=NOV_1, report_currency="USD", billed_in=["EUR", "JPY", "USD"], now=NOV_3
    ).total
    assert (total.earned, total.billed, total.accrued) == (D("75.00"), D("75.00"), D(0))
    # currency= stays a filter: the EUR customer alone, in USD
    paris_only = revenue("report_currency=USD&currency=EUR")
    assert (paris_only["currency"], earned_by_key(paris_only, "customer")) == (
        "USD",
        {"paris": "25.00"},
    )
    # without report_currency the answer is as before: one currency, unconverted
    unconverted = revenue("currency=JPY")
    assert earned_by_key(unconverted, "customer") == {"tokyo": "3900"}
    assert "missing_rates" not in unconverted
    assert "currency" not in unconverted["results"][0]
    # in EUR: 25.00 x 0.92 = 23.00; the yen has no rate to the euro (no cross
    # rate through the dollar is made up): named, left out
    in_euros = revenue("report_currency=EUR")
    assert earned_by_key(in_euros, "customer") == {
        "new-york": "23.00",
        "paris": "23.00",
        "tokyo": "0.00",
    }
    assert in_euros["missing_rates"] == [{"from": "JPY", "to": "EUR", "date": "2026-10-01"}]


def test_s41_margins_in_usd_convert_revenue_and_keep_costs():
    # given: S41 in October, not closed yet (what accrues, from the statements),
    # and a cost of 1.00 USD per 1M tokens
    s41()
    usd_to("EUR", "0.92")
    usd_to("JPY", "156")
    usd_cost_per_million("1.00")

    with time_machine.travel(OCT_25, tick=False):
        answer = api_client("finance:read").get(
            f"/api/v1/margins?{MARGINS_OCTOBER}&report_currency=USD"
        )

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["currency"] == "USD"
    assert body["missing_rates"] == []
    assert {row["currency"] for row in body["results"]} == {"USD"}
    assert {
        row["key"]["customer"]: (row["revenue"], row["cost"], row["margin"], row["margin_percent"])
        for row in body["results"]
    } == dict.fromkeys(CUSTOMERS, ("25.00", "10.00", "15.00", "60.00"))
    with time_machine.travel(OCT_25, tick=False):
        by_plan = api_client("finance:read").get(
            f"/api/v1/margins?{MARGINS_OCTOBER}&report_currency=USD&group_by=plan"
        )
    assert {
        row["key"]["plan"]: (row["revenue"], row["cost"]) for row in by_plan.json()["results"]
    } == dict.fromkeys(("pro-usd", "pro-eur", "pro-jpy"), ("25.00", "10.00"))


def test_a_missing_rate_is_named_and_its_amount_left_out():
    # given: S41 with Tokyo's tokens 4M on 3 Oct and 6M on 20 Oct, and a rate
    # of the yen from 5 Oct only
    s41(
        tokyo_usage=(
            ("2026-10-03T02:00:00Z", 4_000_000),
            ("2026-10-20T02:00:00Z", 6_000_000),
        )
    )
    usd_to("EUR", "0.92")
    usd_to("JPY", "156", at=datetime(2026, 10, 5, tzinfo=UTC))
    october_closed()

    body = revenue("report_currency=USD")

    # then: Tokyo's part before 5 Oct (1,560 JPY) is left out, not counted as
    # zero silently: named on the answer and on its row; the rest, 2,340 JPY,
    # is 15.00 USD
    assert body["missing_rates"] == [{"from": "JPY", "to": "USD", "date": "2026-10-01"}]
    rows = {row["key"]["customer"]: row for row in body["results"]}
    assert rows["tokyo"]["earned"] == "15.00"
    assert rows["tokyo"]["missing_rates"] == ["JPY->USD"]
    assert "missing_rates" not in rows["paris"]
    assert sum(D(row["earned"]) for row in body["results"]) == D("65.00")
    # the margins say the same
    with time_machine.travel(NOV_3, tick=False):
        (tokyo,) = margins(
            start=OCT_1,
            end=NOV_1,
            group_by="customer",
            currency="USD",
            customers=None,
            billed_in=["JPY"],
        )
        total = window_total(start=OCT_1, end=NOV_1, currency="USD", key={}, billed_in=["JPY"])
    assert (tokyo.revenue, tokyo.missing_rates) == (D("15.00"), {"JPY->USD"})
    assert tokyo.missing_days == {MissingRate("JPY", "USD", OCT_1.date())}
    assert (total.revenue, total.missing_days) == (D("15.00"), tokyo.missing_days)


def test_without_any_rate_the_customer_earns_nothing_converted_and_the_rate_is_named():
    s41()
    usd_to("EUR", "0.92")
    october_closed()

    body = revenue("report_currency=USD")

    assert body["missing_rates"] == [{"from": "JPY", "to": "USD", "date": "2026-10-01"}]
    rows = {
        row["key"]["customer"]: (row["earned"], row.get("missing_rates")) for row in body["results"]
    }
    assert rows == {
        "new-york": ("25.00", None),
        "paris": ("25.00", None),
        "tokyo": ("0.00", ["JPY->USD"]),
    }


def test_a_piece_is_converted_at_the_rate_of_the_start_of_its_day():
    # given: Tokyo's 10M tokens at 18:00 UTC on 10 Oct, and the yen at 160
    # from 12:00 UTC that day (156 before)
    s41(tokyo_usage=(("2026-10-10T18:00:00Z", 10_000_000),))
    usd_to("EUR", "0.92")
    usd_to("JPY", "156")
    usd_to("JPY", "160", at=datetime(2026, 10, 10, 12, tzinfo=UTC))
    october_closed()

    body = revenue("report_currency=USD&currency=JPY")

    # then: 10 Oct began at 156: 3,900 / 156 = 25.00, not 3,900 / 160 = 24.38
    assert earned_by_key(body, "customer") == {"tokyo": "25.00"}


def test_a_rate_from_midnight_is_its_days_rate_and_a_piece_across_it_is_cut_there():
    # given: 5M tokens on 9 Oct and 5M on 10 Oct, the yen at 160 from
    # midnight on 10 Oct
    s41(
        tokyo_usage=(
            ("2026-10-09T10:00:00Z", 5_000_000),
            ("2026-10-10T10:00:00Z", 5_000_000),
        )
    )
    usd_to("JPY", "156")
    usd_to("JPY", "160", at=datetime(2026, 10, 10, tzinfo=UTC))
    october_closed()

    body = revenue("report_currency=USD&currency=JPY")

    # then: 1,950 / 156 + 1,950 / 160 = 12.5 + 12.1875 = 24.6875 -> 24.69
    assert earned_by_key(body, "customer") == {"tokyo": "24.69"}
    # and the days add up: 1-10 Oct is 12.50, 10 Oct-1 Nov 12.19 (24.6875 less
    # 12.50, rounded once: the windows add up to the month)
    first = revenue_between("2026-10-01", "2026-10-10")
    second = revenue_between("2026-10-10", "2026-11-01")
    assert (first, second) == ("12.50", "12.19")


def revenue_between(start: str, end: str) -> str:
    with time_machine.travel(NOV_3, tick=False):
        answer = api_client("finance:read").get(
            f"/api/v1/revenue?from={start}&to={end}&tz=UTC&report_currency=USD&currency=JPY"
        )
    assert answer.status_code == 200, answer.json()
    (row,) = answer.json()["results"]
    return row["earned"]


def test_the_conversion_reads_the_days_rate():
    usd_to("JPY", "156")
    usd_to("JPY", "160", at=datetime(2026, 10, 10, 12, tzinfo=UTC))
    conversion = Conversion.load("USD", ["JPY"])

    assert conversion.amount("JPY", D(3900), datetime(2026, 10, 10, 23, tzinfo=UTC)) == D("25.00")
    assert conversion.amount("JPY", D(3900), datetime(2026, 10, 11, tzinfo=UTC)) == D("24.38")
    assert conversion.cuts("JPY", OCT_1, NOV_1) == [datetime(2026, 10, 11, tzinfo=UTC)]
    assert conversion.amount("JPY", D(3900), datetime(2026, 8, 31, tzinfo=UTC)) is None
    assert conversion.missing == {MissingRate("JPY", "USD", datetime(2026, 8, 31).date())}


@pytest.mark.parametrize("path", ["revenue?" + OCTOBER, "margins?" + MARGINS_OCTOBER])
@pytest.mark.parametrize("code", ["XYZ", "usd", "", "XXX"])
def test_an_unknown_report_currency_is_a_400_naming_it(path, code):
    answer = api_client("finance:read").get(f"/api/v1/{path}&report_currency={code}")

    assert answer.status_code == 400
    assert answer.json()["error"]["fields"] == {"report_currency": ["a currency code, e.g. USD"]}


def dashboard(client, query: str = ""):
    with time_machine.travel(OCT_25, tick=False):
        return client.get(f"/admin/{query}")


def test_the_dashboard_tile_in_a_report_currency_is_the_reports():
    # given: S41 on 25 Oct, nothing invoiced yet, the yen without a rate
    s41()
    usd_to("EUR", "0.92")
    client = staff("Finance")

    # when: the tile is asked in each currency, then in USD
    apart = dashboard(client)
    converted = dashboard(client, "?report_currency=USD")

    # then: apart, a row a currency; in USD, one row: 25.00 + 23.00 / 0.92,
    # the yen's 3,900 left out and named
    assert apart.status_code == 200
    assert [(row.currency, row.revenue, row.converted) for row in apart.context["margin_tile"]] == [
        ("EUR", "23.00 EUR", False),
        ("JPY", "3,900 JPY", False),
        ("USD", "25.00 USD", False),
    ]
    assert apart.context["report_currency_choices"] == ["EUR", "JPY", "USD"]
    assert converted.status_code == 200
    (row,) = converted.context["margin_tile"]
    assert (row.currency, row.revenue, row.cost, row.converted, row.url) == (
        "USD",
        "50.00 USD",
        "0.00 USD",
        True,
        None,
    )
    assert row.missing == ["JPY->USD from 2026-10-01"]
    html = converted.content.decode()
    assert '<option value="USD" selected>USD</option>' in html
    assert "USD, every customer converted" in html
    assert "No exchange rate for JPY-&gt;USD from 2026-10-01" in html
    # the same figure as the report's total
    with time_machine.travel(OCT_25, tick=False):
        total = window_total(
            start=OCT_1, end=NOV_1, currency="USD", key={}, billed_in=["EUR", "JPY", "USD"]
        )
    assert total.revenue == D("50.00")


def test_an_unknown_report_currency_on_the_dashboard_is_a_400_saying_so():
    s41()
    response = dashboard(staff("Finance"), "?report_currency=XYZ")

    assert response.status_code == 400
    assert "Unknown currency code: XYZ. Choose one in the list." in response.content.decode()
    # the tile is shown in each currency, as without a choice
    assert [row.currency for row in response.context["margin_tile"]] == ["EUR", "JPY", "USD"]
