"""Duplicates from concurrent clients, for real, on PostgreSQL: threads, each with its
own database connection, post at the same moment. The (customer, event id) key
decides; rollups add up exactly once per stored event."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.models import EventKey, UsageEvent, UsageRollup, UsageUniqueValue
from billing.usage.folding import usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from billing.usage.rollups import hour_of
from customers.services import customer_create
from plans.services import meter_create
from tests.threads import run_at_once

D = Decimal
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
CLIENTS = 4

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


KINDS = ("prompt", "llm")


@pytest.fixture
def setup(transactional_db):
    """Two customers; a count and a unique_count meter on `prompt` events, a sum and a
    latest meter on `llm` events. (A batch never feeds both kinds of meter: see the
    PostgreSQL bug shown in test_metering.)"""
    customers = {
        external_id: customer_create(external_id=external_id, name=external_id, currency="USD")
        for external_id in ("acme", "beta")
    }
    meters = {
        "prompt": {
            "prompts": meter_create(
                code="prompts", name="Prompts", event_name="prompt", aggregation="count"
            ),
            "users": meter_create(
                code="users",
                name="Users",
                event_name="prompt",
                aggregation="unique_count",
                unique_property="user",
            ),
        },
        "llm": {
            "tokens": meter_create(
                code="tokens",
                name="Tokens",
                event_name="llm",
                aggregation="sum",
                value_property="n",
            ),
            "latest": meter_create(
                code="latest",
                name="Latest",
                event_name="llm",
                aggregation="latest",
                value_property="n",
            ),
        },
    }
    return customers, meters


def make_event(i: int, kind: str, customer: str = "acme") -> dict:
    """Event i: in one of ten hours before NOW, value i + 1, one of 37 users."""
    stamp = NOW - timedelta(hours=1 + i % 10, seconds=i)
    return {
        "id": f"evt_{i:05d}",
        "customer": customer,
        "event_name": kind,
        "timestamp": stamp.isoformat().replace("+00:00", "Z"),
        "properties": {"n": i + 1, "user": f"u{i % 37}"},
    }


def event_time(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def quantities(customer, meters: dict) -> dict[str, Decimal]:
    by_id = meter_cache.by_id()
    definitions = [by_id[m.id] for m in meters.values()]
    found = usage_quantities(
        customer_id=customer.id, meters=definitions, start=NOW - timedelta(days=1), end=NOW
    )
    edges = usage_quantities(
        customer_id=customer.id,
        meters=definitions,
        start=NOW - timedelta(hours=11, minutes=30),
        end=NOW - timedelta(minutes=30),
    )
    assert edges == found  # the rollups and the raw edges agree
    return {code: found[m.id] for code, m in meters.items()}


def assert_stored_exactly(customer, meters: dict, events: list[dict]) -> None:
    """The store holds these events once each, the reads count each once before
    and after the fold, and the folded rollups count each once."""
    kind = events[0]["event_name"]
    meters = meters[kind]
    stored = UsageEvent.objects.filter(customer=customer)
    assert sorted(stored.values_list("event_id", flat=True)) == sorted(e["id"] for e in events)
    assert EventKey.objects.filter(customer=customer).count() == len(events)
    # A client's fold after its batch is a try-lock: a batch that committed while
    # another client folded stays in the tail for the beat. Reads count it already.
    assert_reads_exact(customer, meters, events)
    usage_fold(wait=True)
    per_hour = Counter(hour_of(event_time(e)) for e in events)
    sums = Counter()
    for e in events:
        sums[hour_of(event_time(e))] += e["properties"]["n"]
    for meter in meters.values():
        rollups = UsageRollup.objects.filter(customer=customer, meter=meter)
        assert dict(rollups.values_list("hour", "event_count")) == per_hour
        if meter.aggregation == "sum":
            assert dict(rollups.values_list("hour", "value_sum")) == {
                hour: D(total) for hour, total in sums.items()
            }
    assert_reads_exact(customer, meters, events)
    if kind == "prompt":
        assert UsageUniqueValue.objects.filter(customer=customer).count() == len(
            {(hour_of(event_time(e)), e["properties"]["user"]) for e in events}
        )


def assert_reads_exact(customer, meters: dict, events: list[dict]) -> None:
    """What the usage reads give equals a count of the events."""
    kind = events[0]["event_name"]
    if kind == "prompt":
        assert quantities(customer, meters) == {
            "prompts": D(len(events)),
            "users": D(len({e["properties"]["user"] for e in events})),
        }
    else:
        latest = max(events, key=lambda e: (event_time(e), e["id"]))
        assert quantities(customer, meters) == {
            "tokens": D(sum(e["properties"]["n"] for e in events)),
            "latest": D(latest["properties"]["n"]),
        }


@pytest.mark.parametrize("kind", KINDS)
def test_four_clients_posting_the_same_batch_through_the_service_store_it_once(setup, kind):
    customers, meters = setup
    batch = [make_event(i, kind) for i in range(500)]

    results = run_at_once(lambda _: events_ingest(events=batch, now=NOW))

    assert [r.rejected for r in results] == [[]] * CLIENTS
    assert sum(r.accepted for r in results) == 500
    assert sum(r.duplicates for r in results) == 1500
    assert all(r.accepted + r.duplicates == 500 for r in results)
    assert UsageEvent.objects.count() == 500
    assert_stored_exactly(customers["acme"], meters, batch)


@pytest.mark.parametrize("kind", KINDS)
def test_four_clients_posting_the_same_batch_through_the_api_store_it_once(
    setup, api_key_secret, kind
):
    customers, meters = setup
    batch = [make_event(i, kind) for i in range(500)]

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        response = client.post("/api/v1/events", {"events": batch}, format="json")
        assert response.status_code == 202, response.content
        return response.json()

    with time_machine.travel(NOW, tick=False):
        results = run_at_once(post)

    assert [r["rejected"] for r in results] == [[]] * CLIENTS
    assert sum(r["accepted"] for r in results) == 500
    assert sum(r["duplicates"] for r in results) == 1500
    assert UsageEvent.objects.count() == 500
    assert_stored_exactly(customers["acme"], meters, batch)


@pytest.mark.parametrize("kind", KINDS)
def test_four_clients_posting_overlapping_batches_in_different_orders(setup, kind):
    # given client k posts events [100k, 100k + 400), shuffled its own way: 700 distinct
    customers, meters = setup
    events = [make_event(i, kind) for i in range(700)]
    batches = []
    for k in range(CLIENTS):
        batch = events[100 * k : 100 * k + 400]
        random.Random(k).shuffle(batch)
        batches.append(batch)

    results = run_at_once(lambda k: events_ingest(events=batches[k], now=NOW))

    assert sum(r.accepted for r in results) == 700
    assert sum(r.duplicates for r in results) == 4 * 400 - 700
    assert_stored_exactly(customers["acme"], meters, events)


@pytest.mark.parametrize("kind", KINDS)
def test_four_clients_posting_distinct_events_into_the_same_hours_add_up(setup, kind):
    """No duplicates at all: the concurrent rollup upserts must each add once."""
    customers, meters = setup
    events = [make_event(i, kind) for i in range(800)]

    results = run_at_once(lambda k: events_ingest(events=events[k::CLIENTS], now=NOW))

    assert [(r.accepted, r.duplicates) for r in results] == [(200, 0)] * CLIENTS
    assert_stored_exactly(customers["acme"], meters, events)


def test_four_clients_the_same_ids_for_two_customers(setup):
    """The same batch for acme and beta from four clients: each customer gets it once."""
    customers, meters = setup
    acme_batch = [make_event(i, "prompt", "acme") for i in range(250)]
    beta_batch = [make_event(i, "prompt", "beta") for i in range(250)]
    mixed = [e for pair in zip(acme_batch, beta_batch, strict=True) for e in pair]

    results = run_at_once(lambda k: events_ingest(events=mixed if k % 2 else mixed[::-1], now=NOW))

    assert sum(r.accepted for r in results) == 500
    assert sum(r.duplicates for r in results) == 1500
    assert_stored_exactly(customers["acme"], meters, acme_batch)
    assert_stored_exactly(customers["beta"], meters, beta_batch)
