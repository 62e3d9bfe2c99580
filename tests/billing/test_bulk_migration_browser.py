"""Bulk migration in a real browser (Debian's Chromium through Playwright): ops, in
the Operations role, logs in to the admin, selects three subscriptions, runs the
action, reads the preview, confirms and watches the migration finish.
Screenshots of each page are saved in the test's output directory."""

import os
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.models import PlanMigration, Subscription
from tests.billing.migration_support import migration_catalog, subscriber, three_subscribed


@pytest.mark.django_db(transaction=True)
def test_ops_migrates_three_subscriptions_with_a_preview(live_server, browser_page, output_dir):
    # given: S1's ai_assistant (19.99) and S10's pro (49.99); three subscribers, two
    # from November 1st and one from the 6th, with 250, 0 and 230 prompts by the 10th
    migration_catalog()
    acme, beta, gamma = three_subscribed()
    subscriber("delta")  # listed, not selected
    # and ops, a staff user in the Operations role
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    ops = User.objects.create_user("ops", password="ops-password-1", is_staff=True)
    ops.groups.add(Group.objects.get(name="Operations"))
    page = browser_page

    # when: ops logs in through the admin's login form
    page.goto(f"{live_server.url}/admin/login/?next=/admin/billing/subscription/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-password-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/billing/subscription/")

    # and selects the three subscriptions and runs the action
    for subscription in (acme, beta, gamma):
        page.check(f'input[name="_selected_action"][value="{subscription.pk}"]')
    page.select_option("select[name=action]", "migrate_to_version")
    page.screenshot(path=os.path.join(output_dir, "1-changelist.png"), full_page=True)
    page.click("button[name=index]")

    # and asks for a preview of moving them to pro now, at November 16th 00:00 UTC
    page.wait_for_selector("#migration-form")
    assert "3 subscriptions selected" in page.inner_text("#content")
    page.select_option("#id_to_version", label="pro v1: Pro (USD)")
    page.check('input[name="effective"][value="immediate"]')
    page.fill("#id_at", "2026-11-16 00:00:00")
    page.screenshot(path=os.path.join(output_dir, "2-form.png"), full_page=True)
    page.click("input[name=preview]")

    # then: the preview shows what each change will invoice, and the sums
    page.wait_for_selector("#migration-preview")
    page.screenshot(path=os.path.join(output_dir, "3-preview.png"), full_page=True)

    def cells(row: str) -> list[str]:
        return [
            page.inner_text(f"{row} td.{name}") for name in ("usage", "credit", "charge", "total")
        ]

    assert cells(f'tr[data-subscription="{acme.pk}"]') == ["2.50", "-10.00", "25.00", "17.50"]
    assert cells(f'tr[data-subscription="{beta.pk}"]') == ["0.00", "-10.00", "25.00", "15.00"]
    assert cells(f'tr[data-subscription="{gamma.pk}"]') == ["1.50", "-13.33", "33.33", "21.50"]
    assert cells("#migration-sums") == ["4.00", "-33.33", "83.33", "54.00"]
    assert page.locator("#migration-skipped").count() == 0
    assert not PlanMigration.objects.exists()

    # when: ops confirms
    page.click("input[name=confirm]")

    # then: the migration's page shows it finished, every subscription done and invoiced
    page.wait_for_selector("#migration-progress")
    page.wait_for_function(
        "document.querySelector('#migration-progress').dataset.status === 'done'"
    )
    page.screenshot(path=os.path.join(output_dir, "4-migration.png"), full_page=True)
    assert page.inner_text("#migration-status") == "Done"
    assert page.inner_text("#migration-finished") == "3 of 3"
    bar = page.locator("#migration-progress-bar")
    assert (bar.get_attribute("max"), bar.get_attribute("value")) == ("3", "3")
    for subscription, invoiced in ((acme, "17.50"), (beta, "15.00"), (gamma, "21.50")):
        row = f'#migration-items tr[data-subscription="{subscription.pk}"]'
        assert page.inner_text(f"{row} td.status") == "done"
        assert page.inner_text(f"{row} td.total") == invoiced
        assert page.inner_text(f"{row} td.invoiced") == invoiced
    migration = PlanMigration.objects.get()
    assert (migration.status, migration.created_by) == ("done", ops)
    assert set(
        Subscription.objects.filter(pk__in=[acme.pk, beta.pk, gamma.pk]).values_list(
            "version__plan__code", flat=True
        )
    ) == {"pro"}
