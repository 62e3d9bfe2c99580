"""/usage on a rate card of every scheme keeps its amounts to the byte (issue 50's
faster read: the card's rows found once a card, its lines built with their group).

The expected bodies were answered by the code before that change (at f961603), the
same usage at the same moment: the period's amounts, each row's, and the projection
(the usage extended to the month's end, which a tiered row must price at its
projected quantity, not scale)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe

pytestmark = pytest.mark.django_db

MILLION = "1000000"
# 9 days 7 hours 13 minutes into November: the projection scales by 30 days over
# that, which no decimal writes exactly.
NOW = datetime(2026, 11, 10, 7, 13, 17, tzinfo=UTC)


def tiers(*rows) -> list[dict]:
    return [
        {"up_to": up_to, "unit_price": price, "flat_fee": fee, "per": per}
        for up_to, price, fee, per in rows
    ]


EVERY_SCHEME = [
    # per_unit, per 1,000,000
    {
        "when": {"model": "gpt-4o", "token_type": "input"},
        "pricing": {"scheme": "per_unit", "unit_price": "2.50", "per": MILLION},
    },
    # graduated: tiers counting the row's quantity alone, per 1,000,000, a flat fee
    {
        "when": {"model": "gpt-4o", "token_type": "output"},
        "pricing": {
            "scheme": "graduated",
            "tiers": tiers(
                ("250000", "10.00", "0.10", MILLION), (None, "7.3333333333", "0.05", MILLION)
            ),
        },
    },
    # volume: the tier the row's total reaches prices all of it
    {
        "when": {"model": "claude-sonnet", "token_type": "input"},
        "pricing": {
            "scheme": "volume",
            "tiers": tiers(("200000", "0.000004", "0", "1"), (None, "0.0000031", "0.20", "1")),
        },
    },
    # package: partial packages round up
    {
        "when": {"model": "claude-sonnet"},
        "pricing": {"scheme": "package", "package_size": "7000", "package_price": "0.03"},
    },
    # per_unit per 1,000 (the tie of the two rows around it broken)
    {
        "when": {"model": "claude-sonnet", "token_type": "reasoning"},
        "pricing": {"scheme": "per_unit", "unit_price": "0.0125", "per": "1000"},
    },
    # per_unit per 1 at a price of many decimals
    {
        "when": {"token_type": "reasoning"},
        "pricing": {"scheme": "per_unit", "unit_price": "0.0000033333"},
    },
    # the default row
    {"when": {}, "pricing": {"scheme": "per_unit", "unit_price": "4.00", "per": MILLION}},
]
# (model, token_type, tokens, day); None: no such property.
USAGE = [
    ("gpt-4o", "input", 1_234_567, 2),
    ("gpt-4o", "input", 98_765, 9),
    ("gpt-4o", "output", 180_001, 3),
    ("gpt-4o", "output", 33_333, 10),
    ("claude-sonnet", "input", 150_017, 4),
    ("claude-sonnet", "output", 61_111, 5),
    ("claude-sonnet", "cache_read", 7_001, 6),
    ("o3", "reasoning", 123_457, 7),
    ("claude-sonnet", "reasoning", 77_777, 7),
    ("gpt-4o", "reasoning", 9_999, 8),
    ("llama-3", "input", 10_001, 8),
    (None, None, 4_321, 9),
]


@pytest.fixture
def card(db):
    llm_tokens_meter()
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "19.99"}
    charge = {
        "meter": "llm_tokens",
        "model": "overage",
        "included_units": "0",
        "price_by": ["model", "token_type"],
        "rates": EVERY_SCHEME,
    }
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [charge]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "tokens")
    events = []
    for i, (model, token_type, tokens, day) in enumerate(USAGE):
        properties = {"tokens": tokens}
        if model:
            properties["model"] = model
        if token_type:
            properties["token_type"] = token_type
        events.append(
            {
                "id": f"e{i}",
                "customer": "acme",
                "event_name": "llm.tokens",
                "timestamp": f"2026-11-{day:02d}T{i + 1:02d}:{i * 5:02d}:00Z",
                "properties": properties,
            }
        )
    with time_machine.travel(NOW, tick=False):
        posted = api_client("events:write").post(
            "/api/v1/events", {"events": events}, format="json"
        )
    assert posted.status_code in (200, 201, 202), posted.json()
    return subscription


def usage_body() -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api_client("read").get("/api/v1/customers/acme/usage")
    assert response.status_code == 200, response.content
    return response.json()


def test_usage_on_a_card_of_every_scheme_answers_as_before(card):
    assert usage_body() == EXPECTED | {"subscription": card.pk}


def test_a_second_read_answers_the_same(card):
    # The rows found for the first read's combinations are kept: the second finds
    # them there.
    assert usage_body() == usage_body()


# Answered by the code at f961603 (print(body) in the test above).
EXPECTED: dict = {
    "subscription": 1,
    "customer": "acme",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "usage_from": "2026-11-01T00:00:00Z",
    "invoiced": "0.00",
    "currency": "USD",
    "lines": [
        {
            "rates": [
                {
                    "group": {"model": "gpt-4o", "token_type": "input"},
                    "quantity": "1333332",
                    "amount": "3.33",
                },
                {
                    "group": {"model": "gpt-4o", "token_type": "output"},
                    "quantity": "213334",
                    "amount": "2.23",
                },
                {
                    "group": {"model": "claude-sonnet", "token_type": "input"},
                    "quantity": "150017",
                    "amount": "0.60",
                },
                {"group": {"model": "claude-sonnet"}, "quantity": "68112", "amount": "0.30"},
                {
                    "group": {"model": "claude-sonnet", "token_type": "reasoning"},
                    "quantity": "77777",
                    "amount": "0.97",
                },
                {"group": {"token_type": "reasoning"}, "quantity": "133456", "amount": "0.44"},
                {"group": {}, "quantity": "14322", "amount": "0.06"},
            ],
            "meter": "llm_tokens",
            "aggregation": "sum",
            "model": "overage",
            "quantity": "1990350",
            "included": "0",
            "billable": "1990350",
            "amount": "7.93",
        }
    ],
    "base_fee": "19.99",
    "subtotal": "27.92",
    "discount": "0.00",
    "projected_total": "44.01",
    "projected_discount": "0.00",
    "projected_period_discount": "0.00",
    "projected_after_discount": "44.01",
    "commit": None,
    "holds": {"open": [], "not_charged": {}},
}


@pytest.mark.postgres
def test_repeated_reads_answer_the_same_in_one_round_trip(card, sent_ahead):
    """From the second read on the closed days' group sums are kept
    (billing.usage.closed_days), and from the third every statement of the read
    travels in one round trip (common.rawsql.read_ahead), the commit's and the
    drafts' too: but the load of the drafts found (the subscription's first
    invoice, in advance), by the ORM."""
    client = api_client("read")
    bodies = []
    for _ in range(4):
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
            bodies.append(client.get("/api/v1/customers/acme/usage").json())

    assert bodies == [EXPECTED | {"subscription": card.pk}] * 4
    sent = [q["sql"] or "" for q in queries.captured_queries]
    assert len(sent) == len(sent_ahead[-1]) + 1, (sent, sent_ahead[-1])
    assert sent[-1].startswith('SELECT "invoices_invoice"."id"'), sent[-1]
