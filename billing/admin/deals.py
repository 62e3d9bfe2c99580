"""A subscription's deal in the admin: what it overrides of its version, in
words beside the version's own values, and the fields finance sets it with
(from the next period, through billing.subscriptions.deals)."""

from dataclasses import replace
from decimal import Decimal

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.entitlements import deal_features_text
from billing.models import Subscription
from common import customer_text
from common.admin_forms import (
    ExactDecimalField,
    amount_text,
    amounts_in_currency,
    quantity_text,
)
from common.vocabulary import ALLOWANCE_MODELS
from plans.models import Charge
from plans.overrides import ChargeOverride, Overrides, overrides_from_json
from plans.price_wording import choice_name, rate_changes
from plans.price_wording import said as said_of
from plans.pricing import PER_UNIT, PricingSpec
from plans.selectors import version_spec

TERM_LABELS = {
    "base_fee": _("Base fee"),
    "seat_price": _("Seat price"),
    "minimum_commitment": _("Minimum commitment"),
    "progressive_billing_threshold": _("Progressive billing threshold"),
}


def deal_text(stored: dict | None, version) -> str:
    """'Base fee 99.00 (plan: 19.99); prompts: 1,000 included (plan: 200), 0.02 a
    unit (plan: 0.05); Projects: 50 (plan: 10); Models: revoked (plan: gpt-4o,
    o1)'. Empty without overrides."""
    overrides = overrides_from_json(stored)
    if not overrides:
        return ""
    spec = version_spec(version=version)

    def money(value: Decimal | None) -> str:
        return gettext("none") if value is None else amount_text(value, spec.currency)

    parts = []
    for name, label in TERM_LABELS.items():
        value = getattr(overrides, name)
        if value is not None:
            parts.append(
                gettext("%(term)s %(deal)s (plan: %(plan)s)")
                % {"term": label, "deal": money(value), "plan": money(getattr(spec, name))}
            )
    charges = {charge.meter: charge for charge in spec.charges}
    for override in overrides.charges:
        charge = charges.get(override.meter)
        said = []
        if override.included_units is not None:
            plan_units = customer_text.quantity(charge.included_units or 0) if charge else "-"
            said.append(
                gettext("%(units)s included (plan: %(plan)s)")
                % {"units": customer_text.quantity(override.included_units), "plan": plan_units}
            )
        if override.pricing is not None:
            said.append(
                gettext("%(deal)s (plan: %(plan)s)")
                % {
                    "deal": _pricing(override.pricing),
                    "plan": _pricing(charge and charge.pricing),
                }
            )
        if override.rates is not None and charge is not None:
            # The deal's rows against the plan's: 'rate gpt-4o · input: 0.0000025
            # USD → 0.000002 USD, rate claude-sonnet removed (0.000003 USD)'.
            deal = replace(charge, rates=override.rates)
            said.extend(rate_changes(charge, deal, spec.currency) or [gettext("the plan's rates")])
        parts.append(said_of(override.meter, ", ".join(said)))
    parts.extend(deal_features_text(overrides.features, spec.features))
    return "; ".join(parts)


def _pricing(pricing: PricingSpec | None) -> str:
    if pricing is None:
        return "-"
    if pricing.scheme == PER_UNIT and pricing.per != 1:
        return gettext("%(price)s per %(per)s units") % {
            "price": quantity_text(pricing.unit_price),
            "per": quantity_text(pricing.per),
        }
    if pricing.scheme == PER_UNIT:
        return gettext("%(price)s a unit") % {"price": quantity_text(pricing.unit_price)}
    return gettext("%(scheme)s pricing") % {
        "scheme": choice_name(Charge.SCHEME_CHOICES, pricing.scheme)
    }


class DealFields(forms.Form):
    """The deal's fields on a subscription's change form: each empty keeps the
    version's value. One charge's included units and per-unit price at a time."""

    deal_base_fee = ExactDecimalField(required=False, label=_("Deal: base fee"))
    deal_seat_price = ExactDecimalField(required=False, label=_("Deal: seat price"))
    deal_minimum_commitment = ExactDecimalField(required=False, label=_("Deal: minimum commitment"))
    deal_threshold = ExactDecimalField(
        required=False, label=_("Deal: progressive billing threshold")
    )
    deal_meter = forms.ChoiceField(required=False, label=_("Deal: charge"))
    deal_included_units = ExactDecimalField(required=False, label=_("Deal: included units"))
    deal_unit_price = ExactDecimalField(
        required=False,
        label=_("Deal: price a unit beyond"),
        help_text=_("The deal applies from the next period; empty fields keep the plan's values."),
    )

    FIELDS = [
        "deal_base_fee",
        "deal_seat_price",
        "deal_minimum_commitment",
        "deal_threshold",
        "deal_meter",
        "deal_included_units",
        "deal_unit_price",
    ]


def stored_deal(subscription: Subscription) -> dict:
    """The deal of the subscription's next period, as stored."""
    if subscription.next_overrides is not None:
        return subscription.next_overrides
    return subscription.overrides


def deal_setup(form, subscription: Subscription) -> None:
    """Offer the subscription's metered charges and show the deal in force next."""
    version = subscription.scheduled_version or subscription.version
    charges = [c for c in version_spec(version=version).charges if c.model in ALLOWANCE_MODELS]
    form.fields["deal_meter"].choices = [("", "-")] + [(c.meter, c.meter) for c in charges]
    overrides = overrides_from_json(stored_deal(subscription))
    amounts_in_currency(form, version.currency, [*TERM_FIELDS, "deal_unit_price"])
    form.initial.update({field: getattr(overrides, name) for field, name in TERM_FIELDS.items()})
    if overrides.charges:
        charge = overrides.charges[0]
        form.initial.update(
            deal_meter=charge.meter,
            deal_included_units=charge.included_units,
            deal_unit_price=charge.pricing.unit_price
            if charge.pricing and charge.pricing.scheme == PER_UNIT
            else None,
        )


# The form's field of each of the version's terms a deal replaces.
TERM_FIELDS = {
    "deal_base_fee": "base_fee",
    "deal_seat_price": "seat_price",
    "deal_minimum_commitment": "minimum_commitment",
    "deal_threshold": "progressive_billing_threshold",
}
CHARGE_FIELDS = {"deal_meter", "deal_included_units", "deal_unit_price"}


def deal_from(cleaned: dict, *, stored: dict, changed) -> Overrides:
    """The stored deal with what the form changed: each term changed (emptied:
    the plan's value again), and the chosen charge's included units and per-unit
    price; the deal's other charges, a pricing the form cannot show, a rate
    card's rows and its features (set through the API) stay."""
    current = overrides_from_json(stored)
    terms = {name: getattr(current, name) for name in TERM_FIELDS.values()}
    for field, name in TERM_FIELDS.items():
        if field in changed:
            terms[name] = cleaned.get(field)
    charges = list(current.charges)
    meter = cleaned.get("deal_meter")
    if meter and CHARGE_FIELDS & set(changed):
        old = next((c for c in charges if c.meter == meter), None)
        included = old.included_units if old else None
        pricing = old.pricing if old else None
        if "deal_included_units" in changed or old is None:
            included = cleaned.get("deal_included_units")
        if "deal_unit_price" in changed or old is None:
            price = cleaned.get("deal_unit_price")
            # A price the deal already gives per 1,000 units stays per 1,000.
            per = pricing.per if pricing and pricing.scheme == PER_UNIT else Decimal(1)
            pricing = None if price is None else PricingSpec(PER_UNIT, unit_price=price, per=per)
        # A rate card's rows (set through the API) stay.
        new = ChargeOverride(
            meter=meter, included_units=included, pricing=pricing, rates=old and old.rates
        )
        charges = [new if c.meter == meter else c for c in charges] if old else [*charges, new]
    kept = tuple(
        c
        for c in charges
        if c.included_units is not None or c.pricing is not None or c.rates is not None
    )
    return Overrides(**terms, charges=kept, features=current.features)
