"""What an event contributes to each meter: every aggregation with exact quantities,
property filters (values compare as text), one event feeding several meters (S7),
and exact decimals. Each quantity is read both through the hourly rollups (a whole
hour) and from the raw events (a range inside the hour): the two paths must agree."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import UsageEvent, UsageRollup
from billing.usage.ingestion import events_ingest
from billing.usage.metering import as_text, meter_cache
from billing.usage.reads import usage_quantities
from common.money import format_decimal
from plans.services import meter_create

D = Decimal
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
HOUR = datetime(2026, 11, 21, 10, tzinfo=UTC)
# Events in these tests are stamped inside HOUR, between 10:00:01 and 10:59:58.
WHOLE_HOUR = (HOUR, HOUR + timedelta(hours=1))
INSIDE_HOUR = (HOUR + timedelta(seconds=1), HOUR + timedelta(minutes=59, seconds=59))
ON_SQLITE = connection.vendor == "sqlite"
ON_POSTGRES = connection.vendor == "postgresql"


def at(minute: int, second: int = 0) -> str:
    return (HOUR + timedelta(minutes=minute, seconds=second)).isoformat().replace("+00:00", "Z")


def event(event_id: str, event_name: str, minute: int = 30, customer: str = "acme", **properties):
    return {
        "id": event_id,
        "customer": customer,
        "event_name": event_name,
        "timestamp": at(minute),
        "properties": properties,
    }


def ingest(*events):
    result = events_ingest(events=list(events), now=NOW)
    assert result.rejected == [], result.rejected
    return result


def quantity(customer, meter, start, end) -> Decimal:
    definition = meter_cache.by_id()[meter.id]
    return usage_quantities(customer_id=customer.id, meters=[definition], start=start, end=end)[
        meter.id
    ]


def read(customer, meter) -> tuple[Decimal, Decimal]:
    """The meter's quantity in HOUR from the rollups and from the raw events."""
    return quantity(customer, meter, *WHOLE_HOUR), quantity(customer, meter, *INSIDE_HOUR)


def assert_quantity(customer, meter, expected: str) -> None:
    rollup, raw = read(customer, meter)
    assert (rollup, raw) == (D(expected), D(expected))
    # As the API writes it: "1", not "1.0000000000".
    assert (format_decimal(rollup), format_decimal(raw)) == (expected, expected)


# count


def test_count_counts_each_event_of_its_name_once(acme):
    prompts = meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")

    ingest(event("p1", "prompt", 5), event("p2", "prompt", 6), event("x1", "other", 7))
    ingest(event("p3", "prompt", 50))

    assert_quantity(acme, prompts, "3")


def test_a_meter_with_no_events_reads_zero(acme):
    prompts = meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")

    assert read(acme, prompts) == (D(0), D(0))


# sum


def test_sum_adds_the_value_property_within_and_across_batches(acme):
    tokens = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    ingest(event("a", "llm", 5, n=1500), event("b", "llm", 6, n="300"))
    ingest(event("c", "llm", 7, n=D("0.5")), event("d", "llm", 8, n=0))

    assert_quantity(acme, tokens, "1800.5")


def test_sum_of_a_tenth_ten_times_is_exactly_one_in_one_batch(acme):
    gpu = meter_create(
        code="gpu", name="GPU seconds", event_name="gpu", aggregation="sum", value_property="s"
    )

    ingest(*(event(f"g{i}", "gpu", 10 + i, s=D("0.1")) for i in range(10)))

    assert_quantity(acme, gpu, "1")


def test_sum_of_a_tenth_ten_times_is_exactly_one_across_batches(acme):
    gpu = meter_create(
        code="gpu", name="GPU seconds", event_name="gpu", aggregation="sum", value_property="s"
    )

    for i in range(10):
        ingest(event(f"g{i}", "gpu", 10 + i, s=D("0.1")))

    assert_quantity(acme, gpu, "1")


@pytest.mark.parametrize("value", ["0.0000000001", "12.3456789012", "0.1234567891"])
def test_a_value_with_ten_decimal_places_is_kept_exactly(acme, value):
    gpu = meter_create(
        code="gpu", name="GPU seconds", event_name="gpu", aggregation="sum", value_property="s"
    )

    ingest(event("g1", "gpu", 10, s=D(value)))

    assert_quantity(acme, gpu, value)


def test_ten_decimal_places_summed_across_batches_stay_exact(acme):
    gpu = meter_create(
        code="gpu", name="GPU seconds", event_name="gpu", aggregation="sum", value_property="s"
    )

    ingest(event("g1", "gpu", 10, s=D("0.0000000001")))
    ingest(event("g2", "gpu", 11, s="0.0000000002"))
    ingest(event("g3", "gpu", 12, s=D("1.0000000003")))

    assert_quantity(acme, gpu, "1.0000000006")


@pytest.mark.postgres
def test_a_large_value_with_ten_decimal_places_is_kept_exactly(acme):
    tokens = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    ingest(event("a", "llm", 10, n=D("1234567.0123456789")))

    assert_quantity(acme, tokens, "1234567.0123456789")


def test_on_sqlite_a_value_it_cannot_keep_exactly_is_rejected(acme):
    if not ON_SQLITE:
        pytest.skip("SQLite only: PostgreSQL keeps every digit")
    meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    result = events_ingest(events=[event("a", "llm", 10, n=D("1234567.0123456789"))], now=NOW)

    assert result.accepted == 0
    assert "15 significant digits" in result.rejected[0].message
    assert UsageEvent.objects.count() == 0


def test_a_value_with_eleven_decimal_places_is_rejected_and_not_stored(acme):
    meter_create(code="gpu", name="GPU", event_name="gpu", aggregation="sum", value_property="s")

    result = events_ingest(events=[event("g1", "gpu", 10, s=D("0.00000000001"))], now=NOW)

    assert result.accepted == 0
    assert [(r.index, r.id) for r in result.rejected] == [(0, "g1")]
    assert "at most 10 decimal places" in result.rejected[0].message
    assert UsageEvent.objects.count() == 0
    assert UsageRollup.objects.count() == 0


# max


def test_max_is_the_greatest_value(acme):
    peak = meter_create(
        code="peak", name="Peak", event_name="mem", aggregation="max", value_property="gb"
    )

    ingest(
        event("a", "mem", 5, gb=3), event("b", "mem", 6, gb=D("7.25")), event("c", "mem", 7, gb=5)
    )

    assert_quantity(acme, peak, "7.25")


@pytest.mark.parametrize(("first", "second"), [(9, 10), (10, 9), (100, 20), ("20", "100")])
def test_max_across_batches_compares_numbers_not_text(acme, first, second):
    peak = meter_create(
        code="peak", name="Peak", event_name="mem", aggregation="max", value_property="gb"
    )

    ingest(event("a", "mem", 5, gb=first))
    ingest(event("b", "mem", 6, gb=second))

    assert_quantity(acme, peak, str(max(int(first), int(second))))


def test_max_of_zeros_is_zero(acme):
    peak = meter_create(
        code="peak", name="Peak", event_name="mem", aggregation="max", value_property="gb"
    )

    ingest(event("a", "mem", 5, gb=0))

    assert_quantity(acme, peak, "0")


# unique_count


def test_unique_count_counts_distinct_values_within_and_across_batches(acme):
    users = meter_create(
        code="users",
        name="Users",
        event_name="login",
        aggregation="unique_count",
        unique_property="user",
    )

    ingest(event("a", "login", 5, user="u1"), event("b", "login", 6, user="u2"))
    ingest(event("c", "login", 7, user="u1"), event("d", "login", 8, user="u3"))

    assert_quantity(acme, users, "3")


def test_unique_count_compares_values_as_text(acme):
    seats = meter_create(
        code="seats",
        name="Seats",
        event_name="seat",
        aggregation="unique_count",
        unique_property="n",
    )

    # 7 and "7" are one value; 1.5 and 1.50 are one value; true and "true" are one value.
    ingest(
        event("a", "seat", 5, n=7),
        event("b", "seat", 6, n="7"),
        event("c", "seat", 7, n=D("1.5")),
        event("d", "seat", 8, n=D("1.50")),
        event("e", "seat", 9, n=True),
        event("f", "seat", 10, n="true"),
    )

    assert_quantity(acme, seats, "3")


@pytest.mark.parametrize("value", [None, {"id": 1}, [1], "x" * 513], ids=repr)
def test_unique_count_rejects_an_event_without_a_scalar_value(acme, value):
    meter_create(
        code="users",
        name="Users",
        event_name="login",
        aggregation="unique_count",
        unique_property="user",
    )
    properties = {} if value is None else {"user": value}

    result = events_ingest(
        events=[
            {**event("a", "login", 5), "properties": properties},
            event("b", "login", 6, user="u"),
        ],
        now=NOW,
    )

    assert result.accepted == 1
    assert [(r.index, r.id) for r in result.rejected] == [(0, "a")]
    assert "'user'" in result.rejected[0].message
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["b"]


# latest


@pytest.fixture
def storage(db):
    return meter_create(
        code="storage",
        name="Storage GB",
        event_name="storage",
        aggregation="latest",
        value_property="gb",
    )


def test_latest_is_by_event_timestamp_not_arrival(acme, storage):
    # given a later-stamped event posted first
    ingest(event("late", "storage", 40, gb=7))

    # when an earlier-stamped one arrives after it
    ingest(event("early", "storage", 20, gb=3))

    # then the later-stamped value stays the latest
    assert_quantity(acme, storage, "7")


def test_latest_is_by_event_timestamp_within_a_batch(acme, storage):
    ingest(event("late", "storage", 40, gb=7), event("early", "storage", 20, gb=3))

    assert_quantity(acme, storage, "7")


def test_latest_across_hours_is_the_later_hour(acme, storage):
    ingest(event("later_hour", "storage", 70, gb=9))
    ingest(event("earlier_hour", "storage", 10, gb=4))

    two_hours = (HOUR, HOUR + timedelta(hours=2))
    assert quantity(acme, storage, *two_hours) == D(9)
    # From 10:30 the earlier event is read raw from the edge, the later from a rollup.
    assert quantity(acme, storage, HOUR + timedelta(minutes=5), HOUR + timedelta(hours=2)) == D(9)
    assert quantity(acme, storage, HOUR + timedelta(minutes=5), HOUR + timedelta(minutes=80)) == D(
        9
    )


@pytest.mark.parametrize("order", ["greater_first", "greater_last"])
def test_latest_tie_on_timestamp_the_greater_event_id_wins_across_batches(acme, storage, order):
    lesser, greater = event("evt_a", "storage", 30, gb=1), event("evt_b", "storage", 30, gb=2)
    first, second = (greater, lesser) if order == "greater_first" else (lesser, greater)

    ingest(first)
    ingest(second)

    assert_quantity(acme, storage, "2")


@pytest.mark.parametrize("order", ["greater_first", "greater_last"])
def test_latest_tie_on_timestamp_the_greater_event_id_wins_within_a_batch(acme, storage, order):
    lesser, greater = event("evt_a", "storage", 30, gb=1), event("evt_b", "storage", 30, gb=2)
    batch = [greater, lesser] if order == "greater_first" else [lesser, greater]

    ingest(*batch)

    assert_quantity(acme, storage, "2")


def test_latest_may_be_lower_than_earlier_values(acme, storage):
    ingest(event("a", "storage", 10, gb=D("120.5")), event("b", "storage", 50, gb=D("0.25")))

    assert_quantity(acme, storage, "0.25")


# filters


def test_filter_passes_matching_events_only(acme):
    gpt = meter_create(
        code="gpt", name="GPT", event_name="llm", aggregation="count", filters={"model": ["gpt-4o"]}
    )

    ingest(
        event("a", "llm", 5, model="gpt-4o"),
        event("b", "llm", 6, model="gpt-4o-mini"),
        event("c", "llm", 7, model="GPT-4O"),
        event("d", "llm", 8),
        event("e", "llm", 9, model=None),
    )

    assert_quantity(acme, gpt, "1")


def test_filter_with_several_values_passes_any_of_them(acme):
    gpt = meter_create(
        code="gpt",
        name="GPT",
        event_name="llm",
        aggregation="sum",
        value_property="n",
        filters={"model": ["gpt-4o", "gpt-4o-mini"]},
    )

    ingest(
        event("a", "llm", 5, model="gpt-4o", n=10),
        event("b", "llm", 6, model="gpt-4o-mini", n=20),
        event("c", "llm", 7, model="claude", n=40),
    )

    assert_quantity(acme, gpt, "30")


def test_filters_on_several_properties_must_all_match(acme):
    eu_gpt = meter_create(
        code="eu_gpt",
        name="EU GPT",
        event_name="llm",
        aggregation="count",
        filters={"model": ["gpt-4o"], "region": ["eu"]},
    )

    ingest(
        event("a", "llm", 5, model="gpt-4o", region="eu"),
        event("b", "llm", 6, model="gpt-4o", region="us"),
        event("c", "llm", 7, model="claude", region="eu"),
        event("d", "llm", 8, model="gpt-4o"),
    )

    assert_quantity(acme, eu_gpt, "1")


def test_filters_compare_numbers_as_text(acme):
    ratio = meter_create(
        code="ratio",
        name="Ratio",
        event_name="job",
        aggregation="count",
        filters={"ratio": ["1.5"]},
    )
    tier = meter_create(
        code="tier", name="Tier", event_name="job", aggregation="count", filters={"tier": [2]}
    )
    cached = meter_create(
        code="cached",
        name="Cached",
        event_name="job",
        aggregation="count",
        filters={"cached": [True]},
    )

    ingest(
        event("a", "job", 5, ratio=D("1.5"), tier=2, cached=True),
        event("b", "job", 6, ratio="1.5", tier="2", cached="true"),
        event("c", "job", 7, ratio=D("1.50"), tier=D("2.0"), cached=False),
        event("d", "job", 8, ratio=D("1.6"), tier=3, cached="True"),
    )

    assert [read(acme, m) for m in (ratio, tier, cached)] == [
        (D(3), D(3)),
        (D(3), D(3)),
        (D(2), D(2)),
    ]


def test_as_text_is_the_text_filters_and_unique_counts_compare():
    assert [as_text(v) for v in (D("1.50"), 2, D("2.0"), 1.5, True, "x", D("-0"), D("1E+2"))] == [
        "1.5",
        "2",
        "2",
        "1.5",
        "true",
        "x",
        "0",
        "100",
    ]
    assert [as_text(v) for v in (None, {"a": 1}, [1], D("NaN"), D("Infinity"))] == [None] * 5


def test_an_unfiltered_event_with_a_bad_value_is_stored_when_no_meter_reads_it(acme):
    """A meter reads (and so validates) a value only from the events its filters pass."""
    gpt = meter_create(
        code="gpt",
        name="GPT",
        event_name="llm",
        aggregation="sum",
        value_property="n",
        filters={"model": ["gpt-4o"]},
    )

    ingest(event("a", "llm", 5, model="claude", n="abc"), event("b", "llm", 6, model="gpt-4o", n=5))

    assert_quantity(acme, gpt, "5")
    assert UsageEvent.objects.count() == 2


# one event, several meters (SCENARIOS S7)


def test_one_llm_completion_feeds_both_gpt4o_token_meters_and_not_another_model(acme):
    # given S7's two balance meters on the same llm.completion event, and one for another model
    gpt4o_input = meter_create(
        code="gpt4o_input_tokens",
        name="GPT-4o input tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="input_tokens",
        filters={"model": ["gpt-4o"]},
    )
    gpt4o_output = meter_create(
        code="gpt4o_output_tokens",
        name="GPT-4o output tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="output_tokens",
        filters={"model": ["gpt-4o"]},
    )
    mini_input = meter_create(
        code="mini_input_tokens",
        name="GPT-4o mini input tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="input_tokens",
        filters={"model": ["gpt-4o-mini"]},
    )

    # when one event with 1,000,000 input and 200,000 output tokens arrives
    result = ingest(
        event(
            "evt_0001",
            "llm.completion",
            30,
            model="gpt-4o",
            input_tokens=1_000_000,
            output_tokens=200_000,
        )
    )

    # then it feeds both gpt-4o meters and not the other model's
    assert result.accepted == 1
    assert_quantity(acme, gpt4o_input, "1000000")
    assert_quantity(acme, gpt4o_output, "200000")
    assert_quantity(acme, mini_input, "0")
    assert sorted(UsageRollup.objects.values_list("meter_id", "event_count", "value_sum")) == [
        (gpt4o_input.id, 1, D(1_000_000)),
        (gpt4o_output.id, 1, D(200_000)),
    ]
    assert UsageEvent.objects.count() == 1


def test_a_meter_that_cannot_read_its_value_rejects_the_whole_event_for_every_meter(acme):
    count = meter_create(
        code="calls", name="Calls", event_name="llm.completion", aggregation="count"
    )
    meter_create(
        code="output",
        name="Output",
        event_name="llm.completion",
        aggregation="sum",
        value_property="output_tokens",
    )

    result = events_ingest(events=[event("a", "llm.completion", 5, input_tokens=10)], now=NOW)

    assert result.accepted == 0
    assert [(r.index, r.id) for r in result.rejected] == [(0, "a")]
    assert "'output_tokens'" in result.rejected[0].message
    assert read(acme, count) == (D(0), D(0))
    assert UsageEvent.objects.count() == 0


def test_customers_are_metered_apart(acme, beta):
    prompts = meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")

    ingest(
        event("a", "prompt", 5),
        event("b", "prompt", 6),
        event("a", "prompt", 7, customer="beta"),
    )

    assert_quantity(acme, prompts, "2")
    assert_quantity(beta, prompts, "1")


def test_a_meter_created_after_the_cache_was_loaded_is_used_at_once(acme):
    meter_create(
        code="tokens", name="Tokens", event_name="prompt", aggregation="sum", value_property="n"
    )
    ingest(event("a", "prompt", 5, n=1))

    # when a second meter on the same event name is created between two batches
    peak = meter_create(
        code="peak", name="Peak", event_name="prompt", aggregation="max", value_property="n"
    )
    ingest(event("b", "prompt", 6, n=40))

    # then the second batch feeds it (events before its creation are not re-metered)
    assert_quantity(acme, peak, "40")


# One batch feeding count-like and value meters at once


def test_one_event_feeding_a_count_meter_and_a_sum_meter(acme):
    # given S7's input-token meter and a count of completions on the same event
    calls = meter_create(
        code="calls", name="Completions", event_name="llm.completion", aggregation="count"
    )
    tokens = meter_create(
        code="gpt4o_input_tokens",
        name="GPT-4o input tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="input_tokens",
        filters={"model": ["gpt-4o"]},
    )

    # when
    result = events_ingest(
        events=[event("evt_0001", "llm.completion", 30, model="gpt-4o", input_tokens=1500)],
        now=NOW,
    )

    # then
    assert (result.accepted, result.rejected) == (1, [])
    assert_quantity(acme, calls, "1")
    assert_quantity(acme, tokens, "1500")


def test_one_batch_of_events_for_a_count_meter_and_a_sum_meter(acme):
    prompts = meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    tokens = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    result = events_ingest(events=[event("a", "prompt", 5), event("b", "llm", 6, n=7)], now=NOW)

    assert (result.accepted, result.rejected) == (1 + 1, [])
    assert_quantity(acme, prompts, "1")
    assert_quantity(acme, tokens, "7")


def test_a_zero_value_first_in_its_hour_next_to_other_values_in_the_batch(acme):
    tokens = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    # 10:30 opens hour 10 with 0; 11:10 opens hour 11 with 5
    result = events_ingest(events=[event("a", "llm", 30, n=0), event("b", "llm", 70, n=5)], now=NOW)

    assert (result.accepted, result.rejected) == (2, [])
    assert quantity(acme, tokens, HOUR, HOUR + timedelta(hours=2)) == D(5)


def test_count_like_and_value_meters_in_separate_batches(acme):
    """The same usage as above, posted so that no batch mixes the two kinds of meter."""
    calls = meter_create(
        code="calls", name="Completions", event_name="llm.completion", aggregation="count"
    )
    users = meter_create(
        code="users",
        name="Users",
        event_name="llm.completion",
        aggregation="unique_count",
        unique_property="user",
    )
    tokens = meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )

    ingest(event("a", "llm.completion", 5, user="u1"), event("b", "llm.completion", 6, user="u2"))
    ingest(event("c", "llm", 7, n=7), event("d", "llm", 8, n=D("0.5")))

    assert [read(acme, m) for m in (calls, users, tokens)] == [
        (D(2), D(2)),
        (D(2), D(2)),
        (D("7.5"), D("7.5")),
    ]


@pytest.mark.django_db
def test_a_cleared_meter_cache_forgets_the_meters_it_read_without_checking():
    # by_code_frozen reads a meter it has without the freshness check (a meter a
    # published version charges cannot change); cleared, it has none (between tests,
    # whose rows are rolled back, the next may make a meter of the same code).
    from plans.models import Meter

    first = meter_create(code="tokens", name="Tokens", event_name="llm", aggregation="count")
    assert meter_cache.by_code_frozen("tokens").group_by == ()
    Meter.objects.filter(pk=first.pk).delete()
    meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="n",
        group_by=["model"],
    )
    meter_cache.clear()
    assert meter_cache.by_code_frozen("tokens").group_by == ("model",)
