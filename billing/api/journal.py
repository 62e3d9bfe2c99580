"""The accounting journal: GET /api/v1/journal (JSON, a page at a time),
GET /api/v1/journal.csv (CSV, or Xero's manual-journal CSV with ?format=xero),
both of one seller (billing_entity=) or transaction currency (currency=) if asked,
GET /api/v1/journal/trial-balance (a seller's, in its functional currency),
GET /api/v1/journal/periods (the locks, lifted ones too: their history),
POST /api/v1/journal/periods/{YYYY-MM}/lock and .../unlock (billing.journal)."""

import re
from datetime import date

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import negotiation, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.journal import export
from billing.journal.entities import books_entity
from billing.journal.models import JournalEntry, JournalPeriodLock
from billing.journal.periods import journal_month_lock, journal_month_unlock, month_parse
from billing.journal.trial_balance import entity_trial_balance
from common.errors import InvalidRequest, NotFound
from common.money import format_decimal, format_money
from common.rest_api import CursorPagination, request_data
from customers.models import ApiKey
from plans.api import paginated

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
FORMATS = ("csv", "xero")
RANGE = [
    OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first day"),
    OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="the day after the last"),
]
FILTERS = [
    OpenApiParameter(
        "billing_entity", str, description="a seller's code: its entries only (400 if unknown)"
    ),
    OpenApiParameter(
        "currency", str, description="a transaction currency (ISO 4217): its entries only"
    ),
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


# How the parameters are named to a caller who gave an unknown one.
PARAMETER_ORDER = ("from", "to", "billing_entity", "currency", "format")


def _filter(request) -> export.JournalFilter:
    return export.journal_filter(
        billing_entity=request.query_params.get("billing_entity"),
        currency=request.query_params.get("currency"),
    )


def _range(request, allowed: frozenset) -> tuple[date, date]:
    """[from, to): both required, from not after to; other parameters refused."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        named = [name for name in PARAMETER_ORDER if name in allowed]
        raise InvalidRequest(
            f"unknown parameter {unknown[0]!r}: give {', '.join(named[:-1])} and {named[-1]}",
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
    functional_debit = serializers.SerializerMethodField(
        help_text="In the seller's functional currency; null while the day's rate is missing."
    )
    functional_credit = serializers.SerializerMethodField()
    rate = serializers.SerializerMethodField(
        help_text="1 `currency` in `functional_currency` on the document's day (1 when the same)."
    )

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
            "billing_entity",
            "functional_debit",
            "functional_credit",
            "rate",
            "functional_currency",
        ]

    def get_functional_debit(self, entry) -> str | None:
        if entry.functional_debit is None:
            return None
        return format_money(entry.functional_debit, entry.functional_currency)

    def get_functional_credit(self, entry) -> str | None:
        if entry.functional_credit is None:
            return None
        return format_money(entry.functional_credit, entry.functional_currency)

    def get_rate(self, entry) -> str | None:
        return None if entry.rate is None else format_decimal(entry.rate)

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
        parameters=[*RANGE, *FILTERS],
        responses=JournalEntrySerializer(many=True),
    )
    def get(self, request):
        start, end = _range(
            request, frozenset({"from", "to", "billing_entity", "currency", "cursor", "limit"})
        )
        query = export.entries_between(start, end, _filter(request)).select_related("customer")
        return paginated(self, request, query, JournalEntrySerializer)


class JournalCsvApi(APIView):
    content_negotiation_class = AnyAccept
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        summary="Journal entries of a date range as CSV",
        description=(
            "Ordered by date then id: the same range gives the same bytes. The columns "
            "billing_entity, functional_debit, functional_credit, rate and "
            "functional_currency come last. "
            "`format=xero` gives Xero's manual journal import columns (Narration, Date, "
            "Description, AccountCode, TaxRate, Amount, TrackingName1/2, "
            "TrackingOption1/2), one journal per document, of one billing entity in its "
            "functional currency: `billing_entity` is required when more than one has "
            "entries in the range (400 naming them), and an entry still waiting for its "
            "exchange rate is a 400 naming the pair and days (`missing_rates`)."
        ),
        parameters=[*RANGE, *FILTERS, OpenApiParameter("format", str, enum=list(FORMATS))],
        responses={(200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR)},
    )
    def get(self, request):
        start, end = _range(
            request, frozenset({"from", "to", "billing_entity", "currency", "format"})
        )
        wanted = request.query_params.get("format", "csv")
        if wanted not in FORMATS:
            raise InvalidRequest(
                f"format must be csv or xero, not {wanted!r}", fields={"format": ["csv or xero"]}
            )
        lines = export.xero_lines if wanted == "xero" else export.csv_lines
        response = StreamingHttpResponse(
            lines(start, end, _filter(request)), content_type="text/csv; charset=utf-8"
        )
        suffix = "-xero" if wanted == "xero" else ""
        response["Content-Disposition"] = (
            f'attachment; filename="journal-{start}-{end}{suffix}.csv"'
        )
        return response


class TrialBalanceLineSerializer(serializers.Serializer):
    account = serializers.CharField()
    account_name = serializers.CharField()
    opening = serializers.CharField(help_text="Debit balance at `from` (negative: a credit).")
    debit = serializers.CharField()
    credit = serializers.CharField()
    closing = serializers.CharField(help_text="opening + debit - credit.")


class JournalTrialBalanceApi(APIView):
    content_negotiation_class = AnyAccept
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        summary="A billing entity's trial balance",
        description=(
            "Per account, in the entity's functional currency: its balance at `from` "
            "(opening), the debits and credits dated in [from, to), and its balance at "
            "`to` (closing = opening + debit - credit); the closings add up to zero. "
            "`billing_entity` may be left out when there is one entity. 400 naming the "
            "field for a bad day, `to` before `from` or an unknown entity, and naming "
            "the pairs and days (`missing_rates`) while an entry waits for its rate."
        ),
        parameters=[
            OpenApiParameter("billing_entity", str, description="the entity's code"),
            *RANGE,
        ],
        responses=inline_serializer(
            "JournalTrialBalance",
            {
                "billing_entity": serializers.CharField(),
                "currency": serializers.CharField(),
                "results": TrialBalanceLineSerializer(many=True),
            },
        ),
    )
    def get(self, request):
        allowed = frozenset({"from", "to", "billing_entity"})
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise InvalidRequest(
                f"unknown parameter {unknown[0]!r}: give billing_entity, from and to",
                fields={unknown[0]: ["unknown parameter"]},
            )
        start, end = _day(request, "from"), _day(request, "to")
        if end < start:
            raise InvalidRequest(
                f"to ({end}) is before from ({start})", fields={"to": ["not before from"]}
            )
        code = books_entity(request.query_params.get("billing_entity"))
        balance = entity_trial_balance(billing_entity=code, start=start, end=end)
        money = balance.currency
        return Response(
            {
                "billing_entity": balance.billing_entity,
                "currency": money,
                "results": [
                    {
                        "account": line.account,
                        "account_name": line.account_name,
                        "opening": format_money(line.opening, money),
                        "debit": format_money(line.debit, money),
                        "credit": format_money(line.credit, money),
                        "closing": format_money(line.closing, money),
                    }
                    for line in balance.lines
                ],
            }
        )


def _who(request) -> str:
    """The API key behind a request, in words, for a lock's history."""
    key = getattr(request.user, "key", None)
    return f"API key {key}" if key is not None else ""


def _month_in_path(month: str):
    try:
        return month_parse(month)
    except InvalidRequest as refused:
        # A path that names no month names nothing: 404, as any other unknown id.
        raise NotFound(str(refused)) from None


class JournalPeriodLockSerializer(serializers.Serializer):
    month = serializers.SerializerMethodField()
    locked_at = serializers.SerializerMethodField()
    locked_by = serializers.CharField()
    lifted_at = serializers.SerializerMethodField()
    lifted_by = serializers.CharField()
    reason = serializers.CharField(source="lift_reason", help_text="Why it was lifted.")

    def get_month(self, lock) -> str:
        return f"{lock.month:%Y-%m}"

    # ISO 8601 with its offset, as the lock answered before it had a history.
    def get_locked_at(self, lock) -> str:
        return lock.locked_at.isoformat()

    def get_lifted_at(self, lock) -> str | None:
        return None if lock.lifted_at is None else lock.lifted_at.isoformat()


class JournalPeriodsApi(APIView):
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    @extend_schema(
        summary="The journal's month locks, with their history",
        description=(
            "Every lock, in force (`lifted_at` null) or lifted (who, when and why), "
            "by month then the time it was locked."
        ),
        responses=inline_serializer(
            "JournalPeriodLocks", {"results": JournalPeriodLockSerializer(many=True)}
        ),
    )
    def get(self, request):
        locks = JournalPeriodLock.objects.order_by("month", "locked_at", "id")
        return Response({"results": JournalPeriodLockSerializer(locks, many=True).data})


class JournalMonthLockApi(APIView):
    @extend_schema(
        summary="Lock a month of the journal",
        description=(
            "Documents dated in a locked month are journaled on the first day of the "
            "next open month. Only a month that has ended (UTC) can be locked: 400 "
            "(`fields.month`) for the current month or a later one; 409 when the "
            "month is locked already."
        ),
        request=None,
        responses={201: JournalPeriodLockSerializer},
    )
    def post(self, request, month: str):
        lock = journal_month_lock(month=_month_in_path(month), now=timezone.now(), by=_who(request))
        return Response(JournalPeriodLockSerializer(lock).data, status=201)


class JournalMonthUnlockSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, help_text="Why the lock is lifted; kept with who and when."
    )


class JournalMonthUnlockApi(APIView):
    """Scope `admin` (Finance's keys)."""

    @extend_schema(
        summary="Lift a month's lock, with a reason",
        description=(
            "Documents written afterwards are journaled in the month again; entries "
            "written while it was locked keep their dates. The lock stays in "
            "`GET /journal/periods` with who lifted it, when and why. 400 without a "
            "reason, 404 when the month is not locked."
        ),
        request=JournalMonthUnlockSerializer,
        responses=JournalPeriodLockSerializer,
    )
    def post(self, request, month: str):
        first_day = _month_in_path(month)
        data = request_data(JournalMonthUnlockSerializer, request)
        lock = journal_month_unlock(
            month=first_day, reason=data["reason"], by=_who(request), now=timezone.now()
        )
        return Response(JournalPeriodLockSerializer(lock).data)
