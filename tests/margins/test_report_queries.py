"""What /revenue and /margins refuse (issue 75): a window whose end is not
after its start or is more than 400 days long, an unknown zone, an unknown
seller, an unknown view or currency, an unknown parameter: a 400 naming the
field. And what a zone means: a date is its midnight there."""

import pytest

from tests.factories import api_client

pytestmark = pytest.mark.django_db


def refused(path: str) -> dict:
    response = api_client("finance:read").get(path)
    assert response.status_code == 400, response.content
    return response.json()


@pytest.mark.parametrize("endpoint", ["revenue", "margins"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{s}=2026-12-01&{e}=2026-11-01", "{e}"),
        ("{s}=2026-11-01&{e}=2026-11-01", "{e}"),
        ("{s}=2025-01-01&{e}=2026-02-06", "{e}"),  # 401 days
        ("{s}=2026-11-01&{e}=2026-12-01&tz=Mars/Olympus", "tz"),
        ("{s}=2026-11-01&{e}=2026-12-01&tz=", "tz"),
        ("{s}=2026-11-01&{e}=2026-12-01&billing_entity=nobody", "billing_entity"),
        ("{s}=2026-11-01&{e}=2026-12-01&group_by=colour", "group_by"),
        ("{s}=2026-11-01&{e}=2026-12-01&currency=XXQ", "currency"),
        ("{s}=yesterday&{e}=2026-12-01", "{s}"),
        ("{s}=2026-11-01&{e}=99999-12-01", "{e}"),
        ("{s}=2026-11-01&{e}=2026-12-01&window=1", "window"),
    ],
)
def test_a_bad_question_is_a_400_naming_the_field(endpoint, query, field):
    edges = {"revenue": ("from", "to"), "margins": ("period_start", "period_end")}[endpoint]
    names = {"s": edges[0], "e": edges[1]}
    body = refused(f"/api/v1/{endpoint}?{query.format(**names)}")
    assert field.format(**names) in body["error"]["fields"], body


def test_a_year_and_a_month_is_allowed_and_a_zone_sets_what_a_date_means():
    client = api_client("finance:read")
    longest = client.get("/api/v1/revenue?from=2025-11-01&to=2026-12-01&currency=USD")
    assert longest.status_code == 200, longest.json()
    assert longest.json() == {"currency": "USD", "results": []}
    # Kolkata's midnight is not on a UTC hour: margins (costs per hour) refuse it,
    # the revenue answers.
    kolkata = "from=2026-11-01&to=2026-12-01&currency=USD&tz=Asia/Kolkata"
    assert client.get(f"/api/v1/revenue?{kolkata}").status_code == 200
    body = refused("/api/v1/margins?period_start=2026-11-01&period_end=2026-12-01&tz=Asia/Kolkata")
    assert "period_start" in body["error"]["fields"]
