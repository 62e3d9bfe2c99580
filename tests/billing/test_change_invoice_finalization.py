"""The invoice a plan change writes (through the API, the admin, or a bulk
migration) is finalized at once when BILLING_INVOICE_GRACE_HOURS is 0, after the
change commits, by the service the beat's finalization uses (numbered, its PDF
rendered): the invoice a preview showed is the one issued. With a grace it stays
a draft for the beat, as before."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import drafts_finalize
from billing.models import PlanMigration, Subscription
from billing.subscriptions import bulk_migration
from invoices.models import Invoice
from tests.billing.migration_support import billed_net, migration_catalog, three_subscribed
from tests.billing.test_admin import history_inline

pytestmark = pytest.mark.django_db(transaction=True)

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_16_3AM = datetime(2026, 11, 16, 3, tzinfo=UTC)
CHANGE = {"plan": "pro", "version": 1, "effective": "immediate"}


@pytest.fixture
def acme_on_ai_assistant(db):
    """S1's ai_assistant (19.99, 200 prompts included, then 0.05) and pro (49.99);
    acme, beta and gamma subscribed (acme used 250 prompts by the 10th)."""
    catalog = migration_catalog()
    acme, *_ = three_subscribed()
    return acme, catalog


def preview_total(api, subscription: Subscription) -> str:
    """The previewed total of moving the subscription to pro now (at November 16th)."""
    with time_machine.travel(NOV_16, tick=False):
        response = api.post(
            "/api/v1/plan-migrations/preview",
            {"subscriptions": [subscription.pk], **CHANGE, "at": NOV_16.isoformat()},
            format="json",
        )
    assert response.status_code == 200, response.content
    (row,) = response.json()["rows"]
    return row["total"]


def change_plan(api, subscription: Subscription):
    with time_machine.travel(NOV_16, tick=False):
        return api.post(
            f"/api/v1/subscriptions/{subscription.pk}/change-plan",
            {**CHANGE, "at": NOV_16.isoformat()},
            format="json",
        )


def test_with_no_grace_the_change_plan_answer_shows_the_invoice_finalized(
    api, acme_on_ai_assistant, settings
):
    # given: no grace; acme's move to pro on the 16th previewed: 2.50 of usage over
    # the 200 included, -10.00 for half of 19.99 unused, 25.00 for half of 49.99
    # (the credit a credit note against the start invoice: the invoice is 27.50)
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    acme, _ = acme_on_ai_assistant
    assert preview_total(api, acme) == "17.50"

    # when
    response = change_plan(api, acme)

    # then: the answer's invoice is finalized, numbered, with the previewed total
    # once its credit note is taken off
    assert response.status_code == 200, response.content
    answered = response.json()["invoice"]
    assert (answered["status"], answered["total"]) == ("finalized", "27.50")
    assert response.json()["credit_note"]["total"] == "10.00"
    assert answered["number"].startswith("INV-2026-")
    # and so is the invoice read right after, its PDF rendered as the beat's would be
    read = api.get(f"/api/v1/invoices/{answered['id']}").json()
    assert (read["status"], read["total"], read["number"]) == (
        "finalized",
        "27.50",
        answered["number"],
    )
    invoice = Invoice.objects.get(pk=answered["id"])
    assert (invoice.total, invoice.finalized_at) == (D("27.50"), NOV_16)
    assert billed_net(invoice) == D("17.50")
    assert invoice.pdf_file.name != ""
    # and the beat, run next, finds nothing more to finalize of it
    # (acme's start invoice was numbered before it: the beat finalizes the two others)
    assert drafts_finalize(as_of=NOV_16_3AM) == 2
    invoice.refresh_from_db()
    assert (invoice.status, invoice.finalized_at) == ("finalized", NOV_16)


def test_with_a_grace_the_change_plan_invoice_stays_a_draft_for_the_beat(
    api, acme_on_ai_assistant, settings
):
    # given: two hours of grace
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    acme, _ = acme_on_ai_assistant

    # when
    response = change_plan(api, acme)

    # then: a draft, as before, finalized by the beat once the grace is over
    answered = response.json()["invoice"]
    assert (answered["status"], answered["total"], answered["number"]) == ("draft", "27.50", None)
    invoice = Invoice.objects.get(pk=answered["id"])
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["status"] == "draft"
    drafts_finalize(as_of=datetime(2026, 11, 16, 1, 59, tzinfo=UTC))
    invoice.refresh_from_db()
    assert invoice.status == "draft"
    drafts_finalize(as_of=datetime(2026, 11, 16, 2, tzinfo=UTC))
    invoice.refresh_from_db()
    assert invoice.status == "finalized"


def test_a_change_dated_later_is_finalized_by_the_beat_at_its_moment(
    api, acme_on_ai_assistant, settings
):
    # given: no grace; a change at 03:00 asked for at midnight
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    acme, _ = acme_on_ai_assistant

    with time_machine.travel(NOV_16, tick=False):
        response = api.post(
            f"/api/v1/subscriptions/{acme.pk}/change-plan",
            {**CHANGE, "at": NOV_16_3AM.isoformat()},
            format="json",
        )

    # then: a draft dated 03:00, never numbered before it is dated
    answered = response.json()["invoice"]
    assert (answered["status"], answered["number"]) == ("draft", None)
    drafts_finalize(as_of=NOV_16_3AM)
    assert Invoice.objects.get(pk=answered["id"]).status == "finalized"


def admin_change_plan(admin_client, subscription: Subscription, version) -> None:
    with time_machine.travel(NOV_16, tick=False):
        response = admin_client.post(
            f"/admin/billing/subscription/{subscription.pk}/change/",
            {
                "new_version": version.pk,
                "effective": "immediate",
                "new_seats": "",
                "at": "2026-11-16 00:00:00",
                **history_inline(subscription),
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]


@pytest.mark.parametrize(("grace", "status"), [(0, "finalized"), (2, "draft")])
def test_the_admin_plan_change_invoice_is_finalized_at_once_without_grace(
    admin_client, acme_on_ai_assistant, settings, grace, status
):
    settings.BILLING_INVOICE_GRACE_HOURS = grace
    acme, catalog = acme_on_ai_assistant

    admin_change_plan(admin_client, acme, catalog["pro"])

    invoice = Invoice.objects.get(subscription=acme, reason="plan_change")
    assert (invoice.status, invoice.total) == (status, D("27.50"))
    assert billed_net(invoice) == D("17.50")
    assert (invoice.number is not None) is (status == "finalized")


@pytest.mark.parametrize(("grace", "status"), [(0, "finalized"), (2, "draft")])
def test_each_invoice_of_a_migration_is_finalized_at_once_without_grace(
    acme_on_ai_assistant, settings, grace, status
):
    # given: the three subscribers (acme 250 prompts by the 10th, gamma 230, from the 6th)
    settings.BILLING_INVOICE_GRACE_HOURS = grace
    _, catalog = acme_on_ai_assistant
    subscriptions = list(Subscription.objects.order_by("id"))

    # when: a migration of the three to pro on the 16th is confirmed and run
    with time_machine.travel(NOV_16, tick=False):
        preview = bulk_migration.plan_migration_preview(
            subscriptions=subscriptions, version=catalog["pro"], effective="immediate", at=NOV_16
        )
        migration, _ = bulk_migration.plan_migration_create(token=uuid.uuid4(), preview=preview)

    # then: every item done, each invoice finalized or a draft, with its previewed
    # total once its credit note for the unused time is taken off
    migration.refresh_from_db()
    assert migration.status == PlanMigration.DONE
    items = list(migration.items.select_related("invoice").order_by("id"))
    assert [(i.status, i.invoice.status, i.invoice.total) for i in items] == [
        ("done", status, D("27.50")),
        ("done", status, D("25.00")),
        ("done", status, D("34.83")),
    ]
    assert [billed_net(i.invoice) for i in items] == [i.preview_total for i in items]


@pytest.mark.parametrize(("grace", "status"), [(0, "finalized"), (2, "draft")])
def test_an_immediate_cancel_invoice_is_finalized_at_once_without_grace(
    api, acme_on_ai_assistant, settings, grace, status
):
    # given
    settings.BILLING_INVOICE_GRACE_HOURS = grace
    acme, _ = acme_on_ai_assistant

    # when: acme cancels now, on the 16th
    with time_machine.travel(NOV_16, tick=False):
        response = api.post(
            f"/api/v1/subscriptions/{acme.pk}/cancel",
            {"effective": "immediate", "at": NOV_16.isoformat()},
            format="json",
        )

    # then: its last invoice is issued at once only without a grace
    assert response.status_code == 200, response.content
    invoice = Invoice.objects.get(subscription=acme, reason=Invoice.CANCEL)
    assert invoice.status == status
    assert response.json()["invoice"]["status"] == status
