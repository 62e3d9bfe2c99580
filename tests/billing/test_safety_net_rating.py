"""Safety net for tiered prices on invoice lines. plans.pricing.price_units is the
amount function (what the check, the draw-down and the spend limit price); the
invoice's lines come from plans.rating, one line per piece of the same walk
(plans.pricing.priced_pieces), to explain the amount line by line. The two must
agree:

- a graduated tier's flat fee is on the line of that tier (S8's tiers have none);
- a volume tier's `up_to` is inclusive on the line too: exactly at a boundary the
  line shows the lower tier's unit price (S8's 5,000,000 is far from its
  boundary).

Pure rating first, then the invoice that closes a period."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.usage.ingestion import events_ingest
from common.money import quantize_money
from invoices.models import Invoice
from plans.pricing import GRADUATED, VOLUME, PricingSpec, TierSpec, price_units
from plans.rating import usage_and_true_up
from plans.validation import ChargeSpec, VersionSpec
from tests.factories import CustomerFactory, MeterFactory, PlanFactory, subscribe

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)

# Graduated: the first 100 at 0.10 plus 5.00, up to 1,000 at 0.05 plus 2.00, beyond
# at 0.01 plus 1.00.
GRADUATED_FEES = PricingSpec(
    GRADUATED,
    tiers=(
        TierSpec(D(100), D("0.10"), D("5.00")),
        TierSpec(D(1000), D("0.05"), D("2.00")),
        TierSpec(None, D("0.01"), D("1.00")),
    ),
)
# Volume: all units up to 1,000 at 0.01 plus 1.00, up to 10,000 at 0.005 plus 2.00,
# beyond at 0.002 plus 3.00.
VOLUME_FEES = PricingSpec(
    VOLUME,
    tiers=(
        TierSpec(D(1000), D("0.01"), D("1.00")),
        TierSpec(D(10_000), D("0.005"), D("2.00")),
        TierSpec(None, D("0.002"), D("3.00")),
    ),
)


def version(pricing: PricingSpec) -> VersionSpec:
    """Every unit billable (nothing included), no fixed fee."""
    return VersionSpec(
        currency="USD", charges=(ChargeSpec("runs", "overage", D(0), pricing=pricing),)
    )


def rated(pricing: PricingSpec, units: int) -> list[tuple]:
    lines = usage_and_true_up(version(pricing), quantities={"runs": D(units)})
    return [(line.quantity, line.unit_price, line.amount) for line in lines]


def amount_function(pricing: PricingSpec, units: int) -> D:
    return quantize_money(price_units(D(units), pricing), "USD")


# Pure rating


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        # tier 1 only: 10 x 0.10 + 5.00
        (10, [(D(10), D("0.10"), D("6.00"))]),
        # exactly tier 1's end: no second flat fee
        (100, [(D(100), D("0.10"), D("15.00"))]),
        # 15.00; 900 x 0.05 + 2.00 = 47.00; 500 x 0.01 + 1.00 = 6.00
        (
            1500,
            [
                (D(100), D("0.10"), D("15.00")),
                (D(900), D("0.05"), D("47.00")),
                (D(500), D("0.01"), D("6.00")),
            ],
        ),
    ],
)
def test_a_graduated_tiers_flat_fee_is_on_its_line(units, expected):
    """Rule: each graduated tier's line carries that tier's flat fee, so the lines
    add up to the amount function's price."""
    lines = rated(GRADUATED_FEES, units)

    assert lines == expected
    assert sum(amount for _, _, amount in lines) == amount_function(GRADUATED_FEES, units)


@pytest.mark.parametrize(
    ("units", "unit_price", "amount"),
    [
        # exactly at tier 1's up_to: still tier 1 (inclusive), 1,000 x 0.01 + 1.00
        (1000, D("0.01"), D("11.00")),
        # one past: all at tier 2, 1,001 x 0.005 + 2.00 = 7.005 -> 7.01
        (1001, D("0.005"), D("7.01")),
        # exactly at tier 2's up_to: 10,000 x 0.005 + 2.00
        (10_000, D("0.005"), D("52.00")),
        (10_001, D("0.002"), D("23.00")),
    ],
)
def test_a_volume_line_shows_the_tier_its_total_reaches_up_to_inclusive(units, unit_price, amount):
    """Rule: `up_to` is inclusive on the line as in the amount function: the line's
    unit price is that of the tier whose amount it bills."""
    assert rated(VOLUME_FEES, units) == [(D(units), unit_price, amount)]
    assert amount == amount_function(VOLUME_FEES, units)


# On the invoice that closes the period


@pytest.fixture
def subscribe_to(db):
    """Subscribe acme from November 1st to a plan of `runs` (a sum of `n`) priced so."""
    MeterFactory(code="runs", event_name="run", aggregation="sum", value_property="n")
    acme = CustomerFactory(external_id="acme")

    def subscribe_to_runs(pricing: PricingSpec) -> None:
        subscribe(acme, PlanFactory(code="runs", version__charges=version(pricing).charges))

    return subscribe_to_runs


def close_with_runs(count: int) -> Invoice:
    event = {
        "id": "r1",
        "customer": "acme",
        "event_name": "run",
        "timestamp": datetime(2026, 11, 10, tzinfo=UTC).isoformat(),
        "properties": {"n": count},
    }
    assert events_ingest(events=[event], now=DEC_1).accepted == 1
    periods_close(as_of=DEC_1)
    return Invoice.objects.get(reason="period")


def invoice_lines(invoice: Invoice) -> list[tuple]:
    return [
        (line.kind, line.quantity, line.unit_price, line.amount) for line in invoice.lines.all()
    ]


@pytest.mark.django_db
def test_graduated_flat_fees_are_on_the_invoice_lines(subscribe_to):
    # given
    subscribe_to(GRADUATED_FEES)

    # when
    invoice = close_with_runs(1500)

    # then: the lines say what the amount function charges
    assert invoice_lines(invoice) == [
        ("overage", D(100), D("0.10"), D("15.00")),
        ("overage", D(900), D("0.05"), D("47.00")),
        ("overage", D(500), D("0.01"), D("6.00")),
    ]
    assert invoice.total == D("68.00") == amount_function(GRADUATED_FEES, 1500)


@pytest.mark.django_db
def test_a_volume_boundary_on_the_invoice_line(subscribe_to):
    # given
    subscribe_to(VOLUME_FEES)

    # when: exactly the first tier's up_to
    invoice = close_with_runs(1000)

    # then: the first tier's unit price and flat fee
    assert invoice_lines(invoice) == [("overage", D(1000), D("0.01"), D("11.00"))]
    assert invoice.total == D("11.00")
