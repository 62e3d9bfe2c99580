"""The rating engine: a version's terms and a period's usage become invoice lines.

Pure: no database. Each line says what it is, with quantity, unit price and an
amount computed exactly and rounded once (common.money.quantize_money); a
total is the sum of rounded lines. Graduated pricing gives one line per tier
reached, so every amount can be explained line by line.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext
from functools import lru_cache

from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from common import customer_text
from common.money import format_decimal, quantize_money
from common.vocabulary import DRAWN_MODELS, ConsumptionModel, LineKind
from plans.pricing import (
    EXACT_PRECISION,
    GRADUATED,
    PACKAGE,
    PER_UNIT,
    PricedPiece,
    PricingSpec,
    exact_pieces,
    priced_pieces,
)
from plans.rate_card_pricing import rated_quantities
from plans.validation import ChargeSpec, VersionSpec

ZERO = Decimal(0)


# The value of a line's breakdown row that holds the rest of the groups ("Other").
OTHER_GROUPS = object()


@dataclass(frozen=True)
class LineInput:
    """A line before it is written on an invoice: what rating yields, and what
    every invoice (a period's, a plan change's, a purchase's) is assembled from.
    `amount` is rounded to the currency; the service period is set by the
    invoice that carries the line."""

    kind: str
    description: str
    meter: str | None
    quantity: Decimal
    unit_price: Decimal | None
    amount: Decimal
    period_start: datetime | None = None
    period_end: datetime | None = None
    # A usage line of a meter with an invoice breakdown: the meter's quantity
    # split by the property's values, (property, ((value or None, quantity),
    # ...)), the rest of the groups last as (OTHER_GROUPS, quantity); shown, not priced.
    breakdown: tuple = ()
    # How many units unit_price is for: 2.50 per 1,000,000 tokens.
    per: Decimal = Decimal(1)
    # A line of a rate card's row: the row's `when` as (property, value) pairs,
    # () for its default row; None for a line of no card.
    group: tuple | None = None
    # The plan version (plans.PlanVersion) that priced the line, where it is not
    # the one its invoice's writer is given (invoices.services.invoice_write_draft
    # stamps InvoiceLine.plan_version with that one): a plan change's credit and
    # charge, the next period's fees on another version, late usage at the billed
    # period's. None: the invoice's.
    version: object | None = None
    # A prorated fee's share of a whole period (its quantity is seats x share for
    # seats, a seat change or a plan change's proration of seats), None for a
    # whole period and any other line: the writer prints it (shown_share).
    share: Decimal | None = None
    # The usage the line priced, per combination of its meter's group_by values:
    # ((combination, quantity), ...), a rate card row's the combinations it
    # priced, any other line of a grouping meter all of the meter's; () for a
    # line of no grouping meter. What earned revenue splits a line by
    # (billing.revenue.earned); stamped by the period statement.
    usage_groups: tuple = ()
    # A line taking off what a threshold invoice billed (LineKind.USAGE_INVOICED):
    # that invoice's id (InvoiceLine.takes_off); None for any other line.
    takes_off: int | None = None

    @property
    def plan(self) -> str:
        """The code of the plan of `version`, when the line says its own ("")."""
        return self.version.plan.code if self.version is not None else ""


def breakdown_as_stored(breakdown: tuple) -> dict:
    """A line's breakdown as the invoice line stores it: {"by": "model", "groups":
    [{"value": "gpt-4o" | null, "quantity": "1500"}]}, the rest of the groups last
    as {"value": null, "other": true, "quantity": ...}; {} without one."""
    if not breakdown:
        return {}
    by, parts = breakdown
    return {
        "by": by,
        "groups": [
            {"value": None, "other": True, "quantity": format_decimal(quantity)}
            if value is OTHER_GROUPS
            else {"value": value, "quantity": format_decimal(quantity)}
            for value, quantity in parts
        ],
    }


def _line(
    kind,
    description,
    meter,
    quantity,
    unit_price,
    exact,
    currency,
    per=Decimal(1),
    group=None,
    share=None,
) -> LineInput:
    return LineInput(
        kind,
        description,
        meter,
        quantity,
        unit_price,
        quantize_money(exact, currency),
        per=per,
        group=group,
        share=share,
    )


def fixed_lines(
    version: VersionSpec,
    *,
    plan_name: str,
    seats: int,
    label: str | Callable[[Decimal], str],
    fraction: Decimal = Decimal(1),
) -> list[LineInput]:
    """Base fee and seats for a period (billed in advance), times `fraction` of it
    for a prorated part (each line's share). `label` names the period, or writes
    a prorated part for a line's fees over the whole period (the base fee, seats
    x seat price; customer_text.proration), so that its share gives its amount."""
    share = None if fraction == 1 else fraction

    def named(whole_price: Decimal) -> str:
        return label(whole_price) if callable(label) else label

    lines = []
    if version.base_fee:
        lines.append(
            _line(
                LineKind.BASE_FEE,
                base_fee_description(plan_name, named(version.base_fee)),
                None,
                fraction,
                version.base_fee,
                version.base_fee * fraction,
                version.currency,
                share=share,
            )
        )
    if version.seat_price and seats:
        quantity = seats * fraction
        lines.append(
            _line(
                LineKind.SEATS,
                seats_description(seats, named(version.seat_price * seats)),
                None,
                quantity,
                version.seat_price,
                version.seat_price * quantity,
                version.currency,
                share=share,
            )
        )
    return lines


def base_fee_description(plan_name: str, label: str) -> str:
    """'AI Assistant (Dec 2026)'."""
    return _("{plan} ({period})").format(plan=plan_name, period=label)


def seats_description(seats: int, label: str) -> str:
    """'5 seats (Dec 2026)'."""
    return ngettext("{count} seat ({period})", "{count} seats ({period})", seats).format(
        count=customer_text.quantity(seats), period=label
    )


def billable_units(model: str, quantity: Decimal, included: Decimal | None) -> Decimal:
    """Units a charge prices: past the allowance for overage, none for a hard cap
    (never billed), all of them for wallet-drawn models."""
    if model == "overage":
        return max(ZERO, quantity - (included or ZERO))
    if model == ConsumptionModel.HARD_CAP:
        return ZERO
    return quantity


@dataclass(frozen=True)
class Uncovered:
    """Usage of a wallet-drawn charge that its wallet could not pay for: the
    units, and the credits or money missing (wallets.drawdown records both)."""

    units: Decimal
    shortfall: Decimal


def uncovered_lines(
    charge: ChargeSpec, uncovered: Uncovered | None, *, meter_name: str, currency: str
) -> list[LineInput]:
    """What a charge that bills when its wallet runs dry (ChargeSpec.bills_uncovered)
    invoices for the usage its wallet could not pay for: a credits charge prices
    those units at its pricing; a balance charge bills the money its balance
    lacked, which is what its pricing asked of those units as they arrived (a tier
    walk continues over the period's usage, covered or not)."""
    if not charge.bills_uncovered or uncovered is None or uncovered.units <= 0:
        return []
    if charge.model == ConsumptionModel.CREDITS:
        return priced_lines(
            charge.pricing,
            uncovered.units,
            kind=LineKind.UNCOVERED_USAGE,
            description=_("{meter} not covered by credits").format(meter=meter_name),
            meter=charge.meter,
            currency=currency,
        )
    # A rate card's rows price the units each at its own row: the line says the
    # money lacked, without one unit price.
    per_unit = charge.pricing is not None and charge.pricing.scheme == PER_UNIT
    return [
        _line(
            LineKind.UNCOVERED_USAGE,
            _("{meter} not covered by the prepaid balance").format(meter=meter_name),
            charge.meter,
            uncovered.units,
            charge.pricing.unit_price if per_unit else None,
            uncovered.shortfall,
            currency,
            charge.pricing.per if per_unit else Decimal(1),
        )
    ]


def rated_lines(
    charge: ChargeSpec,
    rows: Sequence[tuple[int, Decimal]],
    *,
    kind: str,
    meter_name: str,
    currency: str,
) -> list[LineInput]:
    """A rate card's lines: each row that priced usage (rate_cards.rated_quantities:
    its index and quantity) at its pricing, one line per piece of the walk (tiers
    count the row's quantity alone), each carrying the row's `when` as its group."""
    rates = charge.rates
    # Every row's walk in one exact context (priced_pieces enters one a call), the
    # lines then written in the caller's, as priced_lines writes them.
    with localcontext(prec=EXACT_PRECISION):
        walks = [exact_pieces(quantity, rates[index].pricing) for index, quantity in rows]
    language = get_language()  # once a card, not once a row
    lines = []
    for (index, quantity), pieces in zip(rows, walks, strict=True):
        rate = rates[index]
        lines.extend(
            _piece_lines(
                rate.pricing,
                quantity,
                pieces,
                kind=kind,
                description=_rate_description(meter_name, rate.when, language),
                meter=charge.meter,
                currency=currency,
                group=rate.when,
            )
        )
    return lines


def rate_description(meter_name: str, when: tuple) -> str:
    """'LLM tokens · gpt-4o · input'; 'LLM tokens · other usage' for the default row.
    Kept per language: a read of a 151-row card wrote every row's twice (the
    statement and its projection), a sixth of a profiled /usage read."""
    return _rate_description(meter_name, when, get_language())


@lru_cache(maxsize=4096)
def _rate_description(meter_name: str, when: tuple, language: str | None) -> str:
    group = customer_text.rate_group(value for _name, value in when)
    return _("{meter} · {group}").format(meter=meter_name, group=group)


def charge_lines(
    charge: ChargeSpec,
    *,
    quantity: Decimal,
    meter_name: str,
    currency: str,
    uncovered: Uncovered | None = None,
    rows: Sequence[tuple[int, Decimal]] | None = None,
) -> list[LineInput]:
    """The lines of one charge for a period's quantity (a rate card's: its `rows`
    that priced usage, rate_cards.rated_quantities). Hard caps are counted at
    zero (never billed); credit and balance charges are drawn from wallets as
    usage happens, so they add no line here, except for the usage their wallet
    could not pay for when they bill it (uncovered_lines)."""
    if charge.model in DRAWN_MODELS:
        return uncovered_lines(charge, uncovered, meter_name=meter_name, currency=currency)
    if charge.model == ConsumptionModel.HARD_CAP:
        included = charge.included_units or ZERO
        return [
            _line(
                LineKind.USAGE,
                _("{meter} ({included} included, capped)").format(
                    meter=meter_name, included=customer_text.quantity(included)
                ),
                charge.meter,
                quantity,
                ZERO,
                ZERO,
                currency,
            )
        ]
    if charge.model != "overage":
        return []
    if charge.rated:
        # Usage read without its properties counts under the default row.
        if rows is None:
            rows = rated_quantities(charge.rates, {(): quantity})
        return rated_lines(
            charge,
            rows,
            kind=LineKind.OVERAGE,
            meter_name=meter_name,
            currency=currency,
        )
    included = charge.included_units or ZERO
    billable = billable_units(charge.model, quantity, included)
    if billable == 0:
        return []
    description = _("{meter} over {included} included").format(
        meter=meter_name, included=customer_text.quantity(included)
    )
    return priced_lines(
        charge.pricing,
        billable,
        kind=LineKind.OVERAGE,
        description=description,
        meter=charge.meter,
        currency=currency,
        past_included=included > 0,
    )


def priced_lines(
    pricing: PricingSpec,
    units: Decimal,
    *,
    kind: str,
    description: str,
    meter: str,
    currency: str,
    past_included: bool = False,
    group: tuple | None = None,
) -> list[LineInput]:
    """Billable units under a pricing scheme, as explainable lines: one per piece
    of plans.pricing's walk (one per tier reached for graduated), so that the
    lines price exactly what price_units does, each line rounded once. `past_included`:
    the units are those past an allowance, and a tier's bound says it counts them;
    `group`: a rate card row's `when`, that its lines carry."""
    return _piece_lines(
        pricing,
        units,
        priced_pieces(units, pricing),
        kind=kind,
        description=description,
        meter=meter,
        currency=currency,
        past_included=past_included,
        group=group,
    )


def _piece_lines(
    pricing: PricingSpec,
    units: Decimal,
    pieces: tuple[PricedPiece, ...],
    *,
    kind: str,
    description: str,
    meter: str,
    currency: str,
    past_included: bool = False,
    group: tuple | None = None,
) -> list[LineInput]:
    """priced_lines' lines of the pieces of the walk of `units`."""
    return [
        _line(
            kind,
            _piece_description(pricing, units, piece, description, past_included),
            meter,
            piece.quantity,
            piece.unit_price,
            piece.amount,
            currency,
            piece.per,
            group,
        )
        for piece in pieces
    ]


def _piece_description(
    pricing: PricingSpec, units: Decimal, piece: PricedPiece, description: str, past_included: bool
) -> str:
    if pricing.scheme == PACKAGE:
        return _("{charge}: {units} in packages of {size}").format(
            charge=description,
            units=customer_text.quantity(units),
            size=customer_text.quantity(pricing.package_size),
        )
    if pricing.scheme == GRADUATED and piece.up_to is None:
        words = (
            _("{charge}: tier above {bound} past the included")
            if past_included
            else _("{charge}: tier above {bound}")
        )
        return words.format(charge=description, bound=customer_text.quantity(piece.after))
    if pricing.scheme == GRADUATED:
        words = (
            _("{charge}: tier up to {bound} past the included")
            if past_included
            else _("{charge}: tier up to {bound}")
        )
        return words.format(charge=description, bound=customer_text.quantity(piece.up_to))
    return description


def minimum_commitment_line(
    version: VersionSpec, *, usage_lines: list[LineInput]
) -> LineInput | None:
    """A true-up to the period's minimum commitment, counted against usage."""
    if not version.minimum_commitment:
        return None
    usage_total = sum((line.amount for line in usage_lines), ZERO)
    shortfall = version.minimum_commitment - usage_total
    # Compared as billed: a prorated commitment less than half a cent above the
    # usage is met, and writes no true-up line of 0.00.
    if quantize_money(shortfall, version.currency) <= 0:
        return None
    return _line(
        LineKind.MINIMUM_COMMITMENT,
        _("Minimum commitment of {amount} {currency}").format(
            # A prorated commitment is named as billed, to the cent.
            amount=customer_text.money(
                quantize_money(version.minimum_commitment, version.currency), version.currency
            ),
            currency=version.currency,
        ),
        None,
        Decimal(1),
        shortfall,
        shortfall,
        version.currency,
    )


def usage_and_true_up(
    version: VersionSpec,
    *,
    quantities: dict[str, Decimal],
    meter_names: dict[str, str] | None = None,
    share: Decimal = Decimal(1),
    uncovered: dict[str, Uncovered] | None = None,
    rows: Mapping[str, Sequence[tuple[int, Decimal]]] | None = None,
) -> list[LineInput]:
    """The in-arrears lines of a period: each charge's usage (with `uncovered`, by
    meter code, what wallets could not pay for; `rows`, by meter code, the
    quantities of a rate card's rows, rate_cards.rated_quantities), then the
    true-up to the minimum commitment counted for `share` of a whole period."""
    if version.minimum_commitment and share != 1:
        version = replace(version, minimum_commitment=version.minimum_commitment * share)
    lines = []
    for charge in version.charges:
        lines.extend(
            charge_lines(
                charge,
                quantity=quantities.get(charge.meter, ZERO),
                meter_name=(meter_names or {}).get(charge.meter, charge.meter),
                currency=version.currency,
                uncovered=(uncovered or {}).get(charge.meter),
                rows=(rows or {}).get(charge.meter),
            )
        )
    true_up = minimum_commitment_line(version, usage_lines=lines)
    return [*lines, true_up] if true_up else lines
