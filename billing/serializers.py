from rest_framework import serializers

from billing.models import Subscription
from billing.periods import parse_instant


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a time without one is refused rather than guessed."""

    def to_internal_value(self, value):
        expected = "ISO 8601 with an offset, e.g. 2026-11-01T00:00:00Z"
        if not isinstance(value, str):
            self.fail("invalid", format=expected)
        try:
            return parse_instant(value)
        except ValueError:
            self.fail("invalid", format=expected)


class SubscriptionCreateSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255)
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    start = AwareDateTimeField()
    seats = serializers.IntegerField(required=False, default=1)
    billing_anchor = serializers.CharField(required=False, default=Subscription.ANNIVERSARY)


class SubscriptionSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    plan = serializers.CharField(source="version.plan.code")
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
            "version",
            "status",
            "billing_anchor",
            "started_at",
            "trial_end",
            "current_period_start",
            "current_period_end",
            "seats",
            "canceled_at",
            "ended_at",
        ]


class ChangePlanSerializer(serializers.Serializer):
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)


class CancelSerializer(serializers.Serializer):
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)


class SeatsSerializer(serializers.Serializer):
    seats = serializers.IntegerField(min_value=1, max_value=1_000_000)
    at = AwareDateTimeField(required=False, allow_null=True, default=None)
