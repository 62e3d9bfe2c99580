"""Costs in another currency (issue 75, S32): a cost rate in USD costs an EUR
customer's usage converted at the exchange rate in effect at the usage's hour;
without a rate the quantity is uncosted and the row names the missing pair
("missing_rates": ["USD->EUR"]) instead of counting it as costing nothing."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.margins.costs import usage_costs
from billing.margins.report import margins, margins_csv, window_total
from billing.usage.ingestion import events_ingest
from customers.services import customer_create
from plans.cost_rules import cost_rate_create
from plans.exchange_rate_rules import exchange_rate_create
from tests.factories import api_client, llm_tokens_meter

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 9, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
MILLION = D(1000000)
NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01&currency=EUR"


def tokens(event_id: str, model: str, token_type: str, count: int, at=NOV_10) -> dict:
    return {
        "id": event_id,
        "customer": "paris",
        "event_name": "llm.tokens",
        "timestamp": at.isoformat(),
        "properties": {"tokens": count, "model": model, "token_type": token_type},
    }


def usd_cost(when: dict, unit_cost: str) -> None:
    cost_rate_create(
        meter="llm_tokens",
        when=when,
        unit_cost=D(unit_cost),
        per=MILLION,
        currency="USD",
        effective_from=OCT_1,
    )


def usd_to_eur(rate: str, at: datetime = OCT_1) -> None:
    exchange_rate_create(base="USD", quote="EUR", rate=D(rate), effective_from=at, source="ECB")


@pytest.fixture
def s32(db):
    """S32's customer P (EUR) and its 10 Nov token usage, with the USD costs of
    gpt-4o (input 1.00, output 4.00) and mistral-large (0.50) per 1M; none for
    llama-3."""
    llm_tokens_meter()
    customer_create(external_id="paris", name="Paris SAS", currency="EUR")
    usd_cost({"model": "gpt-4o", "token_type": "input"}, "1.00")
    usd_cost({"model": "gpt-4o", "token_type": "output"}, "4.00")
    usd_cost({"model": "mistral-large"}, "0.50")
    result = events_ingest(
        events=[
            tokens("g-in", "gpt-4o", "input", 2_000_000),
            tokens("g-out", "gpt-4o", "output", 500_000),
            tokens("m-in", "mistral-large", "input", 3_000_000),
            tokens("l-in", "llama-3", "input", 1_000_000),
        ],
        now=NOV_10,
    )
    assert (result.rejected, result.duplicates) == ([], 0)


def by_model() -> dict:
    return {
        row.key["model"]: (row.cost, row.uncosted_quantity, sorted(row.missing_rates))
        for row in margins(start=NOV_1, end=DEC_1, group_by="model", currency="EUR")
    }


def test_usd_costs_of_an_eur_customer_are_converted_at_the_rate_of_their_hour(s32):
    usd_to_eur("0.90")

    assert by_model() == {
        "gpt-4o": (D("3.60"), D(0), []),  # 2.00 + 2.00 USD
        "mistral-large": (D("1.35"), D(0), []),  # 1.50 USD
        "llama-3": (D("0.00"), D(1_000_000), []),  # no cost rate: uncosted, no rate missing
    }
    (paris,) = margins(start=NOV_1, end=DEC_1, group_by="customer", currency="EUR")
    (meter,) = margins(start=NOV_1, end=DEC_1, group_by="meter", currency="EUR")
    total = window_total(start=NOV_1, end=DEC_1, currency="EUR", key={})
    for row in (paris, meter, total):
        assert (row.cost, row.uncosted_quantity, row.missing_rates) == (
            D("4.95"),
            D(1_000_000),
            set(),
        )


def test_without_the_rate_the_costs_are_unknown_and_the_pair_is_named(s32):
    assert by_model() == {
        "gpt-4o": (D("0.00"), D(2_500_000), ["USD->EUR"]),
        "mistral-large": (D("0.00"), D(3_000_000), ["USD->EUR"]),
        "llama-3": (D("0.00"), D(1_000_000), []),
    }
    total = window_total(start=NOV_1, end=DEC_1, currency="EUR", key={})
    assert (total.cost, total.uncosted_quantity, total.missing_rates) == (
        D("0.00"),
        D(6_500_000),
        {"USD->EUR"},
    )

    answer = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}&group_by=model")
    assert answer.status_code == 200, answer.json()
    rows = {row["key"]["model"]: row for row in answer.json()["results"]}
    assert rows["gpt-4o"]["missing_rates"] == ["USD->EUR"]
    assert rows["gpt-4o"]["cost"] == "0.00"
    assert rows["gpt-4o"]["uncosted_quantity"] == "2500000"
    assert "missing_rates" not in rows["llama-3"]
    (customer,) = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}").json()["results"]
    assert customer["missing_rates"] == ["USD->EUR"]

    rows = margins(start=NOV_1, end=DEC_1, group_by="model", currency="EUR")
    lines = margins_csv(rows, group_by="model", currency="EUR").splitlines()
    assert lines[0].endswith(",error,missing_rates")
    assert sorted(line.rsplit(",", 1)[1] for line in lines[1:]) == ["", "USD->EUR", "USD->EUR"]


def test_with_the_rate_the_api_row_names_no_missing_rate(s32):
    usd_to_eur("0.90")

    answer = api_client("finance:read").get(f"/api/v1/margins?{NOVEMBER}&group_by=model")

    rows = {row["key"]["model"]: row for row in answer.json()["results"]}
    assert (rows["gpt-4o"]["cost"], rows["mistral-large"]["cost"]) == ("3.60", "1.35")
    assert not any("missing_rates" in row for row in rows.values())


def test_a_rate_change_inside_the_window_costs_each_hour_at_its_own_rate(s32):
    # From 10 Nov 09:30: the 09:00 hour (at 09:00 the rate was 0.90) keeps the
    # old rate; the 10:00 hour takes the new one.
    usd_to_eur("0.90")
    usd_to_eur("0.80", datetime(2026, 11, 10, 9, 30, tzinfo=UTC))
    later = datetime(2026, 11, 10, 10, 5, tzinfo=UTC)
    events_ingest(events=[tokens("m-2", "mistral-large", "input", 2_000_000, later)], now=later)

    costs = {
        dict(u.values)["model"]: u.cost
        for u in usage_costs(start=NOV_1, end=DEC_1, currency="EUR")
        if dict(u.values)["model"] == "mistral-large"
    }
    # 1.50 USD at 0.90 and 1.00 USD at 0.80.
    assert costs == {"mistral-large": D("2.15")}
    assert by_model()["mistral-large"] == (D("2.15"), D(0), [])


def test_the_inverse_pairs_rate_converts_when_the_pair_has_none(s32):
    exchange_rate_create(
        base="EUR", quote="USD", rate=D("1.25"), effective_from=OCT_1, source="ECB"
    )

    # 4.00 USD / 1.25 = 3.20 EUR; 1.50 / 1.25 = 1.20.
    assert by_model()["gpt-4o"] == (D("3.20"), D(0), [])
    assert by_model()["mistral-large"] == (D("1.20"), D(0), [])


def test_a_later_rate_in_the_reports_currency_takes_over(s32):
    usd_to_eur("0.90")
    cost_rate_create(
        meter="llm_tokens",
        when={"model": "mistral-large"},
        unit_cost=D("0.60"),
        per=MILLION,
        currency="EUR",
        effective_from=NOV_1,
    )

    assert by_model()["mistral-large"] == (D("1.80"), D(0), [])  # 3M at 0.60 EUR


def test_a_later_rate_in_another_currency_takes_over(s32):
    usd_to_eur("0.90")
    cost_rate_create(
        meter="llm_tokens",
        when={"model": "mistral-large"},
        unit_cost=D("0.60"),
        per=MILLION,
        currency="EUR",
        effective_from=datetime(2026, 9, 1, tzinfo=UTC),
    )

    # The USD rate from 1 Oct is the latest for mistral-large's usage.
    assert by_model()["mistral-large"] == (D("1.35"), D(0), [])


def test_the_rate_book_is_read_once_a_call(s32):
    usd_to_eur("0.90")

    with CaptureQueriesContext(connection) as queries:
        usage_costs(start=NOV_1, end=DEC_1, currency="EUR")
    reads = [q["sql"] for q in queries.captured_queries if "plans_exchangerate" in q["sql"]]
    assert len(reads) == 1


def test_the_margins_page_says_which_rate_is_missing(s32, admin_client):
    page = admin_client.get(
        "/admin/billing/marginreport/?period_start=2026-11-01T00:00&period_end=2026-12-01T00:00"
        "&currency=EUR&group_by=model"
    )

    assert page.status_code == 200
    assert "No exchange rate USD-&gt;EUR in effect" in page.content.decode()
