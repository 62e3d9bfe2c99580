"""Exchange rates looked up (plans.exchange_rates): a pair's rate from its
moment until the pair's next, the inverse pair's when the pair has none, 1 in
one currency, None when nothing is in effect; the RateBook answers the same
from memory."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext

import pytest

from plans.exchange_rates import RateBook, pair_name, rate_at
from plans.models import ExchangeRate
from plans.pricing import EXACT_PRECISION

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def add(base, quote, rate, at, source="ECB reference"):
    return ExchangeRate.objects.create(
        base=base, quote=quote, rate=D(rate), effective_from=at, source=source
    )


@pytest.fixture
def rates(db):
    add("USD", "EUR", "0.90", OCT_1)
    add("USD", "EUR", "0.92", NOV_15)
    add("GBP", "EUR", "1.25", OCT_1)


def both(base, quote, at):
    """rate_at's answer, checked equal to a RateBook's (of the pair, and of all)."""
    answer = rate_at(base, quote, at)
    assert RateBook.load([(base, quote)]).rate(base, quote, at) == answer
    assert RateBook.load().rate(base, quote, at) == answer
    return answer


def test_a_rate_applies_from_its_moment_until_the_pairs_next(rates):
    assert both("USD", "EUR", OCT_1 - SECOND) is None
    assert both("USD", "EUR", OCT_1) == D("0.90")
    assert both("USD", "EUR", NOV_15 - SECOND) == D("0.90")
    assert both("USD", "EUR", NOV_15) == D("0.92")
    assert both("USD", "EUR", datetime(2027, 6, 1, tzinfo=UTC)) == D("0.92")


def test_the_inverse_pairs_rate_is_one_over_it_exactly(rates):
    with localcontext(prec=EXACT_PRECISION):
        assert both("EUR", "USD", OCT_1) == D(1) / D("0.90")
        assert both("EUR", "USD", NOV_15) == D(1) / D("0.92")
    assert both("EUR", "GBP", OCT_1) == D("0.8")
    assert both("EUR", "USD", OCT_1 - SECOND) is None


def test_the_pairs_own_rate_comes_before_the_inverse(rates):
    add("EUR", "USD", "1.20", OCT_1)

    assert both("EUR", "USD", OCT_1) == D("1.20")
    assert both("USD", "EUR", OCT_1) == D("0.90")


def test_one_currency_is_worth_one_of_itself_without_a_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rate_at("JPY", "JPY", OCT_1) == 1
        assert RateBook.load([("JPY", "JPY")]).rate("JPY", "JPY", OCT_1) == 1


def test_a_pair_without_rates_has_none(rates):
    assert both("USD", "JPY", NOV_15) is None
    assert both("USD", "GBP", NOV_15) is None  # no chain through EUR: finance enters the pair


def test_a_rate_book_reads_once_and_answers_from_memory(rates, django_assert_num_queries):
    with django_assert_num_queries(1):
        book = RateBook.load([("USD", "EUR"), ("EUR", "GBP")])
    with django_assert_num_queries(0):
        assert book.rate("USD", "EUR", NOV_15) == D("0.92")
        assert book.rate("GBP", "EUR", NOV_15) == D("1.25")
        assert book.rate("USD", "JPY", NOV_15) is None


def test_a_missing_pair_is_named_base_then_quote():
    assert pair_name("USD", "EUR") == "USD->EUR"


def test_a_rate_book_names_where_a_pairs_rate_changes_inside_a_window(rates):
    book = RateBook.load([("EUR", "USD")])
    dec_1 = datetime(2026, 12, 1, tzinfo=UTC)

    assert book.changes([("EUR", "USD")], OCT_1, dec_1) == {NOV_15}
    assert book.changes([("USD", "EUR")], OCT_1 - SECOND, dec_1) == {OCT_1, NOV_15}
    assert book.changes([("USD", "EUR")], NOV_15, dec_1) == set()  # the start is no change
    assert book.changes([("USD", "EUR")], OCT_1, NOV_15) == set()  # nor the end
    assert book.changes([("GBP", "EUR")], OCT_1 - SECOND, dec_1) == set()  # not loaded
