"""Bulk migration of subscriptions between plan versions: the preview (what each
subscription would be invoiced), the recorded migration and its run, one item
at a time, each a plan change of its own (billing.subscriptions.lifecycle)."""

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import translation
from django.utils.translation import gettext

from billing.invoicing.unused_time import plan_unused_credit
from billing.locks import plan_migration_item_lock, plan_migration_lock, subscription_lock
from billing.models import (
    PlanMigration,
    PlanMigrationItem,
    Subscription,
)
from billing.subscriptions.lifecycle import (
    plan_change_check,
    plan_change_lines,
    subscription_change_plan,
)
from billing.usage.metering import (
    meter_cache,
)
from billing.usage.period_fees import next_period_fixed_lines
from common.admin_forms import money_text
from common.customer_text import DEFAULT_LANGUAGE, day_time
from common.errors import BillingError, Conflict, InvalidRequest
from common.stored_words import said_in_other_languages
from common.task_sending import enqueue_on_commit
from invoices.models import CreditNote
from invoices.totals import invoice_totals
from plans.feature_grants import features_compared, granted
from plans.models import PlanVersion
from plans.overrides import subscription_spec
from plans.rating import LineInput
from plans.selectors import version_spec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationRow:
    """One selected subscription in a preview: what moving it bills, or why it
    cannot move (`skipped`)."""

    subscription: Subscription
    skipped: str = ""
    # Immediate: what the change bills and credits, rounded as the documents round
    # them, before tax: `credit` is the unused time given back (negative), by a
    # credit note against the invoice that charged it (`credited` of it) and, for
    # what no line of that invoice can take, on the change's invoice.
    usage: Decimal | None = None
    credit: Decimal | None = None
    charge: Decimal | None = None
    credited: Decimal = Decimal(0)
    # Period end: the next period's base fee and seats on the new version.
    next_fees: Decimal | None = None
    lines: tuple[LineInput, ...] = ()

    @property
    def drops_deal(self) -> bool:
        """The subscription has a deal (overrides) that the move drops."""
        return not self.skipped and bool(
            self.subscription.overrides or self.subscription.next_overrides
        )

    @property
    def total(self) -> Decimal | None:
        """What the move bills, net of the unused time it credits."""
        if self.skipped:
            return None
        if self.next_fees is not None:
            return self.next_fees
        return self.usage + self.credit + self.charge

    @property
    def invoiced(self) -> Decimal | None:
        """The change's invoice before tax: the net and what the credit note gives back."""
        total = self.total
        return None if total is None or self.next_fees is not None else total + self.credited


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

    def features_change(self, row: MigrationRow) -> dict[str, list[str]]:
        """The features the row's customer gains, loses and sees change by the move:
        from what its plan (with its deal) grants now to what the new version does
        (the move drops the deal). Empty lists for a row that does not move."""
        if row.skipped:
            return {"gained": [], "lost": [], "changed": []}
        before = granted(subscription_spec(row.subscription).features)
        return features_compared(before, granted(version_spec(version=self.version).features))

    @property
    def digest(self) -> str:
        """A fingerprint of every figure and reason shown (the deals dropped and the
        features changed included): a confirmation names the preview it saw, and one
        whose figures have changed since is shown again."""
        shown = {
            "version": self.version.pk,
            "effective": self.effective,
            "at": self.at.isoformat() if self.at else None,
            "rows": [
                [
                    row.subscription.pk,
                    row.subscription.version_id,
                    # The deal: what the move drops, and with the versions (their
                    # features frozen once published), the features gained and lost.
                    row.subscription.overrides,
                    row.subscription.next_overrides,
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
        return error.words
    if subscription.version_id == version.pk:
        return gettext("the subscription is on that version already")
    if effective == PlanMigration.PERIOD_END and subscription.scheduled_version_id == version.pk:
        return gettext("the subscription moves to that version at the end of its period already")
    if subscription.cancel_at_period_end:
        return gettext("the subscription ends with its current period")
    return ""


def _rounded(lines: list[LineInput], currency: str) -> Decimal:
    # As an invoice adds up its lines, before tax.
    return invoice_totals(lines, rates=[], currency=currency).total


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
        # As subscription_change_plan gives the credit (billing.invoicing.unused_time).
        unused = plan_unused_credit(subscription=subscription, credit=planned.credit, at=at)
        return MigrationRow(
            subscription,
            usage=_rounded(planned.so_far, currency),
            credit=_rounded(list(unused.left), currency) - unused.amount,
            charge=_rounded(planned.charge, currency),
            credited=unused.amount,
            lines=tuple(planned.lines),
        )
    fixed = next_period_fixed_lines(subscription=subscription, version=version)
    return MigrationRow(subscription, next_fees=_rounded(fixed, currency), lines=tuple(fixed))


class PreviewChanged(Conflict):
    """The figures moved since the preview that was confirmed (usage, seats,
    subscriptions, or another moment); `preview` is the new one."""

    def __init__(self, preview: MigrationPreview):
        super().__init__(
            "the figures have changed since the preview (usage, seats or subscriptions "
            "moved on, or another moment): preview again"
        )
        self.preview = preview


def plan_migration_confirm(
    *,
    token: uuid.UUID,
    digest: str,
    preview: Callable[[], MigrationPreview],
    created_by=None,
) -> tuple[PlanMigration, bool]:
    """Confirm the preview whose figures had `digest`: the API's and the admin's
    one confirmation. The same `token` again answers the migration it made
    (created False) without previewing again; otherwise `preview()` is made anew
    and, when its figures differ from those seen, PreviewChanged is raised with
    it, and nothing is recorded."""
    confirmed = PlanMigration.objects.filter(token=token).first()
    if confirmed is not None:
        return confirmed, False
    current = preview()
    if current.digest != digest:
        raise PreviewChanged(current)
    return plan_migration_create(token=token, preview=current, created_by=created_by)


def plan_migration_create(
    *, token: uuid.UUID, preview: MigrationPreview, created_by=None
) -> tuple[PlanMigration, bool]:
    """Record a confirmed preview as a migration (an item per subscription, with the
    amounts previewed; those that cannot move are skipped at once) and run it by
    a task once this commits. Idempotent on `token`: a confirmation sent twice
    returns the first migration (created False) and enqueues nothing."""
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
        items = []
        for row in preview.rows:
            message, words = _skipped_words(row, preview)
            items.append(
                PlanMigrationItem(
                    migration=migration,
                    subscription=row.subscription,
                    from_version_id=row.subscription.version_id,
                    status=PlanMigrationItem.SKIPPED if row.skipped else PlanMigrationItem.PENDING,
                    message=message,
                    message_words=words,
                    preview_usage=row.usage,
                    preview_credit=row.credit,
                    preview_charge=row.charge,
                    preview_next_fees=row.next_fees,
                    preview_total=row.total,
                )
            )
        PlanMigrationItem.objects.bulk_create(items)
        enqueue_on_commit("billing.tasks.run_plan_migration", migration.pk)
    return migration, True


def _skipped_words(row: MigrationRow, preview: MigrationPreview) -> tuple[str, dict[str, str]]:
    """A skipped row's reason in English (the API's; the preview said it in the
    admin user's language) and in the admin's other languages."""
    if not row.skipped:
        return "", {}
    say = functools.partial(
        plan_migration_refusal,
        subscription=row.subscription,
        version=preview.version,
        effective=preview.effective,
        at=preview.at,
    )
    with translation.override(DEFAULT_LANGUAGE):
        english = say()
    return english or row.skipped, said_in_other_languages(say)


def plan_migration_rerun(*, migration: PlanMigration) -> None:
    """Run a migration again once this commits: its pending and failed items are
    tried; done and skipped ones are left alone."""
    enqueue_on_commit("billing.tasks.run_plan_migration", migration.pk)


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
        migration = plan_migration_lock(migration_id)
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
        item = plan_migration_item_lock(item_id)
        if item.status not in (PlanMigrationItem.PENDING, PlanMigrationItem.FAILED):
            return
        first_try = item.status == PlanMigrationItem.PENDING
        subscription = subscription_lock(item.subscription_id)
        version = PlanVersion.objects.select_related("plan").get(pk=migration.to_version_id)
        item.invoice = None
        refusal = functools.partial(
            plan_migration_refusal,
            subscription=subscription,
            version=version,
            effective=migration.effective,
            at=migration.at,
        )
        item.message, item.message_words = refusal(), {}
        if item.message:
            item.status = PlanMigrationItem.SKIPPED
            item.message_words = said_in_other_languages(refusal)
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
                item.status, item.message = PlanMigrationItem.SKIPPED, error.words
            except Exception as error:
                # Rolled back to the savepoint; recorded here, tried again by the next run.
                logger.exception("migration %s: subscription %s", migration.pk, subscription.pk)
                item.status = PlanMigrationItem.FAILED
                item.message = f"{type(error).__name__}: {error}"[:500]
            else:
                item.status = PlanMigrationItem.DONE
                done = functools.partial(_done_message, subscription, item.invoice)
                item.message, item.message_words = done(), said_in_other_languages(done)
        item.save(update_fields=["status", "message", "message_words", "invoice"])
        if first_try:
            PlanMigration.objects.filter(pk=migration.pk).update(done_count=F("done_count") + 1)


def _done_message(subscription: Subscription, invoice) -> str:
    if invoice is None:
        return gettext("moves at {moment}").format(
            moment=day_time(subscription.current_period_end, UTC)
        )
    said = gettext("invoiced {amount}").format(amount=money_text(invoice.total, invoice.currency))
    # The unused time it credited (billing.invoicing.unused_time), by its credit note.
    change = subscription.changes.order_by("pk").last()
    note = (change.details or {}).get("credit_note") if change else None
    if note:
        credited = CreditNote.objects.get(pk=note)
        said += gettext(", credit note {number} of {amount}").format(
            number=credited.number, amount=money_text(credited.total, credited.currency)
        )
    return said
