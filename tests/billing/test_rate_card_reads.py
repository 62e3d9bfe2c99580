"""What the second reading of the rate cards found (issue 50): edges of meters
grouping by different single properties, a card on a balance that bills when dry,
group texts a meter's changed group_by left behind, a card of a thousand rows."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.usage.breakdowns import usage_combinations
from billing.usage.ingestion import events_ingest
from billing.usage.metering import MeterDef, combination_values, meter_cache
from customers.services import customer_create
from plans.pricing import PricingSpec
from plans.rate_card_pricing import RateSpec, ties
from plans.rating import Uncovered, charge_lines
from plans.services import meter_create
from plans.validation import ChargeSpec, VersionSpec, validate_version
from tests.factories import api_client, llm_tokens_meter

MILLION = D(1_000_000)


@pytest.mark.django_db
def test_meters_grouping_by_different_properties_read_their_edges_by_their_own():
    # given: two one-property meters, by model and by region, an event each mid-hour
    by_model = meter_create(
        code="a", name="A", event_name="ea", group_by=["model"], aggregation="count"
    )
    by_region = meter_create(
        code="b", name="B", event_name="eb", group_by=["region"], aggregation="count"
    )
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events_ingest(
        events=[
            {
                "id": "e1",
                "customer": "acme",
                "event_name": "ea",
                "timestamp": "2026-11-10T10:40:00Z",
                "properties": {"model": "gpt-4o"},
            },
            {
                "id": "e2",
                "customer": "acme",
                "event_name": "eb",
                "timestamp": "2026-11-10T10:40:00Z",
                "properties": {"region": "eu"},
            },
        ],
        now=datetime(2026, 11, 10, 12, tzinfo=UTC),
    )

    # when: both read at once over a range inside the hour (raw events only)
    found = usage_combinations(
        customer_id=customer.pk,
        meters=[meter_cache.by_code("a"), meter_cache.by_code("b")],
        start=datetime(2026, 11, 10, 10, 30, tzinfo=UTC),
        end=datetime(2026, 11, 10, 10, 50, tzinfo=UTC),
    )

    # then: each by its own property (on PostgreSQL the region was read as model's)
    assert found[by_model.pk] == {(("model", "gpt-4o"),): D(1)}
    assert found[by_region.pk] == {(("region", "eu"),): D(1)}


def test_a_card_on_a_balance_that_bills_when_dry_bills_the_money_it_lacked():
    rates = (
        RateSpec(
            when=(("model", "gpt-4o"),), pricing=PricingSpec("per_unit", D("2.50"), per=MILLION)
        ),
        RateSpec(pricing=PricingSpec("per_unit", D("4.00"), per=MILLION)),
    )
    charge = ChargeSpec(
        "llm_tokens", "balance", when_exhausted="bill", price_by=("model",), rates=rates
    )
    validate_version(
        VersionSpec(currency="USD", charges=(charge,)),
        known_meters={"llm_tokens": "sum"},
        meter_groups={"llm_tokens": ("model", "token_type")},
    )

    (line,) = charge_lines(
        charge,
        quantity=D(2_000_000),
        meter_name="LLM tokens",
        currency="USD",
        uncovered=Uncovered(units=D(1_000_000), shortfall=D("2.50")),
    )

    assert (line.kind, line.quantity, line.unit_price, line.amount) == (
        "uncovered_usage",
        D(1_000_000),
        None,
        D("2.50"),
    )


@pytest.mark.parametrize("left_behind", ["gpt-4o", "1", '["a"]', "[1, 2]", "{"])
def test_group_texts_a_changed_group_by_left_behind_read_as_no_values(left_behind):
    meter = MeterDef(1, "m", "e", "sum", "tokens", "", (), group_by=("model", "token_type"))

    assert combination_values(meter, left_behind) == (("model", None), ("token_type", None))


@pytest.mark.django_db
def test_a_thousand_overlapping_rows_are_refused_naming_twenty(row_counts):
    llm_tokens_meter()
    rows = [
        {"when": {"model": f"m{i}"}, "pricing": {"scheme": "per_unit", "unit_price": "1"}}
        for i in range(500)
    ]
    rows += [
        {"when": {"token_type": f"t{i}"}, "pricing": {"scheme": "per_unit", "unit_price": "2"}}
        for i in range(499)
    ]
    rows += [{"when": {}, "pricing": {"scheme": "per_unit", "unit_price": "4"}}]
    client = api_client("admin")
    before = row_counts()
    body = {
        "code": "p",
        "name": "P",
        "currency": "USD",
        "base_fee": "0",
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "price_by": ["model", "token_type"],
                "rates": rows,
            }
        ],
    }

    response = client.post("/api/v1/plans", body, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert len([path for path in fields if path.endswith(".when")]) == 20
    assert "More rows overlap than the 20 named" in fields["charges.0.rates"][0]
    assert len(response.content) < 20_000
    assert row_counts() == before


def test_ties_stop_at_the_number_asked_for():
    whens = [(("model", f"m{i}"),) for i in range(300)] + [
        (("token_type", f"t{i}"),) for i in range(300)
    ]

    assert len(ties(whens, most=21)) == 21
    assert (
        ties([(("model", "a"),), (("token_type", "b"),), (("model", "a"), ("token_type", "b"))])
        == []
    )
