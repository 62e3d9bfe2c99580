"""What one currency is worth in another at a moment, from the exchange rates
finance entered (plans.exchange_rate_models.ExchangeRate): the pair's rate in
effect then (the latest from at or before it), or else one over the inverse
pair's rate in effect then; 1 for a currency in itself; None when neither pair
has a rate in effect (a report names the pair: pair_name). `rate_at` reads one
moment from the database; a report converting many amounts loads a RateBook
once and asks it, from memory. Both answer by the one rule, `_rate_of`."""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, localcontext

from django.db.models import Q

from plans.models import ExchangeRate
from plans.pricing import EXACT_PRECISION

ONE = Decimal(1)
Pair = tuple[str, str]


def pair_name(base: str, quote: str) -> str:
    """How a pair is named where a rate is missing: "USD->EUR"."""
    return f"{base}->{quote}"


def _rate_of(direct: Decimal | None, inverse: Decimal | None) -> Decimal | None:
    """The rate from the pair's own rate in effect, or else the inverse pair's
    (1 / it, exact to EXACT_PRECISION digits), or None."""
    if direct is not None:
        return direct
    if inverse is None:
        return None
    with localcontext(prec=EXACT_PRECISION):
        return ONE / inverse


def _in_effect(base: str, quote: str, at: datetime) -> Decimal | None:
    return (
        ExchangeRate.objects.filter(base=base, quote=quote, effective_from__lte=at)
        .order_by("-effective_from")
        .values_list("rate", flat=True)
        .first()
    )


def rate_at(base: str, quote: str, at: datetime) -> Decimal | None:
    """1 `base` in `quote` at `at` (two queries at most; 1 when they are the
    same currency, None when no rate of either direction is in effect)."""
    if base == quote:
        return ONE
    direct = _in_effect(base, quote, at)
    return _rate_of(direct, None if direct is not None else _in_effect(quote, base, at))


class RateBook:
    """The exchange rates of some pairs (both directions of each) or of all,
    read once; `rate` answers as rate_at does, from memory (bisect on each
    pair's moments), for a report converting many amounts."""

    def __init__(self, rows: Iterable[tuple[str, str, datetime, Decimal]] = ()):
        self._moments: dict[Pair, list[datetime]] = {}
        self._rates: dict[Pair, list[Decimal]] = {}
        for base, quote, moment, rate in sorted(rows, key=lambda row: row[2]):
            self._moments.setdefault((base, quote), []).append(moment)
            self._rates.setdefault((base, quote), []).append(rate)

    @classmethod
    def load(cls, pairs: Iterable[Pair] | None = None) -> "RateBook":
        """The rates of `pairs` and of their inverses (every rate when None),
        in one query; no query for pairs of one currency or none at all."""
        rows = ExchangeRate.objects.all()
        if pairs is not None:
            wanted = {frozenset(pair) for pair in pairs if pair[0] != pair[1]}
            if not wanted:
                return cls()
            match = Q()
            for pair in wanted:
                first, second = sorted(pair)
                match |= Q(base=first, quote=second) | Q(base=second, quote=first)
            rows = rows.filter(match)
        return cls(rows.values_list("base", "quote", "effective_from", "rate"))

    def _in_effect(self, base: str, quote: str, at: datetime) -> Decimal | None:
        moments = self._moments.get((base, quote))
        if not moments:
            return None
        index = bisect_right(moments, at)
        return self._rates[(base, quote)][index - 1] if index else None

    def changes(self, pairs: Iterable[Pair], start: datetime, end: datetime) -> set[datetime]:
        """The moments in (start, end) at which a rate of one of `pairs`, or of its
        inverse, begins: where a window is split so each part has one rate."""
        found = set()
        for base, quote in pairs:
            for pair in ((base, quote), (quote, base)):
                moments = self._moments.get(pair, ())
                found.update(moments[bisect_right(moments, start) : bisect_left(moments, end)])
        return found

    def rate(self, base: str, quote: str, at: datetime) -> Decimal | None:
        """1 `base` in `quote` at `at`, as rate_at answers it."""
        if base == quote:
            return ONE
        direct = self._in_effect(base, quote, at)
        return _rate_of(direct, None if direct is not None else self._in_effect(quote, base, at))
