"""Revenue earned over a window: GET /api/v1/revenue (billing.revenue.earned),
the margins' revenue without costs, split into what invoiced lines earned
(`billed`) and what the part not invoiced yet earned (`accrued`)."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.report_queries import (
    EXAMPLE,
    refuse_unknown,
    report_currency,
    report_group_by,
    report_window,
)
from billing.core.money import format_money
from billing.revenue.earned import VIEWS, earned_window
from customers.models import ApiKey, Customer

PARAMS = frozenset({"from", "to", "tz", "group_by", "currency", "billing_entity"})

EARNED_ROWS = inline_serializer(
    "EarnedRevenue",
    {
        "key": serializers.DictField(),
        "earned": serializers.CharField(),
        "billed": serializers.CharField(),
        "accrued": serializers.CharField(),
    },
    many=True,
)


class RevenueApi(APIView):
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, required=True, description=EXAMPLE),
            OpenApiParameter("to", str, required=True, description="after from"),
            OpenApiParameter(
                "tz", str, description="the zone a date means midnight in (default: the seller's)"
            ),
            OpenApiParameter(
                "group_by",
                str,
                description="customer (default), plan, meter, billing_entity, or a property",
            ),
            OpenApiParameter(
                "currency", str, description="default: the one currency billed in the window"
            ),
            OpenApiParameter("billing_entity", str, description="only this seller's customers"),
        ],
        responses=inline_serializer(
            "Revenue", {"currency": serializers.CharField(), "results": EARNED_ROWS}
        ),
        description=(
            "Revenue earned in [from, to): usage as it happened, fees, seats and true-ups "
            "straight-line over the period they pay for, prepaid commits as drawn plus "
            "breakage at expiry, net of discounts, before tax, credit notes at their date; "
            "`billed` from invoiced lines, `accrued` from the part not invoiced yet. The "
            "totals are the same whatever group_by."
        ),
    )
    def get(self, request):
        refuse_unknown(request, PARAMS, "/revenue")
        window = report_window(request, start="from", end="to", hourly=False)
        customers = window.customers()
        group_by = report_group_by(request)
        currency = report_currency(request, window.start, window.end, customers)
        earned = earned_window(
            start=window.start,
            end=window.end,
            currency=currency,
            now=timezone.now(),
            customers=customers,
            by_property=group_by not in VIEWS,
        )
        rows = earned.rows_by(group_by)
        if group_by == "customer":
            names = dict(
                Customer.objects.filter(pk__in=[r.key["customer"] for r in rows]).values_list(
                    "pk", "external_id"
                )
            )
            for row in rows:
                row.key = {"customer": names.get(row.key["customer"])}
        return Response(
            {
                "currency": currency,
                "results": [
                    {
                        "key": row.key,
                        "earned": format_money(row.earned, currency),
                        "billed": format_money(row.billed, currency),
                        "accrued": format_money(row.accrued, currency),
                    }
                    for row in rows
                ],
            }
        )
