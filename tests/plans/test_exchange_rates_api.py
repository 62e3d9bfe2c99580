"""Exchange rates through the API (issue 75, API.md v1.3 "Exchange rates"):
POST adds a rate of a pair from a moment, GET lists them (with `at`, each
pair's rate in effect); every refusal is a 400 naming its field, a pair and
moment given twice a 409 naming the rate it has, and nothing is written."""

import pytest

from plans.models import ExchangeRate
from tests.factories import api_client

pytestmark = pytest.mark.django_db


def exchange_rate(**fields) -> dict:
    return {
        "base": "USD",
        "quote": "EUR",
        "rate": "0.9210",
        "effective_from": "2026-11-01T00:00:00Z",
        "source": "ECB reference",
    } | fields


def test_a_rate_is_added_and_listed():
    response = api_client("admin").post("/api/v1/exchange-rates", exchange_rate(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    row = ExchangeRate.objects.get()
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "id": row.pk,
        "base": "USD",
        "quote": "EUR",
        "rate": "0.921",
        "effective_from": "2026-11-01T00:00:00Z",
        "source": "ECB reference",
        "created_by": row.created_by,
    }
    assert str(row.rate) == "0.9210000000"
    assert row.created_by.startswith("API key admin (")


def test_the_list_filters_by_pair_and_gives_the_rate_in_effect_at_a_moment():
    admin = api_client("admin")
    for fields in (
        exchange_rate(rate="0.90", effective_from="2026-10-01T00:00:00Z"),
        exchange_rate(rate="0.92", effective_from="2026-11-15T00:00:00Z"),
        exchange_rate(base="GBP", rate="1.15", effective_from="2026-10-01T00:00:00Z"),
    ):
        assert admin.post("/api/v1/exchange-rates", fields, format="json").status_code == 201
    finance = api_client("finance:read")

    def listed(query: str) -> list:
        response = finance.get(f"/api/v1/exchange-rates{query}")
        assert response.status_code == 200, response.json()
        return [(r["base"], r["rate"]) for r in response.json()["results"]]

    assert listed("") == [("USD", "0.9"), ("USD", "0.92"), ("GBP", "1.15")]
    assert listed("?base=USD&quote=EUR") == [("USD", "0.9"), ("USD", "0.92")]
    assert listed("?base=USD&quote=EUR&at=2026-11-14T23:59:59Z") == [("USD", "0.9")]
    assert listed("?base=USD&quote=EUR&at=2026-11-15T01:00:00%2B01:00") == [("USD", "0.92")]
    assert listed("?at=2026-11-20T00:00:00Z") == [("USD", "0.92"), ("GBP", "1.15")]
    assert listed("?quote=EUR&at=2026-09-30T00:00:00Z") == []


def test_reading_rates_needs_finance_and_writing_needs_admin():
    assert api_client("read").get("/api/v1/exchange-rates").status_code == 403
    response = api_client("finance:read").post(
        "/api/v1/exchange-rates", exchange_rate(), format="json"
    )
    assert response.status_code == 403
    assert not ExchangeRate.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"rate": "0"}, "rate", "Must be more than zero"),
        ({"rate": 0}, "rate", "Must be more than zero"),
        ({"rate": "-0.9"}, "rate", "Must be more than zero"),
        ({"rate": "NaN"}, "rate", "finite"),
        ({"rate": "Infinity"}, "rate", "finite"),
        ({"rate": "-inf"}, "rate", "finite"),
        ({"rate": "1000000000.01"}, "rate", "At most 1000000000"),
        ({"rate": "0.00000000001"}, "rate", "at most 10 decimal places"),
        ({"rate": "1e3"}, "rate", "decimal number"),
        ({"rate": True}, "rate", "decimal number"),
        ({"quote": "USD"}, "quote", "quote must differ from base"),
        ({"base": "XYZ"}, "base", "Unknown currency 'XYZ'"),
        ({"quote": "eur"}, "quote", "Unknown currency 'eur'"),
        ({"base": 840}, "base", "Not a valid string"),
        ({"effective_from": "2026-11-01"}, "effective_from", "ISO 8601 with an offset"),
        ({"effective_from": "2026-11-01T00:00:00"}, "effective_from", "ISO 8601 with an offset"),
        ({"effective_from": "2026-13-01T00:00:00Z"}, "effective_from", "ISO 8601"),
        ({"effective_from": "9999-12-31T23:00:00-05:00"}, "effective_from", "ISO 8601"),
        ({"effective_from": "0001-01-01T00:00:00+01:00"}, "effective_from", "ISO 8601"),
        ({"source": ""}, "source", "may not be blank"),
        ({"source": None}, "source", "may not be null"),
        ({"source": "x" * 201}, "source", "no more than 200"),
        ({"rates": "0.9"}, "rates", "unknown field"),
    ],
)
def test_refusals_name_the_field_and_write_nothing(fields, field, says):
    response = api_client("admin").post(
        "/api/v1/exchange-rates", exchange_rate(**fields), format="json"
    )

    assert response.status_code == 400, response.json()
    messages = response.json()["error"]["fields"][field]
    assert any(says in message for message in messages), messages
    assert not ExchangeRate.objects.exists()


@pytest.mark.parametrize("field", ["base", "quote", "rate", "effective_from", "source"])
def test_each_field_is_required(field):
    body = exchange_rate()
    del body[field]
    response = api_client("admin").post("/api/v1/exchange-rates", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"][field] == ["This field is required."]
    assert not ExchangeRate.objects.exists()


def test_a_blank_source_of_spaces_is_refused():
    response = api_client("admin").post(
        "/api/v1/exchange-rates", exchange_rate(source="   "), format="json"
    )
    assert response.status_code == 400
    assert "source" in response.json()["error"]["fields"]
    assert not ExchangeRate.objects.exists()


def test_the_same_pair_and_moment_twice_is_a_conflict_naming_the_rate():
    admin = api_client("admin")
    first = admin.post("/api/v1/exchange-rates", exchange_rate(), format="json").json()
    # The same moment written in another zone is the same moment.
    again = admin.post(
        "/api/v1/exchange-rates",
        exchange_rate(rate="0.95", effective_from="2026-11-01T01:00:00+01:00"),
        format="json",
    )

    assert again.status_code == 409, again.json()
    error = again.json()["error"]
    assert f"exchange rate {first['id']} (1 USD = 0.921 EUR from 2026-11-01" in error["message"]
    assert "effective_from" in error["fields"]
    assert [str(rate) for rate in ExchangeRate.objects.values_list("rate", flat=True)] == [
        "0.9210000000"
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [("?base=usd", "base"), ("?quote=XYZ", "quote"), ("?at=2026-11-01", "at"), ("?at=x", "at")],
)
def test_a_bad_filter_is_a_400_naming_it(query, field):
    response = api_client("finance:read").get(f"/api/v1/exchange-rates{query}")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
