"""A commit's drawdown of a period's usage, pure: what the usage of the
commit's meters draws from its access blocks (in the wallet's draw order, by
its greedy draw: plans.meter_scope.draw_in_order), what goes beyond it and the
overage uplift, and the invoice lines that say so. The period statement
computes it after pricing, before discounts and tax; wallets.commits records
what the close drew."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from common import customer_text
from common.money import quantize_money
from common.vocabulary import LineKind
from plans.meter_scope import draw_in_order
from plans.rating import LineInput

ZERO = Decimal(0)
ONE = Decimal(1)
# The kind of access unused access rolls over into (a block of source `rollover`).
ROLLOVER = "rollover"


@dataclass(frozen=True)
class Access:
    """One access block as it stands: its id, kind (its source: `commit`, or
    `rollover`), what is left and its expiry."""

    id: int
    kind: str
    remaining: Decimal
    available_from: datetime
    expires_at: datetime


@dataclass(frozen=True)
class CommitTerms:
    """What a commit's drawdown needs: its meters (empty: all usage), its overage
    multiplier and, for a prepaid commit, its access in draw order."""

    id: int
    prepaid: bool
    applies_to: tuple[str, ...]
    overage_multiplier: Decimal
    accesses: tuple[Access, ...] = ()
    # Drawn (prepaid) or counted (postpaid) by the period's invoices written already.
    taken_earlier: Decimal = ZERO
    # Postpaid: what the term's usage has still to reach (amount less counted).
    to_reach: Decimal = ZERO

    def covers(self, meter: str | None) -> bool:
        return meter is not None and (not self.applies_to or meter in self.applies_to)

    @property
    def available(self) -> Decimal:
        return sum((a.remaining for a in self.accesses), ZERO)


@dataclass(frozen=True)
class CommitDraw:
    """A part of a period's usage against a commit: `usage` is the amount of its
    meters' lines; a prepaid commit draws `draws` (access id, amount) of it."""

    terms: CommitTerms
    usage: Decimal
    draws: tuple[tuple[int, Decimal], ...]
    currency: str

    @property
    def drawn(self) -> Decimal:
        return sum((amount for _access, amount in self.draws), ZERO)

    @property
    def beyond(self) -> Decimal:
        """Usage of its meters the access did not cover (prepaid)."""
        return self.usage - self.drawn if self.terms.prepaid else ZERO

    @property
    def uplift(self) -> Decimal:
        """What the overage multiplier adds to the usage beyond the access, rounded once."""
        extra = self.terms.overage_multiplier - ONE
        if not self.terms.prepaid or extra <= 0 or self.beyond <= 0:
            return ZERO
        return quantize_money(self.beyond * extra, self.currency)

    @property
    def available(self) -> Decimal:
        """Prepaid: the access left once this draw is taken. Postpaid: what the
        term's usage has still to reach, this part's counted."""
        if self.terms.prepaid:
            return self.terms.available - self.drawn
        return max(self.terms.to_reach - self.usage, ZERO)

    @property
    def taken_this_period(self) -> Decimal:
        """Drawn (or counted) in the period: by invoices written and by this draw."""
        return self.terms.taken_earlier + (self.drawn if self.terms.prepaid else self.usage)

    def rollover(self) -> list[tuple[Decimal, Access]]:
        """The rollover access left once this draw is taken: (amount, access)."""
        drawn = dict(self.draws)
        return [
            (access.remaining - drawn.get(access.id, ZERO), access)
            for access in self.terms.accesses
            if access.kind == ROLLOVER and access.remaining > drawn.get(access.id, ZERO)
        ]

    def lines(self) -> list[LineInput]:
        """The drawdown line (negative) and the overage uplift line; none for a
        postpaid commit, which only counts the usage."""
        if not self.terms.prepaid:
            return []
        found = []
        if self.drawn:
            found.append(
                LineInput(
                    LineKind.COMMIT_DRAWDOWN,
                    _("Drawn from your commit"),
                    None,
                    ONE,
                    -self.drawn,
                    -self.drawn,
                )
            )
        if self.uplift:
            multiplier = customer_text.quantity(self.terms.overage_multiplier)
            found.append(
                LineInput(
                    LineKind.COMMIT_OVERAGE,
                    _("Usage beyond your commit: {amount} at {multiplier} times its price").format(
                        amount=customer_text.money(self.beyond, self.currency),
                        multiplier=multiplier,
                    ),
                    None,
                    self.beyond,
                    self.terms.overage_multiplier - ONE,
                    self.uplift,
                )
            )
        return found


def commit_draw(terms: CommitTerms, lines: Iterable[LineInput], currency: str) -> CommitDraw:
    """What `lines` (a part's usage lines, priced) draw from the commit: the
    amount of its meters' lines, taken from its access blocks in draw order up
    to what is left."""
    usage = sum((line.amount for line in lines if terms.covers(line.meter)), ZERO)
    wanted = max(usage, ZERO) if terms.prepaid else ZERO
    draws = tuple((access.id, taken) for access, taken in draw_in_order(terms.accesses, wanted))
    return CommitDraw(terms, usage, draws, currency)
