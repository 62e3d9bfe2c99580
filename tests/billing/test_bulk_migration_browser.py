"""Bulk migration in a real browser (Debian's Chromium through Playwright): ops, in
the Operations role, logs in to the admin, selects three subscriptions, runs the
action, reads the preview, reads the confirmation page (what will happen, to how
many customers), confirms and watches the migration finish, each invoice
finalized at once (no grace). Screenshots of each page are saved in the test's
output directory."""

import os
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.models import PlanMigration, Subscription
from invoices.models import Invoice
from tests.billing.migration_support import migration_catalog, subscriber, three_subscribed


@pytest.mark.django_db(transaction=True)
def test_ops_migrates_three_subscriptions_with_a_preview(
    live_server, browser_page, output_dir, settings
):
    # given: S1's ai_assistant (19.99) and S10's pro (49.99); three subscribers, two
    # from November 1st and one from the 6th, with 250, 0 and 230 prompts by the 10th
    migration_catalog()
    acme, beta, gamma = three_subscribed()
    subscriber("delta")  # listed, not selected
    # and no grace before invoices are finalized
    settings.BILLING_INVOICE_GRACE_HOURS = 0
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
    page.select_option("#id_to_version", label="Pro v1 (USD)")
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

    def usd(amount: str) -> str:
        return f"{amount} USD"

    assert cells(f'tr[data-subscription="{acme.pk}"]') == [
        usd("2.50"),
        usd("-10.00"),
        usd("25.00"),
        usd("17.50"),
    ]
    assert cells(f'tr[data-subscription="{beta.pk}"]') == [
        usd("0.00"),
        usd("-10.00"),
        usd("25.00"),
        usd("15.00"),
    ]
    assert cells(f'tr[data-subscription="{gamma.pk}"]') == [
        usd("1.50"),
        usd("-13.33"),
        usd("33.33"),
        usd("21.50"),
    ]
    assert cells("#migration-sums") == [usd("4.00"), usd("-33.33"), usd("83.33"), usd("54.00")]
    assert page.locator("#migration-skipped").count() == 0
    assert "To Pro v1, now, prorated" in page.inner_text("#migration-terms")
    assert not PlanMigration.objects.exists()

    # when: ops continues
    page.click("input[name=review]")

    # then: the confirmation page says what will happen, and to how many customers
    page.wait_for_selector("ul.consequences")
    page.screenshot(path=os.path.join(output_dir, "4-confirmation.png"), full_page=True)
    assert page.locator("ul.consequences li").all_inner_texts() == [
        "3 customers move from Ai Assistant v1 to Pro v1 now, prorated from 16 Nov 2026, "
        "00:00 (UTC): each gets an invoice for its usage so far and the rest of this period, "
        f"finalized at once (3 invoices, {usd('54.00')} in all before tax, net of the credit "
        "notes for the unused time).",
        "To move them back, run another migration.",
    ]
    assert "This cannot be undone." in page.inner_text("#content")
    assert not PlanMigration.objects.exists()

    # when: ops confirms
    page.click("input[name=_confirm]")

    # then: the migration's page shows it finished, every subscription done and invoiced
    page.wait_for_selector("#migration-progress")
    page.wait_for_function(
        "document.querySelector('#migration-progress').dataset.status === 'done'"
    )
    page.screenshot(path=os.path.join(output_dir, "5-migration.png"), full_page=True)
    assert page.inner_text("#migration-status") == "Done"
    assert page.inner_text("#migration-finished") == "3 of 3"
    bar = page.locator("#migration-progress-bar")
    assert (bar.get_attribute("max"), bar.get_attribute("value")) == ("3", "3")
    # (the previewed total is net of the credit note for the unused time; the
    # invoice bills the usage so far and the new fees)
    for subscription, total, invoiced in (
        (acme, "17.50", "27.50"),
        (beta, "15.00", "25.00"),
        (gamma, "21.50", "34.83"),
    ):
        row = f'#migration-items tr[data-subscription="{subscription.pk}"]'
        assert page.inner_text(f"{row} td.status") == "Done"
        assert page.inner_text(f"{row} td.total") == usd(total)
        assert page.inner_text(f"{row} td.invoiced a") == usd(invoiced)
        invoice = Invoice.objects.get(subscription=subscription, reason="plan_change")
        assert invoice.status == "finalized"
        assert page.inner_text(f"{row} .invoice-number") == invoice.number
    migration = PlanMigration.objects.get()
    assert (migration.status, migration.created_by) == ("done", ops)
    assert set(
        Subscription.objects.filter(pk__in=[acme.pk, beta.pk, gamma.pk]).values_list(
            "version__plan__code", flat=True
        )
    ) == {"pro"}
