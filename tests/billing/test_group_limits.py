"""Distinct values of grouped properties are bounded (issue 73): per customer, meter
and month the first BILLING_GROUP_VALUES_LIMIT values get a group each, the rest
count under "other" (the 202 says so per event); nothing is refused or lost, a value
a rate card names keeps its own group, and the invoice's breakdown and its PDF show
the largest groups and one "Other" row."""

import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from billing.usage.breakdowns import usage_groups
from billing.usage.edges import edges_add
from billing.usage.group_limits import edge_values_kept, group_value_cache
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import Tally
from billing.usage.rebuild import meter_usage_rebuild
from common.groups import OTHER_VALUE, TOP_GROUPS
from customers.models import Customer
from customers.portal_links import portal_session_create
from customers.services import customer_create
from invoices.models import Invoice, InvoiceLine
from invoices.pdf import render_invoice_pdf
from plans.pricing import PER_UNIT, PricingSpec
from plans.rate_card_pricing import RateSpec
from plans.services import meter_create
from plans.validation import ChargeSpec
from tests.factories import api_client, overage, published_version, subscribe
from tests.rate_cards import card_charge, llm_tokens

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def tokens_meter():
    return meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
        invoice_breakdown="model",
    )


def event(i: int, model: str, tokens: int = 10, *, at: str = "2026-11-05T10:00:00Z") -> dict:
    return {
        "id": f"e{i}",
        "customer": "acme",
        "event_name": "llm",
        "timestamp": at,
        "properties": {"model": model, "tokens": tokens},
    }


def test_values_past_the_limit_count_under_other_and_the_202_says_so(db, settings):
    # given: a limit of 3 values a month
    settings.BILLING_GROUP_VALUES_LIMIT = 3
    tokens_meter()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events = [event(i, f"m{i}") for i in range(6)] + [event(6, "m1")]

    # when
    with time_machine.travel(NOV_20, tick=False):
        response = api_client("events:write").post(
            "/api/v1/events", {"events": events}, format="json"
        )

    # then: all stored; the 4th to 6th values count under "other", and the 202 says so
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (7, 0, [])
    assert body["other"] == [
        {"index": i, "id": f"e{i}", "meter": "tokens", "properties": ["model"]} for i in (3, 4, 5)
    ]
    groups = usage_groups(
        customer_id=customer.pk,
        meter=meter_cache.by_code("tokens"),
        by="model",
        start=NOV_1,
        end=DEC_1,
    )
    assert [(g.key["model"], g.quantity) for g in groups] == [
        (OTHER_VALUE, D(30)),
        ("m1", D(20)),
        ("m0", D(10)),
        ("m2", D(10)),
    ]
    # a later batch with a known value and a new one: only the new one is "other"
    with time_machine.travel(NOV_20, tick=False):
        result = events_ingest(events=[event(7, "m2"), event(8, "m9")], now=NOV_20)
    assert [(o.index, o.id, o.properties) for o in result.other] == [(1, "e8", ["model"])]
    # a new month opens its own groups
    december = datetime(2026, 12, 2, tzinfo=UTC)
    with time_machine.travel(december, tick=False):
        result = events_ingest(events=[event(9, "m9", at="2026-12-02T00:00:00Z")], now=december)
    assert result.other == []


def test_a_value_given_a_group_elsewhere_keeps_it_in_a_process_that_knows_the_key_full(
    db, settings, django_capture_on_commit_callbacks
):
    # given: a limit of 2, both values given by another process (this one's cache
    # cleared), then this process meets the full key through a third value
    settings.BILLING_GROUP_VALUES_LIMIT = 2
    tokens_meter()
    customer_create(external_id="acme", name="Acme", currency="USD")
    events_ingest(events=[event(0, "m0"), event(1, "m1")], now=NOV_20)
    group_value_cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        third = events_ingest(events=[event(2, "m2")], now=NOV_20)
    assert [o.id for o in third.other] == ["e2"]

    # when: a value the other process gave a group comes again
    result = events_ingest(events=[event(3, "m0")], now=NOV_20)

    # then: it keeps its group (it counted under "other" while the key was full here)
    assert result.other == []


def test_a_process_whose_cached_count_is_below_the_limit_counts_again(
    db, settings, django_capture_on_commit_callbacks
):
    # given: a limit of 3; this process gave m0 a group (its cache: 1 value), then
    # another process (simulated by forgetting and restoring this one's cache) gave
    # m1 and m2 the last places
    settings.BILLING_GROUP_VALUES_LIMIT = 3
    tokens_meter()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    with django_capture_on_commit_callbacks(execute=True):
        events_ingest(events=[event(0, "m0")], now=NOV_20)
    mine = dict(group_value_cache._keys)
    group_value_cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        events_ingest(events=[event(1, "m1"), event(2, "m2")], now=NOV_20)
    group_value_cache._keys = mine

    # when: this process meets two new values, in a batch and in a read of the hour
    with django_capture_on_commit_callbacks(execute=True):
        result = events_ingest(events=[event(3, "m3"), event(4, "m4")], now=NOV_20)
    group_value_cache._keys = dict(mine)
    inside = usage_groups(
        customer_id=customer.pk,
        meter=meter_cache.by_code("tokens"),
        by="model",
        start=datetime(2026, 11, 5, 10, 0, tzinfo=UTC),
        end=datetime(2026, 11, 5, 10, 30, tzinfo=UTC),
    )

    # then: both count under "other": the key was full, whatever this process cached
    assert [o.id for o in result.other] == ["e3", "e4"]
    assert sorted((g.key["model"], g.quantity) for g in inside) == [
        ("m0", D(10)),
        ("m1", D(10)),
        ("m2", D(10)),
        (OTHER_VALUE, D(20)),
    ]


def test_a_read_of_part_of_an_hour_counts_the_same_values_as_other(db, settings):
    # given: a limit of 2 and 4 models sent at 10:40
    settings.BILLING_GROUP_VALUES_LIMIT = 2
    tokens_meter()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    sent = [event(i, f"m{i}", at="2026-11-05T10:40:00Z") for i in range(4)]
    events_ingest(events=sent, now=NOV_20)

    # when: a range inside the hour (read from the raw events, as sent), and one
    # starting mid-hour (a period of a subscription started at 10:30)
    inside, mid_hour = (
        usage_groups(
            customer_id=customer.pk,
            meter=meter_cache.by_code("tokens"),
            by="model",
            start=datetime(2026, 11, 5, 10, 30, tzinfo=UTC),
            end=end,
        )
        for end in (datetime(2026, 11, 5, 10, 50, tzinfo=UTC), DEC_1)
    )

    # then: the values ingestion counted as "other" are "other" here too
    expected = [(OTHER_VALUE, D(20)), ("m0", D(10)), ("m1", D(10))]
    assert [(g.key["model"], g.quantity) for g in inside] == expected
    assert [(g.key["model"], g.quantity) for g in mid_hour] == expected


def test_an_edge_read_reads_the_values_past_the_limit_at_once_whatever_their_number(db, settings):
    # given: a limit of 2; one customer sent 4 models at 10:40, another 40
    settings.BILLING_GROUP_VALUES_LIMIT = 2
    tokens_meter()
    for name, models in (("few", 4), ("many", 40)):
        customer_create(external_id=name, name=name, currency="USD")
        sent = [
            {**event(i, f"m{i}", at="2026-11-05T10:40:00Z"), "id": f"{name}{i}", "customer": name}
            for i in range(models)
        ]
        events_ingest(events=sent, now=NOV_20)

    def read(name: str) -> tuple[int, list]:
        """The queries of a read of part of the hour (from the raw events) by a
        process that knows none of the values, and its groups."""
        group_value_cache.clear()
        with CaptureQueriesContext(connection) as queries:
            groups = usage_groups(
                customer_id=Customer.objects.get(external_id=name).pk,
                meter=meter_cache.by_code("tokens"),
                by="model",
                start=datetime(2026, 11, 5, 10, 30, tzinfo=UTC),
                end=datetime(2026, 11, 5, 10, 50, tzinfo=UTC),
            )
        return len(queries), sorted((g.key["model"], g.quantity) for g in groups)

    # when
    few, many = read("few"), read("many")

    # then: 38 values past the limit cost what 2 do, and count under "other"
    assert many[0] == few[0]
    assert many[1] == [("m0", D(10)), ("m1", D(10)), (OTHER_VALUE, D(380))]


@pytest.mark.postgres
def test_the_edge_statement_counts_the_values_no_meter_keeps_under_other(db, settings):
    # given: a limit of 2, a card naming m30, and 40 models sent at 10:40
    settings.BILLING_GROUP_VALUES_LIMIT = 2
    tokens_meter()
    million = D(1_000_000)
    rates = (
        RateSpec(when=(("model", "m30"),), pricing=PricingSpec(PER_UNIT, D("2.50"), per=million)),
        RateSpec(when=(), pricing=PricingSpec(PER_UNIT, D("4.00"), per=million)),
    )
    published_version(
        "chat", charges=(ChargeSpec("tokens", "overage", D(0), price_by=("model",), rates=rates),)
    )
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events_ingest(
        events=[event(i, f"m{i}", at="2026-11-05T10:40:00Z") for i in range(40)], now=NOV_20
    )
    meter = meter_cache.by_code("tokens")
    span = (datetime(2026, 11, 5, 10, 30, tzinfo=UTC), datetime(2026, 11, 5, 10, 50, tzinfo=UTC))
    bound = {"customer_id": customer.pk, "meters": [meter], "position": {meter.id: 0}}

    # when: the edge read with the values kept, as a read of part of the hour makes it
    kept = edge_values_kept(**bound, month=NOV_1)
    edge = Tally()
    edges_add(
        edge, customer_id=customer.pk, meters=[meter], ranges=[span], by={meter.id: 0}, kept=kept
    )

    # then: the statement answers 4 groups, not 40: the 2 given a group, the card's, other
    assert kept == {meter.id: frozenset({"m0", "m1", "m30"})}
    assert {key[1]: edge.counts[key] for key in edge.counts} == {
        "m0": 1,
        "m1": 1,
        "m30": 1,
        OTHER_VALUE: 37,
    }


def test_a_rebuild_keeps_the_limit(db, settings):
    # given: a limit of 2 and 4 models sent
    settings.BILLING_GROUP_VALUES_LIMIT = 2
    meter = tokens_meter()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events_ingest(events=[event(i, f"m{i}") for i in range(4)], now=NOV_20)

    # when: the meter's rollups are rebuilt from the stored events
    meter_usage_rebuild(meter_id=meter.pk)

    # then: the two values given a group keep it, the rest are "other" again
    groups = usage_groups(
        customer_id=customer.pk,
        meter=meter_cache.by_code("tokens"),
        by="model",
        start=NOV_1,
        end=DEC_1,
    )
    assert [(g.key["model"], g.quantity) for g in groups] == [
        (OTHER_VALUE, D(20)),
        ("m0", D(10)),
        ("m1", D(10)),
    ]


def test_a_value_a_rate_card_names_keeps_its_group_and_the_invoice_prices_it(db, settings):
    # given: a limit of 1, and the token card (gpt-4o input 2.50, output 10.00,
    # claude-sonnet 3.00, the default 4.00 per 1,000,000)
    settings.BILLING_GROUP_VALUES_LIMIT = 1
    llm_tokens()
    published_version("chat", charges=(card_charge(),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "chat")
    sent = [
        ("mistral", "input", 10_000),
        ("gpt-4o", "input", 1_000_000),
        ("llama", "output", 10_000),
    ]
    events = [
        {
            "id": f"t{i}",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": "2026-11-05T10:00:00Z",
            "properties": {"model": model, "token_type": kind, "tokens": n},
        }
        for i, (model, kind, n) in enumerate(sent)
    ]

    # when
    result = events_ingest(events=events, now=NOV_20)
    periods_close(as_of=DEC_1)

    # then: mistral had the one group; gpt-4o, named by the card, keeps its own;
    # llama counts under "other" and is priced by the default row, as it would be
    assert [(o.index, o.meter, o.properties) for o in result.other] == [
        (2, "llm_tokens", ["model"])
    ]
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    lines = {
        tuple(sorted((line.group or {}).items())): (line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    }
    assert lines == {
        (("model", "gpt-4o"), ("token_type", "input")): (D(1_000_000), D("2.50")),
        (): (D(20_000), D("0.08")),
    }


def test_an_invoice_breakdown_shows_the_largest_groups_and_one_other_row(db, settings):
    # given: 8 models (limit 6), 5 shown on invoices
    settings.BILLING_GROUP_VALUES_LIMIT = 6
    tokens_meter()
    published_version("chat", charges=(overage("tokens", 0, "0.01"),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "chat")
    events_ingest(events=[event(i, f"m{i}", tokens=100 + i) for i in range(8)], now=NOV_20)

    # when
    periods_close(as_of=DEC_1)

    # then: m5..m1 by size, then the rest (m0 and the two past the limit) as "Other"
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    (line,) = invoice.lines.filter(meter="tokens")
    assert (line.quantity, line.amount) == (D(828), D("8.28"))
    assert line.breakdown == {
        "by": "model",
        "groups": [
            {"value": "m5", "quantity": "105"},
            {"value": "m4", "quantity": "104"},
            {"value": "m3", "quantity": "103"},
            {"value": "m2", "quantity": "102"},
            {"value": "m1", "quantity": "101"},
            {"value": None, "other": True, "quantity": "313"},
        ],
    }
    text = " ".join(
        page.extract_text() for page in PdfReader(io.BytesIO(render_invoice_pdf(invoice))).pages
    )
    assert "m1 101 Other 313" in " ".join(text.split()), text


def test_an_invoice_stored_with_100000_groups_prints_a_bounded_pdf(db):
    # given: an invoice whose line was stored with 100,000 groups (before the limit)
    tokens_meter()
    published_version("chat", charges=(overage("tokens", 0, "0.01"),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "chat")
    events_ingest(events=[event(0, "m0")], now=NOV_20)
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    groups = [{"value": f"m{i:06d}", "quantity": "1"} for i in range(STORED_GROUPS)]
    InvoiceLine.objects.filter(invoice=invoice, meter="tokens").update(
        breakdown={"by": "model", "groups": groups}
    )

    # when
    pdf = PdfReader(io.BytesIO(render_invoice_pdf(invoice)))

    # then: the five first groups and one "Other" row, on at most two pages
    text = " ".join(" ".join(page.extract_text() for page in pdf.pages).split())
    assert len(pdf.pages) <= 2
    assert f"m000004 1 Other {STORED_GROUPS - TOP_GROUPS:,}" in text, text
    assert "m000005" not in text


def test_a_breakdown_stored_whole_sums_its_rest_only_for_a_meter_that_adds_up(db):
    # given: lines stored with 8 groups each (before the limit), of a sum and a max meter
    tokens_meter()
    meter_create(
        code="peak",
        name="Peak",
        event_name="llm",
        aggregation="max",
        value_property="tokens",
        group_by=["model"],
        invoice_breakdown="model",
    )
    groups = [{"value": f"m{i}", "quantity": str(80 - i)} for i in range(8)]
    summed, peaked = (
        InvoiceLine(meter=code, breakdown={"by": "model", "groups": groups})
        for code in ("tokens", "peak")
    )

    # then: the five largest each; "Other" 73 + 74 + 75 for the sum, none for the max
    top = [(f"m{i}", False, D(80 - i)) for i in range(5)]
    assert summed.breakdown_rows == [*top, (None, True, D(222))]
    assert peaked.breakdown_rows == top


STORED_GROUPS = 100_000


@pytest.mark.postgres
def test_100000_distinct_values_of_one_customer_stay_bounded(db):
    # given: the default limit (500), one customer sending 100,000 models
    tokens_meter()
    published_version("chat", charges=(overage("tokens", 0, "0.01"),))
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "chat")

    # when: 100 batches of 1,000 events, each a model of its own
    other = []
    for batch in range(100):
        events = [
            event(batch * 1000 + i, f"model-{batch * 1000 + i}", tokens=1) for i in range(1000)
        ]
        result = events_ingest(events=events, now=NOV_20)
        assert (result.accepted, result.rejected) == (1000, [])
        other.extend(result.other)

    # then: 99,500 events were counted under "other", every one said so
    assert len(other) == 99_500
    assert {tuple(o.properties) for o in other} == {("model",)}
    groups = usage_groups(
        customer_id=customer.pk,
        meter=meter_cache.by_code("tokens"),
        by="model",
        start=NOV_1,
        end=DEC_1,
    )
    assert len(groups) == 501
    assert sum(g.quantity for g in groups) == D(100_000)
    # the API's read (on November 27: the current period) and the portal's page
    with time_machine.travel(datetime(2026, 11, 27, tzinfo=UTC), tick=False):
        read = api_client("read").get("/api/v1/customers/acme/usage?group_by=model").json()
        token = portal_session_create(customer=customer, now=timezone.now()).token
        page = Client().get(f"/portal/{token}/")
    (line,) = [line for line in read["lines"] if line["meter"] == "tokens"]
    assert len(line["groups"]) == 501
    assert [g["quantity"] for g in line["groups"] if g.get("other")] == ["99500"]
    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('<table class="breakdown" data-property="model"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == TOP_GROUPS + 1
    assert "<td>Other</td>" in table
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    (line,) = invoice.lines.filter(meter="tokens")
    assert (line.quantity, line.amount) == (D(100_000), D("1000.00"))
    assert len(line.breakdown["groups"]) == TOP_GROUPS + 1
    assert line.breakdown["groups"][-1] == {"value": None, "other": True, "quantity": "99995"}
    assert len(PdfReader(io.BytesIO(render_invoice_pdf(invoice))).pages) <= 2
