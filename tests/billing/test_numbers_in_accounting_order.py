"""Invoice numbers follow accounting order: a document that credits another is
numbered after it. A plan change or an immediate cancel credits the unused part of
fixed fees that the subscription's start invoice (a draft until the beat finalizes
it) charged; finalized at once (no grace), the change's invoice used to take the
next number while the start invoice, still a draft, took a later one (issue 55).
Such an invoice now has its subscription's earlier drafts numbered before it, and
the numbers stay gap-free."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import drafts_finalize
from billing.subscriptions import bulk_migration
from billing.subscriptions.lifecycle import subscription_cancel, subscription_change_plan
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from tests.billing.migration_support import migration_catalog, three_subscribed

pytestmark = pytest.mark.django_db(transaction=True)

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    """ai_assistant (19.99 a month) and pro (49.99); acme and beta from November 1st,
    gamma from the 6th, each with its start invoice still a draft."""
    versions = migration_catalog()
    three_subscribed()
    assert set(Invoice.objects.values_list("reason", "status")) == {("start", "draft")}
    return versions


def numbered(subscription) -> list[tuple[str, str, str, D]]:
    """The subscription's invoices in number order: number, reason, status, total."""
    return list(
        Invoice.objects.filter(subscription=subscription)
        .order_by("number", "pk")
        .values_list("number", "reason", "status", "total")
    )


def all_numbers() -> list[str]:
    return sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))


def subscription_of(name: str):
    from billing.models import Subscription

    return Subscription.objects.get(customer__external_id=name)


def test_a_migration_numbers_the_start_invoice_before_the_credit_of_its_fee(catalog, settings):
    # given: no grace, so the migration's invoices are issued at once
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    acme = subscription_of("acme")

    # when: acme alone is migrated to pro now, on the 16th, prorated
    with time_machine.travel(NOV_16, tick=False):
        preview = bulk_migration.plan_migration_preview(
            subscriptions=[acme], version=catalog["pro"], effective="immediate", at=NOV_16
        )
        bulk_migration.plan_migration_create(token=uuid.uuid4(), preview=preview)

    # then: the start invoice (19.99 for November) is numbered first, then the
    # change's (2.50 of usage, 25.00 of pro), the two numbers the first of the year,
    # gap-free; the credit note of 10.00 for the unused half of its fee is against
    # the start invoice, issued once it was numbered (billing.invoicing.unused_time)
    assert numbered(acme) == [
        ("INV-2026-000001", "start", "finalized", D("19.99")),
        ("INV-2026-000002", "plan_change", "finalized", D("27.50")),
    ]
    start = Invoice.objects.get(subscription=acme, reason="start")
    note = CreditNote.objects.get(invoice__subscription=acme)
    assert (note.invoice_id, note.total) == (start.pk, D("10.00"))
    assert note.number.startswith("CN-2026-")
    assert note.created_at >= start.finalized_at
    # and the other subscribers' start invoices are left to the beat, numbered after
    assert Invoice.objects.filter(status="draft").count() == 2
    with time_machine.travel(NOV_16, tick=False):
        assert drafts_finalize(as_of=NOV_16) == 2
    assert all_numbers() == [f"INV-2026-00000{n}" for n in range(1, 5)]


def test_a_plan_change_now_numbers_the_start_invoice_first(catalog, settings):
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    acme = subscription_of("acme")

    with time_machine.travel(NOV_16, tick=False):
        _, invoice = subscription_change_plan(
            subscription=acme, version=catalog["pro"], effective="immediate", at=NOV_16
        )

    assert [(n, reason) for n, reason, *_ in numbered(acme)] == [
        ("INV-2026-000001", "start"),
        ("INV-2026-000002", "plan_change"),
    ]
    invoice.refresh_from_db()
    start = Invoice.objects.get(subscription=acme, reason="start")
    assert start.finalized_at == invoice.finalized_at == NOV_16


def test_a_cancel_now_numbers_the_start_invoice_first(catalog, settings):
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    gamma = subscription_of("gamma")

    with time_machine.travel(NOV_16, tick=False):
        subscription_cancel(subscription=gamma, effective="immediate", at=NOV_16)

    assert [(n, reason, status) for n, reason, status, _ in numbered(gamma)] == [
        ("INV-2026-000001", "start", "finalized"),
        ("INV-2026-000002", "cancel", "finalized"),
    ]
    assert all_numbers() == ["INV-2026-000001", "INV-2026-000002"]


def test_with_a_grace_the_beat_numbers_them_in_the_order_they_were_written(catalog, settings):
    # given: two hours of grace; beta changes plan on the 16th, both invoices drafts
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    beta = subscription_of("beta")
    with time_machine.travel(NOV_16, tick=False):
        subscription_change_plan(
            subscription=beta, version=catalog["pro"], effective="immediate", at=NOV_16
        )

    # when: the beat finalizes every draft past its grace
    with time_machine.travel(datetime(2026, 11, 16, 2, tzinfo=UTC), tick=False):
        drafts_finalize(as_of=datetime(2026, 11, 16, 2, tzinfo=UTC))

    # then: beta's start invoice before its change's; all four gap-free
    reasons = [reason for _, reason, *_ in numbered(beta)]
    assert reasons == ["start", "plan_change"]
    assert all_numbers() == [f"INV-2026-00000{n}" for n in range(1, 5)]


def test_finalizing_a_change_draft_by_hand_numbers_the_start_draft_before_it(catalog, settings):
    # given: with a grace, acme's change invoice is a draft beside its start draft
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    acme = subscription_of("acme")
    with time_machine.travel(NOV_16, tick=False):
        _, change = subscription_change_plan(
            subscription=acme, version=catalog["pro"], effective="immediate", at=NOV_16
        )

    # when: an operator finalizes the change's draft alone (the admin's Finalize)
    invoice_finalize(invoice=change, now=NOV_16)

    # then: the start draft it credits is numbered first, in the same transaction;
    # beta's and gamma's drafts are left alone
    assert [(n, reason) for n, reason, *_ in numbered(acme)] == [
        ("INV-2026-000001", "start"),
        ("INV-2026-000002", "plan_change"),
    ]
    assert Invoice.objects.filter(status="draft").count() == 2


@pytest.mark.postgres
def test_a_change_finalized_by_hand_while_the_beat_runs_keeps_the_order(catalog, settings):
    """For real on PostgreSQL: an operator finalizes each change's draft while the
    beat finalizes every draft due, at the same moment. Neither waits forever,
    each invoice is numbered once, gap-free, each start before its change."""
    from common.errors import Conflict
    from invoices.services import invoices_finalize_due
    from tests.threads import run_at_once

    # given: with a grace, the three subscribers change plan on the 16th: six drafts
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    subscriptions = [subscription_of(name) for name in ("acme", "beta", "gamma")]
    with time_machine.travel(NOV_16, tick=False):
        changes = [
            subscription_change_plan(
                subscription=s, version=catalog["pro"], effective="immediate", at=NOV_16
            )[1]
            for s in subscriptions
        ]
    later = datetime(2026, 11, 16, 2, tzinfo=UTC)

    def work(index: int) -> int:
        if index == 1:
            return invoices_finalize_due(cutoff=later, now=later)
        done = 0
        for change in changes:
            try:
                invoice_finalize(invoice=change, now=later)
                done += 1
            except Conflict:
                pass  # the beat numbered it first
        return done

    # when
    run_at_once(work, clients=2)

    # then
    assert not Invoice.objects.filter(status="draft").exists()
    assert all_numbers() == [f"INV-2026-00000{n}" for n in range(1, 7)]
    for subscription in subscriptions:
        assert [reason for _, reason, *_ in numbered(subscription)] == ["start", "plan_change"]
