"""Bulk plan migrations: preview, create, list, read."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.subscriptions import subscriptions_with_plans, target_version
from billing.models import PlanMigration, Subscription
from billing.serializers import (
    MAX_MIGRATION_SUBSCRIPTIONS,
    MigrationConfirmSerializer,
    MigrationPreviewSerializer,
    MigrationSerializer,
    PlanMigrationSerializer,
)
from billing.subscriptions import bulk_migration
from common.errors import InvalidRequest
from common.money import format_money
from common.periods import iso
from common.rest_api import request_data
from plans.models import Plan


def _migration_subscriptions(data: dict) -> list[Subscription]:
    found = subscriptions_with_plans().order_by("id")
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
                "drops_deal": row.drops_deal,
                **{name: money(getattr(row, name)) for name in names},
                **{f"features_{how}": codes for how, codes in preview.features_change(row).items()},
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
        data = request_data(MigrationSerializer, request)
        return Response(_preview_body(_migration_preview(data)))


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
        data = request_data(MigrationConfirmSerializer, request)
        confirmed, created = bulk_migration.plan_migration_confirm(
            token=data["token"], digest=data["digest"], preview=lambda: _migration_preview(data)
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
