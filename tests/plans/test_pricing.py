"""price_units: the worked plan scenarios, each scheme's rules, and properties.

Pure tests: no database. Amounts are exact Decimals; a line is rounded once with
quantize_money, as the billing code does.
"""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.money import quantize_money
from plans.pricing import (
    GRADUATED,
    PACKAGE,
    PER_UNIT,
    VOLUME,
    PricedPiece,
    PricingSpec,
    TierSpec,
    price_units,
    priced_pieces,
)

D = Decimal


def per_unit(unit_price: str) -> PricingSpec:
    return PricingSpec(scheme=PER_UNIT, unit_price=D(unit_price))


def package(size: str, price: str) -> PricingSpec:
    return PricingSpec(scheme=PACKAGE, package_size=D(size), package_price=D(price))


def tiered(scheme: str, *tiers: TierSpec) -> PricingSpec:
    return PricingSpec(scheme=scheme, tiers=tuple(tiers))


def tier(up_to: str | None, unit_price: str, flat_fee: str = "0") -> TierSpec:
    return TierSpec(
        up_to=None if up_to is None else D(up_to),
        unit_price=D(unit_price),
        flat_fee=D(flat_fee),
    )


def overage(usage: int, included: int, pricing: PricingSpec) -> Decimal:
    """The rounded usage line: billable units (usage minus included) priced, rounded once."""
    billable = max(D(usage) - D(included), D(0))
    return quantize_money(price_units(billable, pricing), "USD")


def month_cost(
    *,
    base: str,
    usage: int,
    included: int,
    pricing: PricingSpec,
    seats: int = 0,
    seat_price: str = "0",
) -> Decimal:
    return D(base) + seats * D(seat_price) + overage(usage, included, pricing)


S8_TIERS = (tier("4000000", "0.000008"), tier(None, "0.000006"))


# --- Worked scenarios ---------------------------------------------------------


def test_s4_per_unit_overage_120000_tokens():
    # given: 29.00 base, 50,000 tokens included, 0.00003 per token over
    pricing = per_unit("0.00003")

    # when / then: 70,000 over -> 2.10
    assert price_units(D(70000), pricing) == D("2.10")
    assert overage(120000, 50000, pricing) == D("2.10")
    assert month_cost(base="29.00", usage=120000, included=50000, pricing=pricing) == D("31.10")


def test_s4_per_unit_overage_half_cent_rounds_up():
    # given
    pricing = per_unit("0.00003")

    # when: 70,500 over costs exactly 2.115
    exact = price_units(D(70500), pricing)

    # then: the line rounds half up, once
    assert exact == D("2.115")
    assert quantize_money(exact, "USD") == D("2.12")
    assert month_cost(base="29.00", usage=120500, included=50000, pricing=pricing) == D("31.12")


def test_s4_package_pricing_rounds_partial_package_up():
    # given: packages of 1,000 tokens at 0.03
    pricing = package("1000", "0.03")

    # when: 70,500 over is 70.5 packages -> 71 packages
    amount = price_units(D(70500), pricing)

    # then
    assert amount == D("2.13")
    assert overage(120500, 50000, pricing) == D("2.13")
    assert month_cost(base="29.00", usage=120500, included=50000, pricing=pricing) == D("31.13")


def test_s5_per_unit_overage():
    # given: 19.00 base, 100,000 included, 0.00002 per token over
    pricing = per_unit("0.00002")

    # when / then: 150,000 over -> 3.00
    assert price_units(D(150000), pricing) == D("3.00")
    assert overage(250000, 100000, pricing) == D("3.00")
    assert month_cost(base="19.00", usage=250000, included=100000, pricing=pricing) == D("22.00")


def test_s8_graduated_with_seats():
    # given: 49.00 base, 5 seats at 10.00, 1,000,000 included,
    # first 4,000,000 billable at 0.000008, the rest at 0.000006
    pricing = tiered(GRADUATED, *S8_TIERS)

    # when: 6,000,000 tokens -> 5,000,000 billable
    amount = price_units(D(5000000), pricing)

    # then: 4,000,000 x 0.000008 = 32.00, 1,000,000 x 0.000006 = 6.00
    assert amount == D("38.00")
    assert month_cost(
        base="49.00",
        seats=5,
        seat_price="10.00",
        usage=6000000,
        included=1000000,
        pricing=pricing,
    ) == D("137.00")


def test_s8_volume_with_seats():
    # given: the same tiers, priced as volume
    pricing = tiered(VOLUME, *S8_TIERS)

    # when: 5,000,000 billable reaches the second tier
    amount = price_units(D(5000000), pricing)

    # then: every unit at 0.000006
    assert amount == D("30.00")
    assert month_cost(
        base="49.00",
        seats=5,
        seat_price="10.00",
        usage=6000000,
        included=1000000,
        pricing=pricing,
    ) == D("129.00")


def test_usage_within_included_units_costs_only_the_base_fee():
    pricing = per_unit("0.00003")

    assert overage(40000, 50000, pricing) == D("0.00")
    assert month_cost(base="29.00", usage=50000, included=50000, pricing=pricing) == D("29.00")


# --- Graduated ------------------------------------------------------------------

GRADUATED_WITH_FEES = tiered(
    GRADUATED,
    tier("100", "0.10", flat_fee="5.00"),
    tier("1000", "0.05", flat_fee="2.00"),
    tier(None, "0.01", flat_fee="1.00"),
)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        # tier 1 reached: its units plus its flat fee
        ("1", "5.10"),
        # exactly at the end of tier 1: no tier 2 flat fee (up_to is inclusive)
        ("100", "15.00"),
        # one unit past tier 1: tier 2 flat fee applies once
        ("101", "17.05"),
        # end of tier 2: 10.00 + 5.00 + 900 x 0.05 + 2.00
        ("1000", "62.00"),
        # into the open tier: + 0.01 + 1.00
        ("1001", "63.01"),
        ("2000", "73.00"),
    ],
)
def test_graduated_flat_fees_apply_once_per_tier_reached(units, expected):
    assert price_units(D(units), GRADUATED_WITH_FEES) == D(expected)


def test_graduated_fractional_units_across_a_boundary():
    # given: 100.5 units, tier 1 ends at 100
    # when
    amount = price_units(D("100.5"), GRADUATED_WITH_FEES)

    # then: 100 x 0.10 + 5.00 + 0.5 x 0.05 + 2.00
    assert amount == D("17.025")


def test_graduated_single_open_tier_is_per_unit_plus_flat_fee():
    pricing = tiered(GRADUATED, tier(None, "0.002", flat_fee="3.00"))

    assert price_units(D(1500), pricing) == D("6.000")


# --- Volume ---------------------------------------------------------------------

VOLUME_WITH_FEES = tiered(
    VOLUME,
    tier("1000", "0.01", flat_fee="1.00"),
    tier("10000", "0.005", flat_fee="2.00"),
    tier(None, "0.002", flat_fee="3.00"),
)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("1", "1.01"),
        # exactly at the tier boundary: still tier 1 (up_to is inclusive)
        ("1000", "11.00"),
        # one past: every unit at tier 2's price, and only tier 2's flat fee
        ("1001", "7.005"),
        ("10000", "52.000"),
        ("10001", "23.002"),
    ],
)
def test_volume_prices_all_units_at_the_reached_tier(units, expected):
    assert price_units(D(units), VOLUME_WITH_FEES) == D(expected)


def test_s8_volume_at_exact_tier_boundary_uses_first_tier():
    pricing = tiered(VOLUME, *S8_TIERS)

    assert price_units(D(4000000), pricing) == D("32.000000")
    assert price_units(D(4000001), pricing) == D("24.000006")


def test_volume_without_open_tier_is_refused():
    pricing = tiered(VOLUME, tier("100", "0.01"))

    with pytest.raises(ValueError, match="open tier"):
        price_units(D(101), pricing)


# --- Package --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("1", "0.03"),
        ("999", "0.03"),
        ("1000", "0.03"),
        ("1001", "0.06"),
        # an exact multiple: no extra package
        ("3000", "0.09"),
        ("3000.5", "0.12"),
        ("70000", "2.10"),
    ],
)
def test_package_counts_whole_packages_rounding_up(units, expected):
    assert price_units(D(units), package("1000", "0.03")) == D(expected)


# --- Per unit and precision ---------------------------------------------------


def test_per_unit_price_with_ten_decimal_places_is_exact():
    # given
    pricing = per_unit("0.0000000123")

    # when
    amount = price_units(D(1234567), pricing)

    # then: exact, unrounded; the line rounds once
    assert amount == D("0.0151851741")
    assert quantize_money(amount, "USD") == D("0.02")


def test_graduated_prices_with_ten_decimal_places_are_exact():
    pricing = tiered(
        GRADUATED,
        tier("1000000", "0.0000012345"),
        tier(None, "0.0000006789"),
    )

    # 1,000,000 x 0.0000012345 + 500,001 x 0.0000006789
    assert price_units(D(1500001), pricing) == D("1.2345") + D("0.3394506789")
    assert price_units(D(1500001), pricing) == D("1.5739506789")


def test_volume_price_with_ten_decimal_places_is_exact():
    pricing = tiered(VOLUME, tier("10", "1"), tier(None, "0.0000000001"))

    assert price_units(D(123456789), pricing) == D("0.0123456789")


# --- Zero and negative units ----------------------------------------------------

ALL_SCHEMES = [
    pytest.param(per_unit("0.00003"), id="per_unit"),
    pytest.param(package("1000", "0.03"), id="package"),
    pytest.param(GRADUATED_WITH_FEES, id="graduated"),
    pytest.param(VOLUME_WITH_FEES, id="volume"),
]


@pytest.mark.parametrize("pricing", ALL_SCHEMES)
def test_zero_units_cost_nothing_under_every_scheme(pricing):
    # flat fees included: no usage, no charge
    assert price_units(D(0), pricing) == D(0)
    assert price_units(D("0.000"), pricing) == D(0)


@pytest.mark.parametrize("pricing", ALL_SCHEMES)
@pytest.mark.parametrize("units", ["-1", "-0.001", "-1000000"])
def test_negative_units_are_refused_under_every_scheme(pricing, units):
    with pytest.raises(ValueError, match="negative"):
        price_units(D(units), pricing)


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown pricing scheme"):
        price_units(D(1), PricingSpec(scheme="stairstep", unit_price=D(1)))


# --- Priced pieces (what plans.rating writes one line for) ---------------------


@pytest.mark.parametrize(
    ("pricing", "units", "expected"),
    [
        pytest.param(
            package("1000", "0.03"),
            "70500",
            [PricedPiece(D(71), D("0.03"), D("2.13"))],
            id="package_rounds_up",
        ),
        pytest.param(
            GRADUATED_WITH_FEES,
            "1001",
            [
                PricedPiece(D(100), D("0.10"), D("15.00"), D(0), D(100)),
                PricedPiece(D(900), D("0.05"), D("47.00"), D(100), D(1000)),
                PricedPiece(D(1), D("0.01"), D("1.01"), D(1000), None),
            ],
            id="graduated_one_per_tier_with_its_flat_fee",
        ),
        pytest.param(
            VOLUME_WITH_FEES,
            "1000",
            [PricedPiece(D(1000), D("0.01"), D("11.00"))],
            id="volume_up_to_inclusive",
        ),
    ],
)
def test_priced_pieces_are_what_price_units_adds_up(pricing, units, expected):
    pieces = priced_pieces(D(units), pricing)

    assert list(pieces) == expected
    assert price_units(D(units), pricing) == sum(piece.amount for piece in expected)


@pytest.mark.parametrize("pricing", ALL_SCHEMES)
def test_zero_units_have_no_pieces(pricing):
    assert priced_pieces(D(0), pricing) == ()


# --- Properties -----------------------------------------------------------------

units_st = st.decimals(
    min_value=0, max_value=10_000_000, places=3, allow_nan=False, allow_infinity=False
)
unit_price_st = st.decimals(
    min_value=0, max_value=10, places=10, allow_nan=False, allow_infinity=False
)
flat_fee_st = st.decimals(
    min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False
)
# How many units a price is for: mostly 1, else sizes whose division is exact
# (uneven ones, like 3, are tested on their rounding below).
per_st = st.sampled_from([D(1), D(1), D(1000), D(1_000_000), D("2.5"), D(4), D("0.5")])


@st.composite
def tier_lists(draw) -> tuple[TierSpec, ...]:
    """Valid tiers: ascending, contiguous, positive bounds, the last one open."""
    bounds = draw(
        st.lists(
            st.decimals(
                min_value=D("0.001"),
                max_value=5_000_000,
                places=3,
                allow_nan=False,
                allow_infinity=False,
            ),
            min_size=0,
            max_size=4,
            unique=True,
        )
    )
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(
        TierSpec(
            up_to=up_to,
            unit_price=draw(unit_price_st),
            flat_fee=draw(flat_fee_st),
            per=draw(per_st),
        )
        for up_to in ups
    )


def reference_graduated(units: Decimal, tiers: tuple[TierSpec, ...]) -> Fraction:
    """Graduated pricing computed independently with exact fractions."""
    if units == 0:
        return Fraction(0)
    total = Fraction(0)
    lower = Fraction(0)
    for t in tiers:
        upper = Fraction(units) if t.up_to is None else min(Fraction(units), Fraction(t.up_to))
        total += (upper - lower) * Fraction(t.unit_price) / Fraction(t.per) + Fraction(t.flat_fee)
        if t.up_to is None or units <= t.up_to:
            break
        lower = upper
    return total


@given(tiers=tier_lists(), u1=units_st, u2=units_st)
def test_graduated_never_decreases_as_units_grow(tiers, u1, u2):
    # given
    low, high = sorted((u1, u2))
    pricing = PricingSpec(scheme=GRADUATED, tiers=tiers)

    # when / then
    assert price_units(low, pricing) <= price_units(high, pricing)


@given(tiers=tier_lists(), units=units_st)
def test_graduated_matches_an_exact_reference(tiers, units):
    pricing = PricingSpec(scheme=GRADUATED, tiers=tiers)

    assert Fraction(price_units(units, pricing)) == reference_graduated(units, tiers)


@given(tiers=tier_lists(), data=st.data())
def test_volume_and_graduated_agree_inside_the_first_tier(tiers, data):
    # given: units within the first tier (or anything, when that tier is open)
    first_up_to = tiers[0].up_to
    units = data.draw(
        units_st
        if first_up_to is None
        else st.decimals(
            min_value=0, max_value=first_up_to, places=3, allow_nan=False, allow_infinity=False
        )
    )

    # when
    graduated = price_units(units, PricingSpec(scheme=GRADUATED, tiers=tiers))
    volume = price_units(units, PricingSpec(scheme=VOLUME, tiers=tiers))

    # then
    assert graduated == volume


@given(tiers=tier_lists(), units=units_st)
def test_volume_is_all_units_at_the_reached_tier(tiers, units):
    # given
    reached = next(t for t in tiers if t.up_to is None or units <= t.up_to)
    expected = (
        Fraction(0)
        if units == 0
        else Fraction(units) * Fraction(reached.unit_price) / Fraction(reached.per)
        + Fraction(reached.flat_fee)
    )

    # when
    amount = price_units(units, PricingSpec(scheme=VOLUME, tiers=tiers))

    # then
    assert Fraction(amount) == expected


@given(
    units=units_st,
    size=st.decimals(
        min_value=D("0.001"), max_value=100_000, places=3, allow_nan=False, allow_infinity=False
    ),
    price=st.decimals(
        min_value=D("0.01"), max_value=1000, places=4, allow_nan=False, allow_infinity=False
    ),
)
def test_package_amounts_are_whole_packages(units, size, price):
    # given
    pricing = PricingSpec(scheme=PACKAGE, package_size=size, package_price=price)
    expected_packages = math.ceil(Fraction(units) / Fraction(size))

    # when
    amount = price_units(units, pricing)

    # then
    packages = amount / price
    assert packages == packages.to_integral_value()
    assert packages == expected_packages
    assert amount == expected_packages * price


@given(units=units_st, unit_price=unit_price_st)
def test_per_unit_is_exactly_units_times_price(units, unit_price):
    amount = price_units(units, PricingSpec(scheme=PER_UNIT, unit_price=unit_price))

    assert amount == units * unit_price
    assert Fraction(amount) == Fraction(units) * Fraction(unit_price)


# --- Prices per a larger size of units (`per`) -------------------------------------


def per_unit_per(unit_price: str, per: str) -> PricingSpec:
    return PricingSpec(scheme=PER_UNIT, unit_price=D(unit_price), per=D(per))


def tier_per(up_to: str | None, unit_price: str, per: str, flat_fee: str = "0") -> TierSpec:
    return TierSpec(
        up_to=None if up_to is None else D(up_to),
        unit_price=D(unit_price),
        flat_fee=D(flat_fee),
        per=D(per),
    )


def test_a_million_tokens_at_2_50_per_million_cost_2_50():
    pieces = priced_pieces(D(1_000_000), per_unit_per("2.50", "1000000"))

    assert pieces == (PricedPiece(D(1_000_000), D("2.50"), D("2.50"), per=D(1_000_000)),)


def test_half_a_million_at_1_25_per_million_is_0_625_and_the_line_rounds_once_up():
    amount = price_units(D(500_000), per_unit_per("1.25", "1000000"))

    assert amount == D("0.625")
    assert quantize_money(amount, "USD") == D("0.63")


def test_per_unit_price_per_thousand_with_ten_decimal_places_is_exact():
    amount = price_units(D(123_457), per_unit_per("0.0000012345", "1000"))

    assert amount == D("0.0001524076665")


def test_graduated_tiers_per_million_price_each_tier_and_keep_flat_fees_whole():
    # given: the first 500,000 at 2.00 per million, the rest at 1.00 per million,
    # with a 5.00 fee for reaching the second tier (not divided by per)
    pricing = tiered(
        GRADUATED,
        tier_per("500000", "2.00", "1000000"),
        tier_per(None, "1.00", "1000000", flat_fee="5.00"),
    )

    # when
    pieces = priced_pieces(D(625_000), pricing)

    # then
    assert [(p.quantity, p.amount, p.per) for p in pieces] == [
        (D(500_000), D("1.00"), D(1_000_000)),
        (D(125_000), D("5.125"), D(1_000_000)),
    ]
    assert price_units(D(625_000), pricing) == D("6.125")


def test_625000_units_in_one_graduated_tier_at_1_00_per_million_cost_0_625():
    pricing = tiered(GRADUATED, tier_per(None, "1.00", "1000000"))

    assert price_units(D(625_000), pricing) == D("0.625")


def test_volume_prices_all_units_at_the_reached_tier_per_thousand():
    # given: up to 10,000 at 0.50 per 1,000; above at 0.40 per 1,000 plus 1.00
    pricing = tiered(
        VOLUME,
        tier_per("10000", "0.50", "1000"),
        tier_per(None, "0.40", "1000", flat_fee="1.00"),
    )

    # when / then
    assert price_units(D(10_000), pricing) == D("5.00")
    assert price_units(D(12_345), pricing) == D("5.938")
    assert priced_pieces(D(12_345), pricing)[0].per == D(1000)


def test_tiers_may_differ_in_what_their_price_is_for():
    pricing = tiered(
        GRADUATED,
        tier_per("1000", "0.01", "1"),
        tier_per(None, "3.00", "1000"),
    )

    assert price_units(D(3_000), pricing) == D("16.00")


@pytest.mark.parametrize(
    "units, expected",
    [
        # 1 x 1.00 / 3 = 0.3333..., 0.33
        ("1", "0.33"),
        # 2 x 1.00 / 3 = 0.6666..., 0.67
        ("2", "0.67"),
        # 3 x 1.00 / 3 = 1, exactly
        ("3", "1.00"),
    ],
)
def test_a_price_per_uneven_size_rounds_the_line_once(units, expected):
    amount = price_units(D(units), per_unit_per("1.00", "3"))

    assert quantize_money(amount, "USD") == D(expected)


@given(units=units_st, unit_price=unit_price_st, per=per_st)
def test_per_unit_is_exactly_units_times_price_over_per(units, unit_price, per):
    pricing = PricingSpec(scheme=PER_UNIT, unit_price=unit_price, per=per)

    amount = price_units(units, pricing)

    assert Fraction(amount) == Fraction(units) * Fraction(unit_price) / Fraction(per)


@given(units=units_st, unit_price=unit_price_st)
def test_per_one_prices_as_a_plain_unit_price(units, unit_price):
    plain = price_units(units, PricingSpec(scheme=PER_UNIT, unit_price=unit_price))
    per_one = price_units(units, PricingSpec(scheme=PER_UNIT, unit_price=unit_price, per=D(1)))

    assert per_one == plain
    assert str(per_one) == str(plain)
