"""A plan version's prices in words, as the admin's price history and its
comparison with the published version show them: each term, charge field and
tier named as finance says it ("Base fee", "Included units", "Up to"), its value
as money, a quantity or a choice, and what changed between two versions
(VersionSpec) as sentences: "Base fee: 49.00 USD → 59.00 USD", "LLM tokens,
tier 2: unit price 0.002 USD → 0.0015 USD", "LLM tokens: rate gpt-4o · input:
0.0000025 USD → 0.000002 USD". Every word is in the reader's language (the
admin user's, active when these are called) and every figure in their
convention (common.admin_forms): "Grundgebühr: 49,00 USD → 59,00 USD".
Nothing here is stored: the price history is written again from the audit rows
each time it is read. Charges are matched by meter, tiers by position
and a rate card's rows by their `when`, so a charge the services wrote again
reads as changed, not as removed and added."""

from collections.abc import Mapping
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common import customer_text
from common.admin_forms import money_text, percent_text, quantity_text, unit_price_text
from common.vocabulary import DRAWN_MODELS, ConsumptionModel, WhenExhausted
from plans.feature_grants import FeatureGrant
from plans.feature_text import value_text
from plans.models import Charge, PlanVersion
from plans.pricing import PACKAGE, PER_UNIT, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.validation import ChargeSpec, VersionSpec

NONE = "—"
ARROW = "→"

TERM_LABELS = {
    "currency": gettext_lazy("Currency"),
    "interval": gettext_lazy("Billing interval"),
    "base_fee": gettext_lazy("Base fee"),
    "seat_price": gettext_lazy("Seat price"),
    "minimum_commitment": gettext_lazy("Minimum commitment"),
    "trial_days": gettext_lazy("Trial days"),
    "credits_per_period": gettext_lazy("Credits per period"),
    "credits_rollover_percent": gettext_lazy("Credits rollover percent"),
    "credits_rollover_periods": gettext_lazy("Rollover expires after periods"),
    "progressive_billing_threshold": gettext_lazy("Progressive billing threshold"),
}
MONEY_TERMS = ("base_fee", "seat_price", "minimum_commitment", "progressive_billing_threshold")


CHARGE_LABELS = {
    "model": gettext_lazy("Consumption model"),
    "included_units": gettext_lazy("Included units"),
    "credits_per_unit": gettext_lazy("Credits per unit"),
    "when_exhausted": gettext_lazy("When exhausted"),
    "scheme": gettext_lazy("Pricing scheme"),
    "unit_price": gettext_lazy("Unit price"),
    "package_size": gettext_lazy("Package size"),
    "package_price": gettext_lazy("Package price"),
    "price_by": gettext_lazy("Priced by"),
}
TIER_LABELS = {
    "up_to": gettext_lazy("Up to"),
    "unit_price": gettext_lazy("Unit price"),
    "flat_fee": gettext_lazy("Flat fee"),
}
# Charge fields whose values are choices: the history quotes them ('"Graduated"').
CHOICE_FIELDS = ("model", "when_exhausted", "scheme")


def choice_name(choices, value: str) -> str:
    """A choice's label in the reader's language; the value itself if unknown."""
    return str(dict(choices).get(value, value))


def status_name(status: str) -> str:
    return choice_name(PlanVersion.STATUSES, status)


def no_limit() -> str:
    return _("no limit")


def said(subject: str, text: str) -> str:
    """'Storage: charge removed': what a sentence is about, then what it says of
    it ('Stockage : …' in French)."""
    return _("%(subject)s: %(text)s") % {"subject": subject, "text": text}


def changed(old: str, new: str) -> str:
    return f"{old} {ARROW} {new}"


def in_sentence(label: str) -> str:
    """A field's label inside a sentence: 'unit price' ('Stückpreis' in German,
    whose nouns keep their capital)."""
    if translation.get_language() == "de":
        return label
    return f"{label[:1].lower()}{label[1:]}"


def term_texts(spec: VersionSpec) -> dict[str, str]:
    """The version's terms by label, in words."""
    texts = {}
    for name, lazy_label in TERM_LABELS.items():
        label, value = str(lazy_label), getattr(spec, name)
        if name in MONEY_TERMS:
            texts[label] = money_text(value, spec.currency)
        elif name == "interval":
            texts[label] = choice_name(PlanVersion.INTERVALS, value)
        elif name == "trial_days":
            texts[label] = quantity_text(value) if value else _("No trial")
        elif name in ("credits_per_period", "credits_rollover_periods"):
            texts[label] = quantity_text(value)
        elif name == "credits_rollover_percent":
            texts[label] = percent_text(value)
        else:
            texts[label] = value or NONE
    return texts


def charge_texts(charge: ChargeSpec, currency: str) -> dict[str, str]:
    """A charge's fields by label, in words (its tiers apart: tier_texts)."""
    pricing = charge.pricing
    exhausted = choice_name(WhenExhausted.choices, charge.when_exhausted).split(":")[0]
    texts = {
        "model": choice_name(ConsumptionModel.choices, charge.model),
        "included_units": quantity_text(charge.included_units),
        "credits_per_unit": quantity_text(charge.credits_per_unit),
        "when_exhausted": exhausted if charge.model in DRAWN_MODELS else NONE,
        "scheme": choice_name(Charge.SCHEME_CHOICES, pricing.scheme) if pricing else NONE,
        "unit_price": NONE,
        "package_size": NONE,
        "package_price": NONE,
    }
    if pricing and pricing.scheme == PER_UNIT:
        texts["unit_price"] = unit_price_text(pricing.unit_price, pricing.per, currency)
    if pricing and pricing.scheme == PACKAGE:
        texts["package_size"] = quantity_text(pricing.package_size)
        texts["package_price"] = money_text(pricing.package_price, currency)
    if charge.price_by:
        texts["price_by"] = ", ".join(charge.price_by)
    return _labelled(CHARGE_LABELS, texts)


def _labelled(labels: Mapping, texts: dict[str, str]) -> dict[str, str]:
    """Texts by field name as texts by their label in the reader's language."""
    return {str(labels[name]): text for name, text in texts.items()}


def quoted(label: str, text: str) -> str:
    """A field's value as a sentence says it: a choice quoted ('“Graduated”',
    '« Par paliers »'), any other as it is."""
    if text == NONE or label not in {str(CHARGE_LABELS[name]) for name in CHOICE_FIELDS}:
        return text
    return _("“%(choice)s”") % {"choice": text}


def rate_name(rate: RateSpec) -> str:
    """'rate gpt-4o · input' (its values, as its invoice lines name it); 'default rate'."""
    if not rate.when:
        return _("default rate")
    return _("rate %(values)s") % {
        "values": customer_text.rate_group(value for _name, value in rate.when)
    }


def rate_text(rate: RateSpec, currency: str) -> str:
    """A row's price in words: '2.50 USD per 1,000,000', '0.50 USD per 1,000' (a
    package), 'Graduated: up to: 100,000, unit price 3.00 USD per 1,000,000; up
    to: no limit, unit price 0.002 USD', '5 credits per 1,000'."""
    pricing = rate.pricing
    if pricing is None:
        if rate.credits_per_unit is None:
            return NONE
        return _("%(credits)s credits per %(per)s") % {
            "credits": quantity_text(rate.credits_per_unit),
            "per": quantity_text(rate.per),
        }
    if pricing.scheme == PER_UNIT:
        return unit_price_text(pricing.unit_price, pricing.per, currency)
    if pricing.scheme == PACKAGE:
        return _("%(price)s per %(size)s") % {
            "price": money_text(pricing.package_price, currency),
            "size": quantity_text(pricing.package_size),
        }
    tiers = "; ".join(tier_summary(tier, currency) for tier in pricing.tiers)
    return said(choice_name(Charge.SCHEME_CHOICES, pricing.scheme), tiers)


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
            lines.append(_("%(rate)s removed (%(price)s)") % {"rate": name, "price": was})
        elif when not in old:
            name, now = new[when]
            lines.append(_("%(rate)s added (%(price)s)") % {"rate": name, "price": now})
        elif old[when][1] != new[when][1]:
            name, now = new[when]
            lines.append(said(name, changed(old[when][1], now)))
    return lines


def charge_tiers(charge: ChargeSpec | None) -> tuple[TierSpec, ...]:
    return charge.pricing.tiers if charge and charge.pricing else ()


def tier_texts(tier: TierSpec, currency: str) -> dict[str, str]:
    texts = {
        "up_to": no_limit() if tier.up_to is None else quantity_text(tier.up_to),
        "unit_price": unit_price_text(tier.unit_price, tier.per, currency),
        "flat_fee": money_text(tier.flat_fee or Decimal(0), currency),
    }
    return _labelled(TIER_LABELS, texts)


def tier_summary(tier: TierSpec, currency: str) -> str:
    """'up to: 1,000,000, unit price 0.002 USD' (and its flat fee when it has one)."""
    up_to = no_limit() if tier.up_to is None else quantity_text(tier.up_to)
    price = unit_price_text(tier.unit_price, tier.per, currency)
    summary = _("up to: %(up_to)s, unit price %(price)s") % {"up_to": up_to, "price": price}
    if not tier.flat_fee:
        return summary
    fee = money_text(tier.flat_fee, currency)
    return _("%(tier)s, flat fee %(fee)s") % {"tier": summary, "fee": fee}


def changed_fields(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """'unit price 0.002 USD → 0.0015 USD' for each field whose words differ (a
    field one side lacks, such as a rate card's 'Priced by', is — there)."""
    return [
        f"{in_sentence(label)} {quoted(label, before.get(label, NONE))} {ARROW} "
        f"{quoted(label, after.get(label, NONE))}"
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
            lines.append(
                _("%(meter)s: tier %(number)s added (%(tier)s)")
                % {"meter": meter, "number": number, "tier": summary}
            )
        elif index >= len(after):
            summary = tier_summary(before[index], currency)
            lines.append(
                _("%(meter)s: tier %(number)s removed (%(tier)s)")
                % {"meter": meter, "number": number, "tier": summary}
            )
        else:
            old, new = tier_texts(before[index], currency), tier_texts(after[index], currency)
            lines.extend(
                _("%(meter)s, tier %(number)s: %(change)s")
                % {"meter": meter, "number": number, "change": text}
                for text in changed_fields(old, new)
            )
    return lines


def charge_summary(charge: ChargeSpec, currency: str) -> str:
    """'Soft cap: …; included units 1,000; pricing scheme “Graduated”'."""
    texts = charge_texts(charge, currency)
    model = str(CHARGE_LABELS["model"])
    parts = [choice_name(ConsumptionModel.choices, charge.model)]
    parts.extend(
        f"{in_sentence(label)} {quoted(label, text)}"
        for label, text in texts.items()
        if label != model and text != NONE
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
            lines.append(_("%(meter)s: charge removed") % {"meter": name})
            continue
        if was is None:
            summary = charge_summary(charge, currency)
            lines.append(
                _("%(meter)s: charge added (%(charge)s)") % {"meter": name, "charge": summary}
            )
        else:
            fields = changed_fields(charge_texts(was, currency), charge_texts(charge, currency))
            lines.extend(said(name, text) for text in fields)
        lines.extend(tier_changes(name, charge_tiers(was), charge_tiers(charge), currency))
        lines.extend(said(name, text) for text in rate_changes(was, charge, currency))
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
            lines.append(_("%(feature)s: no longer granted") % {"feature": name})
        elif code not in old:
            value = value_text(new[code])
            lines.append(_("%(feature)s: granted (%(value)s)") % {"feature": name, "value": value})
        elif value_text(old[code]) != value_text(new[code]):
            lines.append(said(name, changed(value_text(old[code]), value_text(new[code]))))
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
            said(str(label), texts[str(label)])
            for name, label in TERM_LABELS.items()
            if getattr(after, name)
        ]
    else:
        old, new = term_texts(before), term_texts(after)
        terms = [
            said(label, changed(old[label], new[label]))
            for label in new
            if old[label] != new[label]
        ]
    return [
        *terms,
        *charge_changes(before, after, meter_names),
        *feature_changes(before.features if before else (), after.features, feature_names),
    ]
