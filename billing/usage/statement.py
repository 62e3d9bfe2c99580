"""The period statement: what one period of a subscription bills, as of a
moment. Its fixed fees (billed in advance: each part of the period at its own
version, none in a trial), the usage of the part under way priced per charge
with the minimum commitment true-up and what wallets could not pay for, the
usage of the parts before an immediate plan change (on its invoice), what the
part's threshold invoices billed already, its lines' share of the discount
(asked for: the spend and every figure after discount), and the tax it would
carry.

The close writes it as invoice lines (billing.invoicing.period_lines), /usage,
the portal and the admin show it (billing.usage.priced), and the same
statement at other quantities (PeriodStatement.at) is the projection. Reads
only; the rating itself (plans.rating) is pure."""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext
from functools import cached_property

from django.utils.translation import gettext as _

from billing.coupon_rule import discount_shares_of, discounts_touch, running_discount
from billing.models import BilledPeriod, Discount, Subscription
from billing.usage.billed_parts import (
    DraftBilled,
    ThresholdBilled,
    discount_taken,
    drafts_billed,
    earlier_parts,
    threshold_billed,
)
from billing.usage.breakdowns import usage_combinations
from billing.usage.metering import meter_cache
from billing.usage.period_fees import closing_lines, seat_change_lines, seat_changes, seats_at
from billing.usage.reads import usage_quantities
from common.periods import period_share
from common.vocabulary import DRAWN_MODELS, ConsumptionModel, LineKind
from invoices.totals import InvoiceTotals, invoice_totals
from plans.commit_drawdown import CommitDraw, CommitTerms, commit_draw
from plans.overrides import subscription_spec, terms_spec
from plans.pricing import EXACT_PRECISION
from plans.rate_card_pricing import (
    Combination,
    card_rows,
    combination_order,
    rated_quantities,
)
from plans.rating import LineInput, Uncovered, fixed_lines, usage_and_true_up
from plans.validation import VersionSpec
from wallets import selectors as wallet_selectors
from wallets.commits import commit_terms
from wallets.models import Wallet

ZERO = Decimal(0)
# What a part's commit lines add, in its BilledPeriod record (PeriodStatement.billed).
COMMIT_BILLED = LineKind.COMMIT_DRAWDOWN
# The charges whose lines are stamped with the usage per combination they priced
# (a rate card's are too): those that write usage lines.
GROUPS_STAMPED = (ConsumptionModel.OVERAGE, ConsumptionModel.BALANCE)


def meter_names(meter_codes: Iterable[str]) -> dict[str, str]:
    """What invoices call each meter named (by code): its name, else its code."""
    codes = dict.fromkeys(meter_codes)
    by_code = meter_cache.by_codes(codes)
    return {code: (by_code[code].name or code) if code in by_code else code for code in codes}


def usage_by_meter(
    *, customer_id: int, meter_codes: Iterable[str], start: datetime, end: datetime
) -> dict[str, Decimal]:
    """The customer's quantity in [start, end) of each meter named (by code); a
    code that names no meter is left out."""
    meters = list(meter_cache.by_codes(meter_codes).values())
    quantities = usage_quantities(customer_id=customer_id, meters=meters, start=start, end=end)
    return {m.code: quantities[m.id] for m in meters}


def usage_combinations_by_meter(
    *,
    customer_id: int,
    spec: VersionSpec,
    start: datetime,
    end: datetime,
    stamped: bool = False,
) -> dict[str, dict[Combination, Decimal]]:
    """The quantities in [start, end) of `spec`'s rate-card charges per
    combination of group values, by meter code: what a card prices. With
    `stamped`, of every charge that prices usage on a grouping meter (an overage
    or balance charge's too): what the period's lines are stamped with
    (UsagePart.lines); a check or a simulation needs only the cards'."""
    codes = [c.meter for c in spec.charges if c.rated or (stamped and c.model in GROUPS_STAMPED)]
    if not codes:
        return {}
    meters = [m for m in meter_cache.by_codes(codes).values() if m.group_by]
    found = usage_combinations(customer_id=customer_id, meters=meters, start=start, end=end)
    return {m.code: found[m.id] for m in meters}


def uncovered_usage(
    *, customer_id: int, spec: VersionSpec, start: datetime, end: datetime
) -> dict[str, Uncovered]:
    """What the wallets of `spec`'s credits and balance charges could not pay for
    in [start, end), by meter code: the credit wallet's for a credits charge, the
    money wallet in the version's currency for a balance charge."""
    drawn = [c for c in spec.charges if c.model in DRAWN_MODELS]
    if not drawn:
        return {}
    totals = wallet_selectors.uncovered_totals(customer_id=customer_id, start=start, end=end)
    found = {}
    for charge in drawn:
        if charge.model == ConsumptionModel.CREDITS:
            key = (charge.meter, Wallet.CREDITS, "")
        else:
            key = (charge.meter, Wallet.MONEY, spec.currency)
        if key in totals:
            found[charge.meter] = totals[key]
    return found


@dataclass(frozen=True)
class UsagePart:
    """The usage of [usage_from, until) of a period at `spec`: the quantities (by
    meter code), what wallets could not pay for, and the part of a whole period
    it is (for the minimum commitment). `lines` are priced from them (pure)."""

    spec: VersionSpec
    usage_from: datetime
    until: datetime
    quantities: dict[str, Decimal]
    uncovered: dict[str, Uncovered]
    share: Decimal
    names: dict[str, str] = field(default_factory=dict)
    # The quantities of its rate-card charges per combination of group values,
    # by meter code (adding up to `quantities`).
    combinations: dict[str, dict[Combination, Decimal]] = field(default_factory=dict)

    @cached_property
    def rows(self) -> dict[str, list[tuple[int, Decimal]]]:
        """Each rate-card charge's rows that priced usage, by meter code: their
        index and quantity (rate_cards.rated_quantities), found once a part."""
        return {
            charge.meter: rated_quantities(charge.rates, self.combinations[charge.meter])
            for charge in self.spec.charges
            if charge.rated and charge.meter in self.combinations
        }

    @cached_property
    def lines(self) -> list[LineInput]:
        """The usage lines with the true-up, each line of a grouping meter stamped
        with the combinations it priced (LineInput.usage_groups)."""
        lines = usage_and_true_up(
            self.spec,
            quantities=self.quantities,
            share=self.share,
            meter_names=self.names,
            uncovered=self.uncovered,
            rows=self.rows,
        )
        return [self._stamped(line) for line in lines]

    @cached_property
    def _by_row(self) -> dict[str, dict]:
        """Each rate-card charge's combinations by the `when` of the row that
        prices them, by meter code: found once a part, not once a line."""
        found: dict[str, dict] = {}
        for charge in self.spec.charges:
            of_meter = self.combinations.get(charge.meter)
            if not charge.rated or not of_meter:
                continue
            row_of = card_rows(charge.rates)
            by_when: dict = {}
            for combination, quantity in of_meter.items():
                if (index := row_of(combination)) is not None:
                    by_when.setdefault(charge.rates[index].when, {})[combination] = quantity
            found[charge.meter] = by_when
        return found

    def _stamped(self, line: LineInput) -> LineInput:
        """The line with the combinations of its meter it priced: a rate card
        row's those its row prices, any other line's all of them."""
        of_meter = self.combinations.get(line.meter or "")
        if not of_meter or line.kind == LineKind.MINIMUM_COMMITMENT:
            return line
        if line.group is not None:
            of_meter = self._by_row.get(line.meter, {}).get(line.group, {})
        ordered = sorted(of_meter.items(), key=lambda item: combination_order(item[0]))
        groups = tuple((c, q) for c, q in ordered if q)
        return replace(line, usage_groups=groups)

    def at(self, quantities: dict[str, Decimal]) -> "UsagePart":
        """The part at other quantities: a rate card's combinations each scaled
        as its meter's quantity is (a projection extends each alike)."""
        combinations = {}
        for code, of_meter in self.combinations.items():
            was, now = self.quantities.get(code, ZERO), quantities.get(code, ZERO)
            if was and now != was:
                with localcontext(prec=EXACT_PRECISION):
                    of_meter = {key: q * now / was for key, q in of_meter.items()}
            combinations[code] = of_meter
        return replace(self, quantities=quantities, combinations=combinations)

    def billed(self) -> dict:
        """What the lines bill per meter and for the true-up, as a BilledPeriod
        records it for late usage (JSON: numbers as strings)."""
        lines = self.lines
        billed: dict[str, dict] = {}
        for charge in self.spec.charges:
            of_meter = [r for r in lines if r.meter == charge.meter]
            billed[charge.meter] = {
                "quantity": str(self.quantities.get(charge.meter, ZERO)),
                "billable": str(sum((r.quantity for r in of_meter if r.kind == "overage"), ZERO)),
                "amount": str(sum((r.amount for r in of_meter), ZERO)),
            }
        true_up = (r.amount for r in lines if r.kind == LineKind.MINIMUM_COMMITMENT)
        billed[LineKind.MINIMUM_COMMITMENT] = {"amount": str(sum(true_up, ZERO))}
        return billed


def usage_part(
    subscription: Subscription,
    spec: VersionSpec,
    *,
    start: datetime,
    end: datetime,
    usage_from: datetime,
    until: datetime,
    quantities: dict[str, Decimal] | None = None,
    combinations: dict[str, dict[Combination, Decimal]] | None = None,
) -> UsagePart:
    """The usage of [usage_from, until) of the subscription's period [start, end)
    at `spec` (`quantities` by meter code, and the rate cards' `combinations`,
    when the caller has them), with the minimum commitment counted for the part
    of the whole period it covers (Subscription.whole_period)."""
    codes = [c.meter for c in spec.charges]
    customer_id = subscription.customer_id
    if quantities is None:
        quantities = usage_by_meter(
            customer_id=customer_id, meter_codes=codes, start=usage_from, end=until
        )
    whole = subscription.whole_period(start, end, interval=spec.interval)
    return UsagePart(
        spec,
        usage_from,
        until,
        quantities,
        uncovered_usage(customer_id=customer_id, spec=spec, start=usage_from, end=until),
        period_share(usage_from, until, whole=whole),
        meter_names(codes),
        usage_combinations_by_meter(
            customer_id=customer_id, spec=spec, start=usage_from, end=until, stamped=True
        )
        if combinations is None
        else combinations,
    )


@dataclass(frozen=True)
class ClosingDiscount:
    """The running discount the invoice closing the current period will take, and
    what that invoice bills beyond the period's own lines (the next period's fees
    in advance): the share of it of those fees is the next period's."""

    discount: Discount
    beyond: tuple[LineInput, ...]


def _total(lines: Iterable[LineInput]) -> Decimal:
    return sum((line.amount for line in lines), ZERO)


def _usage_billed(part: BilledPeriod) -> Decimal:
    return sum((Decimal(billed["amount"]) for billed in part.billed.values()), ZERO)


@dataclass(frozen=True)
class PeriodStatement:
    """What the period [start, end) bills, as of `until`."""

    start: datetime
    end: datetime
    currency: str
    # The part under way, from the period's start or an immediate plan change.
    part: UsagePart
    # The period's fixed fees, billed in advance (billing.usage.period_fees): terms,
    # a part of a whole period, 1 for a charge or -1 for a credit, and the seats
    # held then (none in a trial).
    fees: tuple[tuple[VersionSpec, Decimal, int, int], ...]
    # The parts before an immediate plan change, billed on its invoice.
    earlier: list[BilledPeriod]
    # The part's threshold invoices.
    thresholds: ThresholdBilled
    # What fixed fee lines name: the plan, the period.
    plan_name: str = ""
    label: str = ""
    # The seat changes of the earlier parts, billed on their plan-change invoice,
    # and of the part under way, billed on the invoice that ends it (prorated).
    earlier_seat_changes: tuple[LineInput, ...] = ()
    seat_changes: tuple[LineInput, ...] = ()
    # Of what the period's invoices billed (`invoiced`), the drafts' part: read
    # only when asked for (period_statement's `drafts`), the close needs none.
    drafts: DraftBilled = field(default_factory=DraftBilled)
    # The customer's commit over the period, as it stood: the part's usage of its
    # meters draws from it (prepaid) or counts toward it (postpaid).
    commit_terms: CommitTerms | None = None
    # Read only when asked for (period_statement's `discounted`): the discount
    # shares stamped on its lines written already (its fees billed in advance),
    # and the running discount the invoice closing it will take.
    discount_taken: Decimal = ZERO
    closing_discount: ClosingDiscount | None = None

    @cached_property
    def commit(self) -> CommitDraw | None:
        """What the part's usage draws from (or counts toward) the commit: after
        pricing, before discounts and tax."""
        if self.commit_terms is None:
            return None
        return commit_draw(self.commit_terms, self.usage, self.currency)

    @property
    def commit_lines(self) -> list[LineInput]:
        """The drawdown and overage uplift lines (none without a prepaid commit)."""
        return self.commit.lines() if self.commit is not None else []

    def billed(self) -> dict:
        """What the part's invoice bills per meter and for the true-up, as a
        BilledPeriod records it (UsagePart.billed), and what its commit lines add
        (the drawdown and uplift, under COMMIT_BILLED): an earlier part's usage on
        its plan-change invoice is both."""
        billed = self.part.billed()
        if self.commit_lines:
            billed[COMMIT_BILLED] = {"amount": str(self.commit_total)}
        return billed

    @property
    def commit_total(self) -> Decimal:
        """What the commit lines add (the drawdown negative, the uplift positive)."""
        return sum((line.amount for line in self.commit_lines), ZERO)

    @cached_property
    def fixed_lines(self) -> list[LineInput]:
        """The fees billed in advance, each part at the seats held when it began."""
        return [
            replace(line, amount=sign * line.amount)
            for terms, fraction, sign, seats in self.fees
            for line in fixed_lines(
                terms,
                plan_name=self.plan_name,
                seats=seats,
                label=self.label,
                fraction=fraction,
            )
        ]

    @property
    def usage_from(self) -> datetime:
        return self.part.usage_from

    @property
    def usage(self) -> list[LineInput]:
        """The part's usage lines, with any true-up and uncovered usage."""
        return self.part.lines

    def at(self, quantities: dict[str, Decimal]) -> "PeriodStatement":
        """The same statement at other quantities of the part under way."""
        return replace(self, part=self.part.at(quantities))

    @property
    def fees_billed(self) -> Decimal:
        """The fixed fees the period's invoices billed already: in advance, and the
        earlier parts' seat changes on their plan-change invoice."""
        return _total(self.fixed_lines) + _total(self.earlier_seat_changes)

    @property
    def fixed(self) -> Decimal:
        """The period's fixed fees: those billed already and the seat changes of
        the part under way, which the invoice that ends it bills."""
        return self.fees_billed + _total(self.seat_changes)

    @property
    def earlier_usage(self) -> Decimal:
        """What the parts before an immediate plan change billed for their usage."""
        return sum(map(_usage_billed, self.earlier), ZERO)

    @property
    def usage_invoiced(self) -> Decimal:
        """The period's usage invoiced already: the earlier parts' and the part's
        threshold invoices' (/usage's `invoiced`)."""
        return self.earlier_usage + self.thresholds.total

    @property
    def known(self) -> Decimal:
        """What the period bills that no usage to come changes: its fixed fees and
        the usage invoiced already (the dashboard's committed revenue)."""
        return self.fixed + self.usage_invoiced

    @property
    def invoiced(self) -> Decimal:
        """All the period's invoices billed for it so far: its fixed fees (in
        advance), the plan-change invoice's usage and the threshold invoices."""
        return self.fees_billed + self.usage_invoiced

    @property
    def to_be_invoiced(self) -> Decimal:
        """Of `invoiced`, what drafts bill: written, not issued yet."""
        return self.drafts.total

    @property
    def issued(self) -> Decimal:
        """Of `invoiced`, what finalized invoices billed (`invoiced` less the drafts')."""
        return self.invoiced - self.to_be_invoiced

    def amounts(self) -> dict[str, Decimal]:
        """What the close will bill for each charge's usage not invoiced yet, by
        meter code: its usage less what threshold invoices billed of it."""
        lines, on_thresholds = self.usage, self.thresholds.by_meter
        return {
            charge.meter: sum((r.amount for r in lines if r.meter == charge.meter), ZERO)
            - on_thresholds.get(charge.meter, ZERO)
            for charge in self.part.spec.charges
        }

    def rated(self) -> dict[str, list[tuple[dict, Decimal, Decimal]]]:
        """The part's rate cards, by meter code: each row that priced usage, its
        group (its `when`), quantity and the amount of its lines."""
        found: dict[str, list[tuple[dict, Decimal, Decimal]]] = {}
        # The lines' amounts by meter and row, added up in one pass (a card of 151
        # rows read every line for each row: 9% of a profiled /usage read).
        amounts: dict[tuple, Decimal] = {}
        for r in self.usage:
            amounts[r.meter, r.group] = amounts.get((r.meter, r.group), ZERO) + r.amount
        for charge in self.part.spec.charges:
            if charge.meter not in self.part.rows:
                continue
            found[charge.meter] = [
                (
                    charge.rates[index].group,
                    quantity,
                    amounts.get((charge.meter, charge.rates[index].when), ZERO),
                )
                for index, quantity in self.part.rows[charge.meter]
            ]
        return found

    @property
    def usage_total(self) -> Decimal:
        return _total(self.usage)

    @property
    def lines(self) -> list[LineInput]:
        """Every line of the period: fixed fees and seat changes, the earlier
        parts' usage as one line each, the part's usage, what it draws from a
        commit."""
        earlier = [
            LineInput(LineKind.USAGE, "", None, Decimal(1), None, amount, p.usage_from, p.usage_to)
            for p in self.earlier
            if (amount := _usage_billed(p))
        ]
        return [
            *self.fixed_lines,
            *self.earlier_seat_changes,
            *self.seat_changes,
            *earlier,
            *self.usage,
            *self.commit_lines,
        ]

    @property
    def total(self) -> Decimal:
        """What the period bills in all, before discounts and tax: every line of
        it, invoiced already or not, the minimum commitment true-up included (of a
        projection, /usage's projected total; the spend a check counts)."""
        return _total(self.lines)

    @property
    def subtotal(self) -> Decimal:
        """What the period has billed so far (/usage's subtotal): `total` but the
        part's minimum commitment true-up, which only the period's end settles."""
        true_up = (line for line in self.usage if line.kind == LineKind.MINIMUM_COMMITMENT)
        return self.total - _total(true_up)

    def invoice_lines(self) -> list[LineInput]:
        """What the invoice that ends the part under way (at `until`: the close,
        an immediate plan change or cancel) bills of the period: the part's usage
        with what it draws from a commit, its seat changes, and a line taking off
        each of its threshold invoices. The close adds late usage, the next
        period's fees and the discount (billing.invoicing)."""
        usage = [
            replace(line, period_start=self.usage_from, period_end=self.part.until)
            for line in [*self.usage, *self.commit_lines]
        ]
        return [*usage, *self.seat_changes, *self.thresholds.lines()]

    @cached_property
    def discount(self) -> Decimal:
        """What the discounts take off the period's own lines, positive: the
        shares stamped on its lines written already, and the running discount's
        shares of the lines the invoice closing it bills for it (invoice_lines),
        by the share rule the invoice writer stamps (billing.coupon_rule.
        discount_shares_of). The share of the next period's fees in advance on
        that invoice is the next period's. Zero unless read (`discounted`)."""
        taken = self.discount_taken
        closing = self.closing_discount
        if closing is not None:
            own = self.invoice_lines()
            shares = discount_shares_of(
                closing.discount, lines=[*own, *closing.beyond], currency=self.currency
            )
            taken += sum(shares[: len(own)], ZERO)
        return taken

    @property
    def discount_lines(self) -> list[LineInput]:
        """The discount as a line of the statement (none without one)."""
        if not self.discount:
            return []
        return [LineInput(LineKind.DISCOUNT, _("Discount"), None, Decimal(1), None, -self.discount)]

    @property
    def net(self) -> Decimal:
        """What the period's invoices bill for it, net of its discount, before tax:
        `total` less `discount` (the spend a check counts, the dashboard's
        projection, /usage's after discount)."""
        return self.total - self.discount

    def totals(self, rates: list) -> InvoiceTotals:
        """The period's totals with the tax it would carry at `rates`, its
        discount line taken off before tax."""
        return invoice_totals(
            [*self.lines, *self.discount_lines], rates=rates, currency=self.currency
        )


def statement_of(
    spec: VersionSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    seats: int,
    quantities: dict[str, Decimal],
    fraction: Decimal = Decimal(1),
    fixed_fees: bool = True,
    uncovered: dict[str, Uncovered] | None = None,
    names: dict[str, str] | None = None,
    plan_name: str = "",
    label: str = "",
    combinations: dict[str, dict[Combination, Decimal]] | None = None,
    commit_terms: CommitTerms | None = None,
) -> PeriodStatement:
    """Pure: the statement of one period [start, end) at `spec` with these
    quantities (by meter code) and `seats`, nothing billed of it yet: its fixed
    fees (left out with `fixed_fees` False, as in a trial) and its usage with the
    minimum commitment true-up and `uncovered` usage, fees and commitment for
    `fraction` of a whole period (a simulation, the price sandbox, a projection).
    Fixed fees name `plan_name` and `label`; usage lines each meter by `names`;
    rate cards price `combinations` (by meter code); the usage draws from
    `commit_terms` (a commit's, as it stands) when given."""
    part = UsagePart(
        spec, start, end, quantities, uncovered or {}, fraction, names or {}, combinations or {}
    )
    fees = ((spec, fraction, 1, seats),) if fixed_fees else ()
    return PeriodStatement(
        start,
        end,
        spec.currency,
        part,
        fees,
        [],
        ThresholdBilled(),
        plan_name,
        label,
        commit_terms=commit_terms,
    )


def part_from(subscription: Subscription, *, start: datetime, end: datetime) -> datetime:
    """Where the part of the period [start, end) under way begins: the period's
    start, or the current period's immediate plan change."""
    current = (start, end) == (subscription.current_period_start, subscription.current_period_end)
    return subscription.usage_from if current and subscription.usage_from else start


def _advance_share(subscription: Subscription, discount: Discount) -> Decimal:
    """The share of `discount` that the invoice closing the subscription's current
    period will stamp on the next period's fees billed in advance on it: what the
    next period reads as taken off its fees before that invoice is written."""
    previous = period_statement(
        subscription,
        start=subscription.current_period_start,
        end=subscription.current_period_end,
    )
    own = previous.invoice_lines()
    beyond = closing_lines(subscription=subscription, lines=[])
    shares = discount_shares_of(discount, lines=[*own, *beyond], currency=previous.currency)
    return sum(shares[len(own) :], ZERO)


def period_statement(
    subscription: Subscription,
    *,
    start: datetime,
    end: datetime,
    until: datetime | None = None,
    spec: VersionSpec | None = None,
    quantities: dict[str, Decimal] | None = None,
    combinations: dict[str, dict[Combination, Decimal]] | None = None,
    drafts: bool = False,
    discounted: bool = False,
) -> PeriodStatement:
    """The statement of the subscription's period [start, end) as of `until` (by
    default its end): at its current terms, or `spec` (other prices); its usage
    as stored, or `quantities` (by meter code) of the part under way, with its
    rate cards' `combinations` when the caller has them. With `drafts`, what of
    it the drafts bill, not issued yet (for a person to read). With
    `discounted`, its discount (PeriodStatement.discount): what the spend and
    every figure after discount read; the close writes its own."""
    spec = spec or subscription_spec(subscription)
    until = until or end
    current = (start, end) == (subscription.current_period_start, subscription.current_period_end)
    usage_from = part_from(subscription, start=start, end=end)
    part = usage_part(
        subscription,
        spec,
        start=start,
        end=end,
        usage_from=usage_from,
        until=until,
        quantities=quantities,
        combinations=combinations,
    )
    earlier = earlier_parts(subscription=subscription, start=start, end=end, usage_from=usage_from)
    fees: tuple = ()
    earlier_seats: list[LineInput] = []
    part_seats: list[LineInput] = []
    if not current or subscription.bills_fixed_fees:
        period, whole = (start, end), subscription.whole_period(start, end, interval=spec.interval)
        parts = [(terms_spec(version=p.version, overrides=p.overrides), p) for p in earlier]
        seated = spec.seat_price or any(terms.seat_price for terms, _p in parts)
        changes = seat_changes(subscription, since=start) if seated else []

        def seats(at: datetime) -> int:
            return seats_at(subscription, changes, at)

        # As the invoices bill them, each rounded once: a part's fees charged from
        # its start to the period's end at the seats held then, less the credit
        # from its end (a plan change) at the seats held then; its seat changes.
        fees = ((spec, period_share(usage_from, end, whole=whole), 1, seats(usage_from)),)
        for terms, p in parts:
            fees += (
                (terms, period_share(p.usage_from, end, whole=whole), 1, seats(p.usage_from)),
                (terms, period_share(p.usage_to, end, whole=whole), -1, seats(p.usage_to)),
            )
            earlier_seats += seat_change_lines(
                subscription, terms, changes, since=p.usage_from, until=p.usage_to, period=period
            )
        part_seats = seat_change_lines(
            subscription, spec, changes, since=usage_from, until=until, period=period
        )
    thresholds = threshold_billed(
        subscription=subscription, period_start=start, usage_from=usage_from
    )
    taken, closing = ZERO, None
    if discounted and discounts_touch(subscription, start=start):
        taken = discount_taken(subscription=subscription, start=start, end=end)
        discount = running_discount(subscription)
        if discount is not None and current:
            beyond = closing_lines(subscription=subscription, lines=[])
            closing = ClosingDiscount(discount, tuple(beyond))
        elif discount is not None and start == subscription.current_period_end:
            # The period after one that ended and is not closed yet: its fees in
            # advance will be on that period's closing invoice, with their share
            # of its discount (not stamped yet, so not in `taken`).
            taken += _advance_share(subscription, discount)
    return PeriodStatement(
        start,
        end,
        spec.currency,
        part,
        fees,
        earlier,
        thresholds,
        drafts=drafts_billed(subscription=subscription, start=start, end=end)
        if drafts
        else DraftBilled(),
        commit_terms=commit_terms(customer_id=subscription.customer_id, start=start, end=end),
        earlier_seat_changes=tuple(earlier_seats),
        seat_changes=tuple(part_seats),
        discount_taken=taken,
        closing_discount=closing,
    )
