"""The demo catalog's three meters on `llm.completion` (docs/api-tour.md): llm_tokens
sums `total_tokens` of every completion; gpt4o_input_tokens and gpt4o_output_tokens
sum `input_tokens` and `output_tokens` of the gpt-4o ones. A gpt-4o completion feeds
all three (the filtered meters take nothing from the unfiltered one); one lacking a
property a meter that takes it reads is refused whole, and the 202 says which."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from billing.models import UsageDailyRollup, UsageEvent, UsageRollup
from billing.usage.folding import usage_fold
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from customers.models import Customer

D = Decimal
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
START = NOW - timedelta(days=13)
CODES = ("llm_tokens", "gpt4o_input_tokens", "gpt4o_output_tokens")


@pytest.fixture
def demo(db):
    call_command("load_demo", "--catalog-only", stdout=StringIO())
    return Customer.objects.get(external_id="globex")


def completions(**gpt4o_properties) -> list[dict]:
    """Twelve days of one gpt-4o-mini and one gpt-4o completion a day: 954,000 and
    1,908,000 total tokens."""
    events = []
    for day in range(12):
        moment = (START + timedelta(days=day, hours=13)).isoformat().replace("+00:00", "Z")
        for event_id, properties in (
            (f"mini-{day}", {"model": "gpt-4o-mini", "total_tokens": 79_500}),
            (f"4o-{day}", {"model": "gpt-4o", **gpt4o_properties}),
        ):
            events.append(
                {
                    "id": event_id,
                    "customer": "globex",
                    "event_name": "llm.completion",
                    "timestamp": moment,
                    "properties": properties,
                }
            )
    return events


def post(api, events: list) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = api.post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def quantities(customer) -> dict[str, Decimal]:
    meters = meter_cache.by_codes(CODES)
    found = usage_quantities(
        customer_id=customer.id, meters=list(meters.values()), start=START, end=NOW
    )
    return {code: found[meter.id] for code, meter in meters.items()}


def rollup_sums(customer, model) -> dict[str, Decimal]:
    return {
        code: sum(
            model.objects.filter(customer=customer, meter__code=code).values_list(
                "value_sum", flat=True
            ),
            D(0),
        )
        for code in CODES
    }


def test_a_gpt4o_completion_with_its_three_token_counts_feeds_all_three_meters(api, demo):
    # when
    answer = post(
        api, completions(total_tokens=159_000, input_tokens=132_500, output_tokens=26_500)
    )

    # then every completion counts toward llm_tokens, the gpt-4o ones toward their meters too
    assert answer == {"accepted": 24, "duplicates": 0, "rejected": []}
    expected = {
        "llm_tokens": D(2_862_000),
        "gpt4o_input_tokens": D(1_590_000),
        "gpt4o_output_tokens": D(318_000),
    }
    assert quantities(demo) == expected
    if connection.vendor == "postgresql":
        usage_fold(wait=True)
        assert quantities(demo) == expected
    assert rollup_sums(demo, UsageRollup) == expected
    assert rollup_sums(demo, UsageDailyRollup) == expected


@pytest.mark.parametrize(
    ("gpt4o_properties", "meter", "missing"),
    [
        # As the API spec's example event (API.md, Usage) is written: no total_tokens.
        ({"input_tokens": 132_500, "output_tokens": 26_500}, "llm_tokens", "total_tokens"),
        ({"total_tokens": 159_000}, "gpt4o_input_tokens", "input_tokens"),
        (
            {"total_tokens": 159_000, "input_tokens": 132_500},
            "gpt4o_output_tokens",
            "output_tokens",
        ),
    ],
)
def test_a_gpt4o_completion_lacking_a_token_count_is_refused_and_the_answer_says_why(
    api, demo, gpt4o_properties, meter, missing
):
    # when
    answer = post(api, completions(**gpt4o_properties))

    # then the gpt-4o completions are refused whole, each named with the meter and property
    assert answer["accepted"] == 12
    assert answer["duplicates"] == 0
    message = f"meter {meter!r} reads property {missing!r}, which the event does not have"
    assert answer["rejected"] == [
        {
            "index": 2 * day + 1,
            "id": f"4o-{day}",
            "error": {"type": "invalid_request", "message": message},
        }
        for day in range(12)
    ]
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {
        f"mini-{day}" for day in range(12)
    }
    # and only the gpt-4o-mini completions count
    assert quantities(demo) == {
        "llm_tokens": D(954_000),
        "gpt4o_input_tokens": D(0),
        "gpt4o_output_tokens": D(0),
    }
