"""The feature catalog and feature grants in the API (entitlements)."""

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework import serializers

from billing.core.vocabulary import FeatureKind
from config.api import NoUnknownKeys, StrictCharField
from plans.feature_grants import MAX_FEATURES, FeatureGrant
from plans.models import Feature


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
