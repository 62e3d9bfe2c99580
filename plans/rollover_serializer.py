"""A version's `credits_rollover` in the API (plans.credits_rollover)."""

from rest_framework import serializers

from config.api import DecimalString, NoUnknownKeys
from plans.credits_rollover import rollover_to_json


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
