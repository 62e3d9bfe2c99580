"""Writes for subscriptions and usage rollups, and the bulk migration of
subscriptions between versions (preview, record, run). Rating, period close,
plan changes and cancellation live in billing.cycle."""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

from billing.core.errors import BillingError, Conflict, InvalidRequest, NotFound
from billing.core.money import format_money, quantize_money
from billing.core.periods import period_boundary
from billing.cycle import (
    next_period_fixed_lines,
    plan_change_check,
    plan_change_lines,
    subscription_change_plan,
    subscription_start_invoice,
)
from billing.ingestion import (
    PreparedEvent,
    _generic,
    _postgres,
    rollup_deltas,
    rollup_lock,
    unique_values,
)
from billing.models import (
    PlanMigration,
    PlanMigrationItem,
    Subscription,
    SubscriptionChange,
    UsageEvent,
    UsageRollup,
    UsageUniqueValue,
)
from billing.usage.metering import (
    PROPERTIES_DECODER,
    EventRejected,
    contributions,
    meter_cache,
    meter_def,
)
from customers.models import Customer
from invoices.services import LineInput
from plans.models import Meter, Plan, PlanVersion

logger = logging.getLogger(__name__)
MAX_SEATS = 1_000_000


def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    start: datetime,
    version_number: int | None = None,
    seats: int = 1,
    billing_anchor: str = Subscription.ANNIVERSARY,
) -> Subscription:
    """Subscribe a customer to a published version of a plan (the latest when
    `version_number` is None), from `start`, which may be in the past. The first
    period starts at `start`, and its fixed fees are invoiced in advance (a draft,
    finalized by the close). Locks the customer row: a customer has at most one
    live subscription (also enforced by a partial unique index)."""
    if billing_anchor not in dict(Subscription.ANCHORS):
        raise InvalidRequest(
            f"billing_anchor must be one of {', '.join(dict(Subscription.ANCHORS))}",
            fields={"billing_anchor": ["must be anniversary or calendar"]},
        )
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= MAX_SEATS:
        raise InvalidRequest(
            f"seats must be a whole number from 1 to {MAX_SEATS}",
            fields={"seats": [f"must be from 1 to {MAX_SEATS}"]},
        )
    versions = plan.versions.filter(status=PlanVersion.PUBLISHED)
    if version_number is None:
        version = versions.order_by("-number").first()
        if version is None:
            raise Conflict(
                f"plan {plan.code!r} has no published version", fields={"plan": ["not published"]}
            )
    else:
        version = plan.versions.filter(number=version_number).first()
        if version is None:
            raise NotFound(f"plan {plan.code!r} has no version {version_number}")
        if version.status != PlanVersion.PUBLISHED:
            raise Conflict(
                f"{plan.code} v{version_number} is {version.status}; only a published "
                "version takes new subscriptions",
                fields={"version": [f"is {version.status}"]},
            )
    if version.currency != customer.currency:
        raise InvalidRequest(
            f"plan {plan.code!r} bills in {version.currency} but customer "
            f"{customer.external_id!r} pays in {customer.currency}",
            fields={"plan": [f"bills in {version.currency}, not {customer.currency}"]},
        )
    trialing = version.trial_days > 0
    # A trial is a first period of its own, without fixed fees; periods then run
    # from its end.
    trial_end = start + timedelta(days=version.trial_days) if trialing else None
    anchor = trial_end or start
    period_end = trial_end or period_boundary(
        start,
        ZoneInfo(customer.timezone),
        interval=version.interval,
        calendar_aligned=billing_anchor == Subscription.CALENDAR,
        k=1,
    )
    try:
        with transaction.atomic():
            Customer.objects.select_for_update().get(pk=customer.pk)
            if Subscription.objects.filter(
                customer=customer, status__in=Subscription.LIVE
            ).exists():
                raise Conflict(
                    f"customer {customer.external_id!r} already has a live subscription; "
                    "change its plan instead",
                    fields={"customer": ["already subscribed"]},
                )
            subscription = Subscription.objects.create(
                customer=customer,
                version=version,
                status=Subscription.TRIALING if trialing else Subscription.ACTIVE,
                billing_anchor=billing_anchor,
                started_at=start,
                anchor_at=anchor,
                trial_end=trial_end,
                current_period_start=start,
                current_period_end=period_end,
                seats=seats,
            )
            SubscriptionChange.objects.create(
                subscription=subscription,
                kind=SubscriptionChange.CREATED,
                to_version=version,
                effective_at=start,
                details={"seats": seats, "billing_anchor": billing_anchor},
            )
            subscription_start_invoice(subscription=subscription)
    except IntegrityError as exc:  # a concurrent create won the partial unique index
        raise Conflict(
            f"customer {customer.external_id!r} already has a live subscription",
            fields={"customer": ["already subscribed"]},
        ) from exc
    return subscription


REBUILD_CHUNK = 2000


def meter_usage_rebuild(*, meter_id: int) -> int:
    """Recompute one meter's rollups from every stored event, e.g. for a meter
    created or redefined after its events arrived. Idempotent. Takes the rollup
    lock exclusively, so concurrent ingestion waits and then meters with the new
    definition. A stored event the meter cannot read (say, without its value
    property) is left out, as it would have been refused had the meter existed.
    Returns the number of events the meter counted."""
    meter = Meter.objects.filter(pk=meter_id).first()
    if meter is None:
        return 0
    definition = meter_def(meter)
    counted = 0
    with transaction.atomic():
        rollup_lock(shared=False)
        meter_cache.clear()
        UsageRollup.objects.filter(meter_id=meter_id).delete()
        UsageUniqueValue.objects.filter(meter_id=meter_id).delete()
        writer = _postgres if connection.vendor == "postgresql" else _generic
        rows = (
            UsageEvent.objects.filter(event_name=meter.event_name)
            .annotate(raw=Cast("properties", TextField()))
            .values_list("customer_id", "event_id", "timestamp", "raw")
            .order_by()
            .iterator(chunk_size=REBUILD_CHUNK)
        )
        events: list[PreparedEvent] = []
        for customer_id, event_id, timestamp, raw in rows:
            try:
                found = contributions([definition], PROPERTIES_DECODER.decode(raw))
            except EventRejected:
                continue
            if found:
                events.append(PreparedEvent(customer_id, event_id, "", timestamp, {}, found))
        counted = len(events)
        rollups, uniques = rollup_deltas(events), unique_values(events)
        for start in range(0, len(rollups), REBUILD_CHUNK):
            writer.upsert_rollups(rollups[start : start + REBUILD_CHUNK])
        for start in range(0, len(uniques), REBUILD_CHUNK):
            writer.insert_uniques(uniques[start : start + REBUILD_CHUNK])
    return counted


# Bulk migration between versions: a preview, then a PlanMigration run by a task.
# The preview's lines are those the change itself writes (billing.cycle's
# plan_change_lines and next_period_fixed_lines), so what ops confirms is what
# is invoiced.


@dataclass(frozen=True)
class MigrationRow:
    """One selected subscription in a preview: what moving it bills, or why it
    cannot move (`skipped`)."""

    subscription: Subscription
    skipped: str = ""
    # Immediate: the lines of the change's invoice, rounded as the invoice rounds them.
    usage: Decimal | None = None
    credit: Decimal | None = None
    charge: Decimal | None = None
    # Period end: the next period's base fee and seats on the new version.
    next_fees: Decimal | None = None
    lines: tuple[LineInput, ...] = ()

    @property
    def total(self) -> Decimal | None:
        if self.skipped:
            return None
        if self.next_fees is not None:
            return self.next_fees
        return self.usage + self.credit + self.charge


@dataclass(frozen=True)
class MigrationPreview:
    version: PlanVersion
    effective: str
    at: datetime | None
    rows: list[MigrationRow]

    @property
    def moving(self) -> list[MigrationRow]:
        return [row for row in self.rows if not row.skipped]

    @property
    def skipped(self) -> list[MigrationRow]:
        return [row for row in self.rows if row.skipped]

    def sum(self, name: str) -> Decimal:
        return sum((getattr(row, name) for row in self.moving), Decimal(0))

    @property
    def digest(self) -> str:
        """A fingerprint of every figure and reason shown: a confirmation names the
        preview it saw, and one whose figures have changed since is shown again."""
        shown = {
            "version": self.version.pk,
            "effective": self.effective,
            "at": self.at.isoformat() if self.at else None,
            "rows": [
                [
                    row.subscription.pk,
                    row.subscription.version_id,
                    row.skipped,
                    [[line.kind, str(line.amount)] for line in row.lines],
                ]
                for row in self.rows
            ],
        }
        return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def plan_migration_refusal(
    *, subscription: Subscription, version: PlanVersion, effective: str, at: datetime | None
) -> str:
    """Why the subscription cannot move to `version` in a bulk migration, or "".
    The plan change's own refusals (not live, not published, another currency,
    `at` outside the period), then the migration's: already on the version or
    moving to it at period end (so a migration run or sent twice changes nothing
    twice), or ending with its period. Moves to another plan's version are
    allowed, as for a single change. Reads only."""
    try:
        plan_change_check(subscription=subscription, version=version, effective=effective, at=at)
    except BillingError as error:
        return error.message
    if subscription.version_id == version.pk:
        return "the subscription is on that version already"
    if effective == PlanMigration.PERIOD_END and subscription.scheduled_version_id == version.pk:
        return "the subscription moves to that version at the end of its period already"
    if subscription.cancel_at_period_end:
        return "the subscription ends with its current period"
    return ""


def _rounded(lines: list[LineInput], currency: str) -> Decimal:
    # As invoices.services.invoice_write_draft rounds and sums an invoice's lines.
    return sum((quantize_money(line.amount, currency) for line in lines), Decimal(0))


def plan_migration_preview(
    *,
    subscriptions: list[Subscription],
    version: PlanVersion,
    effective: str,
    at: datetime | None,
) -> MigrationPreview:
    """What moving each subscription to `version` would bill, without writing:
    for `immediate` at `at`, the usage so far, the credit and the charge of the
    change's invoice; for `period_end`, the next period's fixed fees. Reads only."""
    if effective == PlanMigration.IMMEDIATE and at is None:
        raise InvalidRequest("an immediate migration needs its moment", fields={"at": ["missing"]})
    with meter_cache.pinned():
        rows = [_migration_row(s, version, effective, at) for s in subscriptions]
    return MigrationPreview(version, effective, at, rows)


def _migration_row(
    subscription: Subscription, version: PlanVersion, effective: str, at: datetime | None
) -> MigrationRow:
    reason = plan_migration_refusal(
        subscription=subscription, version=version, effective=effective, at=at
    )
    if reason:
        return MigrationRow(subscription, skipped=reason)
    currency = subscription.customer.currency
    if effective == PlanMigration.IMMEDIATE:
        planned = plan_change_lines(subscription=subscription, version=version, at=at)
        return MigrationRow(
            subscription,
            usage=_rounded(planned.so_far, currency),
            credit=_rounded(planned.credit, currency),
            charge=_rounded(planned.charge, currency),
            lines=tuple(planned.lines),
        )
    fixed = next_period_fixed_lines(subscription=subscription, version=version)
    return MigrationRow(subscription, next_fees=_rounded(fixed, currency), lines=tuple(fixed))


def plan_migration_create(
    *, token: uuid.UUID, preview: MigrationPreview, created_by=None
) -> tuple[PlanMigration, bool]:
    """Record a confirmed preview as a migration (an item per subscription, with the
    amounts previewed; those that cannot move are skipped at once) and run it by
    a task once this commits. Idempotent on `token`: a confirmation sent twice
    returns the first migration (created False) and enqueues nothing."""
    from billing.tasks import run_plan_migration

    with transaction.atomic():
        migration, created = PlanMigration.objects.get_or_create(
            token=token,
            defaults={
                "to_version": preview.version,
                "effective": preview.effective,
                "at": preview.at if preview.effective == PlanMigration.IMMEDIATE else None,
                "created_by": created_by,
                "total": len(preview.rows),
                "done_count": len(preview.skipped),
            },
        )
        if not created:
            return migration, False
        PlanMigrationItem.objects.bulk_create(
            PlanMigrationItem(
                migration=migration,
                subscription=row.subscription,
                from_version_id=row.subscription.version_id,
                status=PlanMigrationItem.SKIPPED if row.skipped else PlanMigrationItem.PENDING,
                message=row.skipped,
                preview_usage=row.usage,
                preview_credit=row.credit,
                preview_charge=row.charge,
                preview_next_fees=row.next_fees,
                preview_total=row.total,
            )
            for row in preview.rows
        )
        migration_id = migration.pk
        transaction.on_commit(lambda: run_plan_migration.delay(migration_id), robust=True)
    return migration, True


def plan_migration_rerun(*, migration: PlanMigration) -> None:
    """Run a migration again once this commits: its pending and failed items are
    tried; done and skipped ones are left alone."""
    from billing.tasks import run_plan_migration

    migration_id = migration.pk
    transaction.on_commit(lambda: run_plan_migration.delay(migration_id), robust=True)


def plan_migration_run(*, migration_id: int, now: datetime) -> PlanMigration | None:
    """Apply a migration's items that are pending (or failed on an earlier run),
    each in its own transaction under the item's row lock, then the
    subscription's. Safe to run twice, or twice at once: an item is applied at
    most once (a done or skipped item is left alone), and a subscription already
    on the target version is skipped. A domain refusal skips the item with its
    reason; an unexpected error marks it failed, and the run goes on."""
    migration = (
        PlanMigration.objects.select_related("to_version__plan").filter(pk=migration_id).first()
    )
    if migration is None:
        return None
    PlanMigration.objects.filter(pk=migration_id, status=PlanMigration.PENDING).update(
        status=PlanMigration.RUNNING
    )
    to_run = (
        migration.items.filter(status__in=(PlanMigrationItem.PENDING, PlanMigrationItem.FAILED))
        .order_by("id")
        .values_list("id", flat=True)
    )
    with meter_cache.pinned():
        for item_id in list(to_run):
            _plan_migration_item_run(migration, item_id)
    with transaction.atomic():
        migration = PlanMigration.objects.select_for_update().get(pk=migration_id)
        items = migration.items.all()
        if items.filter(status=PlanMigrationItem.PENDING).exists():
            return migration  # another run is at it and finishes the migration
        failed = items.filter(status=PlanMigrationItem.FAILED).exists()
        status = PlanMigration.FAILED if failed else PlanMigration.DONE
        if migration.status != status:
            migration.status = status
            migration.finished_at = now
            migration.save(update_fields=["status", "finished_at"])
    return migration


def _plan_migration_item_run(migration: PlanMigration, item_id: int) -> None:
    with transaction.atomic():
        item = PlanMigrationItem.objects.select_for_update().get(pk=item_id)
        if item.status not in (PlanMigrationItem.PENDING, PlanMigrationItem.FAILED):
            return
        first_try = item.status == PlanMigrationItem.PENDING
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("customer", "version__plan")
            .get(pk=item.subscription_id)
        )
        version = PlanVersion.objects.select_related("plan").get(pk=migration.to_version_id)
        item.invoice = None
        item.message = plan_migration_refusal(
            subscription=subscription,
            version=version,
            effective=migration.effective,
            at=migration.at,
        )
        if item.message:
            item.status = PlanMigrationItem.SKIPPED
        else:
            try:
                with transaction.atomic():
                    _, item.invoice = subscription_change_plan(
                        subscription=subscription,
                        version=version,
                        effective=migration.effective,
                        at=migration.at,
                    )
            except BillingError as error:
                item.status, item.message = PlanMigrationItem.SKIPPED, error.message
            except Exception as error:
                # Rolled back to the savepoint; recorded here, tried again by the next run.
                logger.exception("migration %s: subscription %s", migration.pk, subscription.pk)
                item.status = PlanMigrationItem.FAILED
                item.message = f"{type(error).__name__}: {error}"[:500]
            else:
                item.status = PlanMigrationItem.DONE
                item.message = _done_message(subscription, item.invoice)
        item.save(update_fields=["status", "message", "invoice"])
        if first_try:
            PlanMigration.objects.filter(pk=migration.pk).update(done_count=F("done_count") + 1)


def _done_message(subscription: Subscription, invoice) -> str:
    if invoice is None:
        return f"moves at {subscription.current_period_end:%Y-%m-%d %H:%M} UTC"
    return f"invoiced {format_money(invoice.total, invoice.currency)} {invoice.currency}"
