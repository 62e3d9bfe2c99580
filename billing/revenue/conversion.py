"""Earned revenue in a report currency (API.md v1.4, `report_currency`): the
one place an amount earned in a customer's currency is converted, for the
revenue and margins reports and the dashboard (billing.revenue.earned reads
every piece through it).

The rate: a piece (a document, or what a line earned over part of its service
period) is converted at the rate in effect at the start of its day, its UTC
day, as the journal converts a document (billing.journal.writer.document_day,
billing.journal.functional.rate_moment): a rate that begins during a day is
used from the next day on. A piece earned over several days is cut at each
midnight from which another rate applies, and each part converted at its own.

The rounding: what a piece earned up to a moment, converted part by part
exactly, is rounded half up once to the report currency's minor unit
(quantize_money), and a window's part is the difference of two such amounts,
as billing.revenue.earned rounds in the customer's currency: every part is in
minor units, so a view's rows add up to its total, the totals are the same
whatever the view, and adjacent windows add up. Credits and balances drawn
are converted per part of the window at one rate, each rounded half up.

Without a rate of the pair (or its inverse) for a day, what was earned on it
is left out of the converted amounts and named (MissingRate), never counted
as zero silently."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise

from billing.journal.functional import rate_moment
from billing.journal.writer import document_day
from common.money import quantize_money
from plans.exchange_rates import RateBook, pair_name
from plans.pricing import EXACT_PRECISION

ZERO = Decimal(0)
DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class MissingRate:
    """No rate to convert `source` into `target` on `day` (UTC), the first day
    of what was left out."""

    source: str
    target: str
    day: date

    @property
    def pair(self) -> str:
        return pair_name(self.source, self.target)

    def as_json(self) -> dict:
        return {"from": self.source, "to": self.target, "date": self.day.isoformat()}


def missing_rate(source: str, target: str, at: datetime) -> MissingRate:
    """No rate from `source` into `target` for a piece (or cost) of `at`."""
    return MissingRate(source, target, document_day(at))


def day_start(at: datetime) -> datetime:
    """The moment whose rate a piece of `at` is converted at: its day's start."""
    return rate_moment(document_day(at))


@dataclass
class Conversion:
    """Amounts in other currencies into `currency`, at `rates` (a RateBook of
    the pairs), noting each rate found missing."""

    currency: str
    rates: RateBook
    missing: set[MissingRate] = field(default_factory=set)

    @classmethod
    def load(cls, currency: str, sources: Iterable[str]) -> "Conversion":
        """The rates of every source into `currency`, read in one query."""
        return cls(currency, RateBook.load({(source, currency) for source in sources}))

    def rate(self, source: str, at: datetime) -> Decimal | None:
        """1 `source` in the report currency for a piece of `at`."""
        return self.rates.rate(source, self.currency, day_start(at))

    def cuts(self, source: str, start: datetime, end: datetime) -> list[datetime]:
        """The midnights (UTC) in (start, end) from which a piece in `source` is
        converted at another rate: the day after a rate begins, or its own day
        when it begins at midnight."""
        if source == self.currency or start >= end:
            return []
        found = set()
        for moment in self.rates.changes([(source, self.currency)], start - DAY, end):
            midnight = day_start(moment)
            if midnight < moment:
                midnight += DAY
            if start < midnight < end:
                found.add(midnight)
        return sorted(found)

    def missed(self, source: str, at: datetime) -> MissingRate:
        """The rate missing to convert a piece of `at` in `source`."""
        return missing_rate(source, self.currency, at)

    def amount(self, source: str, amount: Decimal, at: datetime) -> Decimal | None:
        """`amount` (of a piece of `at`) in the report currency, rounded half up;
        None, and the rate named, when there is none."""
        rate = self.rate(source, at)
        if rate is None:
            self.missing.add(self.missed(source, at))
            return None
        with localcontext(prec=EXACT_PRECISION):
            return quantize_money(amount * rate, self.currency)

    def at_moment(
        self, source: str, amount: Decimal, at: datetime
    ) -> tuple[Decimal, frozenset[MissingRate]]:
        """What was earned at one moment `at` (`amount`, in `source`), converted
        (self.amount), with the rate missing when there is none (the amount then
        left out: zero)."""
        if not amount:
            return ZERO, frozenset()
        converted = self.amount(source, amount, at)
        if converted is None:
            return ZERO, frozenset({self.missed(source, at)})
        return converted, frozenset()

    def window_part(
        self,
        source: str,
        *,
        span: tuple[datetime, datetime],
        cuts: Sequence[datetime],
        window: tuple[datetime, datetime],
        earned_by: Callable[[datetime], Decimal],
    ) -> tuple[Decimal, frozenset[MissingRate]]:
        """What a piece earning over `span` (in `source`; earned_by(at): what it
        earned before `at`, in its minor unit) earned in `window`, converted:
        what it earned up to the window's end less up to its start, each
        converted part by part (`cuts`: self.cuts of the span, up to the
        window's end) and rounded once. With the rates missing for its parts
        in the window (those amounts left out)."""
        (first, last), (start, end) = span, window
        if first == last:  # earned at one moment: in the window or not
            return self.at_moment(source, earned_by(end) - earned_by(start), first)
        edges = [first, *cuts, last]
        parts = list(pairwise(edges))
        rates = [self.rate(source, since) for since, _until in parts]
        missing = set()
        for (since, until), rate in zip(parts, rates, strict=True):
            since_in, until_in = max(since, start), min(until, end)
            if rate is None and since_in < until_in and earned_by(until_in) - earned_by(since_in):
                missing.add(self.missed(source, since_in))

        def converted_by(at: datetime) -> Decimal:
            if at <= first:
                return ZERO
            exact = ZERO
            with localcontext(prec=EXACT_PRECISION):
                for (since, until), rate in zip(parts, rates, strict=True):
                    if since >= at:
                        break
                    if rate is not None:
                        exact += (earned_by(min(until, at)) - earned_by(since)) * rate
            return quantize_money(exact, self.currency)

        self.missing |= missing
        return converted_by(end) - converted_by(start), frozenset(missing)
