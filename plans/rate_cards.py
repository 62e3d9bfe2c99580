"""Rate cards in the catalog: their rules (check_rates, called by
plans.validation for every charge with `price_by` or `rates`), and their rows as
stored (plans.models.ChargeRate) and as JSON (the API, deals). How a card
prices usage is plans.rate_card_pricing."""

from collections.abc import Mapping, Sequence
from decimal import Decimal

from common.groups import OTHER_VALUE
from common.vocabulary import ConsumptionModel
from plans.field_checks import FieldErrors, check_absent, check_number
from plans.pricing_json import pricing_from_json, pricing_to_json
from plans.pricing_validation import check_pricing
from plans.rate_card_pricing import RateSpec, properties_outside, ties

# Rows a card may have, and the longest value a row may name: usage is read per
# combination of values (billing.usage.metering.combination_text), which keeps
# combinations of at most 512 characters.
MAX_RATES = 1000
MAX_WHEN_VALUE_LENGTH = 160
# Overlapping rows named in one answer (a pasted card can overlap everywhere).
MAX_TIES_SHOWN = 20
# Meters whose quantities add up over the combinations a row prices.
RATED_AGGREGATIONS = ("count", "sum")


def when_words(when) -> str:
    """A row's conditions as finance reads them: 'model gpt-4o, token_type input'."""
    return ", ".join(f"{name} {value}" for name, value in when) or "the default row"


def row_words(index: int, when) -> str:
    return f"row {index + 1} ({when_words(when)})"


def check_rates(
    errors: FieldErrors,
    path: str,
    charge,
    *,
    group_by: Sequence[str] | None,
    aggregation: str | None,
) -> None:
    """The rules of a charge with a rate card (`charge` a plans.validation
    ChargeSpec with price_by or rates). `group_by` and `aggregation` are the
    meter's (None: an unknown meter, reported elsewhere)."""
    price_by = charge.price_by
    if charge.model == ConsumptionModel.HARD_CAP:
        errors.add(
            f"{path}.rates",
            "A hard cap charge takes no rate card: it bills nothing, it only caps. "
            "Remove the rates, or make it a soft cap, credits or balance charge",
        )
        return
    _check_price_by(errors, path, price_by, group_by, aggregation)
    if not charge.rates:
        errors.add(
            f"{path}.rates",
            "A charge priced by properties needs its rates, with a default row "
            "(when {}) for the usage no other row matches",
        )
        return
    if len(charge.rates) > MAX_RATES:
        errors.add(f"{path}.rates", f"At most {MAX_RATES} rows")
        return
    if charge.model == "overage" and charge.included_units:
        errors.add(
            f"{path}.included_units",
            "With rates, included units must be 0: put an allowance on a charge of its own",
        )
    if not (charge.model == ConsumptionModel.CREDITS and charge.bills_uncovered):
        check_absent(
            errors,
            f"{path}.pricing",
            charge.pricing,
            "A charge with rates is priced by its rows: remove the charge's own price",
        )
    check_absent(
        errors,
        f"{path}.credits_per_unit",
        charge.credits_per_unit,
        "A credits charge with rates draws the credits of its rows: leave it empty",
    )
    well_formed = []
    for index, rate in enumerate(charge.rates):
        row = f"{path}.rates.{index}"
        if check_when(errors, f"{row}.when", rate.when, price_by):
            well_formed.append(index)
        _check_row_price(errors, row, rate, charge.model)
    if not any(not rate.when for rate in charge.rates):
        errors.add(
            f"{path}.rates",
            "Add a default row (when {}): it prices the usage no other row matches, "
            "and usage without the properties",
        )
    whens = [charge.rates[i].when for i in well_formed]
    found = ties(whens, most=MAX_TIES_SHOWN + 1)
    for first, second in found[:MAX_TIES_SHOWN]:
        i, j = well_formed[first], well_formed[second]
        errors.add(
            f"{path}.rates.{j}.when",
            _tie_words(i, charge.rates[i].when, j, charge.rates[j].when),
        )
    if len(found) > MAX_TIES_SHOWN:
        errors.add(
            f"{path}.rates",
            f"More rows overlap than the {MAX_TIES_SHOWN} named: fix those, then save again",
        )


def _tie_words(i: int, first, j: int, second) -> str:
    if first == second:
        return f"{row_words(j, second).capitalize()} repeats {row_words(i, first)}: remove one"
    return (
        f"{row_words(i, first).capitalize()} and {row_words(j, second)} match the same "
        f"usage ({when_words(sorted({**dict(first), **dict(second)}.items()))}) equally: "
        "add a row naming both values, or change one of them"
    )


def _check_price_by(errors, path, price_by, group_by, aggregation) -> None:
    if not price_by:
        errors.add(
            f"{path}.price_by",
            "Name the properties the rates price by (e.g. model, token_type): "
            "properties the meter groups its usage by",
        )
        return
    if len(set(price_by)) != len(price_by):
        errors.add(f"{path}.price_by", "Name each property once")
    if group_by is not None:
        outside = [name for name in price_by if name not in group_by]
        if outside:
            errors.add(
                f"{path}.price_by",
                f"The meter does not group its usage by {', '.join(outside)}: add "
                f"{'it' if len(outside) == 1 else 'them'} to the meter's group_by first "
                f"(it groups by {', '.join(group_by) or 'nothing'})",
            )
    if aggregation is not None and aggregation not in RATED_AGGREGATIONS:
        errors.add(
            f"{path}.price_by",
            "Rates price a quantity split by properties, which adds up only for a meter "
            "that counts events or sums a property",
        )


def check_when(
    errors, path: str, when, price_by, *, among: str = "the properties the charge prices by"
) -> bool:
    """Whether a row's conditions are well formed (then ties are looked for):
    text values of `price_by` properties (`among` says what they are). Cost
    rates' conditions too (plans.cost_rules)."""
    ok = True
    for name, value in when:
        if not isinstance(value, str) or not value:
            errors.add(path, f'The value of {name} must be a text (e.g. "gpt-4o")')
            ok = False
        elif value == OTHER_VALUE:
            # Usage counted as "other" is priced by the rows its own value would match.
            errors.add(path, f"The value of {name} is the one usage counted as other has")
            ok = False
        elif len(value) > MAX_WHEN_VALUE_LENGTH:
            errors.add(
                path, f"The value of {name} is longer than {MAX_WHEN_VALUE_LENGTH} characters"
            )
            ok = False
    outside = properties_outside(when, price_by)
    if outside:
        errors.add(
            path,
            f"{', '.join(outside)} is not among {among} ({', '.join(price_by) or 'none'})",
        )
        ok = False
    return ok


def _check_row_price(errors, row: str, rate: RateSpec, model: str) -> None:
    if model == ConsumptionModel.CREDITS:
        check_number(
            errors,
            f"{row}.credits_per_unit",
            rate.credits_per_unit,
            required=True,
            positive=True,
            missing="A credits row needs the credits it draws for every 'per' units",
        )
        check_number(errors, f"{row}.per", rate.per, required=True, positive=True)
        check_absent(
            errors, f"{row}.pricing", rate.pricing, "A credits row draws credits: remove the price"
        )
        return
    check_absent(
        errors,
        f"{row}.credits_per_unit",
        rate.credits_per_unit,
        "Only credits charges draw credits: give this row a price",
    )
    if rate.per != 1:
        errors.add(f"{row}.per", "A priced row says 'per' inside its pricing")
    if rate.pricing is None:
        errors.add(f"{row}.pricing", "Each row needs its price")
    else:
        check_pricing(errors, f"{row}.pricing", rate.pricing)


def rate_from_json(data: Mapping) -> RateSpec:
    """A row as the API and deals write it."""
    pricing = data.get("pricing")
    credits = data.get("credits_per_unit")
    return RateSpec(
        when=tuple(sorted((data.get("when") or {}).items())),
        pricing=None if pricing is None else pricing_from_json(pricing),
        credits_per_unit=None if credits is None else Decimal(credits),
        per=Decimal(data.get("per") or 1),
    )


def rate_to_json(rate: RateSpec) -> dict:
    out: dict = {"when": rate.group}
    if rate.pricing is not None:
        out["pricing"] = pricing_to_json(rate.pricing)
    if rate.credits_per_unit is not None:
        out["credits_per_unit"] = format(rate.credits_per_unit, "f")
        out["per"] = format(rate.per, "f")
    return out


def rate_rows(charge, rates: Sequence[RateSpec]) -> list:
    """A charge's rows as stored (unsaved plans.models.ChargeRate)."""
    from plans.models import ChargeRate

    return [
        ChargeRate(
            charge=charge,
            position=position,
            when=rate.group,
            pricing=rate_to_json(rate).get("pricing"),
            credits_per_unit=rate.credits_per_unit,
            per=rate.per,
        )
        for position, rate in enumerate(rates)
    ]


def rate_of(row) -> RateSpec:
    """A stored row (plans.models.ChargeRate) as the rating reads it."""
    return rate_from_json(
        {
            "when": row.when,
            "pricing": row.pricing,
            "credits_per_unit": None if row.credits_per_unit is None else str(row.credits_per_unit),
            "per": str(row.per),
        }
    )
