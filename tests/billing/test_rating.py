"""The rating engine against the worked scenarios (SCENARIOS.md): a month's cost is
its base fee and seats (in advance) plus its usage and true-up (in arrears)."""

from decimal import Decimal as D

import pytest

from plans.pricing import PricingSpec, TierSpec
from plans.rating import LineInput, fixed_lines, usage_and_true_up
from plans.validation import ChargeSpec, VersionSpec


def total(lines) -> D:
    """What the lines bill together."""
    return sum((line.amount for line in lines), D(0))


def per_unit(price: str) -> PricingSpec:
    return PricingSpec("per_unit", unit_price=D(price))


def month(version: VersionSpec, usage: dict[str, int], *, seats: int = 1) -> list[LineInput]:
    fixed = fixed_lines(version, plan_name="Plan", seats=seats, label="Nov 2026")
    quantities = {meter: D(n) for meter, n in usage.items()}
    return fixed + usage_and_true_up(version, quantities=quantities, meter_names={})


AI_ASSISTANT = VersionSpec(
    currency="USD",
    base_fee=D("19.99"),
    charges=(ChargeSpec("prompts", "overage", D(200), pricing=per_unit("0.05")),),
)


def test_s1_within_the_allowance_costs_the_base_fee():
    lines = month(AI_ASSISTANT, {"prompts": 180})

    assert [(line.kind, line.amount) for line in lines] == [("base_fee", D("19.99"))]
    assert total(lines) == D("19.99")


def test_s1_overage_line():
    lines = month(AI_ASSISTANT, {"prompts": 400})

    overage = lines[1]
    assert (overage.kind, overage.meter, overage.quantity, overage.unit_price, overage.amount) == (
        "overage",
        "prompts",
        D(200),
        D("0.05"),
        D("10.00"),
    )
    assert overage.description == "prompts over 200 included"
    assert total(lines) == D("29.99")


@pytest.mark.parametrize("messages", [0, 499, 500, 5000])
def test_s2_hard_cap_is_counted_never_billed(messages):
    version = VersionSpec(
        currency="USD", base_fee=D("9.99"), charges=(ChargeSpec("sms", "hard_cap", D(500)),)
    )

    lines = month(version, {"sms": messages})

    assert lines[1].quantity == messages
    assert lines[1].amount == D("0.00")
    assert total(lines) == D("9.99")


TOKENS_29 = {"currency": "USD", "base_fee": D("29.00")}


@pytest.mark.parametrize(
    ("tokens", "overage", "month_total"),
    [(120_000, D("2.10"), D("31.10")), (120_500, D("2.12"), D("31.12"))],
)
def test_s4_per_unit_overage(tokens, overage, month_total):
    version = VersionSpec(
        **TOKENS_29,
        charges=(ChargeSpec("tokens", "overage", D(50_000), pricing=per_unit("0.00003")),),
    )

    lines = month(version, {"tokens": tokens})

    assert lines[1].amount == overage
    assert total(lines) == month_total


def test_s4_package_pricing_rounds_partial_packages_up():
    version = VersionSpec(
        **TOKENS_29,
        charges=(
            ChargeSpec(
                "tokens",
                "overage",
                D(50_000),
                pricing=PricingSpec("package", package_size=D(1000), package_price=D("0.03")),
            ),
        ),
    )

    lines = month(version, {"tokens": 120_500})

    assert (lines[1].quantity, lines[1].unit_price, lines[1].amount) == (
        D(71),
        D("0.03"),
        D("2.13"),
    )
    assert total(lines) == D("31.13")


def test_s5_writing_assistant():
    version = VersionSpec(
        currency="USD",
        base_fee=D("19.00"),
        charges=(ChargeSpec("tokens", "overage", D(100_000), pricing=per_unit("0.00002")),),
    )

    assert total(month(version, {"tokens": 250_000})) == D("22.00")


S8_TIERS = (TierSpec(D(4_000_000), D("0.000008")), TierSpec(None, D("0.000006")))


def s8(scheme: str) -> VersionSpec:
    return VersionSpec(
        currency="USD",
        base_fee=D("49.00"),
        seat_price=D("10.00"),
        charges=(
            ChargeSpec(
                "tokens", "overage", D(1_000_000), pricing=PricingSpec(scheme, tiers=S8_TIERS)
            ),
        ),
    )


def test_s8_graduated_one_line_per_tier():
    lines = month(s8("graduated"), {"tokens": 6_000_000}, seats=5)

    assert [(line.kind, line.quantity, line.unit_price, line.amount) for line in lines] == [
        ("base_fee", D(1), D("49.00"), D("49.00")),
        ("seats", D(5), D("10.00"), D("50.00")),
        ("overage", D(4_000_000), D("0.000008"), D("32.00")),
        ("overage", D(1_000_000), D("0.000006"), D("6.00")),
    ]
    assert total(lines) == D("137.00")


def test_s8_volume_all_units_at_the_reached_tier():
    lines = month(s8("volume"), {"tokens": 6_000_000}, seats=5)

    assert (lines[2].quantity, lines[2].unit_price, lines[2].amount) == (
        D(5_000_000),
        D("0.000006"),
        D("30.00"),
    )
    assert total(lines) == D("129.00")


S9 = VersionSpec(
    currency="USD",
    minimum_commitment=D("500.00"),
    charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
)


def test_s9_minimum_commitment_true_up():
    lines = month(S9, {"api_calls": 300_000})

    assert [(line.kind, line.amount) for line in lines] == [
        ("overage", D("300.00")),
        ("minimum_commitment", D("200.00")),
    ]
    assert total(lines) == D("500.00")


def test_s9_no_true_up_above_the_commitment():
    lines = month(S9, {"api_calls": 700_000})

    assert [(line.kind, line.amount) for line in lines] == [("overage", D("700.00"))]


def test_prorated_fixed_fees_round_once_per_line():
    # Half of a 19.99 base fee is 9.995: rounded half up, once, to 10.00.
    lines = fixed_lines(AI_ASSISTANT, plan_name="AI", seats=1, label="part", fraction=D("0.5"))

    assert [(line.quantity, line.amount) for line in lines] == [(D("0.5"), D("10.00"))]


def test_jpy_lines_have_no_minor_unit():
    version = VersionSpec(
        currency="JPY",
        base_fee=D(1000),
        charges=(ChargeSpec("calls", "overage", D(0), pricing=per_unit("0.15")),),
    )

    lines = month(version, {"calls": 15})

    assert [line.amount for line in lines] == [D(1000), D(2)]  # 2.25 rounds to 2 yen


def test_wallet_drawn_charges_add_no_invoice_line():
    version = VersionSpec(
        currency="USD",
        charges=(
            ChargeSpec("runs", "credits", credits_per_unit=D(1)),
            ChargeSpec("tokens", "balance", pricing=per_unit("0.0000025")),
        ),
    )

    assert month(version, {"runs": 80, "tokens": 1_000_000}) == []


def test_a_price_per_million_tokens_writes_its_per_on_the_line_and_rounds_once():
    # given: 1,000,000 tokens included, then 1.25 per 1,000,000
    version = VersionSpec(
        currency="USD",
        charges=(
            ChargeSpec(
                "tokens",
                "overage",
                D(1_000_000),
                pricing=PricingSpec("per_unit", unit_price=D("1.25"), per=D(1_000_000)),
            ),
        ),
    )

    # when: 1,500,000 tokens, 500,000 over: 0.625
    (line,) = usage_and_true_up(version, quantities={"tokens": D(1_500_000)})

    # then
    assert (line.quantity, line.unit_price, line.per, line.amount) == (
        D(500_000),
        D("1.25"),
        D(1_000_000),
        D("0.63"),
    )


def test_graduated_tiers_per_million_write_one_line_per_tier_with_its_per():
    pricing = PricingSpec(
        "graduated",
        tiers=(
            TierSpec(D(500_000), D("2.00"), per=D(1_000_000)),
            TierSpec(None, D("1.00"), D("5.00"), per=D(1_000_000)),
        ),
    )
    version = VersionSpec(
        currency="USD", charges=(ChargeSpec("tokens", "overage", D(0), pricing=pricing),)
    )

    lines = usage_and_true_up(version, quantities={"tokens": D(625_000)})

    assert [(x.quantity, x.unit_price, x.per, x.amount) for x in lines] == [
        (D(500_000), D("2.00"), D(1_000_000), D("1.00")),
        (D(125_000), D("1.00"), D(1_000_000), D("5.13")),
    ]


def test_fixed_fee_lines_are_per_one_unit():
    lines = month(AI_ASSISTANT, {"prompts": 400})

    assert [line.per for line in lines] == [D(1), D(1)]
