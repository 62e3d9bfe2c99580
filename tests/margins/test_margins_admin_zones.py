"""The margins page's window in a time zone (issue 75): the edges typed in the
zone chosen (by default the default billing entity's, UTC while it has none),
the page saying which zone it shows, the default window the month so far
there, every edge on a UTC hour; and the page by billing entity."""

import re
from datetime import UTC, datetime

import pytest

from customers.billing_entities import billing_entity_save, default_billing_entity
from tests.margins.test_margins_admin import NOVEMBER, closed_november, get, staff  # noqa: F401
from tests.margins.test_margins_api import _s26_once, s26  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_november_in_paris_is_read_from_its_midnight_and_says_so(closed_november):  # noqa: F811
    response = get(staff("Finance"), f"{NOVEMBER}&tz=Europe/Paris&group_by=customer&currency=USD")

    form = response.context["form"]
    # Paris is UTC+1 in November: its midnights are 23:00 UTC the day before.
    assert form.cleaned_data["period_start"] == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert form.cleaned_data["period_end"] == datetime(2026, 11, 30, 23, tzinfo=UTC)
    # S26's usage (Nov 10 and Nov 20) lies inside either November.
    assert [(r["key"], r["revenue"], r["cost"]) for r in response.context["rows"]] == [
        ("acme", "7.00", "3.25")
    ]
    html = response.content.decode()
    assert "From (Europe/Paris)" in html
    assert "To (Europe/Paris)" in html
    assert "Revenue, cost and margin by month (Europe/Paris), USD" in html


def test_the_default_zone_is_the_default_entitys_and_the_window_its_month_so_far(
    closed_november,  # noqa: F811
):
    # The default entity's `timezone`.
    entity = default_billing_entity()
    entity.timezone = "America/New_York"
    billing_entity_save(entity=entity)
    response = get(staff("Finance"))

    form = response.context["form"]
    assert form.cleaned_data["tz"] == "America/New_York"
    # Dec 5 10:30 UTC is 05:30 in New York (UTC-5): its December began at 05:00 UTC.
    assert form.cleaned_data["period_start"] == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert form.cleaned_data["period_end"] == datetime(2026, 12, 5, 11, tzinfo=UTC)
    assert form["period_start"].value() == "2026-12-01T00:00"
    assert form["period_end"].value() == "2026-12-05T06:00"
    assert "From (America/New_York)" in response.content.decode()


def test_without_an_entity_zone_the_page_is_in_utc(closed_november):  # noqa: F811
    response = get(staff("Finance"))
    assert response.context["form"].cleaned_data["tz"] == "UTC"
    assert "From (UTC)" in response.content.decode()


def test_a_zone_a_half_hour_from_utc_starts_its_month_on_the_utc_hour_before(
    closed_november,  # noqa: F811
):
    response = get(staff("Finance"), "tz=Asia/Kolkata")

    form = response.context["form"]
    # Midnight Dec 1 in Kolkata (UTC+5:30) is 18:30 UTC on Nov 30: costs are
    # hourly, so the month so far starts at 18:00 UTC (23:30 there).
    assert form.cleaned_data["period_start"] == datetime(2026, 11, 30, 18, tzinfo=UTC)
    assert form["period_start"].value() == "2026-11-30T23:30"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "tz=Asia/Kolkata&period_start=2026-11-01T00:00&period_end=2026-12-01T00:00",
            "period_start",
            "Give a time on the hour: costs are computed per hour. In UTC that is 18:30.",
        ),
        (
            # 02:30 does not exist in Paris on March 29 2026 (clocks go to 03:00).
            "tz=Europe/Paris&period_start=2026-03-29T02:30&period_end=2026-04-01T00:00",
            "period_start",
            "be interpreted in time zone Europe/Paris",
        ),
        ("tz=Mars/Olympus&period_end=2026-12-01T00:00", "tz", "Select a valid choice."),
    ],
)
def test_an_edge_not_on_a_utc_hour_or_a_zone_unknown_is_refused(
    closed_november,  # noqa: F811
    query,
    field,
    message,
):
    response = get(staff("Finance"), query)

    assert message in " ".join(response.context["form"].errors[field])
    assert response.context.get("rows") is None


def test_the_page_by_billing_entity(closed_november):  # noqa: F811
    response = get(staff("Finance"), f"{NOVEMBER}&group_by=billing_entity&currency=USD")

    assert [(r["key"], r["revenue"], r["cost"], r["margin"]) for r in response.context["rows"]] == [
        ("default", "7.00", "3.25", "3.75")
    ]
    assert "Margins by Billing entity, USD" in response.content.decode()
    french = get(staff("Finance", "fr"), f"{NOVEMBER}&group_by=billing_entity&currency=USD")
    assert "Marges par Entité de facturation, USD" in french.content.decode()


def test_the_chart_reads_the_zones_months(closed_november):  # noqa: F811
    response = get(staff("Finance"), "tz=Europe/Paris")

    months = response.context["chart"]["months"]
    # Paris's July to December: November's first hour (Oct 31 23:00 UTC) on.
    assert [m["month"] for m in months][4:] == [
        datetime(2026, 10, 31, 23, tzinfo=UTC),
        datetime(2026, 11, 30, 23, tzinfo=UTC),
    ]
    assert (months[4]["revenue"], months[4]["cost"]) == ("7.00 USD", "3.25 USD")


MONTH_ROW = re.compile(
    r'<tr data-month="([0-9-]+)"><td>([^<]+)</td><td class="figure revenue">([^<]+)</td>'
    r'<td class="figure cost">([^<]+)</td>'
)


@pytest.mark.parametrize(
    "zone", ["Europe/Paris", "Asia/Tokyo", "Asia/Kolkata", "America/New_York", "UTC"]
)
def test_the_months_are_labelled_in_the_zone_the_page_names(closed_november, zone):  # noqa: F811
    """Issue 93: each month is named as the zone the page says it uses reads it.
    A month of a zone east of UTC starts the evening before in UTC (Paris's
    October at 22:00 UTC on 30 Sep): it was labelled the month before ("Sep
    2026" for Paris's October), the labels of every month one early."""
    response = get(staff("Finance"), f"tz={zone}")
    html = response.content.decode()

    rows = MONTH_ROW.findall(html)
    # Dec 5 10:30 UTC is in December in each zone: its six months are July to
    # December; S26's November usage (Nov 10 and Nov 20) in November.
    assert rows == [
        ("2026-07", "Jul 2026", "0.00 USD", "0.00 USD"),
        ("2026-08", "Aug 2026", "0.00 USD", "0.00 USD"),
        ("2026-09", "Sep 2026", "0.00 USD", "0.00 USD"),
        ("2026-10", "Oct 2026", "0.00 USD", "0.00 USD"),
        ("2026-11", "Nov 2026", "7.00 USD", "3.25 USD"),
        ("2026-12", "Dec 2026", "0.00 USD", "0.00 USD"),
    ]
    # the chart's labels and the bars' titles name the same months
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', html)
    assert labels == [label for _month, label, _revenue, _cost in rows]
    assert "<title>Nov 2026, Revenue: 7.00 USD</title>" in html
    assert "<title>Oct 2026, Revenue: 0.00 USD</title>" in html
