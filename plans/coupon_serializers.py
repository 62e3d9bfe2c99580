"""Coupons as the API writes and reads them; their rules are plans.coupon_validation
and plans.coupons."""

from rest_framework import serializers

from billing.core.money import format_money, format_percentage
from billing.core.vocabulary import CouponDuration
from config.api import AwareDateTimeField, DecimalString
from plans.models import Coupon


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
