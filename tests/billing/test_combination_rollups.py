"""A count or sum meter grouping by two or more properties keeps only the
combination of its group values in the group rollups (issue 50: one group row an
event-hour instead of one per property and the combination); its one-property
breakdowns are the sums of the combinations', equal to the raw events' on SQLite
and on PostgreSQL (folded or not). A max meter keeps a row per property. Rows a
property at a time left by the code before are not read, and the rebuild command
removes them."""

import io
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from billing.breakdown_models import UsagePropertyRollup
from billing.usage import check
from billing.usage.breakdowns import (
    combination_quantity,
    usage_combinations,
    usage_groups,
    usage_groups_of,
)
from billing.usage.folding import unfolded_events, usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import combinations_only, event_group_values, meter_cache
from customers.services import customer_create
from plans.rate_card_pricing import RateSpec, row_quantity
from plans.services import meter_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=60)
MODELS = ["gpt-4o", "o1", "mini", 1.5, None]  # None: no model
TYPES = ["input", "output", None]
PROPERTIES = ("model", "token_type")


@pytest.fixture
def meters(db, settings):
    settings.BILLING_FOLD_MS = 10**9  # folded by the test, not by ingestion
    common = {"event_name": "tokens", "group_by": list(PROPERTIES)}
    made = [
        meter_create(code="calls", name="Calls", aggregation="count", **common),
        meter_create(code="sum", name="Sum", aggregation="sum", value_property="n", **common),
        meter_create(code="peak", name="Peak", aggregation="max", value_property="n", **common),
    ]
    return [meter_cache.by_code(m.code) for m in made]


def send(rng: random.Random, customer: str, count: int, first: int) -> list[dict]:
    events = []
    for i in range(first, first + count):
        properties = {"n": D(rng.randrange(1, 10**6)) / D(rng.choice([1, 100]))}
        for name, values in (("model", MODELS), ("token_type", TYPES)):
            value = rng.choice(values)
            if value is not None:
                properties[name] = value
        stamp = START + timedelta(seconds=rng.randrange(60 * 3600))
        events.append(
            {
                "id": f"{customer}-{i}",
                "customer": customer,
                "event_name": "tokens",
                "timestamp": stamp.isoformat(),
                "properties": properties,
            }
        )
    with time_machine.travel(NOW, tick=False):
        assert events_ingest(events=events).rejected == []
    return events


def text(value) -> str | None:
    return None if value is None else ("1.5" if value == 1.5 else value)


def by_hand(events: list[dict], meter, keys: tuple[str, ...], start, end) -> dict:
    """The meter's quantity (count or sum) per values of `keys`, from the events."""
    found = defaultdict(lambda: D(0))
    for event in events:
        if not start <= datetime.fromisoformat(event["timestamp"]) < end:
            continue
        key = tuple(text(event["properties"].get(name)) for name in keys)
        found[key] += D(1) if meter.aggregation == "count" else event["properties"]["n"]
    return dict(found)


RANGES = [
    (START, NOW),  # two whole days and their hours around
    (START + timedelta(hours=5, minutes=17), NOW - timedelta(hours=3, minutes=41)),
    (START + timedelta(hours=30, minutes=5), START + timedelta(hours=30, minutes=55)),
]


def assert_reads_equal_the_events(customer_id: int, meters, events: list[dict]) -> None:
    additive = [m for m in meters if m.aggregation in ("count", "sum")]
    for start, end in RANGES:
        combos = usage_combinations(customer_id=customer_id, meters=additive, start=start, end=end)
        for by in PROPERTIES:
            together = usage_groups_of(
                customer_id=customer_id, meters=additive, by=by, start=start, end=end
            )
            for meter in additive:
                groups = {(g.key[by],): g.quantity for g in together[meter.id]}
                assert groups == by_hand(events, meter, (by,), start, end), (meter.code, by)
        for meter in additive:
            found = {
                tuple(value for _, value in key): q for key, q in combos[meter.id].items() if q
            }
            assert found == by_hand(events, meter, PROPERTIES, start, end), meter.code


def test_count_and_sum_meters_keep_combinations_only_and_read_exactly(meters):
    # given: events of one customer, half of them folded (PostgreSQL) before the rest
    rng = random.Random(50)
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events = send(rng, "acme", 300, 0)
    if connection.vendor == "postgresql":
        usage_fold(wait=True)  # the batch may have folded itself: the first fold's turn
        assert unfolded_events() == 0
    events += send(rng, "acme", 300, 300)
    if connection.vendor == "postgresql":
        assert unfolded_events() == 300

    # when / then: one-property breakdowns and combinations equal the events, the
    # second half unfolded and then folded
    assert_reads_equal_the_events(customer.pk, meters, events)
    if connection.vendor == "postgresql":
        assert usage_fold(wait=True) > 0
        assert_reads_equal_the_events(customer.pk, meters, events)

    # and the count and sum meters' group rows are the combinations only (position 2);
    # the max meter keeps each property's too, its groups read from their own rows
    positions = defaultdict(set)
    for meter_id, position in UsagePropertyRollup.objects.values_list("meter_id", "position"):
        positions[meter_id].add(position)
    calls, total, peak = meters
    assert [combinations_only(m) for m in meters] == [True, True, False]
    assert positions == {calls.id: {2}, total.id: {2}, peak.id: {0, 1, 2}}
    for by in PROPERTIES:
        groups = usage_groups(customer_id=customer.pk, meter=peak, by=by, start=START, end=NOW)
        assert {g.key[by]: g.quantity for g in groups} == {
            key[0]: max(
                e["properties"]["n"]
                for e in events
                if text(e["properties"].get(by)) == key[0]
                and START <= datetime.fromisoformat(e["timestamp"]) < NOW
            )
            for key in by_hand(events, total, (by,), START, NOW)
        }


def test_single_property_rows_left_before_are_not_read_and_the_rebuild_removes_them(meters):
    # given: folded events, and rows a property at a time as the code before wrote them
    # (here wrong on purpose: were they read, the breakdowns would be off)
    rng = random.Random(7)
    customer = customer_create(external_id="beta", name="Beta", currency="USD")
    events = send(rng, "beta", 200, 0)
    if connection.vendor == "postgresql":
        usage_fold(wait=True)
    calls, total, _ = meters
    for meter in (calls, total):
        UsagePropertyRollup.objects.create(
            customer_id=customer.pk,
            meter_id=meter.id,
            hour=START + timedelta(hours=10),
            position=0,
            group_value="gpt-4o",
            event_count=1000,
            value_sum=D(1000),
        )

    # when / then: the reads are the events'
    assert_reads_equal_the_events(customer.pk, meters, events)

    # when: the rebuild the upgrade notes name
    call_command("rebuild_meter_usage", "--combinations", stdout=io.StringIO())

    # then: the count and sum meters keep their combinations only, the reads unchanged
    assert set(
        UsagePropertyRollup.objects.filter(meter_id__in=[calls.id, total.id]).values_list(
            "position", flat=True
        )
    ) == {2}
    assert_reads_equal_the_events(customer.pk, meters, events)


def test_a_check_reads_a_fully_specified_row_alone_and_equals_the_whole_read(meters, monkeypatch):
    # given: events over whole hours and mid-hour edges, some unfolded (PostgreSQL),
    # and a card of fully specified rows, one-property rows and the default
    rng = random.Random(11)
    customer = customer_create(external_id="gamma", name="Gamma", currency="USD")
    events = send(rng, "gamma", 250, 0)
    if connection.vendor == "postgresql":
        usage_fold(wait=True)
    events += send(rng, "gamma", 100, 250)
    card = SimpleNamespace(
        rates=[
            RateSpec(when=(("model", "gpt-4o"), ("token_type", "input"))),
            RateSpec(when=(("model", "gpt-4o"), ("token_type", "output"))),
            RateSpec(when=(("model", "1.5"), ("token_type", "output"))),
            RateSpec(when=(("model", "absent"), ("token_type", "input"))),
            RateSpec(when=(("model", "o1"),)),
            RateSpec(when=(("token_type", "input"),)),
            RateSpec(),
        ]
    )
    asked = [
        {"model": "gpt-4o", "token_type": "input"},
        {"model": "gpt-4o", "token_type": "output"},
        {"model": 1.5, "token_type": "output"},
        {"model": "absent", "token_type": "input"},
        {"model": "o1", "token_type": "output"},
        {"model": "mini", "token_type": "input"},
        {"model": "mini"},
        {},
    ]
    _, total, _ = meters
    alone = []  # the reads of one combination alone

    def spy(**kwargs):
        alone.append(kwargs["values"])
        return combination_quantity(**kwargs)

    monkeypatch.setattr(check, "combination_quantity", spy)
    for start, end in RANGES:
        combos = usage_combinations(customer_id=customer.pk, meters=[total], start=start, end=end)
        for properties in asked:
            # when
            span = (start, end)
            used = check.row_used(card, total, properties, customer_id=customer.pk, span=span)

            # then: what the whole read's row gives, and the events' own sum for a full row
            values = event_group_values(total, properties)
            assert used == row_quantity(card.rates, combos[total.id], values), properties
            if len(properties) == 2:
                key = tuple(text(properties[name]) for name in PROPERTIES)
                full = tuple(zip(PROPERTIES, key, strict=True))
                if any(rate.when == full for rate in card.rates):
                    assert used == by_hand(events, total, PROPERTIES, start, end).get(key, D(0))
    # and the four fully specified rows were read alone, in each range
    assert len(alone) == 4 * len(RANGES)
