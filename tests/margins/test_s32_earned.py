"""S32 (../shared/SCENARIOS.md): revenue earned in a window, the same in every
view. A New York customer on a flat fee with usage billed on October's invoice
and a Paris customer (sold by the EUR seller) with a rate card with a default
row and a graduated meter split by model: revenue to the cent for a calendar
month in UTC, in Europe/Paris and in New York, by customer, plan, meter, model
and billing entity, the totals equal across views.

The scenario's "Earned in November in UTC: ... 31 x 720/721 = 30.96" counts
the November period from midnight: the period begins at 04:00 UTC on 1 Nov
(midnight in New York), so 716 of its 721 hours lie in November UTC: 31 x
716/721 = 30.785 -> 30.79, and the month's total is 0.17 + 30.79 + 10.00 =
40.96 (its Paris figures, 5/744 and 715/721, count from the period's start)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.invoicing.close import periods_close
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, prompts_meter, subscribe

pytestmark = pytest.mark.django_db

MILLION = "1000000"
NOV_1_NY = datetime(2026, 11, 1, 4, tzinfo=UTC)  # midnight in New York (EDT)
OCT_1_NY = datetime(2026, 10, 1, 4, tzinfo=UTC)
NOV_1_PARIS = datetime(2026, 10, 31, 23, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 12, tzinfo=UTC)


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": MILLION}


def create_plan(body: dict) -> None:
    response = api_client("admin").post("/api/v1/plans", body | {"publish": True}, format="json")
    assert response.status_code == 201, response.json()


def post_events(events: list[dict]) -> None:
    posted = api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    assert posted.status_code == 202, posted.json()
    assert posted.json()["accepted"] == len(events), posted.json()


def tokens(event_id: str, meter_event: str, model: str, count: int, token_type=None) -> dict:
    properties = {"tokens": count, "model": model}
    if token_type:
        properties["token_type"] = token_type
    return {
        "id": event_id,
        "customer": "paris",
        "event_name": meter_event,
        "timestamp": "2026-11-10T10:00:00Z",
        "properties": properties,
    }


def made_s32() -> None:
    # Customer N: New York, USD, 31.00 a month from 1 Oct, 0.10 a prompt.
    prompts_meter()
    create_plan(
        {
            "code": "chat",
            "name": "Chat",
            "currency": "USD",
            "base_fee": "31.00",
            "charges": [
                {
                    "meter": "prompts",
                    "model": "overage",
                    "included_units": "0",
                    "pricing": {"scheme": "per_unit", "unit_price": "0.10"},
                }
            ],
        }
    )
    new_york = customer_create(
        external_id="new-york", name="N", currency="USD", timezone_name="America/New_York"
    )
    subscribe(new_york, "chat", start=OCT_1_NY, billing_anchor="calendar")
    post_events(
        [
            {
                "id": f"p{n}",
                "customer": "new-york",
                "event_name": "prompt",
                "timestamp": "2026-11-01T03:30:00Z",  # 31 Oct 23:30 in New York
            }
            for n in range(100)
        ]
    )
    # Customer P: Paris, EUR, sold by the EUR seller.
    billing_entity_save(
        entity=BillingEntity(
            code="sas",
            legal_name="Usage Billing SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    llm_tokens_meter()
    response = api_client("admin").post(
        "/api/v1/meters",
        {
            "code": "embeddings",
            "name": "Embeddings",
            "event_name": "embeddings",
            "aggregation": "sum",
            "value_property": "tokens",
            "group_by": ["model"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    create_plan(
        {
            "code": "ai",
            "name": "AI",
            "currency": "EUR",
            "base_fee": "30.00",
            "charges": [
                {
                    "meter": "llm_tokens",
                    "model": "overage",
                    "included_units": "0",
                    "price_by": ["model", "token_type"],
                    "rates": [
                        {
                            "when": {"model": "gpt-4o", "token_type": "input"},
                            "pricing": per_million("2.00"),
                        },
                        {
                            "when": {"model": "gpt-4o", "token_type": "output"},
                            "pricing": per_million("8.00"),
                        },
                        {"when": {}, "pricing": per_million("1.00")},
                    ],
                },
                {
                    "meter": "embeddings",
                    "model": "overage",
                    "included_units": "0",
                    "pricing": {
                        "scheme": "graduated",
                        "tiers": [
                            {"up_to": MILLION, "unit_price": "0.0000002"},
                            {"up_to": None, "unit_price": "0.0000001"},
                        ],
                    },
                },
            ],
        }
    )
    paris = customer_create(
        external_id="paris",
        name="P",
        currency="EUR",
        timezone_name="Europe/Paris",
        billing_entity="sas",
    )
    subscribe(paris, "ai", start=NOV_1_PARIS, billing_anchor="calendar")
    post_events(
        [
            tokens("in", "llm.tokens", "gpt-4o", 2_000_000, "input"),
            tokens("out", "llm.tokens", "gpt-4o", 500_000, "output"),
            tokens("mistral", "llm.tokens", "mistral-large", 3_000_000, "input"),
            tokens("llama", "llm.tokens", "llama-3", 1_000_000, "input"),
            tokens("small", "embeddings", "text-embedding-3-small", 1_500_000),
            tokens("e5", "embeddings", "e5-large", 500_000),
        ]
    )
    # What the EUR seller's provider charges, in USD; 1 USD = 0.90 EUR from 1 Oct.
    for when, cost in (
        ({"model": "gpt-4o", "token_type": "input"}, "1.00"),
        ({"model": "gpt-4o", "token_type": "output"}, "4.00"),
        ({"model": "mistral-large"}, "0.50"),
    ):
        response = api_client("admin").post(
            "/api/v1/cost-rates",
            {
                "meter": "llm_tokens",
                "when": when,
                "unit_cost": cost,
                "per": MILLION,
                "currency": "USD",
                "effective_from": "2026-10-01T00:00:00Z",
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
    response = api_client("admin").post(
        "/api/v1/exchange-rates",
        {
            "base": "USD",
            "quote": "EUR",
            "rate": "0.90",
            "effective_from": "2026-10-01T00:00:00Z",
            "source": "ECB reference",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    # October closes (New York's ends at 04:00 UTC on 1 Nov); November is open.
    periods_close(as_of=datetime(2026, 11, 1, 5, tzinfo=UTC))


@pytest.fixture(scope="module")
def _s32_once(module_transaction):
    return module_transaction.once(made_s32, "s32")


@pytest.fixture
def s32(_s32_once, db):
    """made_s32, read on 2 Dec: November is over (and not closed yet, its usage
    accruing), so a window of November earns all of it."""
    with time_machine.travel(DEC_2, tick=False):
        yield _s32_once.for_test()


def margins(query: str) -> dict:
    response = api_client("finance:read").get(f"/api/v1/margins?{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def revenue(query: str) -> dict:
    response = api_client("finance:read").get(f"/api/v1/revenue?{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def rows(body: dict, view: str) -> list[tuple]:
    return [(row["key"][view], row["revenue"]) for row in body["results"]]


NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01"


def test_new_york_in_november_in_utc_paris_and_new_york(s32):
    utc = margins(f"{NOVEMBER}&group_by=customer&currency=USD")
    assert rows(utc, "customer") == [("new-york", "40.96")]
    paris = margins(f"{NOVEMBER}&group_by=customer&currency=USD&tz=Europe/Paris")
    assert rows(paris, "customer") == [("new-york", "40.95")]
    new_york = margins(f"{NOVEMBER}&group_by=customer&currency=USD&tz=America/New_York")
    assert rows(new_york, "customer") == [("new-york", "31.00")]


def test_new_yorks_usage_is_earned_when_it_happened_not_with_its_period(s32):
    # October in New York ends at 04:00 UTC on 1 Nov: the usage at 03:30 is
    # October's invoice's, earned in the hour it happened.
    hour = "period_start=2026-11-01T03:00:00Z&period_end=2026-11-01T04:00:00Z"
    body = revenue("from=2026-11-01T03:00:00Z&to=2026-11-01T04:00:00Z&currency=USD")
    assert [(r["key"], r["earned"]) for r in body["results"]] == [
        ({"customer": "new-york"}, "10.04")  # the usage, and an hour of October's 31.00
    ]
    assert margins(f"{hour}&currency=USD")["results"][0]["revenue"] == "10.04"


def test_paris_in_its_november_by_every_view(s32):
    window = f"{NOVEMBER}&currency=EUR&tz=Europe/Paris"
    by_model = margins(f"{window}&group_by=model")
    assert rows(by_model, "model") == [
        (None, "30.00"),
        ("gpt-4o", "8.00"),
        ("mistral-large", "3.00"),
        ("llama-3", "1.00"),
        ("text-embedding-3-small", "0.23"),
        ("e5-large", "0.07"),
    ]
    assert rows(margins(f"{window}&group_by=meter"), "meter") == [
        (None, "30.00"),
        ("llm_tokens", "12.00"),
        ("embeddings", "0.30"),
    ]
    assert rows(margins(f"{window}&group_by=customer"), "customer") == [("paris", "42.30")]
    assert rows(margins(f"{window}&group_by=plan"), "plan") == [("ai", "42.30")]
    assert rows(margins(f"{window}&group_by=billing_entity"), "billing_entity") == [
        ("sas", "42.30")
    ]
    # The default row's 4.00 is mistral-large's and llama-3's input; the fee and
    # the embeddings (a meter not split by token type) have none.
    assert rows(margins(f"{window}&group_by=token_type"), "token_type") == [
        (None, "30.30"),
        ("input", "8.00"),
        ("output", "4.00"),
    ]


def figures(row: dict) -> tuple:
    return (row["revenue"], row["cost"], row["margin"], row["margin_percent"])


def test_paris_margins_by_model_with_usd_costs_at_the_rate_of_their_hour(s32):
    body = margins(f"{NOVEMBER}&currency=EUR&tz=Europe/Paris&group_by=model")
    rows = {row["key"]["model"]: row for row in body["results"]}
    assert figures(rows["gpt-4o"]) == ("8.00", "3.60", "4.40", "55.00")  # 4.00 USD
    assert figures(rows["mistral-large"]) == ("3.00", "1.35", "1.65", "55.00")
    assert figures(rows["llama-3"]) == ("1.00", "0.00", "1.00", "100.00")
    assert rows["llama-3"]["uncosted_quantity"] == "1000000"
    assert figures(rows["text-embedding-3-small"])[:2] == ("0.23", "0.00")
    assert figures(rows["e5-large"])[:2] == ("0.07", "0.00")
    assert figures(rows[None]) == ("30.00", "0.00", "30.00", "100.00")
    assert not any("missing_rates" in row for row in body["results"])


def test_every_view_of_paris_november_has_the_same_totals(s32):
    window = f"{NOVEMBER}&currency=EUR&tz=Europe/Paris"
    for view in ("customer", "plan", "meter", "model", "token_type", "billing_entity"):
        rows = margins(f"{window}&group_by={view}")["results"]
        revenue = sum(Decimal(row["revenue"]) for row in rows)
        cost = sum(Decimal(row["cost"]) for row in rows)
        assert (revenue, cost, revenue - cost) == (
            Decimal("42.30"),
            Decimal("4.95"),
            Decimal("37.35"),
        ), view
    (customer,) = margins(f"{window}&group_by=customer")["results"]
    assert figures(customer) == ("42.30", "4.95", "37.35", "88.30")
    # In UTC's November the period (from 23:00 UTC on 31 Oct) has earned its first
    # hour already: 30.00 less 30 x 1/720 (0.04) = 29.96, and the usage 12.30.
    (utc,) = margins(f"{NOVEMBER}&currency=EUR&tz=UTC&group_by=customer")["results"]
    assert figures(utc) == ("42.26", "4.95", "37.31", "88.29")


def test_the_totals_are_the_same_in_every_view_and_the_rows_add_up(s32):
    for currency, tz in (("EUR", "Europe/Paris"), ("EUR", "UTC"), ("USD", "UTC")):
        totals = set()
        for view in ("customer", "plan", "meter", "billing_entity", "model", "token_type"):
            window = f"from=2026-11-01&to=2026-12-01&currency={currency}&tz={tz}"
            body = revenue(f"{window}&group_by={view}")
            earned = sum(Decimal(row["earned"]) for row in body["results"])
            totals.add(earned)
        assert len(totals) == 1, (currency, tz, totals)


def test_over_many_subscriptions_the_stored_accruals_are_read_as_of_their_refresh(s32, monkeypatch):
    from django.utils import timezone

    from billing.revenue import accruals
    from billing.revenue.earned import earned_window

    now = timezone.now()
    window = {"start": NOV_1_PARIS, "end": NOV_1_PARIS + (now - NOV_1_PARIS), "now": now}
    live = earned_window(currency="EUR", **window)
    assert live.accrued_as_of is None
    assert live.total.accrued == Decimal("12.30")  # the usage; the fee was invoiced
    monkeypatch.setattr(accruals, "ACCRUED_LIVE_LIMIT", 0)
    assert earned_window(currency="EUR", **window).total.accrued == 0  # none stored yet
    assert accruals.accruals_refresh(now=now) == 2
    stored = earned_window(currency="EUR", **window)
    assert stored.accrued_as_of == now
    assert [(r.key, r.billed, r.accrued) for r in stored.rows_by("model")] == [
        (r.key, r.billed, r.accrued) for r in live.rows_by("model")
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        (NOV_1_PARIS, datetime(2026, 11, 30, 23, tzinfo=UTC)),
        (datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 10, 10, 30, tzinfo=UTC)),
    ],
)
def test_read_for_its_total_a_window_earns_the_same(s32, start, end):
    from django.utils import timezone

    from billing.revenue.earned import earned_window

    now = timezone.now()
    for currency in ("USD", "EUR"):
        apart = earned_window(start=start, end=end, currency=currency, now=now)
        together = earned_window(start=start, end=end, currency=currency, now=now, apart=False)
        assert together.total == apart.total
        assert apart.total.earned
        for view in ("plan", "meter"):
            assert [(r.key, r.billed, r.accrued) for r in together.rows_by(view)] == [
                (r.key, r.billed, r.accrued) for r in apart.rows_by(view)
            ]
        # Read for no property view, the lines wholly in the window left whole.
        whole = earned_window(start=start, end=end, currency=currency, now=now, by_property=False)
        for view in ("customer", "plan", "meter", "billing_entity"):
            assert [(r.key, r.billed, r.accrued) for r in whole.rows_by(view)] == [
                (r.key, r.billed, r.accrued) for r in apart.rows_by(view)
            ]
