"""GET /customers/{external_id}/entitlements: the one answer a product caches to
gate its UI (billing.usage.entitlements)."""

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from billing.api.fast_answer import FastAnswerApi
from billing.usage import check
from billing.usage.entitlements import customer_entitlements
from billing.usage.held import held_of
from common import rawsql
from common.errors import CustomerNotFound
from common.money import format_decimal, format_money
from common.periods import iso
from customers.models import ApiKey

METER_ENTITLEMENT = inline_serializer(
    "MeterEntitlement",
    {
        "model": serializers.CharField(),
        "included": serializers.CharField(allow_null=True),
        "used": serializers.CharField(),
        "remaining": serializers.CharField(allow_null=True),
        "balance": serializers.CharField(
            allow_null=True, help_text="Credits and balance charges: the wallet's balance."
        ),
        "allowed": serializers.BooleanField(
            help_text="Whether one more unit would be allowed by the consumption model "
            "(the spend limit aside: ask check with the quantity)."
        ),
    },
)


def _number(value) -> str | None:
    return None if value is None else format_decimal(value)


class EntitlementsApi(FastAnswerApi):
    """Every feature the customer's plan (with its deal) grants, with its value,
    and every metered feature with its model, included, used and remaining in the
    period the clock is in: the reads of `check`. A customer without a live
    subscription is entitled to nothing. Scope `read` or `events:write`, as check."""

    required_scopes = {"GET": (ApiKey.SCOPE_READ, ApiKey.SCOPE_EVENTS_WRITE)}
    # A plain 200 is answered ahead of DRF's request (billing.api.fast_answer).
    fast_method = "GET"

    def fast_answer(self, request, external_id: str) -> dict:
        return entitlements_answer(external_id)

    @extend_schema(
        responses=inline_serializer(
            "Entitlements",
            {
                "subscription": serializers.IntegerField(allow_null=True),
                "customer": serializers.CharField(),
                "features": serializers.DictField(child=serializers.JSONField()),
                "meters": serializers.DictField(child=METER_ENTITLEMENT),
                "period_start": serializers.DateTimeField(allow_null=True),
                "period_end": serializers.DateTimeField(allow_null=True),
                "standing": serializers.ChoiceField(
                    choices=["good", "past_due", "restricted", "suspended"],
                    help_text="restricted: every meter refused; suspended: features too "
                    "(features then empty). Back to good once what is past due is paid.",
                ),
            },
        )
    )
    def get(self, request, external_id: str):
        return Response(entitlements_answer(external_id))


def entitlements_answer(external_id: str) -> dict:
    """The entitlements' answer; CustomerNotFound for an unknown customer. Shared by
    EntitlementsApi's handler and its fast answer."""
    now = datetime.now(UTC)
    # The same statements every time: the usage read goes in the round trip of
    # the customer's (rawsql.read_ahead).
    with rawsql.read_ahead(("entitlements", external_id)):
        live = check.live_read(external_id=external_id, now=now)
        customer = live.customer
        if customer is None:
            raise CustomerNotFound(external_id)
        found = customer_entitlements(
            customer=customer,
            subscription=live.subscription,
            now=now,
            balances=live.balances,
            # Open holds count as used, as check counts them (billing.usage.holds).
            held=held_of(live, now=now),
        )

    def balance(standing) -> str | None:
        if standing.balance is None:
            return None
        if standing.currency:
            return format_money(standing.balance, standing.currency)
        return format_decimal(standing.balance)

    return {
        "subscription": found.subscription.pk if found.subscription else None,
        "customer": customer.external_id,
        "features": found.features,
        "meters": {
            code: {
                "model": standing.model,
                "included": _number(standing.included),
                "used": _number(standing.used),
                "remaining": _number(standing.remaining),
                "balance": balance(standing),
                "allowed": standing.allowed,
            }
            for code, standing in found.meters.items()
        },
        "period_start": iso(found.period_start) if found.period_start else None,
        "period_end": iso(found.period_end) if found.period_end else None,
        "standing": found.standing,
    }
