"""The accounting journal: GET /api/v1/journal (JSON, a page at a time),
GET /api/v1/journal.csv (CSV, or Xero's manual-journal CSV with ?format=xero),
POST /api/v1/journal/periods/{YYYY-MM}/lock (billing.journal)."""

import re
from datetime import date

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import negotiation, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.core.errors import InvalidRequest, NotFound
from billing.core.money import format_money
from billing.journal import export
from billing.journal.models import JournalEntry
from billing.journal.periods import journal_month_lock, month_parse
from config.api import CursorPagination
from customers.models import ApiKey
from plans.api import paginated

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
FORMATS = ("csv", "xero")
RANGE = [
    OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first day"),
    OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="the day after the last"),
]


def _day(request, name: str) -> date:
    text = request.query_params.get(name)
    if not text:
        raise InvalidRequest(f"{name} is required (a day: 2026-11-01)", fields={name: ["required"]})
    try:
        if not DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be a day written YYYY-MM-DD (2026-11-01), not {text!r}",
            fields={name: ["YYYY-MM-DD"]},
        ) from exc


def _range(request, allowed: frozenset) -> tuple[date, date]:
    """[from, to): both required, from not after to; other parameters refused."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown parameter {unknown[0]!r}: give from, to"
            + (" and format" if "format" in allowed else ""),
            fields={unknown[0]: ["unknown parameter"]},
        )
    start, end = _day(request, "from"), _day(request, "to")
    if start > end:
        raise InvalidRequest(
            f"from ({start}) is after to ({end})", fields={"from": ["not after to"]}
        )
    return start, end


class JournalEntrySerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    debit = serializers.SerializerMethodField()
    credit = serializers.SerializerMethodField()

    class Meta:
        model = JournalEntry
        fields = [
            "id",
            "date",
            "document_date",
            "document_type",
            "document",
            "customer",
            "account",
            "account_name",
            "debit",
            "credit",
            "currency",
            "memo",
        ]

    def get_debit(self, entry) -> str:
        return format_money(entry.debit, entry.currency)

    def get_credit(self, entry) -> str:
        return format_money(entry.credit, entry.currency)


class AnyAccept(negotiation.BaseContentNegotiation):
    """The first renderer whatever the client accepts: `format` is the CSV
    endpoint's own parameter (and unknown to the JSON one, a 400), never DRF's
    format override; errors in the JSON envelope."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class JournalPagination(CursorPagination):
    ordering = ("date", "id")


class JournalListApi(APIView):
    pagination_class = JournalPagination
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="Journal entries of a date range",
        parameters=RANGE,
        responses=JournalEntrySerializer(many=True),
    )
    def get(self, request):
        start, end = _range(request, frozenset({"from", "to", "cursor", "limit"}))
        query = export.entries_between(start, end).select_related("customer")
        return paginated(self, request, query, JournalEntrySerializer)


class JournalCsvApi(APIView):
    content_negotiation_class = AnyAccept
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        summary="Journal entries of a date range as CSV",
        description=(
            "Ordered by date then id: the same range gives the same bytes. "
            "`format=xero` gives Xero's manual journal import columns (Narration, Date, "
            "Description, AccountCode, TaxRate, Amount, TrackingName1/2, "
            "TrackingOption1/2), one journal per document."
        ),
        parameters=[*RANGE, OpenApiParameter("format", str, enum=list(FORMATS))],
        responses={(200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR)},
    )
    def get(self, request):
        start, end = _range(request, frozenset({"from", "to", "format"}))
        wanted = request.query_params.get("format", "csv")
        if wanted not in FORMATS:
            raise InvalidRequest(
                f"format must be csv or xero, not {wanted!r}", fields={"format": ["csv or xero"]}
            )
        lines = export.xero_lines if wanted == "xero" else export.csv_lines
        response = StreamingHttpResponse(lines(start, end), content_type="text/csv; charset=utf-8")
        suffix = "-xero" if wanted == "xero" else ""
        response["Content-Disposition"] = (
            f'attachment; filename="journal-{start}-{end}{suffix}.csv"'
        )
        return response


class JournalMonthLockApi(APIView):
    @extend_schema(
        summary="Lock a month of the journal",
        description=(
            "Documents dated in a locked month are journaled on the first day of the "
            "next open month. 409 when the month is locked already."
        ),
        request=None,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request, month: str):
        try:
            first_day = month_parse(month)
        except InvalidRequest as refused:
            # A path that names no month names nothing: 404, as any other unknown id.
            raise NotFound(str(refused)) from None
        lock = journal_month_lock(month=first_day, now=timezone.now())
        return Response(
            {"month": f"{lock.month:%Y-%m}", "locked_at": lock.locked_at.isoformat()},
            status=201,
        )
