"""Catalog rules, in one place: the API, the admin and `plan_version_publish` all call these.

Each validator takes plain values (already parsed into Decimals by a
serializer or a form) and raises `InvalidRequest` whose `fields` maps a dotted
path (`charges.1.pricing.tiers.0.up_to`) to its messages.
"""

import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from billing.core.countries import is_country_code
from billing.core.errors import InvalidRequest
from billing.core.money import currency_exponent, has_minor_unit_precision, is_known_currency
from billing.core.vocabulary import DRAWN_MODELS, ConsumptionModel, WhenExhausted
from billing.rating.pricing import (
    PACKAGE,
    PER_UNIT,
    SCHEMES,
    TIERED_SCHEMES,
    PricingSpec,
    TierSpec,
)
from plans.feature_grants import FeatureGrant, check_grants
from plans.meter_rules import check_filters, check_group_by

MAX_PRICE_PLACES = 10
MAX_TRIAL_DAYS = 3650
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
CODE_HELP = "1-64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
EXTERNAL_ID_RE = re.compile(r"^[^\s/?#%\\]{1,255}$")

AGGREGATIONS = ("count", "sum", "max", "unique_count", "latest")
VALUE_AGGREGATIONS = ("sum", "max", "latest")
INTERVALS = ("month", "quarter", "year")
PRICED_MODELS = ("overage", "balance")
# Wallets are drawn event by event, so a wallet-drawn charge needs a meter whose
# quantity is the sum of its events' units.
ADDITIVE_AGGREGATIONS = ("count", "sum")


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
    charges: tuple[ChargeSpec, ...] = field(default_factory=tuple)
    # A threshold invoice bills the period's usage once it is this much (progressive billing).
    progressive_billing_threshold: Decimal | None = None
    # The features the version grants (entitlements), values normalized.
    features: tuple[FeatureGrant, ...] = field(default_factory=tuple)


# The terms of a version besides its charges, named alike on the model and the spec.
VERSION_TERMS = (
    "currency",
    "interval",
    "base_fee",
    "seat_price",
    "minimum_commitment",
    "trial_days",
    "credits_per_period",
    "progressive_billing_threshold",
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
    return VersionSpec(**terms, charges=tuple(charges), features=tuple(features))


class FieldErrors:
    """Collects messages by dotted path, then raises them all at once."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        key = f"{self.prefix}{path}" if path else self.prefix.rstrip(".") or "non_field_errors"
        self.errors.setdefault(key, []).append(message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            first_path, messages = next(iter(self.errors.items()))
            raise InvalidRequest(f"{summary}: {first_path}: {messages[0]}", fields=self.errors)


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_number(
    errors: FieldErrors,
    path: str,
    value: Decimal | None,
    *,
    required: bool = False,
    positive: bool = False,
    max_places: int | None = MAX_PRICE_PLACES,
    currency: str | None = None,
) -> None:
    """Finite, non-negative (or positive), and not more precise than allowed."""
    if value is None:
        if required:
            errors.add(path, "this field is required")
        return
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        errors.add(path, "must be a number")
        return
    value = Decimal(value)
    if not value.is_finite():
        errors.add(path, "must be a finite number")
    elif positive and value <= 0:
        errors.add(path, "must be greater than zero")
    elif value < 0:
        errors.add(path, "must not be negative")
    elif currency is not None and is_known_currency(currency):
        if not has_minor_unit_precision(value, currency):
            errors.add(
                path,
                f"must have at most {currency_exponent(currency)} decimal places in {currency}",
            )
    elif max_places is not None and _places(value) > max_places:
        errors.add(path, f"must have at most {max_places} decimal places")


def check_absent(errors: FieldErrors, path: str, value: object, why: str) -> None:
    if value not in (None, "", (), [], {}):
        errors.add(path, why)


def check_code(errors: FieldErrors, path: str, code: object) -> None:
    if not isinstance(code, str) or not CODE_RE.match(code):
        errors.add(path, f"must be {CODE_HELP}")


def check_currency(errors: FieldErrors, path: str, currency: object) -> None:
    if not is_known_currency(currency):
        errors.add(path, f"unknown currency {currency!r}; use an ISO 4217 code such as 'USD'")


def check_tiers(errors: FieldErrors, path: str, tiers: tuple[TierSpec, ...]) -> None:
    """Tiers ascending and contiguous (each starts where the last ended), the last one open."""
    if not tiers:
        errors.add(path, "a tiered scheme needs at least one tier")
        return
    previous: Decimal = Decimal(0)
    for index, tier in enumerate(tiers):
        tier_path = f"{path}.{index}"
        check_number(errors, f"{tier_path}.unit_price", tier.unit_price, required=True)
        check_number(errors, f"{tier_path}.flat_fee", tier.flat_fee)
        is_last = index == len(tiers) - 1
        if tier.up_to is None:
            if not is_last:
                errors.add(f"{tier_path}.up_to", "only the last tier may be open (up_to null)")
            continue
        if is_last:
            errors.add(f"{tier_path}.up_to", "the last tier must be open: set up_to to null")
            continue
        before = len(errors.errors)
        check_number(errors, f"{tier_path}.up_to", tier.up_to, positive=True)
        if len(errors.errors) == before and tier.up_to <= previous:
            errors.add(
                f"{tier_path}.up_to",
                f"tiers must ascend: up_to {tier.up_to} is not above the previous {previous}",
            )
        elif len(errors.errors) == before:
            previous = tier.up_to


def check_pricing(errors: FieldErrors, path: str, pricing: PricingSpec) -> None:
    if pricing.scheme not in SCHEMES:
        errors.add(f"{path}.scheme", f"must be one of {', '.join(SCHEMES)}")
        return
    if pricing.scheme == PER_UNIT:
        check_number(errors, f"{path}.unit_price", pricing.unit_price, required=True)
    else:
        check_absent(
            errors, f"{path}.unit_price", pricing.unit_price, "only per_unit takes unit_price"
        )
    if pricing.scheme == PACKAGE:
        check_number(
            errors, f"{path}.package_size", pricing.package_size, required=True, positive=True
        )
        check_number(errors, f"{path}.package_price", pricing.package_price, required=True)
    else:
        for name in ("package_size", "package_price"):
            check_absent(errors, f"{path}.{name}", getattr(pricing, name), "only package takes it")
    if pricing.scheme in TIERED_SCHEMES:
        check_tiers(errors, f"{path}.tiers", pricing.tiers)
    else:
        check_absent(errors, f"{path}.tiers", pricing.tiers, "only graduated and volume take tiers")


def check_charge(
    errors: FieldErrors,
    path: str,
    charge: ChargeSpec,
    *,
    currency: str,
    known_meters: Mapping[str, str | None],
) -> None:
    if charge.meter not in known_meters:
        errors.add(f"{path}.meter", f"unknown meter {charge.meter!r}")
    aggregation = known_meters.get(charge.meter)
    if charge.model in DRAWN_MODELS and aggregation not in (None, *ADDITIVE_AGGREGATIONS):
        errors.add(
            f"{path}.model",
            f"{charge.model} charges draw a wallet per event: meter {charge.meter!r} must "
            f"count or sum, not {aggregation}",
        )
    if charge.model not in ConsumptionModel.values:
        errors.add(f"{path}.model", f"must be one of {', '.join(ConsumptionModel.values)}")
        return
    if charge.when_exhausted not in WhenExhausted.values:
        errors.add(f"{path}.when_exhausted", f"must be one of {', '.join(WhenExhausted.values)}")
    elif charge.model not in DRAWN_MODELS and charge.when_exhausted != WhenExhausted.BLOCK:
        errors.add(
            f"{path}.when_exhausted",
            f"only credits and balance charges take it: {charge.model} charges have no wallet",
        )
    if charge.model in PRICED_MODELS or charge.bills_uncovered:
        if charge.pricing is None:
            errors.add(
                f"{path}.pricing",
                "credits charges that bill when exhausted need pricing: the money price "
                "of a unit no credit covers"
                if charge.bills_uncovered and charge.model == ConsumptionModel.CREDITS
                else f"{charge.model} charges need pricing",
            )
        else:
            check_pricing(errors, f"{path}.pricing", charge.pricing)
    else:
        check_absent(
            errors,
            f"{path}.pricing",
            charge.pricing,
            "credits charges have no pricing unless they bill when exhausted"
            if charge.model == ConsumptionModel.CREDITS
            else f"{charge.model} charges have no pricing",
        )
    if charge.pricing_currency is not None and charge.pricing_currency != currency:
        errors.add(
            f"{path}.pricing.currency",
            f"a version has one currency: {charge.pricing_currency} is not {currency}",
        )
    if charge.model == "credits":
        check_number(
            errors,
            f"{path}.credits_per_unit",
            charge.credits_per_unit,
            required=True,
            positive=True,
        )
    else:
        check_absent(
            errors,
            f"{path}.credits_per_unit",
            charge.credits_per_unit,
            "only credits charges take it",
        )
    if charge.model == ConsumptionModel.HARD_CAP:
        check_number(errors, f"{path}.included_units", charge.included_units, required=True)
    elif charge.model == "overage":
        check_number(errors, f"{path}.included_units", charge.included_units)
    else:
        check_absent(
            errors,
            f"{path}.included_units",
            charge.included_units,
            f"{charge.model} charges draw from a wallet and have no included units",
        )


def validate_version(
    spec: VersionSpec,
    *,
    known_meters: Iterable[str] | Mapping[str, str],
    known_features: Mapping[str, str] | None = None,
) -> None:
    """Every rule of a plan version. Raises InvalidRequest with every problem found.
    `known_meters` holds the existing meters' codes, or maps them to their
    aggregations (then wallet-drawn charges are checked against them too);
    `known_features` maps the existing features' codes to their kinds."""
    errors = FieldErrors()
    known = dict(known_meters) if isinstance(known_meters, Mapping) else dict.fromkeys(known_meters)
    check_currency(errors, "currency", spec.currency)
    money_currency = spec.currency if is_known_currency(spec.currency) else None
    if spec.interval not in INTERVALS:
        errors.add("interval", f"must be one of {', '.join(INTERVALS)}")
    check_number(errors, "base_fee", spec.base_fee, required=True, currency=money_currency)
    check_number(errors, "seat_price", spec.seat_price, currency=money_currency)
    check_number(errors, "minimum_commitment", spec.minimum_commitment, currency=money_currency)
    check_number(errors, "credits_per_period", spec.credits_per_period)
    check_number(
        errors,
        "progressive_billing_threshold",
        spec.progressive_billing_threshold,
        positive=True,
        currency=money_currency,
    )
    if isinstance(spec.trial_days, bool) or not isinstance(spec.trial_days, int):
        errors.add("trial_days", "must be a whole number of days")
    elif not 0 <= spec.trial_days <= MAX_TRIAL_DAYS:
        errors.add("trial_days", f"must be between 0 and {MAX_TRIAL_DAYS}")
    seen: dict[str, int] = {}
    for index, charge in enumerate(spec.charges):
        path = f"charges.{index}"
        if charge.meter in seen:
            errors.add(
                f"{path}.meter",
                f"meter {charge.meter!r} already has a charge (charges.{seen[charge.meter]}): "
                "one consumption model per feature",
            )
        seen.setdefault(charge.meter, index)
        check_charge(errors, path, charge, currency=spec.currency, known_meters=known)
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
) -> None:
    errors = FieldErrors()
    check_code(errors, "code", code)
    if not name or not name.strip():
        errors.add("name", "must not be blank")
    if not event_name or not event_name.strip():
        errors.add("event_name", "must not be blank")
    if aggregation not in AGGREGATIONS:
        errors.add("aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    elif aggregation in VALUE_AGGREGATIONS:
        if not value_property:
            errors.add("value_property", f"{aggregation} needs the property to read")
        check_absent(errors, "unique_property", unique_property, "only unique_count takes it")
    elif aggregation == "unique_count":
        if not unique_property:
            errors.add("unique_property", "unique_count needs the property whose values to count")
        check_absent(errors, "value_property", value_property, f"{aggregation} reads no value")
    else:
        check_absent(errors, "value_property", value_property, "count reads no value")
        check_absent(errors, "unique_property", unique_property, "only unique_count takes it")
    check_filters(errors, "filters", filters)
    check_group_by(errors, "group_by", group_by)
    if invoice_breakdown and (
        not isinstance(group_by, list | tuple) or invoice_breakdown not in group_by
    ):
        errors.add("invoice_breakdown", "must be one of the meter's group_by properties")
    errors.raise_if_any("invalid meter")


def validate_credit_pack(*, code: str, credits: Decimal, price: Decimal, currency: str) -> None:
    errors = FieldErrors()
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


def check_address(errors: FieldErrors, path: str, address: object) -> None:
    """A postal address: an object of these keys only (ADDRESS_KEYS), each a string
    or null, `country` an ISO 3166-1 alpha-2 code such as 'FR'."""
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
        elif len(value) > ADDRESS_MAX_LENGTH:
            errors.add(f"{path}.{key}", f"must be at most {ADDRESS_MAX_LENGTH} characters")
        elif key == "country" and not is_country_code(value):
            errors.add(
                f"{path}.{key}", f"unknown country {value!r}; use an ISO 3166-1 code such as 'FR'"
            )


MAX_TAX_PERCENTAGE = Decimal(100)


def validate_tax_rate(*, code: object, name: object, percentage: object, country: object) -> None:
    errors = FieldErrors()
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
