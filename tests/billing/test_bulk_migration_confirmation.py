"""A bulk migration in the admin goes preview -> confirmation page -> migration:
the confirmation page says in words what will happen and to how many customers,
only its confirmed POST starts anything, and subscriptions that moved on between
the preview and the confirmation are previewed again, never migrated silently."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.admin.plan_migration_words import count_text
from billing.models import PlanMigration
from billing.subscriptions.lifecycle import subscription_cancel
from invoices.models import Invoice
from tests.billing.migration_support import (
    billed_net,
    billing_state,
    migration_catalog,
    three_subscribed,
)
from tests.billing.test_bulk_migration import (
    CONFIRM_PAGE,
    MIGRATE,
    PREVIEW_PAGE,
    confirm_data,
    confirmed_data,
    preview,
    review,
)

pytestmark = pytest.mark.django_db

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    return migration_catalog()


@pytest.fixture
def three(catalog):
    return three_subscribed()


def immediate_preview(client, subscriptions, catalog):
    return preview(client, subscriptions, catalog["pro"], "immediate", "2026-11-16 00:00:00")


def test_the_confirmation_page_says_what_happens_and_only_its_button_starts_it(
    admin_client, three, catalog, django_capture_on_commit_callbacks, settings
):
    # given: no grace; the preview of moving the three to pro on the 16th
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    response = immediate_preview(admin_client, three, catalog)
    before = billing_state()

    # when: ops continues from the preview (the clock after the 16th)
    with time_machine.travel(NOV_20, tick=False):
        page = review(admin_client, response)

    # then: the shared confirmation page, saying what happens to how many, in words
    assert page.status_code == 200
    assert page.templates[0].name == CONFIRM_PAGE
    confirmation = page.context["confirmation"]
    assert confirmation.title == "Migrate 3 subscriptions to Pro v1?"
    assert confirmation.consequences == [
        "3 customers move from Ai Assistant v1 to Pro v1 now, prorated from 16 Nov 2026, "
        "00:00 (UTC): each gets an invoice for its usage so far and the rest of this period, "
        "finalized at once (3 invoices, 54.00 USD in all before tax, net of the credit notes "
        "for the unused time).",
        "To move them back, run another migration.",
    ]
    html = page.content.decode()
    assert "This cannot be undone." in html
    assert 'value="Yes, migrate 3 subscriptions"' in html
    assert "3 customers move from" in html
    # and nothing has started
    assert not PlanMigration.objects.exists()
    assert billing_state() == before

    # when: the page's form is posted without its confirmation (a crafted POST)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        unconfirmed = admin_client.post(MIGRATE, dict(page.context["hidden_fields"]))
        refused = admin_client.post(
            MIGRATE, dict(page.context["hidden_fields"]) | {"confirmed": "no"}
        )

    # then: the confirmation page again, and nothing started
    assert unconfirmed.templates[0].name == refused.templates[0].name == CONFIRM_PAGE
    assert callbacks == []
    assert not PlanMigration.objects.exists()
    assert billing_state() == before

    # when: the button is pressed
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(MIGRATE, confirmed_data(page))

    # then: the migration ran, each invoice finalized with its usage and the new
    # fees, and with the credit note for the unused time its previewed total
    migration = PlanMigration.objects.get()
    assert done.status_code == 302
    assert done.url == f"/admin/billing/planmigration/{migration.pk}/change/"
    assert (migration.status, migration.total) == ("done", 3)
    invoices = Invoice.objects.filter(reason="plan_change").order_by("subscription_id")
    assert [(i.status, i.total) for i in invoices] == [
        ("finalized", D("27.50")),
        ("finalized", D("25.00")),
        ("finalized", D("34.83")),
    ]
    assert [billed_net(i) for i in invoices] == [D("17.50"), D("15.00"), D("21.50")]
    # and the migration's page shows them numbered
    shown = admin_client.get(done.url).content.decode()
    for invoice in invoices:
        assert f'<span class="invoice-number">{invoice.number}</span>' in shown
    # the previewed total, and the invoice's
    assert "17.50 USD" in shown
    assert "27.50 USD" in shown


def test_with_a_grace_the_confirmation_says_the_invoices_wait_as_drafts(
    admin_client, three, catalog, settings
):
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    page = review(admin_client, immediate_preview(admin_client, three, catalog))

    assert (
        page.context["confirmation"]
        .consequences[0]
        .endswith(
            "kept as a draft for 2 hours, then finalized (3 invoices, 54.00 USD in all before "
            "tax, net of the credit notes for the unused time)."
        )
    )


def test_at_the_end_of_the_period_the_confirmation_says_no_invoice_now(
    admin_client, three, catalog
):
    page = review(admin_client, preview(admin_client, three, catalog["pro"], "period_end"))

    assert page.context["confirmation"].consequences == [
        "3 customers move from Ai Assistant v1 to Pro v1 at the end of their current period "
        "(no invoice now); the next period's fixed fees on Pro v1 come to 149.97 USD "
        "in all.",
        "To move them back, run another migration.",
    ]


def test_a_customer_who_cancels_before_the_confirmation_page_is_previewed_again(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: the preview of the three; then beta cancels
    acme, beta, gamma = three
    response = immediate_preview(admin_client, three, catalog)
    subscription_cancel(subscription=beta, effective="period_end", at=NOV_16)

    # when: ops continues from the old preview
    shown_again = review(admin_client, response)

    # then: the preview again, with beta skipped and a warning; nothing started
    assert shown_again.templates[0].name == PREVIEW_PAGE
    html = shown_again.content.decode()
    assert "The figures have changed since the preview" in html
    assert "2 subscriptions will move" in html
    assert [row["subscription"].pk for row in shown_again.context["rows"]] == [acme.pk, gamma.pk]
    assert not PlanMigration.objects.exists()

    # when: the new preview is continued and confirmed
    page = review(admin_client, shown_again)
    assert page.context["confirmation"].consequences[0].startswith("2 customers move from")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(MIGRATE, confirmed_data(page))

    # then: the two moved; beta stayed
    migration = PlanMigration.objects.get()
    assert {i.subscription_id: i.status for i in migration.items.all()} == {
        acme.pk: "done",
        beta.pk: "skipped",
        gamma.pk: "done",
    }


def test_a_customer_who_cancels_on_the_confirmation_page_stops_the_migration(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: the confirmation page of the three; then gamma cancels
    gamma = three[2]
    page = review(admin_client, immediate_preview(admin_client, three, catalog))
    assert page.templates[0].name == CONFIRM_PAGE
    subscription_cancel(subscription=gamma, effective="period_end", at=NOV_16)
    before = billing_state()

    # when: ops confirms the page
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        shown_again = admin_client.post(MIGRATE, confirmed_data(page))

    # then: no migration of a set other than the one confirmed: the preview again
    assert shown_again.templates[0].name == PREVIEW_PAGE
    assert "nothing was migrated" in shown_again.content.decode()
    assert callbacks == []
    assert not PlanMigration.objects.exists()
    assert billing_state() == before


def test_the_preview_shows_amounts_and_versions_as_people_read_them(admin_client, three, catalog):
    response = immediate_preview(admin_client, three, catalog)

    html = response.content.decode()
    assert "To <strong>Pro v1</strong>" in html
    assert '<td class="amount total">17.50 USD</td>' in html
    assert '<td class="amount total">54.00 USD</td>' in html
    assert "finalized at once" in html
    assert "pro v1" not in html and "(published)" not in html
    assert 'name="review"' in html
    assert confirm_data(response)["review"] == "Continue"


def test_counts_are_grouped_by_thousands():
    assert count_text(1204, "customer", "customers") == "1,204 customers"
    assert count_text(1, "customer", "customers") == "1 customer"
