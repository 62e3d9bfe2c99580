"""Usage reads: usage_quantities over any [start, end) (whole UTC hours from the
rollups, partial hours at the edges from the raw events) equals a brute-force
recomputation from the events; GET /api/v1/customers/{external_id}/usage."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from customers.api_keys import api_key_create
from customers.services import customer_create
from plans.services import meter_create

D = Decimal
NOW = datetime(2026, 11, 21, 14, tzinfo=UTC)


def t(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    """A time on 2026-11-21 (UTC)."""
    return datetime(2026, 11, 21, hour, minute, second, microsecond, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ingest(events: list[dict]) -> None:
    result = events_ingest(events=events, now=NOW)
    assert result.rejected == [], result.rejected


def quantities(customer, meters, start, end) -> dict[str, Decimal]:
    by_id = meter_cache.by_id()
    definitions = [by_id[m.id] for m in meters]
    found = usage_quantities(customer_id=customer.id, meters=definitions, start=start, end=end)
    return {m.code: found[m.id] for m in meters}


# Ranges against a small known set of events


@pytest.fixture
def bits(acme):
    """Seven calls, and seven weighings at the same times whose weights are powers of two,
    so each range's sum names its events."""
    calls = meter_create(code="calls", name="Calls", event_name="call", aggregation="count")
    weight = meter_create(
        code="weight", name="Weight", event_name="weigh", aggregation="sum", value_property="w"
    )
    stamps = [
        t(9, 40),
        t(10),
        t(10, 30),
        t(10, 59, 59, 999999),
        t(11),
        t(11, 20),
        t(10, 50),
    ]
    for name in ("call", "weigh"):
        ingest(
            [
                {
                    "id": f"{name}{i}",
                    "customer": "acme",
                    "event_name": name,
                    "timestamp": iso(stamp),
                    "properties": {"w": 2**i},
                }
                for i, stamp in enumerate(stamps)
            ]
        )
    return calls, weight


# weights: 09:40 -> 1, 10:00 -> 2, 10:30 -> 4, 10:59:59.999999 -> 8, 11:00 -> 16,
# 11:20 -> 32, 10:50 -> 64
RANGES = {
    "hour-aligned": ((t(10), t(12)), 6, 2 + 4 + 8 + 16 + 32 + 64),
    "one whole hour": ((t(10), t(11)), 4, 2 + 4 + 8 + 64),
    "starts mid-hour": ((t(9, 30), t(12)), 7, 127),
    "ends mid-hour": ((t(10), t(11, 10)), 5, 2 + 4 + 8 + 64 + 16),
    "starts and ends mid-hour": ((t(10, 15), t(11, 30)), 5, 4 + 8 + 64 + 16 + 32),
    "within one hour": ((t(10, 15), t(10, 45)), 1, 4),
    "within one hour from its start": ((t(10), t(10, 45)), 2, 2 + 4),
    "within one hour to its end": ((t(10, 45), t(11)), 2, 8 + 64),
    "end excludes an event at the end": ((t(10), t(10, 59, 59, 999999)), 3, 2 + 4 + 64),
    "start includes an event at the start": ((t(10, 59, 59, 999999), t(11, 0, 0, 1)), 2, 24),
    "a microsecond around one event": ((t(9, 40), t(9, 40, 0, 1)), 1, 1),
    "across midnight and days": ((t(0) - timedelta(days=2, minutes=7), t(23, 59)), 7, 127),
    "no events": ((t(0), t(9)), 0, 0),
    "empty": ((t(11), t(11)), 0, 0),
    "empty mid-hour": ((t(10, 30), t(10, 30)), 0, 0),
    "inverted": ((t(12), t(10)), 0, 0),
}


@pytest.mark.parametrize(("bounds", "count", "weight"), list(RANGES.values()), ids=list(RANGES))
def test_usage_quantities_over_any_range(acme, bits, bounds, count, weight):
    assert quantities(acme, bits, *bounds) == {"calls": D(count), "weight": D(weight)}


def test_usage_quantities_without_meters_is_empty(acme, bits):
    assert usage_quantities(customer_id=acme.id, meters=[], start=t(0), end=t(23)) == {}


def test_usage_quantities_reads_only_the_customers_events(acme, beta, bits):
    for name in ("call", "weigh"):
        ingest(
            [
                {
                    "id": f"{name}0",
                    "customer": "beta",
                    "event_name": name,
                    "timestamp": iso(t(10, 30)),
                    "properties": {"w": 1000},
                }
            ]
        )

    assert quantities(beta, bits, t(10), t(12)) == {"calls": D(1), "weight": D(1000)}
    assert quantities(beta, bits, t(10, 15), t(10, 45)) == {"calls": D(1), "weight": D(1000)}
    assert quantities(acme, bits, t(10), t(12)) == {"calls": D(6), "weight": D(126)}


def test_unique_count_counts_a_value_seen_in_a_whole_hour_and_an_edge_once(acme):
    users = meter_create(
        code="users",
        name="Users",
        event_name="login",
        aggregation="unique_count",
        unique_property="user",
    )
    logins = [
        (t(9, 40), "u_edges"),  # start edge
        (t(9, 50), "u_start_edge_only"),
        (t(10, 10), "u_both"),  # whole hour 10
        (t(10, 20), "u_hour_only"),
        (t(11, 5), "u_both"),  # whole hour 11
        (t(12, 10), "u_both"),  # end edge
        (t(12, 15), "u_edges"),  # end edge
        (t(12, 50), "u_outside"),  # after the range
    ]
    ingest(
        [
            {
                "id": f"l{i}",
                "customer": "acme",
                "event_name": "login",
                "timestamp": iso(stamp),
                "properties": {"user": user},
            }
            for i, (stamp, user) in enumerate(logins)
        ]
    )

    # u_edges, u_start_edge_only, u_both, u_hour_only
    assert quantities(acme, [users], t(9, 30), t(12, 30)) == {"users": D(4)}
    # the same without edges: u_both, u_hour_only
    assert quantities(acme, [users], t(10), t(12)) == {"users": D(2)}
    # only an edge: u_both, u_edges
    assert quantities(acme, [users], t(12), t(12, 30)) == {"users": D(2)}
    # every hour whole: all five
    assert quantities(acme, [users], t(9), t(13)) == {"users": D(5)}


# Brute force: usage_quantities equals a recomputation from the raw events

METERS = [
    {"code": "prompts", "event_name": "prompt", "aggregation": "count"},
    {
        "code": "users",
        "event_name": "prompt",
        "aggregation": "unique_count",
        "unique_property": "user",
    },
    {
        "code": "gpt_tokens",
        "event_name": "llm",
        "aggregation": "sum",
        "value_property": "tokens",
        "filters": {"model": ["gpt-4o", "gpt-4o-mini"]},
    },
    {
        "code": "claude_calls",
        "event_name": "llm",
        "aggregation": "count",
        "filters": {"model": ["claude"]},
    },
    {"code": "gpu_seconds", "event_name": "gpu", "aggregation": "sum", "value_property": "s"},
    {"code": "gpu_peak", "event_name": "gpu", "aggregation": "max", "value_property": "s"},
    {"code": "storage", "event_name": "storage", "aggregation": "latest", "value_property": "gb"},
]
START = datetime(2026, 11, 18, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    customer: str
    id: str
    name: str
    timestamp: datetime
    properties: dict

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "customer": self.customer,
            "event_name": self.name,
            "timestamp": iso(self.timestamp),
            "properties": self.properties,
        }


def generate_events(rng: random.Random, count: int) -> list[Event]:
    """Events over three days at varied minutes, seconds and microseconds, some on the hour,
    some sharing a timestamp (the latest meter's tie on the event id)."""
    events = []
    storage_stamps = []
    for i in range(count):
        stamp = START + timedelta(
            minutes=rng.randrange(72 * 60),
            seconds=rng.choice([0, rng.randrange(60)]),
            microseconds=rng.choice([0, 0, rng.randrange(1_000_000)]),
        )
        if i % 13 == 0:
            stamp = stamp.replace(minute=0, second=0, microsecond=0)
        name = rng.choice(["prompt", "llm", "gpu", "storage"])
        if name == "prompt":
            properties = {"user": f"u{rng.randrange(15)}"}
        elif name == "llm":
            properties = {
                "model": rng.choice(["gpt-4o", "gpt-4o-mini", "claude", "other"]),
                "tokens": rng.randrange(1, 5000),
            }
        elif name == "gpu":
            properties = {"s": str(D(rng.randrange(1, 100_000)).scaleb(-3))}
        else:
            # storage readings cluster: some in the hour of an earlier one, some at its very time
            if storage_stamps and rng.random() < 0.6:
                stamp = rng.choice(storage_stamps)
                if rng.random() < 0.5:
                    stamp = stamp.replace(minute=rng.randrange(60), second=rng.randrange(60))
            storage_stamps.append(stamp)
            properties = {"gb": str(D(rng.randrange(1, 100_000)).scaleb(-2))}
        events.append(Event("acme", f"evt_{i:04d}", name, stamp, properties))
    return events


def reference(events: list[Event], spec: dict, start: datetime, end: datetime) -> Decimal:
    """The meter's quantity, computed from the events alone."""
    selected = [
        e
        for e in events
        if e.customer == "acme"
        and e.name == spec["event_name"]
        and start <= e.timestamp < end
        and all(e.properties.get(p) in values for p, values in spec.get("filters", {}).items())
    ]
    aggregation = spec["aggregation"]
    if aggregation == "count":
        return D(len(selected))
    if aggregation == "unique_count":
        return D(len({e.properties[spec["unique_property"]] for e in selected}))
    values = [D(e.properties[spec["value_property"]]) for e in selected]
    if aggregation == "sum":
        return sum(values, D(0))
    if aggregation == "max":
        return max(values, default=D(0))
    latest = max(selected, key=lambda e: (e.timestamp, e.id), default=None)
    return D(0) if latest is None else D(latest.properties[spec["value_property"]])


def generate_ranges(rng: random.Random) -> list[tuple[datetime, datetime]]:
    hour = timedelta(hours=1)
    ranges = [
        (START, START + 72 * hour),
        (START - timedelta(hours=5, minutes=30), START + 80 * hour),
        (START + 5 * hour, START + 29 * hour),
        (START + timedelta(hours=5, minutes=17), START + 29 * hour),
        (START + 5 * hour, START + timedelta(hours=29, minutes=42)),
        (
            START + timedelta(hours=5, minutes=17, seconds=33),
            START + timedelta(hours=50, minutes=3),
        ),
        (START + timedelta(hours=30, minutes=10), START + timedelta(hours=30, minutes=55)),
        (START + 30 * hour, START + 31 * hour),
        (START + 40 * hour, START + 40 * hour),
    ]
    while len(ranges) < 22:
        a, b = sorted(
            START + timedelta(microseconds=rng.randrange(72 * 3600 * 10**6)) for _ in range(2)
        )
        ranges.append((a, b))
    return ranges


def feeds_count_like_meters(event: dict) -> bool:
    model = event["properties"].get("model")
    return event["event_name"] == "prompt" or (event["event_name"] == "llm" and model == "claude")


@pytest.mark.parametrize(
    "batches",
    [
        "separate",
        "mixed",
    ],
)
def test_usage_quantities_equal_a_brute_force_recomputation(acme, beta, batches):
    # given seven meters and 200 events over three days, posted in shuffled batches,
    # with repeats carrying other values (ignored) and another customer's copies (noise);
    # "separate": no batch mixes count-like (count, unique_count) and value meters
    rng = random.Random(20261121)
    meters = [meter_create(name=spec["code"], **spec) for spec in METERS]
    events = generate_events(rng, 200)
    posted = [e.as_json() for e in events]
    rng.shuffle(posted)
    for e in rng.sample(events, 30):
        repeat = e.as_json()
        repeat["properties"] = {k: "1" if k != "model" else v for k, v in e.properties.items()}
        original = next(i for i, p in enumerate(posted) if p["id"] == e.id)
        posted.insert(rng.randrange(original + 1, len(posted) + 1), repeat)
    for e in rng.sample(events, 40):
        posted.insert(rng.randrange(len(posted) + 1), {**e.as_json(), "customer": "beta"})
    if batches == "separate":
        streams = [
            [e for e in posted if feeds_count_like_meters(e)],
            [e for e in posted if not feeds_count_like_meters(e)],
        ]
    else:
        streams = [posted]
    chunks = []
    for stream in streams:
        cuts = sorted(rng.sample(range(1, len(stream)), len(stream) // 25))
        chunks.append([stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)])
    for index in range(max(len(c) for c in chunks)):
        for stream_chunks in chunks:
            if index < len(stream_chunks):
                result = events_ingest(events=stream_chunks[index], now=NOW)
                assert result.rejected == []

    # when / then: every meter over every range equals the recomputation, asked for
    # by name or as "every meter with usage" (the read of a customer without a plan)
    by_id = meter_cache.by_id()
    for start, end in generate_ranges(rng):
        expected = {spec["code"]: reference(events, spec, start, end) for spec in METERS}
        assert quantities(acme, meters, start, end) == expected, (start, end)
        used = usage_quantities(customer_id=acme.id, meters=None, start=start, end=end)
        found = {by_id[meter_id].code: quantity for meter_id, quantity in used.items()}
        assert found == {code: q for code, q in expected.items() if code in found}, (start, end)
        assert {code for code, q in expected.items() if q} <= set(found), (start, end)
    whole = {spec["code"]: reference(events, spec, START, NOW) for spec in METERS}
    assert all(whole[code] > 0 for code in whole), whole


# GET /api/v1/customers/{external_id}/usage


@pytest.fixture
def usage_data(acme, beta):
    meters = {
        "prompts": meter_create(
            code="prompts", name="Prompts", event_name="prompt", aggregation="count"
        ),
        "tokens": meter_create(
            code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
        ),
        "unused": meter_create(
            code="unused", name="Unused", event_name="never", aggregation="count"
        ),
    }

    def event(event_id, customer, name, stamp, **properties):
        return {
            "id": event_id,
            "customer": customer,
            "event_name": name,
            "timestamp": iso(stamp),
            "properties": properties,
        }

    ingest(
        [
            event("a1", "acme", "prompt", t(10, 10)),
            event("a2", "acme", "prompt", t(10, 40)),
            event("a3", "acme", "prompt", datetime(2026, 11, 2, 8, tzinfo=UTC)),
            event("a6", "acme", "prompt", datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),
            event("b1", "beta", "prompt", t(10, 15)),
            event("a1", "beta", "prompt", t(10, 16)),
        ]
    )
    ingest(
        [
            event("a4", "acme", "llm", t(10, 20), n=1500),
            event("a5", "acme", "llm", t(11, 5), n=D("300.5")),
        ]
    )
    return meters


def get_usage(client, external_id: str, **params):
    with time_machine.travel(NOW, tick=False):
        return client.get(f"/api/v1/customers/{external_id}/usage", params)


def line(meter: str, aggregation: str, quantity: str) -> dict:
    return {
        "meter": meter,
        "aggregation": aggregation,
        "model": None,
        "quantity": quantity,
        "included": None,
        "billable": None,
        "amount": None,
    }


def test_usage_endpoint_answers_the_customers_lines_with_quantity_strings(api, usage_data):
    response = get_usage(
        api, "acme", period_start="2026-11-01T00:00:00Z", period_end="2026-12-01T00:00:00Z"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["customer"] == "acme"
    assert (body["period_start"], body["period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert body["currency"] == "USD"
    assert body["lines"] == [line("prompts", "count", "3"), line("tokens", "sum", "1800.5")]


def test_usage_endpoint_reads_partial_hours_exactly(api, usage_data):
    response = get_usage(
        api, "acme", period_start="2026-11-21T10:15:00Z", period_end="2026-11-21T11:00:00Z"
    )

    assert response.status_code == 200
    assert response.json()["lines"] == [
        line("prompts", "count", "1"),
        line("tokens", "sum", "1500"),
    ]


@pytest.mark.postgres
def test_a_repeated_usage_read_reads_ahead_and_counts_what_came_in_between(
    api, usage_data, sent_ahead
):
    """From the third read of the same question on, its statements travel with the
    customer's read in one round trip (common.rawsql.read_ahead); their rows
    are read in the request, so events stored in between count."""
    question = {"period_start": "2026-11-21T10:15:00Z", "period_end": "2026-11-21T12:00:00Z"}

    before = [get_usage(api, "acme", **question).json()["lines"] for _ in range(2)]
    ingest(
        [
            {
                "id": "late1",
                "customer": "acme",
                "event_name": "prompt",
                "timestamp": iso(t(10, 50)),
            },
            {
                "id": "late2",
                "customer": "acme",
                "event_name": "prompt",
                "timestamp": iso(t(11, 30)),
            },
        ]
    )
    after = get_usage(api, "acme", **question).json()["lines"]

    expected = [line("prompts", "count", "1"), line("tokens", "sum", "1800.5")]
    assert before == [expected, expected]
    # the partial hour and the whole hour each hold one more prompt
    assert after == [line("prompts", "count", "3"), line("tokens", "sum", "1800.5")]
    assert len(sent_ahead) == 1 and len(sent_ahead[0]) > 2, sent_ahead


@pytest.mark.postgres
def test_an_event_stored_during_a_grouped_read_ahead_leaves_its_line_and_groups_equal(api, acme):
    """The edge cache keeps a partial hour's aggregate with the counts read before
    it. A read ahead moves the counts earlier, never the aggregate (not marked
    `ahead`): an event stored between the round trip and the rest of the read is
    counted on the next reads, in the line and its groups alike."""
    from django.db import connection

    from common import rawsql

    meter_create(
        code="calls", name="Calls", event_name="llm", aggregation="count", group_by=["model"]
    )

    def call(event_id: str, stamp: datetime) -> dict:
        return {
            "id": event_id,
            "customer": "acme",
            "event_name": "llm",
            "timestamp": iso(stamp),
            "properties": {"model": "gpt"},
        }

    def grouped() -> tuple[str, list]:
        (found,) = get_usage(
            api,
            "acme",
            period_start="2026-11-21T10:15:00Z",
            period_end="2026-11-21T12:00:00Z",
            group_by="model",
        ).json()["lines"]
        return found["quantity"], [(g["key"]["model"], g["quantity"]) for g in found["groups"]]

    ingest([call("e1", t(10, 20)), call("e2", t(11, 5))])
    # two reads: the partial hour's aggregate read each time (the edge cache keeps it
    # from the second on), the third sends ahead what both ran
    assert [grouped() for _ in range(2)] == [("2", [("gpt", "2")])] * 2
    counts = []

    def late_event(execute, sql, params, many, context):
        if sql.startswith("SELECT edge, meter_id"):
            counts.append(sql)
            if len(counts) == 2:  # after the round trip, before the partial hour's rows
                token = rawsql._reading.set(None)
                try:
                    ingest([call("e3", t(10, 30))])
                finally:
                    rawsql._reading.reset(token)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(late_event):
        grouped()

    assert [grouped() for _ in range(3)] == [("3", [("gpt", "3")])] * 3


def test_usage_endpoint_takes_offsets_and_answers_in_utc(api, usage_data):
    response = get_usage(
        api,
        "acme",
        period_start="2026-11-01T00:30:00+01:00",
        period_end="2026-11-21T12:00:00+01:00",
    )

    body = response.json()
    assert (body["period_start"], body["period_end"]) == (
        "2026-10-31T23:30:00Z",
        "2026-11-21T11:00:00Z",
    )
    # a6 (23:30 on Oct 31) is in; a5 (11:05 on Nov 21) is out
    assert body["lines"] == [line("prompts", "count", "4"), line("tokens", "sum", "1500")]


def test_usage_endpoint_defaults_to_the_current_month(api, usage_data):
    response = get_usage(api, "acme")

    body = response.json()
    assert (body["period_start"], body["period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert body["lines"] == [line("prompts", "count", "3"), line("tokens", "sum", "1800.5")]


def test_usage_endpoint_default_month_is_in_the_customers_time_zone(api, usage_data):
    customer_create(external_id="paris", name="Paris", currency="EUR", timezone_name="Europe/Paris")
    ingest(
        [
            {
                "id": "p1",
                "customer": "paris",
                "event_name": "prompt",
                "timestamp": "2026-10-31T23:30:00Z",  # 00:30 on Nov 1 in Paris
            }
        ]
    )

    body = get_usage(api, "paris").json()

    assert (body["period_start"], body["period_end"]) == (
        "2026-10-31T23:00:00Z",
        "2026-11-30T23:00:00Z",
    )
    assert body["lines"] == [line("prompts", "count", "1")]


def test_a_customer_sees_only_its_own_usage(api, usage_data):
    response = get_usage(
        api, "beta", period_start="2026-11-01T00:00:00Z", period_end="2026-12-01T00:00:00Z"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["customer"] == "beta"
    # beta's own b1 and its own a1 (the same id as acme's, a different event); none of acme's
    assert body["lines"] == [line("prompts", "count", "2")]


def test_a_period_without_usage_has_no_lines(api, usage_data):
    response = get_usage(
        api, "acme", period_start="2026-09-01T00:00:00Z", period_end="2026-10-01T00:00:00Z"
    )

    assert response.status_code == 200
    assert response.json()["lines"] == []


def test_usage_of_an_unknown_customer_is_404(api, usage_data):
    response = get_usage(api, "nobody", period_start="2026-11-01T00:00:00Z")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period_start": "yesterday"}, "period_start"),
        ({"period_start": ""}, "period_start"),
        ({"period_start": "2026-11-01"}, "period_start"),
        ({"period_start": "2026-11-01T00:00:00"}, "period_start"),
        ({"period_start": "2026-13-01T00:00:00Z"}, "period_start"),
        ({"period_start": "2026-11-01T00:00:00Z", "period_end": "soon"}, "period_end"),
        (
            {"period_start": "2026-11-01T00:00:00Z", "period_end": "2026-11-01T00:00:00Z"},
            "period_end",
        ),
        (
            {"period_start": "2026-11-02T00:00:00Z", "period_end": "2026-11-01T00:00:00Z"},
            "period_end",
        ),
    ],
)
def test_a_bad_period_is_400_naming_the_parameter(api, usage_data, params, field):
    response = get_usage(api, "acme", **params)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert field in error["fields"]


def test_usage_needs_an_api_key_with_the_read_scope(usage_data):
    _, secret = api_key_create(name="ingest", scopes=["events:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert get_usage(APIClient(), "acme").status_code == 401
    assert get_usage(client, "acme").status_code == 403
