"""Cost rates as the API reads and writes them (POST /api/v1/cost-rates). Types
only: the rules are plans.cost_rules."""

from rest_framework import serializers

from billing.core.money import format_decimal, format_money
from config.api import AwareDateTimeField, DecimalString, NoUnknownKeys
from plans.models import CostRate


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
