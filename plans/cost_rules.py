"""Cost rates' rules and their writes: what a row may say (its meter, its
`when` as rate cards' rows say theirs, its numbers, its currency, an hour for
its moment), and the history kept (a row is added, never edited). The model is
plans.cost_models.CostRate; billing.margins prices usage with them."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from common.errors import Conflict, NotFound
from common.periods import on_the_hour
from plans.field_checks import FieldErrors, check_currency, check_number, check_unit_price
from plans.models import CostRate, Meter
from plans.rate_card_pricing import When, ties, when_of
from plans.rate_cards import RATED_AGGREGATIONS, check_when, when_words

OFF_THE_HOUR = (
    "costs are computed per hour: effective_from must be on the hour (e.g. 2026-11-01T00:00:00Z)"
)
MEANING = "the meter's group_by properties"


def _when_pairs(errors: FieldErrors, when: object) -> When | None:
    if not isinstance(when, Mapping):
        errors.add("when", 'Give the property values as an object, e.g. {"model": "gpt-4o"}')
        return None
    return tuple(sorted((str(name), value) for name, value in when.items()))


def check_cost_rate(
    *,
    meter: Meter | None,
    meter_code: object,
    when: object,
    unit_cost: Decimal | None,
    per: Decimal | None,
    currency: object,
    effective_from: datetime | None,
) -> When:
    """Raise InvalidRequest naming each field that breaks a rule; the `when`
    as pairs when none does."""
    errors = FieldErrors()
    if meter is None:
        errors.add("meter", f"No meter {meter_code!r}: create it first, or check the code")
    elif meter.aggregation not in RATED_AGGREGATIONS:
        errors.add(
            "meter",
            "Costs are computed on quantities that add up: a meter that counts events "
            "or sums a property",
        )
    pairs = _when_pairs(errors, when)
    if pairs is not None and meter is not None:
        check_when(errors, "when", pairs, tuple(meter.group_by or ()), among=MEANING)
    check_number(errors, "unit_cost", unit_cost, required=True)
    check_number(errors, "per", per, required=True, positive=True)
    if not errors.errors.keys() & {"unit_cost", "per"}:
        check_unit_price(errors, "unit_cost", unit_cost, per)
    check_currency(errors, "currency", currency)
    if effective_from is None:
        errors.add("effective_from", "This field is required")
    elif not on_the_hour(effective_from):
        errors.add("effective_from", OFF_THE_HOUR)
    errors.raise_if_any("invalid cost rate")
    return pairs or ()


def _check_ties(meter: Meter, when: When, currency: str) -> None:
    """A row's `when` must not match some usage as well as another row of the
    meter does (the rate cards' rule): which would cost it would be a guess."""
    others = {
        when_of(row)
        for row in CostRate.objects.filter(meter=meter, currency=currency).values_list(
            "when", flat=True
        )
    }
    if when in others:
        return  # a later rate for the same usage: history
    whens = [*sorted(others), when]
    last = len(whens) - 1
    for first, second in ties(whens):
        if last in (first, second):
            other = whens[first if second == last else second]
            errors = FieldErrors()
            errors.add(
                "when",
                f"This rate and the meter's rates for {when_words(other)} match the same "
                "usage equally: add a rate naming both values, or change one of them",
            )
            errors.raise_if_any("invalid cost rate")


def cost_rate_create(
    *,
    meter: str,
    when: object = None,
    unit_cost: Decimal | None = None,
    per: Decimal | None = Decimal(1),
    currency: object = "",
    effective_from: datetime | None = None,
) -> CostRate:
    """Add a cost rate: from `effective_from` on, it costs the usage its `when`
    matches (a row for the same meter and `when` before it stops there)."""
    when = {} if when is None else when
    with transaction.atomic():
        # The meter's row serializes its rates' writes: a duplicate is found.
        found = Meter.objects.select_for_update().filter(code=meter).first()
        pairs = check_cost_rate(
            meter=found,
            meter_code=meter,
            when=when,
            unit_cost=unit_cost,
            per=per,
            currency=currency,
            effective_from=effective_from,
        )
        _check_ties(found, pairs, currency)
        same = CostRate.objects.filter(meter=found, effective_from=effective_from)
        if any(when_of(row) == pairs for row in same.values_list("when", flat=True)):
            raise Conflict(
                f"meter {meter!r} already has a cost rate for {when_words(pairs)} from "
                f"{effective_from.isoformat()}: add one from another hour",
                fields={"effective_from": ["A rate for this usage starts at this hour already"]},
            )
        return CostRate.objects.create(
            meter=found,
            when=dict(pairs),
            unit_cost=unit_cost,
            per=per,
            currency=currency,
            effective_from=effective_from,
        )


def cost_rate_supersede(
    *, rate_id: int, unit_cost: Decimal | None = None, per: Decimal | None = None
) -> CostRate:
    """Correct a wrong cost rate over every hour it covered: a row for the same
    meter, `when`, currency and `effective_from` at `unit_cost` for `per` units,
    which costs those hours from then on (billing.margins reads it instead); the
    wrong row is kept, marked superseded by it; `per` not given is the wrong row's
    (a correction of a price per million stays per million). Checked as cost_rate_create checks
    a row; 404 for an unknown rate, 409 for one superseded already (correct its
    correction). Under the meter's row lock, as the meter's other rate writes;
    the one-to-one `supersedes` keeps two corrections of one row out anyway."""
    with transaction.atomic():
        wrong = CostRate.objects.filter(pk=rate_id).select_related("meter").first()
        if wrong is None:
            raise NotFound(f"no cost rate {rate_id}")
        Meter.objects.select_for_update().filter(pk=wrong.meter_id).first()
        correction = CostRate.objects.filter(supersedes=wrong).first()
        if correction is not None:
            raise Conflict(
                f"cost rate {wrong.pk} was superseded by cost rate {correction.pk} already: "
                f"supersede {correction.pk} to correct it again",
                words=f"This rate was corrected already, by rate {correction.pk}: correct that.",
            )
        per = wrong.per if per is None else per
        pairs = check_cost_rate(
            meter=wrong.meter,
            meter_code=wrong.meter.code,
            when=wrong.when,
            unit_cost=unit_cost,
            per=per,
            currency=wrong.currency,
            effective_from=wrong.effective_from,
        )
        return CostRate.objects.create(
            meter=wrong.meter,
            when=dict(pairs),
            unit_cost=unit_cost,
            per=per,
            currency=wrong.currency,
            effective_from=wrong.effective_from,
            supersedes=wrong,
        )


def cost_rates(*, meter: str | None = None):
    """The cost rates, of one meter (by code) when named, in the order added
    (superseded ones too: the history)."""
    rows = CostRate.objects.select_related("meter", "superseded_by").order_by("id")
    return rows if meter is None else rows.filter(meter__code=meter)
