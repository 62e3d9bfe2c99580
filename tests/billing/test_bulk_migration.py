"""Bulk migration of subscriptions between versions in the admin: the action, the
form, a preview whose amounts are those the change invoices (exact), the
migration run by a task, skipped subscriptions, safe reruns and permissions."""

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection

from billing.invoicing.close import periods_close
from billing.models import (
    PlanMigration,
    PlanMigrationItem,
    SubscriptionChange,
)
from billing.subscriptions import bulk_migration
from billing.subscriptions.lifecycle import subscription_cancel
from billing.tasks import run_plan_migration
from invoices.models import CreditNote, Invoice
from plans.models import Plan, PlanVersion
from tests.billing.migration_support import (
    billed_net,
    billing_state,
    line_sums,
    migration_catalog,
    prompts,
    prompts_over,
    subscriber,
    three_subscribed,
)
from tests.factories import PlanVersionFactory, published_version

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_6 = datetime(2026, 11, 6, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_6 = datetime(2026, 12, 6, tzinfo=UTC)
CHANGELIST = "/admin/billing/subscription/"
MIGRATE = "/admin/billing/subscription/migrate/"
PREVIEW_PAGE = "admin/billing/planmigration/migrate_preview.html"
CONFIRM_PAGE = "admin/confirm_action.html"


@pytest.fixture
def catalog(db):
    return migration_catalog()


@pytest.fixture
def three(catalog):
    return three_subscribed()


def open_form(client, subscriptions) -> object:
    """Select the subscriptions in the changelist and run the action."""
    return client.post(
        CHANGELIST,
        {"action": "migrate_to_version", "_selected_action": [s.pk for s in subscriptions]},
    )


def preview(client, subscriptions, version, effective, at: str = "") -> object:
    response = open_form(client, subscriptions)
    assert response.status_code == 200
    form = response.context["form"]
    response = client.post(
        MIGRATE,
        {
            "subscriptions": form.initial["subscriptions"],
            "to_version": version.pk,
            "effective": effective,
            "at": at,
            "preview": "Preview",
        },
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response.templates[0].name == PREVIEW_PAGE
    return response


def confirm_data(preview_response) -> dict:
    """The preview page's hidden form, as its Continue button posts it."""
    return {field.name: field.value() for field in preview_response.context["confirm"]} | {
        "review": "Continue"
    }


def review(client, preview_response) -> object:
    """Continue from the preview: the confirmation page (or the preview again)."""
    return client.post(MIGRATE, confirm_data(preview_response))


def confirmed_data(confirmation_page) -> dict:
    """What the confirmation page's button posts."""
    return dict(confirmation_page.context["hidden_fields"]) | {"confirmed": "yes"}


def confirm(client, preview_response, capture) -> object:
    """Continue from the preview and confirm on the confirmation page; the
    preview shown again (figures moved on) or a redirect is answered as is."""
    page = review(client, preview_response)
    if page.status_code != 200 or page.templates[0].name != CONFIRM_PAGE:
        return page
    with capture(execute=True):
        return client.post(MIGRATE, confirmed_data(page))


def usd(amount: str) -> str:
    """An amount as the admin shows it: '1,234.50 USD', a no-break space before the currency."""
    return f"{amount} USD"


def shown_rows(response) -> dict[int, dict[str, str]]:
    return {
        row["subscription"].pk: {
            k: v
            for k, v in row.items()
            if k not in ("subscription", "from_version", "period_end", "drops_deal", "features")
        }
        for row in response.context["rows"]
    }


def shown_skipped(response) -> dict[int, str]:
    return {row["subscription"].pk: row["reason"] for row in response.context["skipped"]}


# immediate


def test_an_immediate_migration_invoices_exactly_the_preview(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    acme, beta, gamma = three
    pro = catalog["pro"]

    # when: ops previews moving the three to pro now, at November 16th 00:00 UTC
    response = preview(admin_client, three, pro, "immediate", "2026-11-16 00:00:00")

    # then: per subscription the usage so far at ai_assistant's prices, the unused part of
    # 19.99 credited and the rest of the period at 49.99 charged, rounded as invoiced:
    # acme and beta have 15 of 30 days left (19.99 x 1/2 = 9.995 -> 10.00, 49.99 x 1/2 ->
    # 25.00), gamma (Nov 6 to Dec 6) 20 of 30 (13.3266.. -> 13.33, 33.3266.. -> 33.33)
    assert shown_rows(response) == {
        acme.pk: {
            "usage": usd("2.50"),
            "credit": usd("-10.00"),
            "charge": usd("25.00"),
            "total": usd("17.50"),
        },
        beta.pk: {
            "usage": usd("0.00"),
            "credit": usd("-10.00"),
            "charge": usd("25.00"),
            "total": usd("15.00"),
        },
        gamma.pk: {
            "usage": usd("1.50"),
            "credit": usd("-13.33"),
            "charge": usd("33.33"),
            "total": usd("21.50"),
        },
    }
    assert response.context["sums"] == {
        "usage": usd("4.00"),
        "credit": usd("-33.33"),
        "charge": usd("83.33"),
        "total": usd("54.00"),
    }
    assert shown_skipped(response) == {}
    page = response.content.decode()
    assert f'<td class="amount credit">{usd("-13.33")}</td>' in page
    assert "16 Nov 2026, 00:00 (UTC)" in page
    # and nothing changed yet
    assert not PlanMigration.objects.exists()
    assert Invoice.objects.filter(reason="plan_change").count() == 0

    # when: confirmed (the task runs eagerly once the confirmation commits)
    done = confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: the migration's page, every item done with its invoice
    migration = PlanMigration.objects.get()
    assert done.status_code == 302
    assert done.url == f"/admin/billing/planmigration/{migration.pk}/change/"
    assert (migration.status, migration.total, migration.done_count) == ("done", 3, 3)
    assert (migration.effective, migration.at, migration.to_version) == ("immediate", NOV_16, pro)
    assert migration.created_by.username == "admin"
    assert migration.finished_at is not None
    items = {item.subscription_id: item for item in migration.items.select_related("invoice")}
    assert {pk: item.status for pk, item in items.items()} == {
        acme.pk: "done",
        beta.pk: "done",
        gamma.pk: "done",
    }
    # and each invoice, with its credit note for the unused time against the start
    # invoice (billing.invoicing.unused_time), is its preview, to the cent
    expected = {
        acme.pk: {
            "usage": D("2.50"),
            "credit": D("-10.00"),
            "charge": D("25.00"),
            "total": D("17.50"),
        },
        beta.pk: {
            "usage": D("0.00"),
            "credit": D("-10.00"),
            "charge": D("25.00"),
            "total": D("15.00"),
        },
        gamma.pk: {
            "usage": D("1.50"),
            "credit": D("-13.33"),
            "charge": D("33.33"),
            "total": D("21.50"),
        },
    }
    for pk, item in items.items():
        previewed = {
            "usage": item.preview_usage,
            "credit": item.preview_credit,
            "charge": item.preview_charge,
            "total": item.preview_total,
        }
        assert previewed == expected[pk]
        assert (item.invoice.reason, item.invoice.subscription_id) == ("plan_change", pk)
        assert line_sums(item.invoice) == expected[pk]
        invoiced = expected[pk]["usage"] + expected[pk]["charge"]
        note = CreditNote.objects.get(invoice__subscription_id=pk)
        assert -note.total == expected[pk]["credit"]
        assert (
            item.message
            == f"invoiced {invoiced} USD, credit note {note.number} of {note.total:.2f} USD"
        )
    assert sum(billed_net(item.invoice) for item in items.values()) == D("54.00")
    assert [(line.kind, line.amount) for line in items[acme.pk].invoice.lines.all()] == [
        ("overage", D("2.50")),
        ("proration_charge", D("25.00")),
    ]
    # and the subscriptions are on pro from the 16th, with a history row each
    for subscription in three:
        subscription.refresh_from_db()
        assert (subscription.version, subscription.usage_from) == (pro, NOV_16)
    assert (
        SubscriptionChange.objects.filter(
            kind="plan_change", how="immediate", effective_at=NOV_16
        ).count()
        == 3
    )

    # and the migration's page shows it finished, not refreshing
    page = admin_client.get(done.url)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<progress id="migration-progress-bar" max="3" value="3">100%</progress>' in html
    assert 'http-equiv="refresh"' not in html
    assert html.count('<td class="status">Done</td>') == 3


def test_the_close_after_an_immediate_migration_bills_the_new_version(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    acme, *_ = three
    confirm(
        admin_client,
        preview(admin_client, three, catalog["pro"], "immediate", "2026-11-16 00:00:00"),
        django_capture_on_commit_callbacks,
    )
    prompts("acme", 300, day=datetime(2026, 11, 20, tzinfo=UTC))

    periods_close(as_of=DEC_1)

    # then: 300 prompts after the change are within pro's 1,000; December at 49.99
    closing = Invoice.objects.get(subscription=acme, reason="period")
    assert [(line.kind, line.amount) for line in closing.lines.all()] == [("base_fee", D("49.99"))]


# at period end


def test_a_migration_at_period_end_bills_the_previewed_fee_at_the_close(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: S11: a fourth subscriber on version 1, then version 2 at 24.99 published
    acme, beta, gamma = three
    delta = subscriber("delta")
    v2 = PlanVersionFactory(
        plan=Plan.objects.get(code="ai_assistant"),
        base_fee=D("24.99"),
        charges=prompts_over(200, "0.05"),
    )
    before = billing_state()

    # when: the three are previewed moving to version 2 at the end of their periods
    response = preview(admin_client, three, v2, "period_end")

    # then: the next period's base fee on version 2, and nothing invoiced now
    assert shown_rows(response) == {
        acme.pk: {"next_fees": usd("24.99"), "total": usd("24.99")},
        beta.pk: {"next_fees": usd("24.99"), "total": usd("24.99")},
        gamma.pk: {"next_fees": usd("24.99"), "total": usd("24.99")},
    }
    assert response.context["sums"]["next_fees"] == usd("74.97")
    html = response.content.decode()
    assert "6 Dec 2026, 00:00 (UTC)" in html and "1 Dec 2026, 00:00 (UTC)" in html

    # when: confirmed
    confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: scheduled, nothing invoiced
    migration = PlanMigration.objects.get()
    assert (migration.status, migration.done_count, migration.at) == ("done", 3, None)
    items = {item.subscription_id: item for item in migration.items.all()}
    assert {pk: (i.status, i.invoice_id, i.message) for pk, i in items.items()} == {
        acme.pk: ("done", None, "moves at 1 Dec 2026, 00:00 UTC"),
        beta.pk: ("done", None, "moves at 1 Dec 2026, 00:00 UTC"),
        gamma.pk: ("done", None, "moves at 6 Dec 2026, 00:00 UTC"),
    }
    after = billing_state()
    assert after["invoices"] == before["invoices"]
    assert after["rows"] == before["rows"] | {
        "SubscriptionChange": before["rows"]["SubscriptionChange"] + 3
    }

    # when: the periods close
    periods_close(as_of=DEC_6)

    # then: the new base fee on each closing invoice is the previewed one; acme's
    # November usage still at version 1's prices; delta stays on 19.99
    for subscription in three:
        closing = Invoice.objects.get(subscription=subscription, reason="period")
        fixed = closing.lines.get(kind="base_fee")
        assert fixed.amount == items[subscription.pk].preview_next_fees == D("24.99")
        subscription.refresh_from_db()
        assert subscription.version == v2
    acme_closing = Invoice.objects.get(subscription=acme, reason="period")
    assert [(line.kind, line.amount) for line in acme_closing.lines.all()] == [
        ("overage", D("2.50")),
        ("base_fee", D("24.99")),
    ]
    delta_closing = Invoice.objects.get(subscription=delta, reason="period")
    assert delta_closing.lines.get(kind="base_fee").amount == D("19.99")


def test_the_next_fees_at_period_end_include_the_seats(
    admin_client, catalog, django_capture_on_commit_callbacks
):
    # given: 3 seats at 10.00; version 2 has a base fee of 5.00 and seats at 12.00
    team = published_version("team", seat_price=D("10.00"))
    subscription = subscriber("acme", "team", seats=3)
    team_v2 = PlanVersionFactory(plan=team.plan, base_fee=D("5.00"), seat_price=D("12.00"))

    response = preview(admin_client, [subscription], team_v2, "period_end")
    confirm(admin_client, response, django_capture_on_commit_callbacks)
    periods_close(as_of=DEC_1)

    # then: 5.00 + 3 x 12.00 previewed, and billed by the close
    assert shown_rows(response)[subscription.pk]["next_fees"] == usd("41.00")
    closing = Invoice.objects.get(reason="period")
    assert [(line.kind, line.amount) for line in closing.lines.all()] == [
        ("base_fee", D("5.00")),
        ("seats", D("36.00")),
    ]
    assert closing.total == PlanMigrationItem.objects.get().preview_next_fees == D("41.00")


# skipped


def test_subscriptions_that_cannot_move_are_listed_as_skipped_with_the_reason(
    admin_client, catalog, django_capture_on_commit_callbacks
):
    # given: one movable; one on pro already; one canceled; one paying in EUR; one
    # that ends with its period
    movable = subscriber("acme")
    on_pro = subscriber("beta", "pro")
    canceled = subscriber("gamma")
    subscription_cancel(subscription=canceled, effective="immediate", at=NOV_10)
    in_euros = subscriber("euro_customer", "euro", currency="EUR")
    leaving = subscriber("delta")
    subscription_cancel(subscription=leaving, effective="period_end", at=NOV_10)
    selected = [movable, on_pro, canceled, in_euros, leaving]

    # when
    response = preview(admin_client, selected, catalog["pro"], "immediate", "2026-11-16 00:00:00")

    # then
    assert list(shown_rows(response)) == [movable.pk]
    assert response.context["sums"]["total"] == usd("15.00")
    assert shown_skipped(response) == {
        on_pro.pk: "The subscription is on that version already",
        # customers and versions by their names, and what to do (not codes nor ids)
        canceled.pk: "The subscription of Gamma is canceled: it takes no plan change",
        in_euros.pk: "Pro v1 bills in USD and Euro_Customer pays in EUR: choose a version in EUR",
        leaving.pk: "The subscription ends with its current period",
    }
    assert "Euro_Customer pays in EUR" in response.content.decode()

    # when: confirmed
    before = billing_state()
    confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: the skipped are recorded as skipped, untouched; the movable one moved
    migration = PlanMigration.objects.get()
    assert (migration.status, migration.total, migration.done_count) == ("done", 5, 5)
    assert {i.subscription_id: (i.status, i.invoice_id is None) for i in migration.items.all()} == {
        movable.pk: ("done", False),
        on_pro.pk: ("skipped", True),
        canceled.pk: ("skipped", True),
        in_euros.pk: ("skipped", True),
        leaving.pk: ("skipped", True),
    }
    after = billing_state()
    assert after["subscriptions"][1:] == before["subscriptions"][1:]
    assert after["rows"]["Invoice"] == before["rows"]["Invoice"] + 1


def test_a_moment_outside_a_period_skips_that_subscription(admin_client, three, catalog):
    acme, beta, gamma = three

    # November 3rd is before gamma's period (from November 6th)
    response = preview(admin_client, three, catalog["pro"], "immediate", "2026-11-03 00:00:00")

    assert list(shown_rows(response)) == [acme.pk, beta.pk]
    assert shown_skipped(response) == {
        gamma.pk: "Pick a moment in the current period, from 6 Nov 2026, 00:00 UTC to before "
        "6 Dec 2026, 00:00 UTC"
    }


def test_a_draft_target_is_not_offered(admin_client, three, catalog):
    draft = PlanVersionFactory(
        plan=catalog["pro"].plan, base_fee=D("60.00"), status=PlanVersion.DRAFT
    )

    response = open_form(admin_client, three)
    offered = list(response.context["form"].fields["to_version"].queryset)
    refused = admin_client.post(
        MIGRATE,
        {
            "subscriptions": ",".join(str(s.pk) for s in three),
            "to_version": draft.pk,
            "effective": "immediate",
            "at": "2026-11-16 00:00:00",
        },
    )

    assert draft not in offered and catalog["pro"] in offered
    assert refused.status_code == 200
    assert "to_version" in refused.context["form"].errors
    assert not PlanMigration.objects.exists()


# safe to run again


def test_running_or_sending_a_migration_again_changes_nothing(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: the three moved to pro on the 16th
    pro = catalog["pro"]
    response = preview(admin_client, three, pro, "immediate", "2026-11-16 00:00:00")
    confirm(admin_client, response, django_capture_on_commit_callbacks)
    migration = PlanMigration.objects.get()
    finished_at = migration.finished_at
    before = billing_state()
    assert before["rows"]["Invoice"] == 6  # 3 start invoices, 3 plan changes

    # when: the task runs again (a broker delivering twice)
    assert run_plan_migration.delay(migration.pk).get() == "done"
    # and the same preview is confirmed again (a double click, the back button)
    again = confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: the same migration, and nothing changed
    assert again.url == f"/admin/billing/planmigration/{migration.pk}/change/"
    assert PlanMigration.objects.count() == 1
    assert billing_state() == before
    migration.refresh_from_db()
    assert (migration.status, migration.done_count, migration.finished_at) == (
        "done",
        3,
        finished_at,
    )

    # when: the same move is previewed and confirmed anew
    response = preview(admin_client, three, pro, "immediate", "2026-11-20 00:00:00")
    assert shown_rows(response) == {}
    assert set(shown_skipped(response).values()) == {"The subscription is on that version already"}
    assert 'name="review"' not in response.content.decode()  # nothing to continue to
    shown_again = confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: the preview again, no second migration, and no change to billing
    assert shown_again.templates[0].name == PREVIEW_PAGE
    assert PlanMigration.objects.count() == 1
    after = billing_state()
    assert {k: after[k] for k in ("rows", "subscriptions", "invoices")} == {
        k: before[k] for k in ("rows", "subscriptions", "invoices")
    }


def test_a_period_end_migration_sent_again_schedules_nothing_twice(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    pro = catalog["pro"]
    confirm(
        admin_client,
        preview(admin_client, three, pro, "period_end"),
        django_capture_on_commit_callbacks,
    )
    before = billing_state()

    run_plan_migration.delay(PlanMigration.objects.get().pk)
    response = preview(admin_client, three, pro, "period_end")
    confirm(admin_client, response, django_capture_on_commit_callbacks)

    assert set(shown_skipped(response).values()) == {
        "The subscription moves to that version at the end of its period already"
    }
    after = billing_state()
    assert {k: after[k] for k in ("rows", "subscriptions", "invoices")} == {
        k: before[k] for k in ("rows", "subscriptions", "invoices")
    }


def test_a_failed_item_is_tried_again_and_done_items_are_left_alone(
    admin_client, three, catalog, django_capture_on_commit_callbacks, monkeypatch
):
    # given: the change fails unexpectedly for beta
    acme, beta, gamma = three
    real_change = bulk_migration.subscription_change_plan

    def failing_for_beta(*, subscription, **kwargs):
        if subscription.pk == beta.pk:
            raise RuntimeError("database went away")
        return real_change(subscription=subscription, **kwargs)

    monkeypatch.setattr(bulk_migration, "subscription_change_plan", failing_for_beta)
    response = preview(admin_client, three, catalog["pro"], "immediate", "2026-11-16 00:00:00")
    confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: beta failed (rolled back), the others done; the migration failed
    migration = PlanMigration.objects.get()
    assert (migration.status, migration.done_count) == ("failed", 3)
    items = {i.subscription_id: i for i in migration.items.all()}
    assert (items[beta.pk].status, items[beta.pk].message) == (
        "failed",
        "RuntimeError: database went away",
    )
    beta.refresh_from_db()
    assert beta.version == catalog["ai_assistant"]
    assert not Invoice.objects.filter(subscription=beta, reason="plan_change").exists()
    done_invoices = {items[acme.pk].invoice_id, items[gamma.pk].invoice_id}
    page = admin_client.get(f"/admin/billing/planmigration/{migration.pk}/change/")
    assert '<td class="status">Failed</td>' in page.content.decode()

    # when: run again from the admin once the cause is gone
    monkeypatch.setattr(bulk_migration, "subscription_change_plan", real_change)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/billing/planmigration/",
            {"action": "run_again", "_selected_action": [migration.pk]},
        )

    # then: beta moved with the previewed amounts; acme and gamma were not billed twice
    migration.refresh_from_db()
    assert (migration.status, migration.done_count) == ("done", 3)
    items = {i.subscription_id: i for i in migration.items.select_related("invoice")}
    assert items[beta.pk].status == "done"
    assert billed_net(items[beta.pk].invoice) == items[beta.pk].preview_total == D("15.00")
    assert {items[acme.pk].invoice_id, items[gamma.pk].invoice_id} == done_invoices
    assert Invoice.objects.filter(reason="plan_change").count() == 3


def test_figures_that_changed_since_the_preview_are_shown_again_before_anything_moves(
    admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: a preview; then 100 more prompts of acme's, from before the 16th, arrive
    acme, *_ = three
    response = preview(admin_client, three, catalog["pro"], "immediate", "2026-11-16 00:00:00")
    prompts("acme", 100, day=datetime(2026, 11, 12, tzinfo=UTC))

    # when: the old preview is confirmed
    shown_again = confirm(admin_client, response, django_capture_on_commit_callbacks)

    # then: nothing moved; the new figures are shown (150 over: 7.50)
    assert shown_again.status_code == 200
    assert not PlanMigration.objects.exists()
    assert shown_rows(shown_again)[acme.pk] == {
        "usage": usd("7.50"),
        "credit": usd("-10.00"),
        "charge": usd("25.00"),
        "total": usd("22.50"),
    }
    assert "The figures have changed since the preview" in shown_again.content.decode()

    # when: those are confirmed
    confirm(admin_client, shown_again, django_capture_on_commit_callbacks)

    # then: invoiced as shown (the unused time credited by a credit note)
    item = PlanMigrationItem.objects.get(subscription=acme)
    assert billed_net(item.invoice) == item.preview_total == D("22.50")


# permissions


@pytest.fixture
def ops_without_migrate(db, client):
    """A staff user who may view and change subscriptions, but not migrate them."""
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="billing",
            codename__in=["view_subscription", "change_subscription", "view_planmigration"],
        )
    )
    client.force_login(user)
    return client


def test_without_the_permission_nothing_is_offered_and_nothing_changes(
    ops_without_migrate, admin_client, three, catalog, django_capture_on_commit_callbacks
):
    # given: a migration someone else made, and everything as it stands
    client = ops_without_migrate
    existing = PlanMigration.objects.create(
        token=uuid.uuid4(), to_version=catalog["pro"], effective="period_end"
    )
    # a real preview's confirmation, taken by an admin who may migrate
    admin_preview = preview(admin_client, three, catalog["pro"], "immediate", "2026-11-16 00:00:00")
    before = billing_state()

    # when: the changelist
    changelist = client.get(CHANGELIST)

    # then: the action is not offered
    assert changelist.status_code == 200
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "migrate_to_version" not in actions
    assert "cancel_at_period_end" in actions

    # when: the action, the preview, the confirmation and the migration pages are asked for
    action = open_form(client, three)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        responses = [
            client.post(
                MIGRATE,
                {
                    "subscriptions": ",".join(str(s.pk) for s in three),
                    "to_version": catalog["pro"].pk,
                    "effective": "immediate",
                    "at": "2026-11-16 00:00:00",
                },
            ),
            client.post(MIGRATE, confirm_data(admin_preview)),
            client.get(MIGRATE),
            client.get("/admin/billing/planmigration/"),
            client.get(f"/admin/billing/planmigration/{existing.pk}/change/"),
            client.post(
                "/admin/billing/planmigration/",
                {"action": "run_again", "_selected_action": [existing.pk]},
            ),
        ]

    # then: the action runs nothing and every page answers 403; nothing changed
    assert action.status_code == 302  # back to the changelist: "No action selected"
    assert [r.status_code for r in responses] == [403] * 6
    assert callbacks == []
    assert PlanMigration.objects.count() == 1
    assert billing_state() == before


def test_the_migration_pages_load_and_refresh_until_done(admin_client, three, catalog):
    migration, _ = bulk_migration.plan_migration_create(
        token=uuid.uuid4(),
        preview=bulk_migration.plan_migration_preview(
            subscriptions=three, version=catalog["pro"], effective="immediate", at=NOV_16
        ),
    )  # not committed, so not run

    changelist = admin_client.get("/admin/billing/planmigration/")
    page = admin_client.get(f"/admin/billing/planmigration/{migration.pk}/change/")

    assert changelist.status_code == 200
    assert "0 of 3" in changelist.content.decode()
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert '<progress id="migration-progress-bar" max="3" value="0">0%</progress>' in html
    assert html.count('<td class="status">Pending</td>') == 3
    assert admin_client.get(MIGRATE).status_code == 302


# concurrency (PostgreSQL)


def in_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_migration_at_once_apply_each_item_once(catalog, monkeypatch):
    # given: a confirmed migration of 12 subscriptions, not run yet
    subscriptions = [subscriber(f"c{n}") for n in range(12)]
    monkeypatch.setattr(run_plan_migration, "apply_async", lambda args, kwargs=None, **o: None)
    migration, _ = bulk_migration.plan_migration_create(
        token=uuid.uuid4(),
        preview=bulk_migration.plan_migration_preview(
            subscriptions=subscriptions, version=catalog["pro"], effective="immediate", at=NOV_16
        ),
    )

    # when: two workers run it at the same moment
    errors = in_threads(
        2, lambda: bulk_migration.plan_migration_run(migration_id=migration.pk, now=DEC_1)
    )

    # then: each subscription moved once, with one invoice of 25.00 and one credit
    # note of 10.00 for the unused time: 15.00 in all
    assert errors == []
    migration.refresh_from_db()
    assert (migration.status, migration.done_count) == ("done", 12)
    assert set(migration.items.values_list("status", flat=True)) == {"done"}
    changes = Invoice.objects.filter(reason="plan_change")
    assert sorted(changes.values_list("subscription_id", flat=True)) == sorted(
        s.pk for s in subscriptions
    )
    assert set(changes.values_list("total", flat=True)) == {D("25.00")}
    assert {billed_net(invoice) for invoice in changes} == {D("15.00")}
    assert SubscriptionChange.objects.filter(kind="plan_change").count() == 12
