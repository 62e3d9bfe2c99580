"""A subscription's deal as the API reads and writes it: the version's terms,
charges and feature grants it replaces (plans.overrides)."""

from rest_framework import serializers

from config.api import DecimalString, NoUnknownKeys
from plans.feature_serializers import grants_field, grants_from
from plans.overrides import TERMS, ChargeOverride, Overrides
from plans.rate_cards import MAX_RATES
from plans.serializers import (
    MAX_CHARGES,
    PricingSerializer,
    RateSerializer,
    pricing_spec,
    rate_spec,
)


class ChargeOverrideSerializer(NoUnknownKeys, serializers.Serializer):
    meter = serializers.CharField(max_length=255)
    included_units = DecimalString(required=False, allow_null=True, default=None)
    pricing = PricingSerializer(required=False, allow_null=True, default=None)
    price_by = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        allow_null=True,
        default=None,
        max_length=3,
        help_text="A rate card's: the version's charge's own (a deal cannot change it); not stored",
    )
    rates = serializers.ListField(
        child=RateSerializer(),
        required=False,
        allow_null=True,
        default=None,
        max_length=MAX_RATES,
        help_text="A rate card's rows in place of the version's (null or absent: the "
        "version's), priced by the version's price_by",
    )


class OverridesSerializer(NoUnknownKeys, serializers.Serializer):
    """A deal: the version's terms a subscription replaces (null or absent: the
    version's own)."""

    base_fee = DecimalString(required=False, allow_null=True, default=None)
    seat_price = DecimalString(required=False, allow_null=True, default=None)
    minimum_commitment = DecimalString(required=False, allow_null=True, default=None)
    progressive_billing_threshold = DecimalString(required=False, allow_null=True, default=None)
    charges = serializers.ListField(
        child=ChargeOverrideSerializer(), required=False, default=list, max_length=MAX_CHARGES
    )
    features = grants_field(
        revocable=True,
        help_text="Features granted, changed or (value null) revoked for this subscription.",
    )

    def to_representation(self, stored: dict) -> dict:
        return stored

    @staticmethod
    def overrides(data: dict | None) -> Overrides | None:
        """Validated data as the catalog's value (None: none given)."""
        if data is None:
            return None
        return Overrides(
            **{name: data[name] for name in TERMS},
            charges=tuple(
                ChargeOverride(
                    meter=charge["meter"],
                    included_units=charge["included_units"],
                    pricing=pricing_spec(charge["pricing"]),
                    price_by=None if charge["price_by"] is None else tuple(charge["price_by"]),
                    rates=None
                    if charge["rates"] is None
                    else tuple(rate_spec(rate) for rate in charge["rates"]),
                )
                for charge in data["charges"]
            ),
            features=grants_from(data["features"]),
        )
