"""A plan version's prices in words, as the admin's price history and its
comparison with the published version show them: each term, charge field and
tier named as finance says it ("Base fee", "Included units", "Up to"), its value
as money, a quantity or a choice, and what changed between two versions
(VersionSpec) as sentences: "Base fee: 49.00 USD → 59.00 USD", "LLM tokens,
tier 2: unit price 0.002 USD → 0.0015 USD", "LLM tokens: rate gpt-4o · input:
0.0000025 USD → 0.000002 USD". Charges are matched by meter, tiers by position
and a rate card's rows by their `when`, so a charge the services wrote again
reads as changed, not as removed and added."""

from collections.abc import Mapping
from decimal import Decimal

from django.utils import translation

from billing.core import customer_text
from billing.core.admin_forms import money_text, quantity_text, unit_price_text
from billing.core.vocabulary import DRAWN_MODELS, ConsumptionModel, WhenExhausted
from billing.rating.pricing import PACKAGE, PER_UNIT, TierSpec
from billing.rating.rate_cards import RateSpec
from plans.feature_grants import FeatureGrant
from plans.feature_text import value_text
from plans.models import Charge, PlanVersion
from plans.validation import ChargeSpec, VersionSpec

NONE = "—"
ARROW = "→"

TERM_LABELS = {
    "currency": "Currency",
    "interval": "Billing interval",
    "base_fee": "Base fee",
    "seat_price": "Seat price",
    "minimum_commitment": "Minimum commitment",
    "trial_days": "Trial days",
    "credits_per_period": "Credits per period",
    "credits_rollover_percent": "Credits rollover percent",
    "credits_rollover_periods": "Rollover expires after periods",
    "progressive_billing_threshold": "Progressive billing threshold",
}
MONEY_TERMS = ("base_fee", "seat_price", "minimum_commitment", "progressive_billing_threshold")


def _english(choices) -> dict[str, str]:
    """Choice labels (translated in the admin's forms) as these English sentences say them."""
    with translation.override("en"):
        return {choice: str(label) for choice, label in choices}


INTERVAL_NAMES = _english(PlanVersion.INTERVALS)
STATUS_NAMES = _english(PlanVersion.STATUSES)
MODEL_NAMES = _english(ConsumptionModel.choices)
WHEN_EXHAUSTED_NAMES = {
    choice: label.split(":")[0] for choice, label in _english(WhenExhausted.choices).items()
}
SCHEME_NAMES = _english(Charge.SCHEME_CHOICES)

# Charge fields whose values are choices: the history quotes them ('"Graduated"').
CHOICE_FIELDS = ("Consumption model", "When exhausted", "Pricing scheme")


def term_texts(spec: VersionSpec) -> dict[str, str]:
    """The version's terms by label, in words."""
    texts = {}
    for name, label in TERM_LABELS.items():
        value = getattr(spec, name)
        if name in MONEY_TERMS:
            texts[label] = money_text(value, spec.currency)
        elif name == "interval":
            texts[label] = INTERVAL_NAMES.get(value, value)
        elif name == "trial_days":
            texts[label] = quantity_text(value) if value else "No trial"
        elif name in ("credits_per_period", "credits_rollover_periods"):
            texts[label] = quantity_text(value)
        elif name == "credits_rollover_percent":
            texts[label] = NONE if value is None else f"{quantity_text(value)}%"
        else:
            texts[label] = value or NONE
    return texts


def charge_texts(charge: ChargeSpec, currency: str) -> dict[str, str]:
    """A charge's fields by label, in words (its tiers apart: tier_texts)."""
    pricing = charge.pricing
    texts = {
        "Consumption model": MODEL_NAMES.get(charge.model, charge.model),
        "Included units": quantity_text(charge.included_units),
        "Credits per unit": quantity_text(charge.credits_per_unit),
        "When exhausted": WHEN_EXHAUSTED_NAMES.get(charge.when_exhausted, charge.when_exhausted)
        if charge.model in DRAWN_MODELS
        else NONE,
        "Pricing scheme": SCHEME_NAMES.get(pricing.scheme, pricing.scheme) if pricing else NONE,
        "Unit price": NONE,
        "Package size": NONE,
        "Package price": NONE,
    }
    if pricing and pricing.scheme == PER_UNIT:
        texts["Unit price"] = unit_price_text(pricing.unit_price, pricing.per, currency)
    if pricing and pricing.scheme == PACKAGE:
        texts["Package size"] = quantity_text(pricing.package_size)
        texts["Package price"] = money_text(pricing.package_price, currency)
    if charge.price_by:
        texts["Priced by"] = ", ".join(charge.price_by)
    return texts


def rate_name(rate: RateSpec) -> str:
    """'rate gpt-4o · input' (its values, as its invoice lines name it); 'default rate'."""
    if not rate.when:
        return "default rate"
    return f"rate {customer_text.rate_group(value for _name, value in rate.when)}"


def rate_text(rate: RateSpec, currency: str) -> str:
    """A row's price in words: '2.50 USD per 1,000,000', '0.50 USD per 1,000' (a
    package), 'Graduated: up to: 100,000, unit price 3.00 USD per 1,000,000; up
    to: no limit, unit price 0.002 USD', '5 credits per 1,000'."""
    pricing = rate.pricing
    if pricing is None:
        if rate.credits_per_unit is None:
            return NONE
        credits = quantity_text(rate.credits_per_unit)
        return f"{credits} credits per {quantity_text(rate.per)}"
    if pricing.scheme == PER_UNIT:
        return unit_price_text(pricing.unit_price, pricing.per, currency)
    if pricing.scheme == PACKAGE:
        price = money_text(pricing.package_price, currency)
        return f"{price} per {quantity_text(pricing.package_size)}"
    tiers = "; ".join(tier_summary(tier, currency) for tier in pricing.tiers)
    return f"{SCHEME_NAMES.get(pricing.scheme, pricing.scheme)}: {tiers}"


def rate_texts(charge: ChargeSpec | None, currency: str) -> dict[tuple, tuple[str, str]]:
    """A charge's rate card by each row's `when`: its name and price in words."""
    if charge is None:
        return {}
    return {rate.when: (rate_name(rate), rate_text(rate, currency)) for rate in charge.rates}


def rate_changes(before: ChargeSpec | None, after: ChargeSpec, currency: str) -> list[str]:
    """A rate card's rows compared by their `when`: repriced ('rate gpt-4o · input:
    0.0000025 USD → 0.000002 USD'), added or removed."""
    old, new = rate_texts(before, currency), rate_texts(after, currency)
    lines = []
    for when in [*new, *(w for w in old if w not in new)]:
        if when not in new:
            name, was = old[when]
            lines.append(f"{name} removed ({was})")
        elif when not in old:
            name, now = new[when]
            lines.append(f"{name} added ({now})")
        elif old[when][1] != new[when][1]:
            name, now = new[when]
            lines.append(f"{name}: {old[when][1]} {ARROW} {now}")
    return lines


def charge_tiers(charge: ChargeSpec | None) -> tuple[TierSpec, ...]:
    return charge.pricing.tiers if charge and charge.pricing else ()


def tier_texts(tier: TierSpec, currency: str) -> dict[str, str]:
    return {
        "Up to": "no limit" if tier.up_to is None else quantity_text(tier.up_to),
        "Unit price": unit_price_text(tier.unit_price, tier.per, currency),
        "Flat fee": money_text(tier.flat_fee or Decimal(0), currency),
    }


def tier_summary(tier: TierSpec, currency: str) -> str:
    """'up to: 1,000,000, unit price 0.002 USD' (and its flat fee when it has one)."""
    texts = tier_texts(tier, currency)
    summary = f"up to: {texts['Up to']}, unit price {texts['Unit price']}"
    return f"{summary}, flat fee {texts['Flat fee']}" if tier.flat_fee else summary


def _value(label: str, text: str) -> str:
    return f"“{text}”" if label in CHOICE_FIELDS and text != NONE else text


def changed_fields(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """'unit price 0.002 USD → 0.0015 USD' for each field whose words differ (a
    field one side lacks, such as a rate card's 'Priced by', is — there)."""
    return [
        f"{label[0].lower()}{label[1:]} {_value(label, before.get(label, NONE))} {ARROW} "
        f"{_value(label, after.get(label, NONE))}"
        for label in field_labels(before, after)
        if before.get(label, NONE) != after.get(label, NONE)
    ]


def field_labels(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The labels of both, `after`'s first."""
    return list(dict.fromkeys([*after, *before]))


def tier_changes(
    meter: str, before: tuple[TierSpec, ...], after: tuple[TierSpec, ...], currency: str
) -> list[str]:
    """Tiers compared by position: changed, added or removed."""
    lines = []
    for index in range(max(len(before), len(after))):
        number = index + 1
        if index >= len(before):
            summary = tier_summary(after[index], currency)
            lines.append(f"{meter}: tier {number} added ({summary})")
        elif index >= len(after):
            summary = tier_summary(before[index], currency)
            lines.append(f"{meter}: tier {number} removed ({summary})")
        else:
            old, new = tier_texts(before[index], currency), tier_texts(after[index], currency)
            lines.extend(f"{meter}, tier {number}: {text}" for text in changed_fields(old, new))
    return lines


def charge_summary(charge: ChargeSpec, currency: str) -> str:
    """'Soft cap: …; included units 1,000; pricing scheme “Graduated”'."""
    texts = charge_texts(charge, currency)
    parts = [texts["Consumption model"]]
    parts.extend(
        f"{label[0].lower()}{label[1:]} {_value(label, text)}"
        for label, text in texts.items()
        if label != "Consumption model" and text != NONE
    )
    return "; ".join(parts)


def charge_changes(
    before: VersionSpec | None, after: VersionSpec, meter_names: Mapping[str, str]
) -> list[str]:
    """What changed in the charges, by meter and then by tier position."""
    old = {c.meter: c for c in before.charges} if before else {}
    new = {c.meter: c for c in after.charges}
    currency = after.currency
    lines = []
    for meter in [*new, *(m for m in old if m not in new)]:
        name = meter_names.get(meter, meter)
        charge, was = new.get(meter), old.get(meter)
        if charge is None:
            lines.append(f"{name}: charge removed")
            continue
        if was is None:
            lines.append(f"{name}: charge added ({charge_summary(charge, currency)})")
        else:
            fields = changed_fields(charge_texts(was, currency), charge_texts(charge, currency))
            lines.extend(f"{name}: {text}" for text in fields)
        lines.extend(tier_changes(name, charge_tiers(was), charge_tiers(charge), currency))
        lines.extend(f"{name}: {text}" for text in rate_changes(was, charge, currency))
    return lines


def feature_changes(
    before: tuple[FeatureGrant, ...], after: tuple[FeatureGrant, ...], names: Mapping[str, str]
) -> list[str]:
    old = {g.feature: g.value for g in before}
    new = {g.feature: g.value for g in after}
    lines = []
    for code in [*new, *(c for c in old if c not in new)]:
        name = names.get(code, code)
        if code not in new:
            lines.append(f"{name}: no longer granted")
        elif code not in old:
            lines.append(f"{name}: granted ({value_text(new[code])})")
        elif value_text(old[code]) != value_text(new[code]):
            lines.append(f"{name}: {value_text(old[code])} {ARROW} {value_text(new[code])}")
    return lines


def spec_changes(
    before: VersionSpec | None,
    after: VersionSpec,
    *,
    meter_names: Mapping[str, str],
    feature_names: Mapping[str, str],
) -> list[str]:
    """Every difference from `before` to `after`, one sentence each. A version that
    did not exist (`before` None) lists what it was created with."""
    if before is None:
        texts = term_texts(after)
        terms = [
            f"{label}: {texts[label]}"
            for name, label in TERM_LABELS.items()
            if getattr(after, name)
        ]
    else:
        old, new = term_texts(before), term_texts(after)
        terms = [
            f"{label}: {old[label]} {ARROW} {new[label]}"
            for label in new
            if old[label] != new[label]
        ]
    return [
        *terms,
        *charge_changes(before, after, meter_names),
        *feature_changes(before.features if before else (), after.features, feature_names),
    ]
