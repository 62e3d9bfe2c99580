"""Money rules: currency exponents, half-up rounding, Stripe minor units, formatting.

Pure tests: no database.
"""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.money import (
    currency_exponent,
    format_decimal,
    format_money,
    is_known_currency,
    quantize_money,
    to_minor_units,
)

D = Decimal

CURRENCIES = ["USD", "EUR", "JPY", "BHD"]


# --- currency_exponent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3)],
)
def test_currency_exponent(currency, exponent):
    assert currency_exponent(currency) == exponent


# --- quantize_money ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # USD: x.xx5 rounds up
        ("2.115", "USD", "2.12"),
        ("0.005", "USD", "0.01"),
        # half-even would give 2.12 here
        ("2.125", "USD", "2.13"),
        ("2.1149999", "USD", "2.11"),
        ("2.1", "USD", "2.10"),
        ("0", "USD", "0.00"),
        ("0.0151851741", "USD", "0.02"),
        ("2.125", "EUR", "2.13"),
        # JPY: no decimals
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        # half-even would give 2 here
        ("2.5", "JPY", "3"),
        ("2.4999", "JPY", "2"),
        ("500", "JPY", "500"),
        # BHD: three decimals
        ("1.2345", "BHD", "1.235"),
        ("0.0005", "BHD", "0.001"),
        ("1.2365", "BHD", "1.237"),
        ("1.23449", "BHD", "1.234"),
    ],
)
def test_quantize_money_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    # when
    result = quantize_money(D(amount), currency)

    # then: the value and the number of decimals
    assert result == D(expected)
    assert str(result) == expected


money_amounts = st.decimals(
    min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False
)


@given(amount=money_amounts, currency=st.sampled_from(CURRENCIES))
def test_quantize_money_has_the_currency_decimals_and_is_within_half_a_minor_unit(amount, currency):
    # given
    exponent = currency_exponent(currency)
    half_minor_unit = D(5).scaleb(-exponent - 1)

    # when
    result = quantize_money(amount, currency)

    # then
    assert result.as_tuple().exponent == -exponent
    assert abs(result - amount) <= half_minor_unit


@given(
    whole_minor_units=st.integers(min_value=0, max_value=10**12),
    currency=st.sampled_from(CURRENCIES),
)
def test_quantize_money_rounds_an_exact_halfway_amount_up(whole_minor_units, currency):
    # given: an amount exactly halfway between two minor units, e.g. 2.115 USD
    exponent = currency_exponent(currency)
    amount = (D(whole_minor_units) + D("0.5")).scaleb(-exponent)

    # when
    result = quantize_money(amount, currency)

    # then
    assert result >= amount
    assert result == D(whole_minor_units + 1).scaleb(-exponent)


@given(amount=money_amounts, currency=st.sampled_from(CURRENCIES))
def test_quantize_money_is_idempotent_and_feeds_to_minor_units(amount, currency):
    # given
    exponent = currency_exponent(currency)
    rounded = quantize_money(amount, currency)

    # when / then
    assert quantize_money(rounded, currency) == rounded
    assert to_minor_units(rounded, currency) == rounded * 10**exponent


# --- to_minor_units ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("29.99", "USD", 2999),
        ("29.9", "USD", 2990),
        ("20", "USD", 2000),
        ("0.01", "EUR", 1),
        ("0", "USD", 0),
        ("500", "JPY", 500),
        ("500.00", "JPY", 500),
        ("1.234", "BHD", 1234),
    ],
)
def test_to_minor_units(amount, currency, minor):
    result = to_minor_units(D(amount), currency)

    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("29.999", "USD"),
        ("0.001", "EUR"),
        ("500.5", "JPY"),
        ("1.2345", "BHD"),
    ],
)
def test_to_minor_units_refuses_an_amount_not_whole_in_minor_units(amount, currency):
    with pytest.raises(ValueError, match="not a whole number of minor units"):
        to_minor_units(D(amount), currency)


# --- is_known_currency ------------------------------------------------------------


@pytest.mark.parametrize("code", ["USD", "EUR", "JPY", "BHD", "GBP"])
def test_is_known_currency_accepts_iso_codes(code):
    assert is_known_currency(code) is True


@pytest.mark.parametrize(
    "code",
    ["usd", "Usd", "US", "USDD", "", "XXX", "XTS", "ABC", 123, None, b"USD"],
)
def test_is_known_currency_refuses_anything_else(code):
    assert is_known_currency(code) is False


# --- format_money -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("20", "USD", "20.00"),
        ("20.0", "USD", "20.00"),
        ("29.9", "USD", "29.90"),
        ("31.12", "USD", "31.12"),
        ("0", "USD", "0.00"),
        ("2E+1", "USD", "20.00"),
        # a unit price keeps its decimals, without trailing zeros
        ("0.0000025", "USD", "0.0000025"),
        ("0.00000250", "USD", "0.0000025"),
        ("2.115", "USD", "2.115"),
        ("500", "JPY", "500"),
        ("500.00", "JPY", "500"),
        ("1E+3", "JPY", "1000"),
        ("1.234", "BHD", "1.234"),
        ("1.2", "BHD", "1.200"),
    ],
)
def test_format_money(amount, currency, expected):
    assert format_money(D(amount), currency) == expected


# --- format_decimal ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5E+5", "150000"),
        ("150000", "150000"),
        ("0.5", "0.5"),
        ("0.500", "0.5"),
        ("0.0000025", "0.0000025"),
        ("2.5E-6", "0.0000025"),
        ("0.000", "0"),
        ("0", "0"),
        ("-0", "0"),
        ("1000.10", "1000.1"),
    ],
)
def test_format_decimal(value, expected):
    assert format_decimal(D(value)) == expected
