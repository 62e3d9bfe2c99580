"""The cost of usage (billing.margins.costs) on meters of one group_by
property and of none: each combination at its best matching cost rate, the
rest uncosted, and only the customers billed in the answer's currency."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.margins.costs import usage_costs
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from customers.services import customer_create
from plans.cost_rules import cost_rate_create
from plans.services import meter_create

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
AT = datetime(2026, 11, 5, 10, 20, tzinfo=UTC)


def image(event_id: str, customer: str, size: object = None) -> dict:
    return {
        "id": event_id,
        "customer": customer,
        "event_name": "image.generated",
        "timestamp": AT.isoformat(),
        "properties": {} if size is None else {"size": size},
    }


def test_each_image_is_costed_at_its_size_or_the_default(db):
    meter_create(
        code="images",
        name="Images",
        event_name="image.generated",
        aggregation="count",
        group_by=["size"],
    )
    customer_create(external_id="acme", name="Acme", currency="USD")
    customer_create(external_id="zeta", name="Zeta", currency="EUR")
    cost_rate_create(
        meter="images",
        when={"size": "1024"},
        unit_cost=D("0.04"),
        currency="USD",
        effective_from=NOV_1,
    )
    cost_rate_create(meter="images", unit_cost=D("0.02"), currency="USD", effective_from=NOV_1)
    events = [image("a", "acme", "1024"), image("b", "acme", 1024), image("c", "acme", "512")]
    events += [image("d", "acme"), image("e", "zeta", "1024")]
    result = events_ingest(events=events, now=AT)
    assert (result.rejected, result.duplicates) == ([], 0)

    costs = usage_costs(start=NOV_1, end=DEC_1, currency="USD")
    found = sorted((str(dict(u.values)["size"]), u.quantity, u.cost, u.uncosted) for u in costs)
    # The number 1024 is the text "1024", as filters and rate cards read it.
    assert found == [
        ("1024", D(2), D("0.08"), D(0)),
        ("512", D(1), D("0.02"), D(0)),
        ("None", D(1), D("0.02"), D(0)),
    ]
    # Zeta is billed in euros: no euro rate costs its image.
    (zeta,) = usage_costs(start=NOV_1, end=DEC_1, currency="EUR")
    assert (zeta.quantity, zeta.cost, zeta.uncosted) == (D(1), D(0), D(1))


def test_customers_of_the_same_size_are_each_costed_at_the_rate_of_their_hour(db):
    # The same group text on several customers' rows and on both sides of a rate
    # change: each row at the rate in effect at its hour, per customer.
    meter_create(
        code="images",
        name="Images",
        event_name="image.generated",
        aggregation="count",
        group_by=["size"],
    )
    for name in ("acme", "beta", "gamma"):
        customer_create(external_id=name, name=name.title(), currency="USD")
    change = datetime(2026, 11, 10, tzinfo=UTC)
    for effective_from, unit_cost in ((NOV_1, "0.04"), (change, "0.03")):
        cost_rate_create(
            meter="images",
            when={"size": "1024"},
            unit_cost=D(unit_cost),
            currency="USD",
            effective_from=effective_from,
        )
    later = datetime(2026, 11, 20, 8, tzinfo=UTC).isoformat()
    events = [image("a1", "acme", "1024"), image("b1", "beta", "1024"), image("g1", "gamma", "512")]
    events += [{**image("a2", "acme", "1024"), "timestamp": later}]
    events += [{**image("b2", "beta", "1024"), "timestamp": later}]
    events += [{**image("b3", "beta", "1024"), "timestamp": later}]
    events += [{**image("g2", "gamma", "512"), "timestamp": later}]
    result = events_ingest(events=events, now=datetime(2026, 11, 20, 9, tzinfo=UTC))
    assert (result.rejected, result.duplicates) == ([], 0)

    costs = usage_costs(start=NOV_1, end=DEC_1, currency="USD")
    names = dict(Customer.objects.values_list("pk", "external_id"))
    found = sorted(
        (names[u.customer_id], dict(u.values)["size"], u.quantity, u.cost, u.uncosted)
        for u in costs
    )
    assert found == [
        ("acme", "1024", D(2), D("0.07"), D(0)),
        ("beta", "1024", D(3), D("0.10"), D(0)),
        ("gamma", "512", D(2), D(0), D(2)),
    ]
    # All customers together (a window's total): each size's hours added up
    # per segment, then costed at the segment's rate: the rows above added up.
    together = usage_costs(start=NOV_1, end=DEC_1, currency="USD", per_customer=False)
    assert sorted(
        (u.customer_id, dict(u.values)["size"], u.quantity, u.cost, u.uncosted) for u in together
    ) == [(None, "1024", D(5), D("0.17"), D(0)), (None, "512", D(2), D(0), D(2))]
