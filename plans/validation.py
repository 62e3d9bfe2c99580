"""Catalog rules, in one place: the API, the admin and `plan_version_publish` all call these.

Each validator takes plain values (already parsed into Decimals by a
serializer or a form) and raises `InvalidRequest` whose `fields` maps a dotted
path (`charges.1.pricing.tiers.0.up_to`) to its messages. The messages are
written for the finance person who reads them beside the field in the admin
(the API returns the same words): they name fields by their admin labels
('Up to') and say what to do.
"""

import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from common.countries import is_country_code
from common.e_invoice_codes import (
    EXEMPTION_REASON_NEEDED,
    STANDARD,
    VAT_CATEGORIES,
    text_part_errors,
    unit_code_errors,
    vat_category_errors,
)
from common.money import is_known_currency
from common.vocabulary import DRAWN_MODELS, ConsumptionModel, WhenExhausted
from plans.credits_rollover import check_rollover
from plans.feature_grants import FeatureGrant, check_grants

# The checks validators are made of, importable from here as they always were.
from plans.field_checks import (  # noqa: F401
    CODE_HELP,
    CODE_RE,
    MAX_PRICE_PLACES,
    FieldErrors,
    check_absent,
    check_code,
    check_currency,
    check_number,
)
from plans.meter_rules import check_filters, check_group_by
from plans.meter_scope import meter_scope_errors
from plans.pricing import PricingSpec
from plans.pricing_validation import SCHEME_WORDS, check_pricing, check_tiers  # noqa: F401
from plans.rate_card_pricing import RateSpec
from plans.rate_cards import check_rates

MAX_TRIAL_DAYS = 3650
EXTERNAL_ID_RE = re.compile(r"^[^\s/?#%\\]{1,255}$")

AGGREGATIONS = ("count", "sum", "max", "unique_count", "latest")
VALUE_AGGREGATIONS = ("sum", "max", "latest")
INTERVALS = ("month", "quarter", "year")
PRICED_MODELS = ("overage", "balance")
# Wallets are drawn event by event, so a wallet-drawn charge needs a meter whose
# quantity is the sum of its events' units.
ADDITIVE_AGGREGATIONS = ("count", "sum")

# Catalog values as the admin's selects name them.
MODEL_WORDS = {
    "overage": "soft cap",
    "hard_cap": "hard cap",
    "credits": "credits",
    "balance": "balance",
}
AGGREGATION_WORDS = {
    "count": "a count of events",
    "sum": "a sum of a property",
    "max": "a maximum of a property",
    "unique_count": "a count of distinct values",
    "latest": "the latest value of a property",
}


def _model_words(model: str) -> str:
    return MODEL_WORDS.get(model, model)


@dataclass(frozen=True)
class ChargeSpec:
    meter: str
    model: str
    included_units: Decimal | None = None
    credits_per_unit: Decimal | None = None
    pricing: PricingSpec | None = None
    # A currency named inside the pricing; must equal the version's.
    pricing_currency: str | None = None
    # Credits and balance charges: "block" or "bill" (WhenExhausted).
    when_exhausted: str = WhenExhausted.BLOCK.value
    # A rate card (plans.rate_card_pricing): the meter's group_by properties
    # it prices by, and its rows.
    price_by: tuple[str, ...] = ()
    rates: tuple[RateSpec, ...] = ()

    @property
    def rated(self) -> bool:
        """Priced by a rate card's rows rather than one price."""
        return bool(self.price_by or self.rates)

    @property
    def pricings(self) -> tuple[PricingSpec, ...]:
        """Its price, or each of its rows' prices."""
        if self.rates:
            return tuple(rate.pricing for rate in self.rates if rate.pricing is not None)
        return () if self.pricing is None else (self.pricing,)

    @property
    def bills_uncovered(self) -> bool:
        """Usage its wallet cannot pay for is billed at the close (not refused)."""
        return self.model in DRAWN_MODELS and self.when_exhausted == WhenExhausted.BILL


@dataclass(frozen=True)
class VersionSpec:
    currency: str
    interval: str = "month"
    base_fee: Decimal = Decimal(0)
    seat_price: Decimal | None = None
    minimum_commitment: Decimal | None = None
    trial_days: int = 0
    credits_per_period: Decimal | None = None
    # What part of a period's unused credits rolls over, and after how many more
    # periods that rollover expires (None, None: they all expire at its end).
    credits_rollover_percent: Decimal | None = None
    credits_rollover_periods: int | None = None
    charges: tuple[ChargeSpec, ...] = field(default_factory=tuple)
    # A threshold invoice bills the period's usage once it is this much (progressive billing).
    progressive_billing_threshold: Decimal | None = None
    # The features the version grants (entitlements), values normalized.
    features: tuple[FeatureGrant, ...] = field(default_factory=tuple)
    # UN/ECE Recommendation 20 unit of the base fee and seats on e-invoices.
    fee_unit_code: str = "C62"


# The terms of a version besides its charges, named alike on the model and the spec.
VERSION_TERMS = (
    "currency",
    "interval",
    "base_fee",
    "seat_price",
    "minimum_commitment",
    "trial_days",
    "credits_per_period",
    "credits_rollover_percent",
    "credits_rollover_periods",
    "progressive_billing_threshold",
    "fee_unit_code",
)


def version_terms_spec(
    source: object, charges: Iterable[ChargeSpec] = (), features: Iterable[FeatureGrant] = ()
) -> VersionSpec:
    """A VersionSpec from anything with the terms as attributes (a PlanVersion, a form's data)."""
    terms = {name: getattr(source, name, None) for name in VERSION_TERMS}
    terms["currency"] = terms["currency"] or ""
    terms["interval"] = terms["interval"] or ""
    terms["base_fee"] = Decimal(0) if terms["base_fee"] is None else terms["base_fee"]
    terms["trial_days"] = 0 if terms["trial_days"] is None else terms["trial_days"]
    terms["fee_unit_code"] = terms["fee_unit_code"] or VersionSpec.fee_unit_code
    return VersionSpec(**terms, charges=tuple(charges), features=tuple(features))


def check_charge(
    errors: FieldErrors,
    path: str,
    charge: ChargeSpec,
    *,
    currency: str,
    known_meters: Mapping[str, str | None],
    meter_groups: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    if charge.meter not in known_meters:
        errors.add(f"{path}.meter", f"Unknown meter {charge.meter!r}: create it under Meters first")
    aggregation = known_meters.get(charge.meter)
    model = _model_words(charge.model)
    if charge.model in DRAWN_MODELS and aggregation not in (None, *ADDITIVE_AGGREGATIONS):
        errors.add(
            f"{path}.model",
            f"A {model} charge draws from a wallet event by event: its meter must count "
            f"events or sum a property, and {charge.meter!r} takes "
            f"{AGGREGATION_WORDS.get(aggregation, aggregation)}",
            words=(
                f"A {model} charge draws from a wallet event by event: its meter must count "
                "events or sum a property, and this one takes "
                f"{AGGREGATION_WORDS.get(aggregation, aggregation)}: pick such a meter, or "
                "a soft or hard cap."
            ),
        )
    if charge.model not in ConsumptionModel.values:
        errors.add(
            f"{path}.model", "Pick a consumption model: soft cap, hard cap, credits or balance"
        )
        return
    if charge.when_exhausted not in WhenExhausted.values:
        errors.add(
            f"{path}.when_exhausted", "Pick what happens when the wallet runs out: block or bill"
        )
    elif charge.model not in DRAWN_MODELS and charge.when_exhausted != WhenExhausted.BLOCK:
        errors.add(
            f"{path}.when_exhausted",
            f"A {model} charge has no wallet to run out: leave 'When exhausted' at Block",
        )
    if charge.rated:
        check_rates(
            errors,
            path,
            charge,
            group_by=(meter_groups or {}).get(charge.meter),
            aggregation=aggregation,
        )
    if charge.rated and not (charge.model == ConsumptionModel.CREDITS and charge.bills_uncovered):
        pass  # the rows carry the prices
    elif charge.model in PRICED_MODELS or charge.bills_uncovered:
        if charge.pricing is None:
            errors.add(
                f"{path}.pricing",
                "A credits charge that bills when the credits run out needs a price: "
                "what a unit no credit covers costs"
                if charge.bills_uncovered and charge.model == ConsumptionModel.CREDITS
                else f"A {model} charge needs a price: pick a pricing scheme",
            )
        else:
            check_pricing(errors, f"{path}.pricing", charge.pricing)
    else:
        check_absent(
            errors,
            f"{path}.pricing",
            charge.pricing,
            "A credits charge has no price unless it bills when the credits run out: "
            "remove the price or set 'When exhausted' to Bill"
            if charge.model == ConsumptionModel.CREDITS
            else f"A {model} charge has no price: remove the pricing",
        )
    if charge.pricing_currency is not None and charge.pricing_currency != currency:
        errors.add(
            f"{path}.pricing.currency",
            f"A version bills in one currency: this price is in {charge.pricing_currency}, "
            f"the version in {currency}",
        )
    if charge.model == "credits" and not charge.rated:
        check_number(
            errors,
            f"{path}.credits_per_unit",
            charge.credits_per_unit,
            required=True,
            positive=True,
            missing="A credits charge needs the credits each unit uses",
        )
    elif charge.model != "credits":
        check_absent(
            errors,
            f"{path}.credits_per_unit",
            charge.credits_per_unit,
            f"Only credits charges use credits: leave it empty for a {model} charge",
        )
    if charge.model == ConsumptionModel.HARD_CAP:
        check_number(
            errors,
            f"{path}.included_units",
            charge.included_units,
            required=True,
            missing="A hard cap charge needs its included units: the usage allowed each period",
        )
    elif charge.model == "overage":
        check_number(errors, f"{path}.included_units", charge.included_units)
    else:
        check_absent(
            errors,
            f"{path}.included_units",
            charge.included_units,
            f"A {model} charge draws from a wallet and has no included units: leave it empty",
        )


def validate_version(
    spec: VersionSpec,
    *,
    known_meters: Iterable[str] | Mapping[str, str],
    known_features: Mapping[str, str] | None = None,
    meter_groups: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Every rule of a plan version. Raises InvalidRequest with every problem found.
    `known_meters` holds the existing meters' codes, or maps them to their
    aggregations (then wallet-drawn charges are checked against them too);
    `known_features` maps the existing features' codes to their kinds;
    `meter_groups` the group_by of the meters rate cards price by."""
    errors = FieldErrors()
    known = dict(known_meters) if isinstance(known_meters, Mapping) else dict.fromkeys(known_meters)
    check_currency(errors, "currency", spec.currency)
    money_currency = spec.currency if is_known_currency(spec.currency) else None
    if spec.interval not in INTERVALS:
        errors.add("interval", "Pick a billing interval: month, quarter or year")
    check_number(errors, "base_fee", spec.base_fee, required=True, currency=money_currency)
    check_number(errors, "seat_price", spec.seat_price, currency=money_currency)
    check_number(errors, "minimum_commitment", spec.minimum_commitment, currency=money_currency)
    check_number(errors, "credits_per_period", spec.credits_per_period)
    check_rollover(
        errors,
        credits_per_period=spec.credits_per_period,
        percent=spec.credits_rollover_percent,
        periods=spec.credits_rollover_periods,
    )
    check_number(
        errors,
        "progressive_billing_threshold",
        spec.progressive_billing_threshold,
        positive=True,
        currency=money_currency,
    )
    for message in unit_code_errors(spec.fee_unit_code):
        errors.add("fee_unit_code", message)
    if isinstance(spec.trial_days, bool) or not isinstance(spec.trial_days, int):
        errors.add("trial_days", "Enter a whole number of days")
    elif not 0 <= spec.trial_days <= MAX_TRIAL_DAYS:
        errors.add("trial_days", f"Enter 0 to {MAX_TRIAL_DAYS} days")
    seen: dict[str, int] = {}
    for index, charge in enumerate(spec.charges):
        path = f"charges.{index}"
        if charge.meter in seen:
            errors.add(
                f"{path}.meter",
                f"This meter is charged already (charge {seen[charge.meter] + 1}): "
                "a version charges each meter once",
            )
        seen.setdefault(charge.meter, index)
        check_charge(
            errors,
            path,
            charge,
            currency=spec.currency,
            known_meters=known,
            meter_groups=meter_groups,
        )
    check_grants(errors.add, spec.features, known=known_features or {})
    errors.raise_if_any("invalid plan version")


def validate_meter(
    *,
    code: str,
    name: str,
    event_name: str,
    aggregation: str,
    value_property: str,
    unique_property: str,
    filters: object,
    group_by: object = (),
    invoice_breakdown: object = "",
    unit_code: object = "C62",
) -> None:
    errors = FieldErrors()
    check_code(errors, "code", code)
    for message in unit_code_errors(unit_code):
        errors.add("unit_code", message)
    if not name or not name.strip():
        errors.add("name", "Give the meter a name")
    if not event_name or not event_name.strip():
        errors.add("event_name", "Enter the name of the events the meter counts")
    only_unique = "Only a count of distinct values reads this property: leave it empty"
    if aggregation not in AGGREGATIONS:
        errors.add(
            "aggregation",
            "Pick an aggregation: count, sum, max, unique_count or latest",
        )
    elif aggregation in VALUE_AGGREGATIONS:
        if not value_property:
            errors.add(
                "value_property",
                f"{AGGREGATION_WORDS[aggregation].capitalize()} needs the property to read",
            )
        check_absent(errors, "unique_property", unique_property, only_unique)
    elif aggregation == "unique_count":
        if not unique_property:
            errors.add(
                "unique_property",
                "A count of distinct values needs the property whose values to count",
            )
        check_absent(
            errors,
            "value_property",
            value_property,
            "A count of distinct values reads no value property: leave it empty",
        )
    else:
        check_absent(
            errors,
            "value_property",
            value_property,
            "A count of events reads no value property: leave it empty",
        )
        check_absent(errors, "unique_property", unique_property, only_unique)
    check_filters(errors, "filters", filters)
    check_group_by(errors, "group_by", group_by)
    if invoice_breakdown and (
        not isinstance(group_by, list | tuple) or invoice_breakdown not in group_by
    ):
        errors.add("invoice_breakdown", "Must be one of the properties in 'Break usage down by'")
    errors.raise_if_any("invalid meter")


def validate_credit_pack(
    *, code: str, credits: Decimal, price: Decimal, currency: str, applies_to: object = None
) -> None:
    """`applies_to`: the meters the pack's credits pay for (empty: every meter)."""
    errors = FieldErrors()
    for message in meter_scope_errors([] if applies_to is None else applies_to):
        errors.add("applies_to", message)
    check_code(errors, "code", code)
    check_number(errors, "credits", credits, required=True, positive=True)
    check_currency(errors, "currency", currency)
    check_number(
        errors,
        "price",
        price,
        required=True,
        currency=currency if is_known_currency(currency) else None,
    )
    errors.raise_if_any("invalid credit pack")


def validate_customer(
    *, external_id: str, currency: str, timezone: str, spend_limit: Decimal | None, address: object
) -> None:
    errors = FieldErrors()
    if not isinstance(external_id, str) or not EXTERNAL_ID_RE.match(external_id):
        errors.add(
            "external_id", "must be 1-255 characters without spaces, '/', '?', '#', '%' or '\\'"
        )
    check_currency(errors, "currency", currency)
    if timezone not in available_timezones():
        errors.add(
            "timezone", f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Paris'"
        )
    check_number(
        errors,
        "spend_limit",
        spend_limit,
        currency=currency if is_known_currency(currency) else None,
    )
    check_address(errors, "address", address)
    errors.raise_if_any("invalid customer")


ADDRESS_KEYS = ("line1", "line2", "city", "state", "postal_code", "country")
ADDRESS_MAX_LENGTH = 200


def address_trimmed(address: object) -> object:
    """An address object with each of its strings trimmed of the spaces around it
    (what is stored and printed); anything else as given, for check_address."""
    if not isinstance(address, Mapping):
        return address
    return {
        key: value.strip() if isinstance(value, str) and value.strip() else value
        for key, value in address.items()
    }


def check_address(errors: FieldErrors, path: str, address: object) -> None:
    """A postal address: an object of these keys only (ADDRESS_KEYS), each a string
    or null, `country` an ISO 3166-1 alpha-2 code such as 'FR'. A part is never
    only spaces nor holds a control character (an e-invoice would carry it as
    an empty element: PEPPOL-EN16931-R008); '' is no part."""
    if not isinstance(address, Mapping):
        errors.add(path, f"must be an object with the keys {', '.join(ADDRESS_KEYS)}")
        return
    for key in sorted(set(address) - set(ADDRESS_KEYS), key=str):
        errors.add(f"{path}.{key}", f"unknown key; an address has {', '.join(ADDRESS_KEYS)}")
    for key in ADDRESS_KEYS:
        value = address.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.add(f"{path}.{key}", "must be a string or null")
        elif problems := text_part_errors(value):
            errors.add(f"{path}.{key}", problems[0])
        elif len(value) > ADDRESS_MAX_LENGTH:
            errors.add(f"{path}.{key}", f"must be at most {ADDRESS_MAX_LENGTH} characters")
        elif key == "country" and not is_country_code(value):
            errors.add(
                f"{path}.{key}", f"unknown country {value!r}; use an ISO 3166-1 code such as 'FR'"
            )


MAX_TAX_PERCENTAGE = Decimal(100)


def validate_tax_rate(
    *,
    code: object,
    name: object,
    percentage: object,
    country: object,
    vat_category: object = STANDARD,
    exemption_reason: object = "",
    check_category: bool = True,
) -> None:
    """A tax rate's terms. `check_category`: whether its VAT category is checked
    against its percentage (vat_category_errors); False when neither changes,
    so a rate written before categories (0 % and the default S) saves as before."""
    errors = FieldErrors()
    if vat_category not in dict(VAT_CATEGORIES):
        errors.add("vat_category", f"must be one of {', '.join(dict(VAT_CATEGORIES))}")
    elif check_category and isinstance(percentage, Decimal) and percentage.is_finite():
        for message in vat_category_errors(vat_category, percentage, exemption_reason or ""):
            field = "exemption_reason" if message == EXEMPTION_REASON_NEEDED else "vat_category"
            errors.add(field, message)
    check_code(errors, "code", code)
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "must not be empty")
    check_number(errors, "percentage", percentage, required=True, max_places=4)
    if (
        isinstance(percentage, Decimal)
        and percentage.is_finite()
        and percentage > MAX_TAX_PERCENTAGE
    ):
        errors.add("percentage", f"must be at most {MAX_TAX_PERCENTAGE}")
    if country not in ("", None) and not is_country_code(country):
        errors.add("country", f"unknown country {country!r}; use an ISO 3166-1 code such as 'FR'")
    errors.raise_if_any("invalid tax rate")


@functools.cache
def available_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
