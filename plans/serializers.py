"""The catalog in the API: input parsing and output shapes of meters, plans and
versions (with their credits rollover and feature grants), credit packs, tax
rates, features, coupons, cost rates and a subscription's deal. Serializers
only parse types; the rules live in plans.validation (coupons:
plans.coupon_validation and plans.coupons; cost rates: plans.cost_rules; a
deal: plans.overrides) and are applied by plans.services."""

from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.e_invoice_codes import VAT_CATEGORIES
from common.money import format_decimal, format_money, format_percentage
from common.rest_api import (
    AwareDateTimeField,
    DecimalString,
    MoneyString,
    NoUnknownKeys,
    StrictCharField,
)
from common.vocabulary import DRAWN_MODELS, CouponDuration, FeatureKind, WhenExhausted
from plans.credits_rollover import ROLLOVER_TERMS, rollover_to_json
from plans.feature_grants import MAX_FEATURES, FeatureGrant
from plans.models import (
    DEFAULT_UNIT_CODE,
    Charge,
    CostRate,
    Coupon,
    CreditPack,
    ExchangeRate,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    TaxRate,
)
from plans.overrides import TERMS, ChargeOverride, Overrides
from plans.pricing import PricingSpec, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.rate_cards import MAX_RATES, rate_of, rate_to_json
from plans.services import METER_DEFINITION_FIELDS
from plans.validation import VERSION_TERMS, ChargeSpec, VersionSpec

MAX_CHARGES = 100
MAX_TIERS = 100

PER_HELP = "How many units the price is for: 1000000 for a price per million tokens (default 1)."


# The feature catalog and feature grants (entitlements).


class FeatureSerializer(NoUnknownKeys, serializers.Serializer):
    code = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255)
    kind = serializers.ChoiceField(choices=FeatureKind.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, feature: Feature):
        return {
            "code": feature.code,
            "name": feature.name,
            "kind": feature.kind,
            "description": feature.description,
            "created_at": serializers.DateTimeField().to_representation(feature.created_at),
        }


class FeatureUpdateSerializer(NoUnknownKeys, serializers.Serializer):
    """A feature's code never changes; its kind only while no version grants it."""

    name = serializers.CharField(max_length=255, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=FeatureKind.choices, required=False)


class FeatureGrantSerializer(NoUnknownKeys, serializers.Serializer):
    feature = StrictCharField(max_length=255)
    # The API's JSON arrives with exact decimals (2.5 as Decimal): encodable here.
    value = serializers.JSONField(
        encoder=DjangoJSONEncoder,
        help_text="boolean features: true or false; config: a number, a text or a list of texts.",
    )


class FeatureOverrideSerializer(FeatureGrantSerializer):
    value = serializers.JSONField(
        encoder=DjangoJSONEncoder,
        allow_null=True,
        help_text="As a version grants it; null revokes a feature the version grants.",
    )


def grants_field(*, revocable: bool = False, **options) -> serializers.ListField:
    return serializers.ListField(
        child=FeatureOverrideSerializer() if revocable else FeatureGrantSerializer(),
        required=False,
        default=list,
        max_length=MAX_FEATURES,
        **options,
    )


def grants_from(data: list[dict]) -> tuple[FeatureGrant, ...]:
    return tuple(FeatureGrant(item["feature"], item["value"]) for item in data)


# A version's `credits_rollover` (plans.credits_rollover).


class CreditsRolloverSerializer(NoUnknownKeys, serializers.Serializer):
    """`credits_rollover` of a version: null, all a period's credits expire at its end."""

    rollover_percent = DecimalString(
        required=False,
        allow_null=True,
        default=None,
        help_text="the percent of a period's unused credits that rolls over: more than 0, "
        "at most 100",
    )
    expires_after_periods = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="rolled-over credits expire at the end of this many periods after their own",
    )

    def to_representation(self, version):
        return rollover_to_json(version.credits_rollover_percent, version.credits_rollover_periods)


class MeterSerializer(serializers.ModelSerializer):
    value_property = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True, default=""
    )
    unique_property = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True, default=""
    )
    filters = serializers.JSONField(required=False, default=dict)
    group_by = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        default=list,
        max_length=3,
        help_text="Event properties the usage is broken down by (usage?group_by=).",
    )
    invoice_breakdown = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="One of group_by: invoices show the meter's quantity split by it.",
    )
    aggregation = serializers.CharField(
        max_length=32, help_text="count | sum | max | unique_count | latest"
    )
    unit_code = serializers.CharField(
        max_length=8,
        required=False,
        default=DEFAULT_UNIT_CODE,
        help_text="UN/ECE Recommendation 20 unit on e-invoices, e.g. C62 (one), HUR (hour).",
    )

    class Meta:
        model = Meter
        fields = [
            "code",
            "name",
            *METER_DEFINITION_FIELDS,
            "invoice_breakdown",
            "unit_code",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        # Uniqueness is the database's and the service's to enforce (409).
        extra_kwargs = {"code": {"validators": []}}

    def validate_value_property(self, value):
        return value or ""

    def validate_unique_property(self, value):
        return value or ""


class TierSerializer(NoUnknownKeys, serializers.Serializer):
    up_to = DecimalString(required=False, allow_null=True, default=None)
    unit_price = DecimalString()
    per = DecimalString(required=False, default=Decimal(1), help_text=PER_HELP)
    flat_fee = DecimalString(required=False, default=None)

    def to_representation(self, tier):
        return {
            "up_to": DecimalString().to_representation(tier.up_to),
            "unit_price": DecimalString().to_representation(tier.unit_price),
            "per": DecimalString().to_representation(tier.per),
            "flat_fee": DecimalString().to_representation(tier.flat_fee),
        }


class PricingSerializer(NoUnknownKeys, serializers.Serializer):
    scheme = serializers.CharField(
        max_length=32, help_text="per_unit | package | graduated | volume"
    )
    unit_price = DecimalString(required=False, allow_null=True, default=None)
    per = DecimalString(required=False, default=Decimal(1), help_text=PER_HELP)
    package_size = DecimalString(required=False, allow_null=True, default=None)
    package_price = DecimalString(required=False, allow_null=True, default=None)
    currency = serializers.CharField(required=False, allow_null=True, default=None, max_length=8)
    tiers = serializers.ListField(
        child=TierSerializer(), required=False, default=list, max_length=MAX_TIERS
    )


class RateSerializer(NoUnknownKeys, serializers.Serializer):
    """One row of a rate card (../shared/API.md "Rate cards")."""

    when = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text='Values of some price_by properties, e.g. {"model": "gpt-4o"}; {} is the '
        "default row",
    )
    pricing = PricingSerializer(required=False, allow_null=True, default=None)
    credits_per_unit = DecimalString(required=False, allow_null=True, default=None)
    per = DecimalString(required=False, allow_null=True, default=None)


class ChargeSerializer(serializers.Serializer):
    meter = serializers.CharField(max_length=255)
    model = serializers.CharField(max_length=32, help_text="overage | hard_cap | credits | balance")
    included_units = DecimalString(required=False, allow_null=True, default=None)
    credits_per_unit = DecimalString(required=False, allow_null=True, default=None)
    when_exhausted = serializers.ChoiceField(
        choices=WhenExhausted.values,
        required=False,
        allow_null=True,
        default=WhenExhausted.BLOCK.value,
        help_text="credits and balance charges: block | bill (usage the wallet cannot pay for "
        "is billed at the close, at the charge's pricing); null (other charges) is block",
    )
    pricing = PricingSerializer(required=False, allow_null=True, default=None)
    price_by = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        default=list,
        max_length=3,
        help_text="A rate card: the meter's group_by properties its rates price by",
    )
    rates = serializers.ListField(
        child=RateSerializer(), required=False, default=list, max_length=MAX_RATES
    )

    def to_representation(self, charge: Charge):
        pricing = charge.pricing_spec()
        number = DecimalString().to_representation
        return {
            "meter": charge.meter.code,
            "model": charge.model,
            "included_units": number(charge.included_units),
            "credits_per_unit": number(charge.credits_per_unit),
            # Only wallet-drawn charges run dry.
            "when_exhausted": charge.when_exhausted if charge.model in DRAWN_MODELS else None,
            "pricing": None
            if pricing is None
            else {
                "scheme": pricing.scheme,
                "unit_price": number(pricing.unit_price),
                "per": number(pricing.per),
                "package_size": number(pricing.package_size),
                "package_price": number(pricing.package_price),
                "tiers": [TierSerializer().to_representation(t) for t in pricing.tiers],
            },
            # A rate card only: a charge of one price reads as it always has.
            **(
                {
                    "price_by": list(charge.price_by),
                    "rates": [rate_to_json(rate_of(row)) for row in charge.rates.all()],
                }
                if charge.price_by
                else {}
            ),
        }


class VersionInputSerializer(serializers.Serializer):
    """The terms of a plan version, as POSTed to /plans and /plans/{code}/versions."""

    currency = serializers.CharField(max_length=8)
    interval = serializers.CharField(max_length=16, default="month")
    base_fee = DecimalString(default=None)
    seat_price = DecimalString(required=False, allow_null=True, default=None)
    minimum_commitment = DecimalString(required=False, allow_null=True, default=None)
    trial_days = serializers.IntegerField(required=False, default=0)
    credits_per_period = DecimalString(required=False, allow_null=True, default=None)
    credits_rollover = CreditsRolloverSerializer(required=False, allow_null=True, default=None)
    progressive_billing_threshold = DecimalString(
        required=False,
        allow_null=True,
        default=None,
        help_text="usage not yet invoiced in a period that is billed at once, on a threshold "
        "invoice",
    )
    charges = serializers.ListField(
        child=ChargeSerializer(), required=False, default=list, max_length=MAX_CHARGES
    )
    features = grants_field()
    fee_unit_code = serializers.CharField(
        max_length=8,
        required=False,
        default=DEFAULT_UNIT_CODE,
        help_text="UN/ECE Recommendation 20 unit of the base fee and seats on e-invoices, "
        "e.g. C62 (one), MON (month).",
    )

    def to_spec(self) -> VersionSpec:
        data = self.validated_data
        return VersionSpec(
            currency=data["currency"],
            interval=data["interval"],
            base_fee=data["base_fee"] if data["base_fee"] is not None else Decimal(0),
            seat_price=data["seat_price"],
            minimum_commitment=data["minimum_commitment"],
            trial_days=data["trial_days"],
            credits_per_period=data["credits_per_period"],
            credits_rollover_percent=(data["credits_rollover"] or {}).get("rollover_percent"),
            credits_rollover_periods=(data["credits_rollover"] or {}).get("expires_after_periods"),
            progressive_billing_threshold=data["progressive_billing_threshold"],
            charges=tuple(_charge_spec(c) for c in data["charges"]),
            features=grants_from(data["features"]),
            fee_unit_code=data["fee_unit_code"],
        )


class PlanCreateSerializer(VersionInputSerializer):
    code = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    publish = serializers.BooleanField(required=False, default=False)


def _charge_spec(data: dict) -> ChargeSpec:
    pricing = data["pricing"]
    return ChargeSpec(
        meter=data["meter"],
        model=data["model"],
        included_units=data["included_units"],
        credits_per_unit=data["credits_per_unit"],
        when_exhausted=data["when_exhausted"] or WhenExhausted.BLOCK.value,
        pricing=pricing_spec(pricing),
        pricing_currency=pricing["currency"] if pricing else None,
        price_by=tuple(data["price_by"]),
        rates=tuple(rate_spec(rate) for rate in data["rates"]),
    )


def rate_spec(data: dict) -> RateSpec:
    return RateSpec(
        when=tuple(sorted(data["when"].items())),
        pricing=pricing_spec(data["pricing"]),
        credits_per_unit=data["credits_per_unit"],
        per=Decimal(1) if data["per"] is None else data["per"],
    )


def pricing_spec(pricing: dict | None) -> PricingSpec | None:
    """A PricingSerializer's validated data as the catalog's value."""
    if pricing is None:
        return None
    return PricingSpec(
        scheme=pricing["scheme"],
        unit_price=pricing["unit_price"],
        per=pricing["per"],
        package_size=pricing["package_size"],
        package_price=pricing["package_price"],
        tiers=tuple(
            TierSpec(
                up_to=t["up_to"],
                unit_price=t["unit_price"],
                per=t["per"],
                flat_fee=t["flat_fee"] if t["flat_fee"] is not None else Decimal(0),
            )
            for t in pricing["tiers"]
        ),
    )


class PlanVersionSerializer(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.code")
    base_fee = MoneyString()
    seat_price = MoneyString(allow_null=True)
    minimum_commitment = MoneyString(allow_null=True)
    credits_per_period = DecimalString(allow_null=True)
    credits_rollover = CreditsRolloverSerializer(source="*", allow_null=True)
    progressive_billing_threshold = MoneyString(allow_null=True)
    charges = ChargeSerializer(many=True)
    features = serializers.SerializerMethodField()

    class Meta:
        model = PlanVersion
        fields = [
            "plan",
            "number",
            "status",
            # The rollover's two fields are one object (credits_rollover).
            *(term for term in VERSION_TERMS if term not in ROLLOVER_TERMS),
            "credits_rollover",
            "charges",
            "features",
            "created_at",
            "published_at",
            "archived_at",
        ]

    @extend_schema_field(FeatureGrantSerializer(many=True))
    def get_features(self, version: PlanVersion) -> list[dict]:
        return [
            {"feature": grant.feature.code, "value": grant.value}
            for grant in sorted(version.features.all(), key=lambda g: g.feature.code)
        ]


class PlanSerializer(serializers.ModelSerializer):
    versions = PlanVersionSerializer(many=True)
    latest_published = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = ["code", "name", "description", "created_at", "latest_published", "versions"]

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_latest_published(self, plan: Plan) -> int | None:
        published = [v.number for v in plan.versions.all() if v.status == PlanVersion.PUBLISHED]
        return max(published, default=None)


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class MeterScopeField(serializers.JSONField):
    """`applies_to`: the meter codes credits or money pay for; empty (the default):
    every meter. Parsed as it comes; plans.meter_scope says what is wrong with it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", list)
        kwargs.setdefault(
            "help_text",
            'The meters it pays for, e.g. ["gpt4o_tokens"]; empty (the default): every meter.',
        )
        super().__init__(**kwargs)


class CreditPackSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    credits = DecimalString()
    price = DecimalString()
    currency = serializers.CharField(max_length=8)
    applies_to = MeterScopeField()
    active = serializers.BooleanField(read_only=True)

    def to_representation(self, pack: CreditPack):
        return {
            "code": pack.code,
            "name": pack.name,
            "credits": DecimalString().to_representation(pack.credits),
            "price": MoneyString().to_representation((pack.price.amount, str(pack.price.currency))),
            "currency": str(pack.price.currency),
            "applies_to": pack.applies_to,
            "active": pack.active,
        }


class TaxRateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=100)
    percentage = DecimalString(help_text='e.g. "20.00" for 20 %')
    country = serializers.CharField(
        max_length=2, required=False, allow_blank=True, allow_null=True, default=""
    )
    default = serializers.BooleanField(required=False, default=False)
    active = serializers.BooleanField(required=False, default=True)
    vat_category = serializers.ChoiceField(
        choices=VAT_CATEGORIES,
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "EN 16931 VAT category: S above 0 %; Z, E, AE, K, G, O at 0 %. Default: S above "
            "0 %, Z at 0 %."
        ),
    )
    exemption_reason = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why no VAT is charged (required for E).",
    )

    def to_representation(self, rate: TaxRate):
        return {
            "code": rate.code,
            "name": rate.name,
            "percentage": format_percentage(rate.percentage),
            "country": rate.country or None,
            "default": rate.is_default,
            "active": rate.active,
            "vat_category": rate.vat_category,
            "exemption_reason": rate.exemption_reason,
        }


class TaxRateUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    percentage = DecimalString(required=False)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, allow_null=True)
    default = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)
    vat_category = serializers.ChoiceField(choices=VAT_CATEGORIES, required=False)
    exemption_reason = serializers.CharField(max_length=255, required=False, allow_blank=True)
    replaced_by = serializers.CharField(
        max_length=64,
        required=False,
        help_text=(
            'With "active": false: the code of the active rate that the customers holding '
            "this one as their own hold instead, moved in the same request (of the rate's "
            "country, or of none). Archiving a rate customers hold without it is a 409."
        ),
    )


# Coupons.


class CouponSerializer(serializers.Serializer):
    """A coupon: exactly one of percent_off and amount_off (with its currency)."""

    code = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255)
    percent_off = DecimalString(
        required=False, allow_null=True, default=None, help_text='e.g. "20" for 20 % off'
    )
    amount_off = DecimalString(required=False, allow_null=True, default=None)
    currency = serializers.CharField(
        max_length=8,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="The currency of amount_off; null for a percent off.",
    )
    duration = serializers.ChoiceField(choices=CouponDuration.values)
    duration_periods = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="repeating: how many periods"
    )
    max_redemptions = serializers.IntegerField(required=False, allow_null=True, default=None)
    redeem_by = AwareDateTimeField(required=False, allow_null=True, default=None)
    active = serializers.BooleanField(required=False, default=True)
    times_redeemed = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, coupon: Coupon):
        percent_off, amount_off = coupon.percent_off, coupon.amount_off
        return {
            "code": coupon.code,
            "name": coupon.name,
            "percent_off": None if percent_off is None else format_percentage(percent_off),
            "amount_off": None if amount_off is None else format_money(amount_off, coupon.currency),
            "currency": coupon.currency or None,
            "duration": coupon.duration,
            "duration_periods": coupon.duration_periods,
            "max_redemptions": coupon.max_redemptions,
            "redeem_by": serializers.DateTimeField().to_representation(coupon.redeem_by)
            if coupon.redeem_by
            else None,
            "active": coupon.active,
            "times_redeemed": coupon.times_redeemed,
            "created_at": serializers.DateTimeField().to_representation(coupon.created_at),
        }


class CouponUpdateSerializer(serializers.Serializer):
    """A coupon's terms never change: rename it, or archive it (active false)."""

    name = serializers.CharField(max_length=255, required=False)
    active = serializers.BooleanField(required=False)

    def validate(self, attrs):
        # Not ignored: a PATCH of percent_off must not answer 200 having changed nothing.
        frozen = sorted(set(self.initial_data) - set(self.fields), key=str)
        if frozen:
            raise serializers.ValidationError(
                {
                    name: ["a coupon's terms never change; archive it and create another"]
                    for name in frozen
                }
            )
        return attrs


# Cost rates (POST /api/v1/cost-rates).


class CostRateSerializer(NoUnknownKeys, serializers.Serializer):
    meter = serializers.CharField(max_length=64, help_text="The meter's code.")
    when = serializers.JSONField(
        required=False,
        default=dict,
        help_text='Values of group_by properties ({"model": "gpt-4o"}); {} is the default.',
    )
    unit_cost = DecimalString(help_text='What `per` units cost, e.g. "1.25".')
    per = DecimalString(
        required=False, default=None, help_text="How many units unit_cost is for (default 1)."
    )
    currency = serializers.CharField(max_length=8)
    effective_from = AwareDateTimeField(help_text="On the hour, e.g. 2026-11-01T00:00:00Z.")
    id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    supersedes = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The wrong rate this one corrects, if any."
    )
    superseded_by = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The correction that costs this rate's hours instead; null while it costs.",
    )

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if values.get("per") is None:
            values.pop("per", None)
        return values

    def to_representation(self, rate: CostRate):
        moment = serializers.DateTimeField().to_representation
        return {
            "id": rate.pk,
            "meter": rate.meter.code,
            "when": rate.when,
            "unit_cost": format_money(rate.unit_cost, rate.currency),
            "per": format_decimal(rate.per),
            "currency": rate.currency,
            "effective_from": moment(rate.effective_from),
            "created_at": moment(rate.created_at),
            "supersedes": rate.supersedes_id,
            "superseded_by": _correction_id(rate),
        }


def _correction_id(rate: CostRate) -> int | None:
    try:
        return rate.superseded_by.pk
    except CostRate.superseded_by.RelatedObjectDoesNotExist:
        return None


class CostRateCorrectionSerializer(NoUnknownKeys, serializers.Serializer):
    """POST /api/v1/cost-rates/{id}/supersede: the correct figures; the meter,
    `when`, currency and effective_from are the wrong rate's."""

    unit_cost = DecimalString(help_text='What `per` units cost, e.g. "1.10".')
    per = DecimalString(
        required=False,
        default=None,
        help_text="How many units unit_cost is for (default: the wrong rate's per).",
    )

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if values.get("per") is None:
            values.pop("per", None)
        return values


# Exchange rates (POST /api/v1/exchange-rates).


class ExchangeRateSerializer(NoUnknownKeys, serializers.Serializer):
    base = StrictCharField(max_length=8, help_text="The currency of which one unit, e.g. USD.")
    quote = StrictCharField(max_length=8, help_text="The currency it is worth, e.g. EUR.")
    rate = DecimalString(
        help_text='1 base = rate quote, e.g. "0.9210": above 0, at most 1000000000, '
        "10 decimal places."
    )
    effective_from = AwareDateTimeField(
        help_text="From this moment until the pair's next rate, e.g. 2026-11-01T00:00:00Z."
    )
    source = StrictCharField(max_length=200, help_text='Where it comes from: "ECB reference".')
    id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    created_by = serializers.CharField(read_only=True, help_text="Who entered it.")

    def to_representation(self, rate: ExchangeRate):
        moment = serializers.DateTimeField().to_representation
        return {
            "id": rate.pk,
            "base": rate.base,
            "quote": rate.quote,
            "rate": format_decimal(rate.rate),
            "effective_from": moment(rate.effective_from),
            "source": rate.source,
            "created_at": moment(rate.created_at),
            "created_by": rate.created_by,
        }


# A subscription's deal: the version's terms, charges and feature grants it
# replaces (plans.overrides).


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
