"""Margins over a window: GET /api/v1/margins (billing.margins.report)."""

import re
from datetime import UTC, date, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.core.errors import InvalidRequest
from billing.core.money import format_decimal, format_money, is_known_currency
from billing.core.periods import on_the_hour, parse_instant
from billing.margins.report import VIEWS, margins, price_by_properties, window_currencies
from customers.models import ApiKey

PARAMS = frozenset({"period_start", "period_end", "group_by", "currency"})
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
EXAMPLE = "e.g. 2026-11-01 or 2026-11-01T00:00:00Z"


def _moment(request, name: str) -> datetime:
    """A window's edge: a date (its UTC midnight) or an ISO 8601 time on the hour."""
    text = request.query_params.get(name)
    if not text:
        raise InvalidRequest(f"{name} is required", fields={name: [EXAMPLE]})
    try:
        if DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = parse_instant(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name} {exc}", fields={name: [EXAMPLE]}) from exc
    if not on_the_hour(moment):
        raise InvalidRequest(
            f"{name} must be on the hour: costs are computed per hour",
            fields={name: ["costs are computed per hour: give a date or a time on the hour"]},
        )
    return moment


def _group_by(request) -> str:
    given = request.query_params.get("group_by") or "customer"
    if given in VIEWS or given in price_by_properties():
        return given
    raise InvalidRequest(
        f"group_by must be customer, plan, meter or a property some meter groups its usage "
        f"by, not {given!r}",
        fields={"group_by": ["customer, plan, meter, or a property such as model"]},
    )


def _currency(request, start: datetime, end: datetime) -> str:
    """The currency asked; without one, the one currency of the window
    (report.window_currencies), or a 400 naming the window's currencies."""
    given = request.query_params.get("currency")
    if given is not None:
        if not is_known_currency(given):
            raise InvalidRequest(f"unknown currency {given!r}", fields={"currency": ["e.g. USD"]})
        return given
    used = window_currencies(start, end)
    if len(used) > 1:
        named = ", ".join(used)
        raise InvalidRequest(
            f"customers are billed in several currencies in this window ({named}): give one "
            f"(?currency={used[0]})",
            fields={"currency": [f"One currency per answer: one of {named}"]},
        )
    return used[0] if used else "USD"


MARGIN_ROWS = inline_serializer(
    "Margin",
    {
        "key": serializers.DictField(),
        "revenue": serializers.CharField(),
        "cost": serializers.CharField(),
        "margin": serializers.CharField(),
        "margin_percent": serializers.CharField(allow_null=True),
        "uncosted_quantity": serializers.CharField(),
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
            "quantity is in uncosted_quantity).",
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
        ],
        responses=inline_serializer(
            "Margins", {"currency": serializers.CharField(), "results": MARGIN_ROWS}
        ),
        description=(
            "Revenue (usage lines net of discounts, before tax, fixed fees for customer and "
            "plan, credits consumed at their sale price), cost at the cost rates in effect, "
            "margin and margin percent (null without revenue), and the quantity no cost "
            "rate matched."
        ),
    )
    def get(self, request):
        unknown = sorted(set(request.query_params) - PARAMS)
        if unknown:
            raise InvalidRequest(
                f"unknown query parameter {unknown[0]!r}; /margins takes "
                f"{', '.join(sorted(PARAMS))}",
                fields={name: [f"not one of {', '.join(sorted(PARAMS))}"] for name in unknown},
            )
        start, end = _moment(request, "period_start"), _moment(request, "period_end")
        if end <= start:
            raise InvalidRequest(
                "period_end must be after period_start",
                fields={"period_end": ["after period_start"]},
            )
        group_by, currency = _group_by(request), _currency(request, start, end)
        rows = margins(start=start, end=end, group_by=group_by, currency=currency)
        return Response(
            {"currency": currency, "results": [margin_row(row, currency) for row in rows]}
        )


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
