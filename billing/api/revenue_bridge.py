"""GET /api/v1/revenue/bridge?billing_entity=&from=&to= (API.md v1.4, "Spend,
revenue and periods from the one statement"): a seller's earned revenue beside
its journal's revenue, with the deferred and accrued balances that bridge them,
for whole days in the seller's zone and in its functional currency
(billing.revenue.bridge). Scopes as /revenue; days as the journal's ranges."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.journal import _range
from billing.api.report_queries import MAX_DAYS
from billing.journal.entities import books_entity, functional_currency_of
from billing.revenue.bridge import revenue_bridge
from billing.revenue.recognition import sellers
from common.errors import InvalidRequest
from common.money import format_money
from customers.models import ApiKey

PARAMS = frozenset({"from", "to", "billing_entity"})
FIGURES = (
    "earned",
    "journal_revenue",
    "deferred_opening",
    "deferred_closing",
    "accrued_opening",
    "accrued_closing",
    "difference",
)


class RevenueBridgeSerializer(serializers.Serializer):
    billing_entity = serializers.CharField()
    currency = serializers.CharField(help_text="The seller's functional currency.")
    earned = serializers.CharField(help_text="Earned revenue (GET /revenue's) in the window.")
    journal_revenue = serializers.CharField(
        help_text="The journal's revenue and breakage less discounts, dated in the window."
    )
    deferred_opening = serializers.CharField(help_text="Deferred revenue at the window's start.")
    deferred_closing = serializers.CharField(help_text="Deferred revenue at the window's end.")
    accrued_opening = serializers.CharField(
        help_text="Earned before the window's start, not yet booked as revenue by then."
    )
    accrued_closing = serializers.CharField(
        help_text="Earned before the window's end, not yet booked as revenue by then."
    )
    difference = serializers.CharField(
        help_text="earned - journal_revenue - (accrued_closing - accrued_opening): 0.00 when "
        "the books agree with the report."
    )


class RevenueBridgeApi(APIView):
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "billing_entity",
                str,
                description="the seller (required when there are several; 400 if unknown)",
            ),
            OpenApiParameter(
                "from", OpenApiTypes.DATE, required=True, description="first day (seller's zone)"
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATE, required=True, description="the day after the last"
            ),
        ],
        responses=RevenueBridgeSerializer,
        description=(
            "The revenue report and the books side by side for whole days in the seller's "
            "zone, in its functional currency: earned revenue, the journal's revenue, its "
            "deferred revenue at both ends, and what was earned but not booked yet at both "
            "ends. Fees billed in advance and prepaid commits are deferred when issued and "
            "recognized as earned (commits as drawn, breakage at expiry). 400: a day missing "
            "or malformed, `to` not after `from`, a window over 400 days, an unknown "
            "billing entity, or none named when there are several."
        ),
    )
    def get(self, request):
        first, after = _range(request, PARAMS)
        if after <= first:
            raise InvalidRequest(
                f"to ({after}) must be after from ({first})", fields={"to": ["after from"]}
            )
        if after - first > timedelta(days=MAX_DAYS):
            raise InvalidRequest(
                f"the window is longer than {MAX_DAYS} days: ask for a shorter one",
                fields={"to": [f"at most {MAX_DAYS} days after from"]},
            )
        code = books_entity(request.query_params.get("billing_entity"))
        seller = next((s for s in sellers() if s.code == code), None)
        if seller is None:
            raise InvalidRequest(
                f"unknown billing entity {code!r}",
                fields={"billing_entity": [f"unknown billing entity {code!r}"]},
            )
        currency = functional_currency_of(code)
        bridge = revenue_bridge(
            seller=seller, currency=currency, first=first, after=after, now=timezone.now()
        )
        body = {"billing_entity": code, "currency": currency}
        body |= {name: format_money(getattr(bridge, name), currency) for name in FIGURES}
        return Response(body)
