"""Rate cards: one charge priced by event properties (the meter's group_by), as
AI products are billed per model and kind of token.

A card is rows, each a `when` (values of some of the charge's `price_by`
properties) and a price. Usage is priced by the row whose `when` matches it with
the most properties; the row with `when` {} (the default) prices the rest. The
catalog refuses a card on which some usage would match two rows equally well
(`ties`), so `row_for` is never ambiguous. Pure: no database; quantities per
combination of group values come from billing.usage.breakdowns.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from itertools import combinations as subsets

from plans.pricing import EXACT_PRECISION, PricingSpec

ZERO = Decimal(0)
ONE = Decimal(1)

# (property, value) pairs, sorted by property: one row's conditions.
When = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RateSpec:
    """One row of a card: the usage it prices and how. Soft cap and balance
    charges price a row's quantity with `pricing`; credits charges draw
    `credits_per_unit` credits for every `per` units."""

    when: When = ()
    pricing: PricingSpec | None = None
    credits_per_unit: Decimal | None = None
    per: Decimal = ONE

    @property
    def group(self) -> dict[str, str]:
        """The row's `when` as the invoice line's and the API's `group`."""
        return dict(self.when)


def when_of(values: Mapping[str, str]) -> When:
    return tuple(sorted(values.items()))


def matches(when: When, values: Mapping[str, str | None]) -> bool:
    """Whether usage with these property values (None: none) is priced by a row."""
    for name, value in when:  # noqa: SIM110 (runs for every combination read)
        if values.get(name) != value:
            return False
    return True


def row_for(rates: Sequence[RateSpec], values: Mapping[str, str | None]) -> RateSpec | None:
    """The row pricing usage with these property values: the matching row with
    the most properties (first of them on a card the catalog has not checked);
    None only for a card without a default row."""
    index = kept_row_index(rates, values)
    return None if index is None else rates[index]


def kept_row_index(rates: Sequence[RateSpec], values: Mapping[str, str | None]) -> int | None:
    """row_index's answer, from the card's rows kept per combination (card_rows)."""
    return card_rows(rates)(tuple(values.items()))


def row_index(rates: Sequence[RateSpec], values: Mapping[str, str | None]) -> int | None:
    best = None
    for index, rate in enumerate(rates):
        if matches(rate.when, values) and (best is None or len(rate.when) > len(rates[best].when)):
            best = index
    return best


def row_finder(rates: Sequence[RateSpec]) -> Callable[[Mapping[str, str | None]], int | None]:
    """row_index on one card for many values: the rows by their `when`, so that
    finding one tries the subsets of the values' pairs (8 at most for a meter's
    group_by of 3 properties), not every row (151 on a card of 50 models)."""
    by_when: dict[frozenset, int] = {}
    for index, rate in enumerate(rates):
        names = {name for name, _ in rate.when}
        if len(names) != len(rate.when) or any(not isinstance(v, str) for _, v in rate.when):
            # A card the catalog has not checked (a property twice, a value not
            # text): every row is tried.
            return lambda values: row_index(rates, values)
        by_when.setdefault(frozenset(rate.when), index)
    widest = max((len(rate.when) for rate in rates), default=0)

    def find(values: Mapping[str, str | None]) -> int | None:
        pairs = [(name, value) for name, value in values.items() if value is not None]
        if len(pairs) > 4 or any(not isinstance(value, str) for _, value in pairs):
            return row_index(rates, values)  # not a meter's combination: every row
        # The most properties first; of rows as specific, the first on the card.
        for size in range(min(len(pairs), widest), -1, -1):
            found = [by_when[key] for key in map(frozenset, subsets(pairs, size)) if key in by_when]
            if found:
                return min(found)
        return None

    return find


# Usage's values of a meter's group_by properties (None: none), as pairs in
# group_by order: one combination a period's quantity is read per
# (billing.usage.breakdowns.usage_combinations).
Combination = tuple[tuple[str, str | None], ...]


def combination_order(combination: Combination) -> tuple:
    """A combination's place among others: by its values, none first."""
    return tuple((name, value is not None, value or "") for name, value in combination)


class _CardRows:
    """row_finder on one card, with the row it found for each combination kept:
    a /usage read assigned its card's combinations to rows three times (the
    statement, its projection, the rates shown), a fifth of a profiled read, and
    a check found its row by trying all 151 rows."""

    __slots__ = ("find", "found", "rates")

    # Combinations kept a card: a meter's values are few (models, token types),
    # but a card on a property of many values must not keep them all.
    MOST = 20_000

    def __init__(self, rates: Sequence[RateSpec]):
        self.rates = rates
        self.find = row_finder(rates)
        self.found: dict[Combination, int | None] = {}

    def __call__(self, combination: Combination) -> int | None:
        try:
            return self.found[combination]
        except KeyError:
            pass
        except TypeError:  # a value that is not text (a list): not kept
            return self.find(dict(combination))
        index = self.find(dict(combination))
        if len(self.found) >= self.MOST:
            self.found.clear()
        self.found[combination] = index
        return index


# The cards seen, by the identity of their rows' tuple: a published version's
# spec is kept per process (plans.selectors.version_spec), so its card is the same
# tuple read after read. Each entry holds its tuple, so no other can take its id.
_CARDS: dict[int, _CardRows] = {}
_MOST_CARDS = 256


def card_rows(rates: Sequence[RateSpec]) -> Callable[[Combination], int | None]:
    """The index of the row pricing usage with a combination's values (pairs, a
    value None for none), as row_index finds it; kept per card (a tuple: a list
    may change, it is found afresh)."""
    if type(rates) is not tuple:
        return _CardRows(rates)
    card = _CARDS.get(id(rates))
    if card is None or card.rates is not rates:
        if len(_CARDS) >= _MOST_CARDS:
            _CARDS.clear()  # drafts are read afresh each time: new tuples
        card = _CARDS[id(rates)] = _CardRows(rates)
    return card


def card_rows_clear() -> None:
    """Forget the cards' rows found (config.process_caches)."""
    _CARDS.clear()


def rated_quantities(
    rates: Sequence[RateSpec], combinations: Mapping[Combination, Decimal]
) -> list[tuple[int, Decimal]]:
    """A period's quantity of each row that priced usage (by its index), in the
    card's order: each combination counted under its row. Rows add up (only
    count and sum meters take cards)."""
    totals: dict[int, Decimal] = {}
    row_of = card_rows(rates)
    for combination, quantity in combinations.items():
        index = row_of(combination)
        if index is None or not quantity:
            continue
        totals[index] = totals.get(index, ZERO) + quantity
    return [(index, totals[index]) for index in sorted(totals)]


def row_quantity(
    rates: Sequence[RateSpec],
    combinations: Mapping[Combination, Decimal],
    values: Mapping[str, str | None],
) -> Decimal:
    """The quantity so far of the row that prices usage with these values (what
    its tiers count)."""
    index = kept_row_index(rates, values)
    return dict(rated_quantities(rates, combinations)).get(index, ZERO)


def row_combination(rate: RateSpec) -> Combination:
    """The combination a quantity typed for one row stands for (the price
    sandbox): its own values, no others."""
    return rate.when


def ties(whens: Sequence[When], *, most: int | None = None) -> list[tuple[int, int]]:
    """The pairs of rows (by index) that some usage would match equally well:
    two rows with the same number of properties whose values agree on those
    they share, with no row of more properties matching all the usage both
    match (its `when` inside their union). The same `when` twice is a tie.
    At most `most` pairs (a card of a thousand rows must not take seconds)."""
    known = {frozenset(when) for when in whens}
    by_size: dict[int, list[int]] = {}
    for index, when in enumerate(whens):
        by_size.setdefault(len(when), []).append(index)
    found = []
    for size, indexes in by_size.items():
        for position, i in enumerate(indexes):
            first = dict(whens[i])
            for j in indexes[position + 1 :]:
                second = whens[j]
                if any(first.get(name, value) != value for name, value in second):
                    continue  # no usage matches both
                union = frozenset(first.items()) | frozenset(second)
                if not _wider_row_within(union, size, known):
                    found.append((i, j))
                    if most is not None and len(found) >= most:
                        return sorted(found)
    return sorted(found)


def _wider_row_within(union: frozenset, size: int, known: set) -> bool:
    """Whether some row of more than `size` properties names only pairs of
    `union` (it then matches all the usage two rows of `size` both match). A
    union has at most twice a row's properties (6), so its subsets are few."""
    pairs = list(union)
    return any(
        frozenset(subset) in known
        for count in range(size + 1, len(pairs) + 1)
        for subset in subsets(pairs, count)
    )


def properties_outside(when: When, price_by: Iterable[str]) -> list[str]:
    """The properties a row names that the charge does not price by."""
    allowed = set(price_by)
    return [name for name, _ in when if name not in allowed]


def row_charge(charge, values: Mapping[str, str | None]):
    """A charge with a card (a plans.validation.ChargeSpec) as the row pricing
    usage with these property values prices it: a charge of one price, its
    pricing the row's, or, for credits, the row's credits per unit (its credits
    over its `per`). A charge without a card is itself. Wallets draw and
    `check` prices one event, or one question, this way."""
    if not charge.rates:
        return charge
    rate = row_for(charge.rates, values) or RateSpec()
    if rate.credits_per_unit is not None:
        with localcontext(prec=EXACT_PRECISION):
            per_unit = rate.credits_per_unit / rate.per
        return replace(charge, credits_per_unit=per_unit, price_by=(), rates=())
    return replace(charge, pricing=rate.pricing, price_by=(), rates=())
