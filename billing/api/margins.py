"""Margins over a window: GET /api/v1/margins (billing.margins.report)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.report_queries import (
    EXAMPLE,
    refuse_unknown,
    report_currencies,
    report_group_by,
    report_window,
)
from billing.api.revenue import MISSING_RATES, REPORT_CURRENCY
from billing.margins.report import margins
from common.money import format_decimal, format_money
from customers.models import ApiKey

PARAMS = frozenset(
    {"period_start", "period_end", "group_by", "currency", "tz", "billing_entity"}
    | {"report_currency"}
)


MARGIN_ROWS = inline_serializer(
    "Margin",
    {
        "key": serializers.DictField(),
        "revenue": serializers.CharField(),
        "cost": serializers.CharField(),
        "margin": serializers.CharField(),
        "margin_percent": serializers.CharField(allow_null=True),
        "uncosted_quantity": serializers.CharField(),
        "currency": serializers.CharField(
            required=False, help_text="With report_currency: the report currency."
        ),
        "error": serializers.CharField(
            required=False,
            help_text="Only on a row part of whose usage could not be costed, saying why "
            "(that quantity is in uncosted_quantity).",
        ),
        "missing_rates": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="Only on a row part of whose usage has a cost in another currency and no "
            'exchange rate in effect to convert it: the pairs, e.g. ["USD->EUR"] (that '
            "quantity is in uncosted_quantity); with report_currency, also a pair missing to "
            "convert part of its revenue (that revenue left out).",
        ),
    },
    many=True,
)


class MarginsApi(APIView):
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", str, required=True, description=EXAMPLE),
            OpenApiParameter("period_end", str, required=True, description="after period_start"),
            OpenApiParameter(
                "group_by", str, description="customer (default), plan, meter, or a property"
            ),
            OpenApiParameter(
                "currency", str, description="default: the one currency billed in the window"
            ),
            OpenApiParameter(
                "tz", str, description="the zone a date means midnight in (default: the seller's)"
            ),
            OpenApiParameter("billing_entity", str, description="only this seller's customers"),
            OpenApiParameter("report_currency", str, description=REPORT_CURRENCY),
        ],
        responses=inline_serializer(
            "Margins",
            {
                "currency": serializers.CharField(),
                "results": MARGIN_ROWS,
                "missing_rates": MISSING_RATES,
            },
        ),
        description=(
            "Revenue earned in the window (usage as it happened, fees straight-line over "
            "their period, net of discounts, before tax, credit notes at their date, the "
            "open periods as they stand, credits consumed at their sale price), cost at the "
            "cost rates in effect, margin and margin percent (null without revenue), and the "
            "quantity no cost rate matched."
        ),
    )
    def get(self, request):
        refuse_unknown(request, PARAMS, "/margins")
        window = report_window(request, start="period_start", end="period_end", hourly=True)
        start, end, customers = window.start, window.end, window.customers()
        group_by = report_group_by(request)
        asked = report_currencies(request, start, end, customers)
        currency = asked.currency
        rows = margins(
            start=start,
            end=end,
            group_by=group_by,
            currency=currency,
            customers=customers,
            billed_in=asked.billed_in,
        )
        results = [margin_row(row, currency) for row in rows]
        answer = {"currency": currency, "results": results}
        if asked.billed_in is not None:
            for result in results:
                result["currency"] = currency
            missing = set().union(*(row.missing_days for row in rows))
            answer["missing_rates"] = [m.as_json() for m in sorted(missing)]
        return Response(answer)


def margin_row(row, currency: str) -> dict:
    """One row of the answer; with `error` when part of its usage could not be
    costed, `missing_rates` when it lacked an exchange rate (that quantity is in
    uncosted_quantity)."""
    answer = {
        "key": row.key,
        "revenue": format_money(row.revenue, currency),
        "cost": format_money(row.cost, currency),
        "margin": format_money(row.margin, currency),
        "margin_percent": None if row.margin_percent is None else format(row.margin_percent, "f"),
        "uncosted_quantity": format_decimal(row.uncosted_quantity),
    }
    if row.error:
        answer["error"] = row.error
    if row.missing_rates:
        answer["missing_rates"] = sorted(row.missing_rates)
    return answer
