"""A rate card's rows found once a card and its lines priced in one exact context
(issue 50's faster /usage) price exactly as every row tried and each line priced
alone did: cards of every scheme (per_unit with `per`, graduated, volume, package,
credits rows, the default row), the period's lines and their projection."""

from dataclasses import replace
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.usage.statement import statement_of
from plans import rate_card_pricing as rate_cards
from plans.pricing import GRADUATED, PACKAGE, PER_UNIT, VOLUME, PricingSpec, TierSpec
from plans.rate_card_pricing import (
    RateSpec,
    card_rows,
    rated_quantities,
    row_charge,
    row_for,
    row_index,
    row_quantity,
)
from plans.rating import priced_lines, rate_description, rated_lines
from plans.validation import ChargeSpec, VersionSpec

ZERO = D(0)
MODELS = ("gpt-4o", "claude", "o3", None)
TYPES = ("input", "output", None)


def old_rated_lines(charge, combinations, *, kind, meter_name, currency):
    """plans.rating.rated_lines as it was: every row tried for each combination,
    each row's lines priced alone, then given the row's group."""
    totals: dict[int, D] = {}
    for combination, quantity in combinations.items():
        index = row_index(charge.rates, dict(combination))
        if index is None or not quantity:
            continue
        totals[index] = totals.get(index, ZERO) + quantity
    lines = []
    for index in sorted(totals):
        rate = charge.rates[index]
        lines.extend(
            replace(line, group=rate.when)
            for line in priced_lines(
                rate.pricing,
                totals[index],
                kind=kind,
                description=rate_description(meter_name, rate.when),
                meter=charge.meter,
                currency=currency,
            )
        )
    return lines


prices = st.decimals(min_value=D(0), max_value=D(50), places=6)
pers = st.sampled_from([D(1), D(1000), D(1_000_000)])


@st.composite
def tier_specs(draw):
    bounds = sorted(
        draw(st.sets(st.integers(min_value=1, max_value=2_000_000), min_size=0, max_size=3))
    )
    return tuple(
        TierSpec(
            D(bound) if bound is not None else None,
            draw(prices),
            draw(st.sampled_from([ZERO, D("0.10"), D("1.005")])),
            draw(pers),
        )
        for bound in [*bounds, None]
    )


@st.composite
def pricings(draw):
    scheme = draw(st.sampled_from([PER_UNIT, GRADUATED, VOLUME, PACKAGE]))
    if scheme == PER_UNIT:
        return PricingSpec(PER_UNIT, unit_price=draw(prices), per=draw(pers))
    if scheme == PACKAGE:
        return PricingSpec(
            PACKAGE,
            package_size=D(draw(st.integers(min_value=1, max_value=10_000))),
            package_price=draw(prices),
        )
    return PricingSpec(scheme, tiers=draw(tier_specs()))


whens = st.builds(
    lambda model, token_type: tuple(
        (name, value)
        for name, value in (("model", model), ("token_type", token_type))
        if value is not None
    ),
    st.sampled_from(MODELS),
    st.sampled_from(TYPES),
)


@st.composite
def cards(draw, *, credits=False):
    rows = [
        RateSpec(when=when, pricing=draw(pricings()))
        if not credits
        else RateSpec(when=when, credits_per_unit=draw(prices), per=draw(pers))
        for when in draw(st.lists(whens, min_size=0, max_size=8))
    ]
    # The default row, somewhere on the card (usually last).
    at = draw(st.integers(min_value=0, max_value=len(rows)))
    default = RateSpec(pricing=draw(pricings())) if not credits else RateSpec(credits_per_unit=D(2))
    rows.insert(at, default)
    return tuple(rows)


quantities = st.one_of(
    st.integers(min_value=0, max_value=3_000_000).map(D),
    st.decimals(min_value=D(0), max_value=D(5_000_000), places=10),
)
usage = st.dictionaries(
    st.tuples(st.sampled_from(MODELS), st.sampled_from(TYPES)).map(
        lambda pair: (("model", pair[0]), ("token_type", pair[1]))
    ),
    quantities,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(rates=cards(), combinations=usage)
def test_a_cards_lines_are_priced_as_each_row_alone(rates, combinations):
    charge = ChargeSpec("tokens", "overage", D(0), price_by=("model", "token_type"), rates=rates)
    words = {"kind": "overage", "meter_name": "Tokens", "currency": "USD"}
    expected = old_rated_lines(charge, combinations, **words)
    assert rated_lines(charge, rated_quantities(rates, combinations), **words) == expected
    # A second read finds its rows kept: the same lines.
    assert rated_lines(charge, rated_quantities(rates, combinations), **words) == expected


def unstamped(lines: list) -> list:
    return [replace(line, usage_groups=()) for line in lines]


@settings(max_examples=100, deadline=None)
@given(
    rates=cards(),
    combinations=usage,
    scale=st.tuples(st.integers(min_value=1, max_value=31), st.integers(min_value=1, max_value=31)),
)
def test_the_projection_prices_each_row_at_its_projected_quantity(rates, combinations, scale):
    # given: a statement of one card charge, and the same at the quantity projected
    charge = ChargeSpec("tokens", "overage", D(0), price_by=("model", "token_type"), rates=rates)
    spec = VersionSpec(currency="USD", charges=(charge,))
    total = sum(combinations.values(), ZERO)
    statement = statement_of(
        spec,
        seats=0,
        quantities={"tokens": total},
        combinations={"tokens": combinations},
        names={"tokens": "Tokens"},
    )
    projected_total = total * D(scale[0]) / D(scale[1])

    # when: the projection's lines are read, after the statement's (as /usage reads)
    assert statement.usage is not None
    projected = statement.at({"tokens": projected_total})

    # then: each row priced at its projected quantity, as every row tried alone:
    # a tiered row is not a scaled line
    scaled = projected.part.combinations["tokens"]
    words = {"kind": "overage", "meter_name": "Tokens", "currency": "USD"}
    # (the statement stamps each line with the combinations its row priced, which
    # the lines rated before the stamp do not carry)
    assert unstamped(statement.usage) == old_rated_lines(charge, combinations, **words)
    assert unstamped(projected.usage) == old_rated_lines(charge, scaled, **words)
    for line in statement.usage:
        assert {dict(c).get("model") for c, _q in line.usage_groups} <= set(MODELS)
    assert projected.usage_total == sum(
        (line.amount for line in old_rated_lines(charge, scaled, **words)), ZERO
    )


@settings(max_examples=150, deadline=None)
@given(
    rates=st.one_of(cards(), cards(credits=True)),
    model=st.sampled_from(MODELS),
    token_type=st.sampled_from(TYPES),
    combinations=usage,
)
def test_the_row_found_for_an_events_values_is_the_row_every_row_tried_finds(
    rates, model, token_type, combinations
):
    values = {"model": model, "token_type": token_type}
    index = row_index(rates, values)
    for _ in range(2):  # found, then kept
        assert row_for(rates, values) is rates[index]
        assert card_rows(rates)(tuple(values.items())) == index
    charge = ChargeSpec("tokens", "credits", price_by=("model", "token_type"), rates=rates)
    row = rates[index]
    if row.credits_per_unit is not None:
        assert row_charge(charge, values).credits_per_unit == row.credits_per_unit / row.per
    totals: dict[int, D] = {}
    for combination, quantity in combinations.items():
        found = row_index(rates, dict(combination))
        if quantity:
            totals[found] = totals.get(found, ZERO) + quantity
    assert rated_quantities(rates, combinations) == sorted(totals.items())
    assert row_quantity(rates, combinations, values) == totals.get(index, ZERO)


def test_rows_are_kept_per_card_and_a_list_is_found_afresh():
    gpt = RateSpec(when=(("model", "gpt-4o"),), credits_per_unit=D(1))
    default = RateSpec(credits_per_unit=D(2))
    card = (gpt, default)
    values = (("model", "gpt-4o"), ("token_type", "input"))
    assert card_rows(card)(values) == 0
    # An equal card of another tuple is its own entry; a list is never kept.
    assert card_rows((default, gpt))(values) == 1
    rows = [gpt, default]
    assert card_rows(rows)(values) == 0
    rows.reverse()
    assert card_rows(rows)(values) == 1


def test_a_card_keeps_so_many_combinations_then_starts_again(monkeypatch):
    monkeypatch.setattr(rate_cards._CardRows, "MOST", 3)
    card = (RateSpec(when=(("model", "gpt-4o"),), credits_per_unit=D(1)), RateSpec())
    find = card_rows(card)
    for i in range(7):
        assert find((("model", f"m{i}"),)) == 1
    assert len(find.found) <= 3
    # A value that is not text is found, not kept.
    assert find((("model", ["gpt-4o"]),)) == 1
