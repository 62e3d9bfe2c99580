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


MAX_MIGRATION_SUBSCRIPTIONS = 10_000


class MigrationSerializer(serializers.Serializer):
    """A bulk migration: the subscriptions (by id, or every live one on a plan,
    optionally one version of it), where to and when."""

    subscriptions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        max_length=MAX_MIGRATION_SUBSCRIPTIONS,
    )
    from_plan = serializers.CharField(max_length=255, required=False)
    from_version = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if ("subscriptions" in attrs) == ("from_plan" in attrs):
            raise serializers.ValidationError(
                {"subscriptions": ["give either subscriptions (ids) or from_plan"]}
            )
        if "from_version" in attrs and "from_plan" not in attrs:
            raise serializers.ValidationError({"from_version": ["needs from_plan"]})
        return attrs


class MigrationConfirmSerializer(MigrationSerializer):
    """The previewed migration, confirmed: `token` makes a second submission the
    same migration; `digest` names the preview whose figures were seen."""

    token = serializers.UUIDField()
    digest = serializers.CharField(max_length=64)
