"""Revenue earned over a window: GET /api/v1/revenue (billing.revenue.earned),
the margins' revenue without costs, split into what invoiced lines earned
(`billed`) and what the part not invoiced yet earned (`accrued`); with
`report_currency`, of every currency's customers converted into it
(billing.revenue.conversion)."""

from django.utils import timezone
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
from billing.revenue.earned import VIEWS, earned_converted, earned_window
from common.money import format_money
from customers.models import ApiKey, Customer

PARAMS = frozenset(
    {"from", "to", "tz", "group_by", "currency", "billing_entity", "report_currency"}
)
REPORT_CURRENCY = (
    "convert every amount into this currency at the exchange rate in effect at the start "
    "of the (UTC) day it was earned; `currency` then filters the customers converted"
)
MISSING_RATES = serializers.ListField(
    child=inline_serializer(
        "MissingRate",
        {
            "from": serializers.CharField(),
            "to": serializers.CharField(),
            "date": serializers.DateField(),
        },
    ),
    required=False,
    help_text="With report_currency only: the exchange rates missing, each with the first "
    "(UTC) day it is missing on; what they would have converted is left out of the amounts.",
)

EARNED_ROWS = inline_serializer(
    "EarnedRevenue",
    {
        "key": serializers.DictField(),
        "earned": serializers.CharField(),
        "billed": serializers.CharField(),
        "accrued": serializers.CharField(),
        "currency": serializers.CharField(
            required=False, help_text="With report_currency: the report currency."
        ),
        "missing_rates": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="With report_currency, only on a row part of whose revenue could not be "
            'converted: the pairs, e.g. ["JPY->USD"] (that revenue left out).',
        ),
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
            OpenApiParameter("report_currency", str, description=REPORT_CURRENCY),
        ],
        responses=inline_serializer(
            "Revenue",
            {
                "currency": serializers.CharField(),
                "results": EARNED_ROWS,
                "missing_rates": MISSING_RATES,
            },
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
        asked = report_currencies(request, window.start, window.end, customers)
        currency = asked.currency
        read = {
            "start": window.start,
            "end": window.end,
            "now": timezone.now(),
            "customers": customers,
            "by_property": group_by not in VIEWS,
        }
        if asked.billed_in is None:
            earned = earned_window(currency=currency, **read)
        else:
            earned = earned_converted(report_currency=currency, billed_in=asked.billed_in, **read)
        rows = earned.rows_by(group_by)
        if group_by == "customer":
            names = dict(
                Customer.objects.filter(pk__in=[r.key["customer"] for r in rows]).values_list(
                    "pk", "external_id"
                )
            )
            for row in rows:
                row.key = {"customer": names.get(row.key["customer"])}
        converted = asked.billed_in is not None
        answer = {"currency": currency, "results": [_row(row, currency, converted) for row in rows]}
        if converted:
            answer["missing_rates"] = [m.as_json() for m in sorted(earned.missing_rates)]
        return Response(answer)


def _row(row, currency: str, converted: bool) -> dict:
    """One row; converted into a report currency, it names the currency too."""
    answer = {
        "key": row.key,
        "earned": format_money(row.earned, currency),
        "billed": format_money(row.billed, currency),
        "accrued": format_money(row.accrued, currency),
    }
    if converted:
        answer["currency"] = currency
    if row.missing_rates:
        answer["missing_rates"] = sorted({missing.pair for missing in row.missing_rates})
    return answer
