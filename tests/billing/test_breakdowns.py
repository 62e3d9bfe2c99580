"""Usage breakdowns (issue 19): meters grouping by event properties keep per-group
rollups at ingestion; every group read equals a brute-force grouping of the raw
events, for every aggregation and any range (edges mid-hour included), and for
count and sum the groups add up to the meter's quantity. Runs on SQLite and on
PostgreSQL (CI), whose ingestion writes differ."""

import io
import itertools
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from billing.simulation import engine, report
from billing.usage.breakdowns import usage_groups, usage_groups_of
from billing.usage.ingestion import events_ingest
from billing.usage.metering import as_text, meter_cache
from billing.usage.reads import usage_quantities
from billing.usage.rebuild import meter_usage_rebuild
from customers.services import customer_create
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from plans.models import Meter
from plans.services import meter_create, meter_update, plan_version_copy_as_draft
from tests.factories import api_client, overage, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
MODELS = ["gpt-4o", "o1", "mini", None]  # None: the event has no model
KEYS = ["k1", "k2", 7]


@pytest.fixture
def meters(db):
    """Every aggregation over `llm` events, grouped by model (and api_key)."""
    common = {"event_name": "llm", "group_by": ["model", "api_key"]}
    return [
        meter_create(code="calls", name="Calls", aggregation="count", **common),
        meter_create(
            code="tokens", name="Tokens", aggregation="sum", value_property="tokens", **common
        ),
        meter_create(
            code="peak", name="Peak", aggregation="max", value_property="tokens", **common
        ),
        meter_create(
            code="users", name="Users", aggregation="unique_count", unique_property="user", **common
        ),
        meter_create(
            code="last", name="Last", aggregation="latest", value_property="tokens", **common
        ),
    ]


def brute_force(events: list[dict], meter: Meter, by: tuple, start, end) -> dict:
    """Group the raw events by hand: key -> the meter's aggregate of its events."""
    grouped = defaultdict(list)
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"])
        if not start <= moment < end:
            continue
        properties = event["properties"]
        key = tuple(as_text(properties.get(name)) if name in properties else None for name in by)
        grouped[key].append((moment, event["id"], properties))
    out = {}
    for key, rows in grouped.items():
        values = [D(str(p["tokens"])) for _, _, p in rows]
        if meter.aggregation == "count":
            out[key] = D(len(rows))
        elif meter.aggregation == "sum":
            out[key] = sum(values, D(0))
        elif meter.aggregation == "max":
            out[key] = max(values)
        elif meter.aggregation == "latest":
            out[key] = D(str(max(rows, key=lambda r: (r[0], r[1]))[2]["tokens"]))
        else:
            out[key] = D(len({p["user"] for _, _, p in rows}))
    return out


CUSTOMERS = itertools.count()
EVENT = st.tuples(
    st.integers(0, 6 * 60 - 1),  # minute of the 6 hours from 10:00
    st.sampled_from(MODELS),
    st.sampled_from(KEYS),
    st.integers(0, 5000),  # tokens
    st.sampled_from(["ann", "bob", "cy"]),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(EVENT, min_size=1, max_size=60),
    batch=st.integers(1, 25),
    start_minute=st.integers(0, 3 * 60),
    length=st.integers(1, 4 * 60),
)
def test_groups_equal_a_brute_force_grouping_of_the_raw_events(
    meters, rows, batch, start_minute, length
):
    # given: a customer of its own per example, its events sent in batches
    code = f"c{next(CUSTOMERS)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    base = datetime(2026, 11, 10, 10, tzinfo=UTC)
    events = []
    for index, (minute, model, key, tokens, user) in enumerate(rows):
        properties = {"tokens": tokens, "user": user, "api_key": key}
        if model is not None:
            properties["model"] = model
        events.append(
            {
                "id": f"{code}-{index}",
                "customer": code,
                "event_name": "llm",
                "timestamp": (base + timedelta(minutes=minute, seconds=index)).isoformat(),
                "properties": properties,
            }
        )
    for start in range(0, len(events), batch):
        result = events_ingest(events=events[start : start + batch], now=base + timedelta(hours=7))
        assert not result.rejected, result.rejected

    # when: a range whose edges may fall mid-hour
    start = base + timedelta(minutes=start_minute)
    end = start + timedelta(minutes=length)
    for meter in meters:
        definition = meter_cache.by_code(meter.code)
        whole = usage_quantities(customer_id=customer.pk, meters=[definition], start=start, end=end)
        for by in ("model", "api_key"):
            groups = usage_groups(
                customer_id=customer.pk, meter=definition, by=by, start=start, end=end
            )

            # then: each group is the brute-force aggregate of its events
            found = {(g.key[by],): g.quantity for g in groups}
            assert found == brute_force(events, meter, (by,), start, end), (meter.code, by)
            if meter.aggregation in ("count", "sum"):
                assert sum(found.values(), D(0)) == whole[definition.id], (meter.code, by)

    # and all meters read at once (as /usage?group_by= does) answer the same
    definitions = [meter_cache.by_code(meter.code) for meter in meters]
    for by in ("model", "api_key"):
        together = usage_groups_of(
            customer_id=customer.pk, meters=definitions, by=by, start=start, end=end
        )
        for definition in definitions:
            alone = usage_groups(
                customer_id=customer.pk, meter=definition, by=by, start=start, end=end
            )
            assert together[definition.id] == alone, (definition.code, by)


def test_a_rebuilt_meter_groups_the_events_it_arrived_after(meters):
    # given: events, then a meter created after them, then a group_by added
    customer = customer_create(external_id="late", name="Late", currency="USD")
    events = [
        {
            "id": f"e{i}",
            "customer": "late",
            "event_name": "run",
            "timestamp": f"2026-11-10T10:{i:02d}:00Z",
            "properties": {"team": team},
        }
        for i, team in enumerate(["red", "red", "blue", None])
    ]
    for event in events:
        if event["properties"]["team"] is None:
            del event["properties"]["team"]
    assert not events_ingest(events=events, now=NOV_20).rejected
    runs = meter_create(code="runs", name="Runs", event_name="run", aggregation="count")
    meter_usage_rebuild(meter_id=runs.pk)

    # when
    meter_update(meter=runs, group_by=["team"])
    meter_usage_rebuild(meter_id=runs.pk)

    # then
    groups = usage_groups(
        customer_id=customer.pk,
        meter=meter_cache.by_code("runs"),
        by="team",
        start=datetime(2026, 11, 10, tzinfo=UTC),
        end=datetime(2026, 11, 11, tzinfo=UTC),
    )
    assert [(g.key, g.quantity) for g in groups] == [
        ({"team": "red"}, D(2)),
        ({"team": "blue"}, D(1)),
        ({"team": None}, D(1)),
    ]


@pytest.fixture
def acme(meters):
    """Without a subscription: its lines are the meters it used."""
    customer_create(external_id="acme", name="Acme", currency="USD")
    events = [
        ("gpt-4o", "k1", 1000),
        ("gpt-4o", "k2", 500),
        ("o1", "k1", 300),
        (None, "k1", 7),
    ]
    events_ingest(
        events=[
            {
                "id": f"a{i}",
                "customer": "acme",
                "event_name": "llm",
                "timestamp": f"2026-11-05T10:{i:02d}:00Z",
                "properties": {"tokens": tokens, "api_key": key, "user": "ann"}
                | ({"model": model} if model else {}),
            }
            for i, (model, key, tokens) in enumerate(events)
        ],
        now=NOV_20,
    )


def usage(query: str):
    return api_client("read").get(
        "/api/v1/customers/acme/usage?period_start=2026-11-01T00:00:00Z"
        "&period_end=2026-12-01T00:00:00Z" + query
    )


def test_usage_by_model_splits_each_grouped_line(acme):
    body = usage("&group_by=model").json()

    tokens = next(line for line in body["lines"] if line["meter"] == "tokens")
    assert tokens["quantity"] == "1807"
    assert tokens["groups"] == [
        {"key": {"model": "gpt-4o"}, "quantity": "1500"},
        {"key": {"model": "o1"}, "quantity": "300"},
        {"key": {"model": None}, "quantity": "7"},
    ]


def test_usage_by_another_property_of_the_meter(acme):
    body = usage("&group_by=api_key").json()

    calls = next(line for line in body["lines"] if line["meter"] == "calls")
    assert calls["groups"] == [
        {"key": {"api_key": "k1"}, "quantity": "3"},
        {"key": {"api_key": "k2"}, "quantity": "1"},
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("&group_by=team", "no meter groups its usage by team"),
        ("&group_by=", "group_by takes one property name"),
        ("&group_by=model,api_key", "group_by takes one property name"),
        ("&group_by=model&group_by=api_key", "give group_by once"),
    ],
)
def test_a_property_no_meter_groups_by_is_a_400(acme, query, message):
    response = usage(query)

    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]


def test_without_group_by_lines_have_no_groups(acme):
    body = usage("").json()

    assert all("groups" not in line for line in body["lines"])


def test_a_meters_group_by_is_validated(db):
    for group_by, path in (
        (["a", "b", "c", "d"], "group_by"),
        (["a", "a"], "group_by.1"),
        ([""], "group_by.0"),
        ("model", "group_by"),
        (["model,api_key"], "group_by.0"),
    ):
        response = api_client("admin").post(
            "/api/v1/meters",
            {
                "code": "m",
                "name": "M",
                "event_name": "e",
                "aggregation": "count",
                "group_by": group_by,
            },
            format="json",
        )
        assert response.status_code == 400, (group_by, response.content)
        assert path in response.json()["error"]["fields"], (group_by, response.content)
    assert not Meter.objects.exists()


def test_an_invoice_splits_a_meters_line_by_its_invoice_breakdown(db, output_dir):
    # given: tokens summed, grouped by model, split on invoices; 1,000 included,
    # 0.01 a token beyond; 1,807 tokens in November
    tokens = meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
        invoice_breakdown="model",
    )
    published_version("chat", base_fee=D("10.00"), charges=(overage("tokens", 1000, "0.01"),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "chat")
    sent = [("gpt-4o", 1000), ("gpt-4o", 500), ("o1", 300), (None, 7)]
    events_ingest(
        events=[
            {
                "id": f"i{i}",
                "customer": "acme",
                "event_name": "llm",
                "timestamp": f"2026-11-05T10:{i:02d}:00Z",
                "properties": {"tokens": n} | ({"model": model} if model else {}),
            }
            for i, (model, n) in enumerate(sent)
        ],
        now=NOV_20,
    )

    # when
    periods_close(as_of=DEC_1)

    # then: one overage line priced on the whole 807 beyond (8.07), split by model
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    (line,) = invoice.lines.filter(meter=tokens.code)
    assert (line.quantity, line.amount) == (D(807), D("8.07"))
    assert line.breakdown == {
        "by": "model",
        "groups": [
            {"value": "gpt-4o", "quantity": "1500"},
            {"value": "o1", "quantity": "300"},
            {"value": None, "quantity": "7"},
        ],
    }
    api = api_client("read").get(f"/api/v1/invoices/{invoice.pk}").json()
    assert [x.get("breakdown") for x in api["lines"] if x["meter"] == "tokens"] == [line.breakdown]
    pdf = render_invoice_pdf(invoice)
    with open(os.path.join(output_dir, "breakdown.pdf"), "wb") as saved:
        saved.write(pdf)
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )
    # its own titled section after the lines and the totals (issue 55: printed
    # under the line, it read as a split of that line)
    lines_end = text.index("Total")
    section = text.index("USAGE BREAKDOWN")  # an h2, in capitals
    assert section > lines_end, text
    assert "ALL USAGE BY MODEL QUANTITY gpt-4o 1,500 o1 300 (none) 7" in text[section:], text
    assert "ALL USAGE BY" not in text[:section], text


def test_the_simulation_csv_gives_each_customer_s_breakdown(db):
    # given: November's grouped usage of a customer on chat v1, and a draft v2
    meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
    )
    v1 = published_version("chat", base_fee=D("10.00"), charges=(overage("tokens", 1000, "0.01"),))
    v2 = plan_version_copy_as_draft(version=v1)
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "chat")
    events_ingest(
        events=[
            {
                "id": f"s{i}",
                "customer": "acme",
                "event_name": "llm",
                "timestamp": "2026-11-05T10:00:00Z",
                "properties": {"tokens": n, "model": model},
            }
            for i, (model, n) in enumerate([("gpt-4o", 1500), ("o1", 300)])
        ],
        now=NOV_20,
    )

    # when
    simulation = engine.simulation_request(
        version=v2,
        period_start=NOV_1,
        period_end=DEC_1,
        customers=[customer],
        selection="test",
        user=None,
        now=DEC_1,
    )

    # then
    lines = report.simulation_csv(simulation=simulation).splitlines()
    assert lines[1].endswith(',USD,"tokens by model: gpt-4o 1500, o1 300"'), lines
