"""Usage endpoints: event ingestion and usage reads."""

import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.core.errors import BillingError, Conflict, InvalidRequest
from billing.core.money import format_decimal, format_money
from billing.core.periods import month_start, parse_instant, period_containing
from billing.core.storable import may_hold_unstorable_text
from billing.models import PlanMigration, Subscription
from billing.notifications import alerts
from billing.serializers import (
    MAX_MIGRATION_SUBSCRIPTIONS,
    CancelSerializer,
    ChangePlanSerializer,
    EventBatchResultSerializer,
    EventBatchSerializer,
    MigrationConfirmSerializer,
    MigrationPreviewSerializer,
    MigrationSerializer,
    PlanMigrationSerializer,
    SeatsSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
    UsageSerializer,
)
from billing.subscriptions import bulk_migration, lifecycle
from billing.usage import check, reads
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH, batch_parse, events_ingest
from billing.usage.metering import meter_cache
from config.api import error_body
from config.schema import ErrorSerializer
from customers.models import ApiKey, Customer
from invoices.api import invoices_query
from invoices.serializers import InvoiceSerializer
from plans.models import Plan, PlanVersion
from wallets.selectors import uncovered_totals
from wallets.serializers import CheckSerializer

ZERO = Decimal(0)


class PayloadTooLarge(BillingError):
    status_code = 413
    error_type = "payload_too_large"


def read_body(request, *, limit: int) -> bytes:
    """The raw body, refused past `limit` bytes, with or without a Content-Length."""
    django_request = request._request
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes; nothing was stored")
    body = django_request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes; nothing was stored")
    return body


class EventsApi(APIView):
    """POST a batch of usage events (scope events:write)."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}
    parser_classes = []  # the body is read and parsed here, once
    schema_may_conflict = False  # a repeated event is a duplicate, not a conflict

    # Named by media type: with no parser, the schema would find no request body.
    @extend_schema(
        request={"application/json": EventBatchSerializer},
        responses={202: EventBatchResultSerializer},
    )
    def post(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(content_type or "none")
        body = read_body(request, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        try:
            payload = batch_parse(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise InvalidRequest(
                'the body must be an object {"events": [...]}',
                fields={"events": ["must be a list of events"]},
            )
        events = payload["events"]
        if len(events) > MAX_EVENTS_PER_BATCH:
            raise PayloadTooLarge(
                f"{len(events)} events; at most {MAX_EVENTS_PER_BATCH} a request; none stored"
            )
        result = events_ingest(events=events, may_hold_unstorable=may_hold_unstorable_text(body))
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [
                    {
                        "index": r.index,
                        "id": r.id,
                        "error": error_body("invalid_request", r.message)["error"],
                    }
                    for r in result.rejected
                ],
            },
            status=status.HTTP_202_ACCEPTED,
        )


def parse_time_param(request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be ISO 8601 with an offset", fields={name: ["e.g. 2026-11-01T00:00:00Z"]}
        ) from exc


def plan_or_400(code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise InvalidRequest(f"unknown plan {code!r}", fields={"plan": ["unknown plan"]})
    return plan


def target_version(plan_code: str, number: int | None) -> PlanVersion:
    """The version a subscription moves to: the one numbered, or the plan's
    latest published one."""
    plan = plan_or_400(plan_code)
    versions = plan.versions.all()
    version = (
        versions.filter(status=PlanVersion.PUBLISHED).order_by("-number").first()
        if number is None
        else versions.filter(number=number).first()
    )
    if version is None:
        raise InvalidRequest(
            f"plan {plan.code!r} has no such published version",
            fields={"version": ["not found"]},
        )
    return version


class SubscriptionListApi(APIView):
    @extend_schema(
        request=SubscriptionCreateSerializer,
        responses={
            201: SubscriptionSerializer,
            404: OpenApiResponse(ErrorSerializer, description="The plan has no such version."),
        },
    )
    def post(self, request):
        serializer = SubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = Customer.objects.filter(external_id=data["customer"]).first()
        if customer is None:
            raise InvalidRequest(
                f"unknown customer {data['customer']!r}", fields={"customer": ["unknown customer"]}
            )
        plan = plan_or_400(data["plan"])
        subscription = lifecycle.subscription_create(
            customer=customer,
            plan=plan,
            start=data["start"],
            version_number=data["version"],
            seats=data["seats"],
            billing_anchor=data["billing_anchor"],
        )
        return Response(
            SubscriptionSerializer(_subscriptions().get(pk=subscription.pk)).data,
            status=status.HTTP_201_CREATED,
        )


def _subscriptions():
    return Subscription.objects.select_related("customer", "version__plan")


class SubscriptionDetailApi(APIView):
    @extend_schema(responses=SubscriptionSerializer)
    def get(self, request, subscription_id: int):
        return Response(
            SubscriptionSerializer(get_object_or_404(_subscriptions(), pk=subscription_id)).data
        )

    @extend_schema(request=SeatsSerializer, responses=SubscriptionSerializer)
    def patch(self, request, subscription_id: int):
        """Change the seat count, prorated by the second on the invoice that closes the period."""
        subscription = get_object_or_404(_subscriptions(), pk=subscription_id)
        serializer = SeatsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lifecycle.subscription_set_seats(
            subscription=subscription, seats=data["seats"], at=data["at"] or timezone.now()
        )
        return Response(SubscriptionSerializer(_subscriptions().get(pk=subscription_id)).data)


class SubscriptionChangeSerializer(SubscriptionSerializer):
    """The subscription after a plan change or a cancellation, with the invoice the
    change wrote at once (proration, a final invoice), if any."""

    invoice = InvoiceSerializer(allow_null=True, read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "invoice"]


def _with_invoice(subscription_id: int, invoice) -> Response:
    body = SubscriptionSerializer(_subscriptions().get(pk=subscription_id)).data
    body["invoice"] = (
        InvoiceSerializer(invoices_query().get(pk=invoice.pk)).data if invoice else None
    )
    return Response(body)


class SubscriptionChangePlanApi(APIView):
    @extend_schema(request=ChangePlanSerializer, responses=SubscriptionChangeSerializer)
    def post(self, request, subscription_id: int):
        subscription = get_object_or_404(_subscriptions(), pk=subscription_id)
        serializer = ChangePlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = target_version(data["plan"], data["version"])
        _, invoice = lifecycle.subscription_change_plan(
            subscription=subscription,
            version=version,
            effective=data["effective"],
            at=data["at"] or timezone.now(),
        )
        return _with_invoice(subscription_id, invoice)


class SubscriptionCancelApi(APIView):
    @extend_schema(request=CancelSerializer, responses=SubscriptionChangeSerializer)
    def post(self, request, subscription_id: int):
        subscription = get_object_or_404(_subscriptions(), pk=subscription_id)
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _, invoice = lifecycle.subscription_cancel(
            subscription=subscription, effective=data["effective"], at=data["at"] or timezone.now()
        )
        return _with_invoice(subscription_id, invoice)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _wallet_columns(line, uncovered: dict) -> dict:
    """For a credits or balance charge: the units its wallet could not pay for
    when they arrived (stored and counted, not paid)."""
    if line.model not in ("credits", "balance"):
        return {}
    return {"uncovered": format_decimal(uncovered.get(line.meter, ZERO))}


class UsageApi(APIView):
    """The customer's usage per charge for a period: the subscription's current
    period by default, or the period containing `period_start`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", str, description="ISO 8601; default: current period"),
            OpenApiParameter("period_end", str, description="ISO 8601; default: that period's end"),
        ],
        responses=UsageSerializer,
    )
    def get(self, request, external_id: str):
        customer, subscription = check.customer_with_live_subscription(external_id=external_id)
        if customer is None:
            raise Http404
        start = parse_time_param(request, "period_start")
        end = parse_time_param(request, "period_end")
        zone = zoneinfo.ZoneInfo(customer.timezone)
        if subscription is not None and end is None:
            if start is None:
                start, end = subscription.current_period_start, subscription.current_period_end
            elif start >= subscription.started_at:
                start, end = period_containing(
                    subscription.started_at,
                    zone,
                    interval=subscription.version.interval,
                    calendar_aligned=subscription.billing_anchor == Subscription.CALENDAR,
                    moment=start,
                )
        if start is None:
            start = month_start(datetime.now(UTC).astimezone(zone))
        if end is None:
            end = month_start(start.astimezone(zone), months=1)
        if end <= start:
            raise InvalidRequest(
                "period_end must be after period_start",
                fields={"period_end": ["must be after period_start"]},
            )
        text = format_decimal
        summary = None
        with meter_cache.pinned():  # one freshness check for the whole read
            if subscription is not None:
                summary = reads.usage_summary(
                    subscription=subscription, start=start, end=end, now=datetime.now(UTC)
                )
                lines = summary.lines
            else:
                lines = reads.usage_lines(
                    customer_id=customer.id, subscription=None, start=start, end=end
                )
        uncovered = uncovered_totals(customer_id=customer.id, start=start, end=end)

        def money(amount):
            return None if amount is None else format_money(amount, customer.currency)

        return Response(
            {
                "subscription": subscription.pk if subscription else None,
                "customer": customer.external_id,
                "period_start": iso(start),
                "period_end": iso(end),
                "currency": customer.currency,
                "lines": [
                    {
                        **_wallet_columns(line, uncovered),
                        "meter": line.meter,
                        "aggregation": line.aggregation,
                        "model": line.model,
                        "quantity": text(line.quantity),
                        "included": None if line.included is None else text(line.included),
                        "billable": None if line.billable is None else text(line.billable),
                        "amount": money(summary.amounts.get(line.meter)) if summary else None,
                    }
                    for line in lines
                ],
                "base_fee": money(summary.base_fee) if summary else None,
                "subtotal": money(summary.subtotal) if summary else None,
                "projected_total": money(summary.projected_total) if summary else None,
            }
        )


class CheckApi(APIView):
    """May this customer use `quantity` units of this meter now? Answered from the
    current period's counters and the wallets, for every consumption model and
    the customer's spend limit. Scope `read` or `events:write` (the product asks
    before the calls it then reports)."""

    required_scopes = {"POST": (ApiKey.SCOPE_READ, ApiKey.SCOPE_EVENTS_WRITE)}
    schema_may_conflict = False  # a question, not a write

    @extend_schema(
        request=CheckSerializer,
        responses=inline_serializer(
            "CheckResult",
            {
                "allowed": serializers.BooleanField(),
                "model": serializers.CharField(allow_null=True),
                "reason": serializers.CharField(),
                "used": serializers.CharField(allow_null=True),
                "included": serializers.CharField(allow_null=True),
                "remaining": serializers.CharField(allow_null=True),
                "balance": serializers.CharField(allow_null=True),
            },
        ),
    )
    def post(self, request, external_id: str):
        customer, subscription = check.customer_with_live_subscription(external_id=external_id)
        if customer is None:
            raise Http404
        serializer = CheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        quantity = serializer.validated_data["quantity"]
        if quantity is None:
            quantity = Decimal(1)
        if quantity <= 0:
            raise InvalidRequest("quantity must be positive", fields={"quantity": ["must be > 0"]})
        now = datetime.now(UTC)
        result = check.usage_check(
            customer=customer,
            subscription=subscription,
            meter_code=serializer.validated_data["meter"],
            quantity=quantity,
            now=now,
        )
        if result.spend is not None and result.allowed:
            # A soft limit allows, and tells finance once a period.
            alerts.spend_limit_alert_raise(
                customer=customer,
                spend=result.spend,
                period_start=result.period_start,
                period_end=result.period_end,
                now=now,
            )

        def text(value):
            return None if value is None else format_decimal(value)

        balance = None
        if result.balance is not None:
            balance = (
                format_money(result.balance, result.currency)
                if result.currency
                else format_decimal(result.balance)
            )
        return Response(
            {
                "allowed": result.allowed,
                "model": result.model,
                "reason": result.reason,
                "used": text(result.used),
                "included": text(result.included),
                "remaining": text(result.remaining),
                "balance": balance,
            }
        )


# Bulk migration between versions (the admin's "Migrate" action, for scripts):
# a preview, then its confirmation, then the migration's progress.


def _migration_subscriptions(data: dict) -> list[Subscription]:
    found = _subscriptions().order_by("id")
    if "subscriptions" in data:
        ids = list(dict.fromkeys(data["subscriptions"]))
        subscriptions = list(found.filter(pk__in=ids))
        unknown = sorted(set(ids) - {s.pk for s in subscriptions})
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
            raise InvalidRequest(
                f"unknown subscriptions: {shown}", fields={"subscriptions": ["unknown ids"]}
            )
        return subscriptions
    plan = Plan.objects.filter(code=data["from_plan"]).first()
    if plan is None:
        raise InvalidRequest(
            f"unknown plan {data['from_plan']!r}", fields={"from_plan": ["unknown plan"]}
        )
    found = found.filter(version__plan=plan, status__in=Subscription.LIVE)
    if data.get("from_version") is not None:
        found = found.filter(version__number=data["from_version"])
    subscriptions = list(found[: MAX_MIGRATION_SUBSCRIPTIONS + 1])
    if len(subscriptions) > MAX_MIGRATION_SUBSCRIPTIONS:
        raise InvalidRequest(
            f"over {MAX_MIGRATION_SUBSCRIPTIONS:,} subscriptions: migrate them by id, in parts",
            fields={"from_plan": ["too many subscriptions"]},
        )
    return subscriptions


def _migration_preview(data: dict) -> bulk_migration.MigrationPreview:
    version = target_version(data["plan"], data["version"])
    at = data["at"]
    if data["effective"] == PlanMigration.IMMEDIATE and at is None:
        at = timezone.now().replace(microsecond=0)  # answered, to be confirmed with it
    return bulk_migration.plan_migration_preview(
        subscriptions=_migration_subscriptions(data),
        version=version,
        effective=data["effective"],
        at=at,
    )


MIGRATION_AMOUNTS = {
    PlanMigration.IMMEDIATE: ("usage", "credit", "charge", "total"),
    PlanMigration.PERIOD_END: ("next_fees", "total"),
}


def _preview_body(preview: bulk_migration.MigrationPreview) -> dict:
    currency = preview.version.currency
    names = MIGRATION_AMOUNTS[preview.effective]

    def money(value):
        return None if value is None else format_money(value, currency)

    return {
        "plan": preview.version.plan.code,
        "version": preview.version.number,
        "effective": preview.effective,
        "at": iso(preview.at) if preview.at else None,
        "currency": currency,
        "moving": len(preview.moving),
        "skipped": len(preview.skipped),
        "totals": {name: money(preview.sum(name)) for name in names},
        "rows": [
            {
                "subscription": row.subscription.pk,
                "customer": row.subscription.customer.external_id,
                "skipped": row.skipped or None,
                **{name: money(getattr(row, name)) for name in names},
            }
            for row in preview.rows
        ],
        "digest": preview.digest,
    }


def _migration_body(migration: PlanMigration) -> dict:
    currency = migration.to_version.currency
    items = migration.items.select_related("subscription__customer").order_by("id")
    return {
        "id": migration.pk,
        "plan": migration.to_version.plan.code,
        "version": migration.to_version.number,
        "effective": migration.effective,
        "at": iso(migration.at) if migration.at else None,
        "status": migration.status,
        "total": migration.total,
        "done": migration.done_count,
        "created_at": iso(migration.created_at),
        "finished_at": iso(migration.finished_at) if migration.finished_at else None,
        "items": [
            {
                "subscription": item.subscription_id,
                "customer": item.subscription.customer.external_id,
                "status": item.status,
                "message": item.message or None,
                "invoice": item.invoice_id,
                "previewed_total": None
                if item.preview_total is None
                else format_money(item.preview_total, currency),
            }
            for item in items
        ],
    }


class PlanMigrationPreviewApi(APIView):
    """What moving these subscriptions to a version would bill, per subscription,
    without writing anything. Scope `admin`."""

    schema_may_conflict = False

    @extend_schema(
        request=MigrationSerializer,
        responses=MigrationPreviewSerializer,
    )
    def post(self, request):
        serializer = MigrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(_preview_body(_migration_preview(serializer.validated_data)))


class PlanMigrationListApi(APIView):
    """Confirm a preview: the migration is recorded and run by a worker (202). The
    same `token` again answers the migration it made (200); figures that changed
    since the preview (its `digest`) answer 409. Scope `admin`."""

    @extend_schema(
        request=MigrationConfirmSerializer,
        responses={
            202: OpenApiResponse(PlanMigrationSerializer, description="Recorded; a worker runs it"),
            200: OpenApiResponse(PlanMigrationSerializer, description="This token's migration."),
        },
    )
    def post(self, request):
        serializer = MigrationConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        confirmed = PlanMigration.objects.filter(token=data["token"]).first()
        if confirmed is None:
            preview = _migration_preview(data)
            if preview.digest != data["digest"]:
                raise Conflict(
                    "the figures have changed since the preview (usage, seats or "
                    "subscriptions moved on, or another moment): preview again"
                )
            confirmed, created = bulk_migration.plan_migration_create(
                token=data["token"], preview=preview
            )
            if created:
                confirmed.refresh_from_db()
                return Response(_migration_body(confirmed), status=status.HTTP_202_ACCEPTED)
        return Response(_migration_body(confirmed))


class PlanMigrationDetailApi(APIView):
    """A migration's progress and per-subscription results. Scope `read`."""

    @extend_schema(responses=PlanMigrationSerializer)
    def get(self, request, migration_id: int):
        migration = get_object_or_404(
            PlanMigration.objects.select_related("to_version__plan"), pk=migration_id
        )
        return Response(_migration_body(migration))
