"""Per-subscription overrides of a version's terms (a negotiated deal): a base
fee, seat price, minimum commitment or progressive billing threshold of its
own, and per charge its included units and pricing, or a rate card's rows
(`rates`: the rows replace the card's, priced by the plan's own `price_by`),
without copying the plan.

An override replaces those fields of the version (or of the version's charge
for that meter: same meter, same model); fields not given keep the version's
value, so a later version of the plan still reaches the rest. The merged terms
are validated as the catalog is (plans.validation), and every reader of a
subscription's terms reads the merged spec (subscription_spec)."""

from dataclasses import dataclass, replace
from decimal import Decimal

from common.errors import InvalidRequest
from common.vocabulary import ALLOWANCE_MODELS
from plans.feature_grants import FeatureGrant, check_grants, value_to_json
from plans.pricing import PricingSpec
from plans.pricing_json import decimal_or_none as _decimal
from plans.pricing_json import number_text as _number
from plans.pricing_json import pricing_from_json, pricing_to_json
from plans.rate_card_pricing import RateSpec
from plans.rate_cards import rate_from_json, rate_to_json
from plans.selectors import version_spec
from plans.validation import FieldErrors, VersionSpec, validate_version

# The version's terms an override may replace.
TERMS = ("base_fee", "seat_price", "minimum_commitment", "progressive_billing_threshold")


@dataclass(frozen=True)
class ChargeOverride:
    meter: str
    included_units: Decimal | None = None
    pricing: PricingSpec | None = None
    # A rate card's rows in place of the version's (None: the version's).
    rates: tuple[RateSpec, ...] | None = None
    # As the API may repeat it: must be the version's charge's own (a deal
    # replaces a card's rows, not the properties they price by); not stored.
    price_by: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Overrides:
    """What a subscription's deal replaces; None: the version's value."""

    base_fee: Decimal | None = None
    seat_price: Decimal | None = None
    minimum_commitment: Decimal | None = None
    progressive_billing_threshold: Decimal | None = None
    charges: tuple[ChargeOverride, ...] = ()
    # Features granted, given another value, or (value None) revoked.
    features: tuple[FeatureGrant, ...] = ()

    def __bool__(self) -> bool:
        return (
            bool(self.charges)
            or bool(self.features)
            or any(getattr(self, name) is not None for name in TERMS)
        )


def overrides_apply(spec: VersionSpec, overrides: Overrides) -> VersionSpec:
    """The version's terms with the overrides in place of its own. Pure."""
    if not overrides:
        return spec
    terms = {
        name: getattr(overrides, name) for name in TERMS if getattr(overrides, name) is not None
    }
    by_meter = {charge.meter: charge for charge in overrides.charges}
    charges = []
    for charge in spec.charges:
        override = by_meter.get(charge.meter)
        if override is not None:
            if override.included_units is not None:
                charge = replace(charge, included_units=override.included_units)
            if override.pricing is not None:
                charge = replace(charge, pricing=override.pricing)
            if override.rates is not None:
                charge = replace(charge, rates=override.rates)
        charges.append(charge)
    features = spec.features
    if overrides.features:
        merged = {grant.feature: grant.value for grant in spec.features}
        for grant in overrides.features:
            merged[grant.feature] = grant.value
        features = tuple(
            FeatureGrant(code, value) for code, value in sorted(merged.items()) if value is not None
        )
    return replace(spec, **terms, charges=tuple(charges), features=features)


def overrides_validate(
    spec: VersionSpec,
    overrides: Overrides,
    *,
    known_meters,
    known_features=None,
    meter_groups=None,
) -> None:
    """Raise InvalidRequest (paths under `overrides.`) unless the overrides fit the
    version: each charge override names a meter the version charges, once, with
    included units only for overage and hard-cap charges and rates only for a
    rate card; each feature is a known one with a value of its kind, or null to
    revoke one the version grants; and the merged terms pass the catalog's
    validation (`meter_groups`: the group_by of the meters cards price by,
    plans.selectors.meter_groups_in)."""
    errors = FieldErrors("overrides.")
    known_features = known_features or {}
    check_grants(errors.add, overrides.features, known=known_features, revocable=True)
    granted_now = {grant.feature for grant in spec.features}
    for index, grant in enumerate(overrides.features):
        revoking = grant.value is None and grant.feature in known_features
        if revoking and grant.feature not in granted_now:
            errors.add(
                f"features.{index}.value",
                f"the version does not grant {grant.feature!r}: nothing to revoke",
            )
    charged = {charge.meter: charge for charge in spec.charges}
    seen: set[str] = set()
    for index, override in enumerate(overrides.charges):
        path = f"charges.{index}"
        charge = charged.get(override.meter)
        if charge is None:
            errors.add(f"{path}.meter", f"the version has no charge for meter {override.meter!r}")
            continue
        if override.meter in seen:
            errors.add(f"{path}.meter", f"meter {override.meter!r} is overridden twice")
        seen.add(override.meter)
        if override.included_units is not None and charge.model not in ALLOWANCE_MODELS:
            errors.add(
                f"{path}.included_units",
                f"{charge.model} charges have no included units to override",
            )
        if override.rates is not None and not charge.price_by:
            errors.add(
                f"{path}.rates",
                f"the version's charge for {override.meter!r} has no rate card: a deal "
                "replaces the rows of a card the plan prices by, or the charge's pricing",
            )
        if override.price_by is not None and override.price_by != charge.price_by:
            errors.add(
                f"{path}.price_by",
                f"a deal prices by the version's properties "
                f"({', '.join(charge.price_by) or 'none'}): it may replace the rows, "
                "not what they price by",
            )
    errors.raise_if_any("invalid overrides")
    merged = overrides_apply(spec, overrides)
    try:
        # The features were checked above, against the overrides' own paths.
        validate_version(
            replace(merged, features=()), known_meters=known_meters, meter_groups=meter_groups
        )
    except InvalidRequest as error:
        # The merged version's paths, told as the overrides' own.
        index_of = {o.meter: i for i, o in enumerate(overrides.charges)}
        fields: dict[str, list[str]] = {}
        for path, texts in error.fields.items():
            parts = path.split(".")
            if parts[0] == "charges" and len(parts) > 1 and parts[1].isdigit():
                meter = merged.charges[int(parts[1])].meter
                parts[1] = str(index_of.get(meter, parts[1]))
            fields.setdefault("overrides." + ".".join(parts), []).extend(texts)
        first, texts = next(iter(fields.items()))
        raise InvalidRequest(f"invalid overrides: {first}: {texts[0]}", fields=fields) from None


def overrides_to_json(overrides: Overrides) -> dict:
    """As a subscription stores them and the API shows them: only what is given."""
    stored: dict = {
        name: _number(getattr(overrides, name))
        for name in TERMS
        if getattr(overrides, name) is not None
    }
    if overrides.charges:
        stored["charges"] = [
            {
                "meter": charge.meter,
                **(
                    {}
                    if charge.included_units is None
                    else {"included_units": _number(charge.included_units)}
                ),
                **({} if charge.pricing is None else {"pricing": pricing_to_json(charge.pricing)}),
                **(
                    {}
                    if charge.rates is None
                    else {"rates": [rate_to_json(rate) for rate in charge.rates]}
                ),
            }
            for charge in overrides.charges
        ]
    if overrides.features:
        stored["features"] = [
            {"feature": grant.feature, "value": value_to_json(grant.value)}
            for grant in overrides.features
        ]
    return stored


def overrides_from_json(stored: dict | None) -> Overrides:
    if not stored:
        return Overrides()
    return Overrides(
        **{name: _decimal(stored.get(name)) for name in TERMS},
        charges=tuple(
            ChargeOverride(
                meter=charge["meter"],
                included_units=_decimal(charge.get("included_units")),
                pricing=pricing_from_json(charge["pricing"]) if charge.get("pricing") else None,
                rates=tuple(map(rate_from_json, charge["rates"])) if "rates" in charge else None,
            )
            for charge in stored.get("charges", ())
        ),
        features=tuple(
            FeatureGrant(item["feature"], _grant_value(item["value"]))
            for item in stored.get("features", ())
        ),
    )


def _grant_value(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def terms_spec(*, version, overrides: dict | None) -> VersionSpec:
    """A version's terms with stored overrides applied (a subscription's, or a
    billed period's)."""
    spec = version_spec(version=version)
    return overrides_apply(spec, overrides_from_json(overrides)) if overrides else spec


def subscription_spec(subscription) -> VersionSpec:
    """The terms a subscription is billed on: its version's, with its overrides."""
    return terms_spec(version=subscription.version, overrides=subscription.overrides)


def deal_specs(current: VersionSpec, draft: VersionSpec, stored: dict):
    """The current version's and the draft's terms for a customer with a deal:
    its overrides of the terms, and of each charge the draft still has with the
    same consumption model (the others are the draft's own); and the meters whose
    override the draft could not keep. Pure."""
    overrides = overrides_from_json(stored)
    models = {charge.meter: charge.model for charge in current.charges}
    price_by = {charge.meter: charge.price_by for charge in current.charges}
    kept = tuple(
        override
        for override in overrides.charges
        if any(
            c.meter == override.meter
            and c.model == models.get(c.meter)
            # A deal's rows only on a card priced by the same properties.
            and (override.rates is None or c.price_by == price_by.get(c.meter))
            for c in draft.charges
        )
    )
    dropped = [o.meter for o in overrides.charges if o not in kept]
    return (
        overrides_apply(current, overrides),
        overrides_apply(draft, replace(overrides, charges=kept)),
        dropped,
    )
