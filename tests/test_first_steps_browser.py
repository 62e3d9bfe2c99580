"""The README's "First steps", walked in a real browser (Debian's Chromium through
Playwright) on the demo data as `scripts/run.sh` loads it (`load_demo`, `setup_roles`):
for finance (a plan with a draft version and a graduated charge, Try prices, Simulate
prices on last month, Publish, New draft, Compare with published, History) and for
operations (a customer added and subscribed, a migration with its preview and
confirmation, a dunning policy, Cancel… on a subscription). Each step must end
without an error or a refusal. Screenshots are saved in each test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from playwright.sync_api import expect

from billing.admin.simulations import last_month
from billing.models import PlanMigration, Subscription
from billing.simulation.engine import simulation_rate_customer
from common.admin_forms import amount_text
from customers.models import Customer
from customers.portal_links import portal_session_create
from invoices.dunning_models import DunningPolicy
from plans.models import Plan, PlanVersion

PASSWORD = "first-steps-1"


@pytest.fixture
def demo(db):
    """The demo as `scripts/run.sh` sets it up, and a user in each of two roles."""
    call_command("setup_roles", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())
    for username, role in (("fin", "Finance"), ("ops", "Operations")):
        user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def no_error(page) -> None:
    """The page shows no form error and no refusal (a confirmation's "This cannot be
    undone." is styled as an error note, and is none)."""
    errors = ".errorlist, .errornote:not(.irreversible), .messagelist .error"
    assert page.locator(errors).count() == 0, page.inner_text("#content")


def saved(page) -> str:
    page.wait_for_selector(".messagelist .success, .errorlist, .errornote")
    no_error(page)
    return page.inner_text(".messagelist .success")


@pytest.mark.django_db(transaction=True)
def test_finance_first_steps_on_the_demo(demo, live_server, browser_page, output_dir):
    page, base = browser_page, live_server.url

    def shot(name: str) -> None:
        page.screenshot(path=os.path.join(output_dir, f"{name}.png"), full_page=True)

    log_in(page, base, "fin")

    # 1. Make a plan: Catalog > Plans > Add plan, then a draft version with a graduated charge
    page.click("#content-main a:text-is('Plans')")
    page.click(".object-tools a.addlink")
    page.fill("#id_code", "chat_growth")
    page.fill("#id_name", "Chat Growth")
    page.click("input[name=_save]")
    saved(page)
    page.click("#add-draft-version")
    page.select_option("#id_currency", label="USD — US Dollar")
    page.select_option("#id_interval", label="Monthly")
    page.fill("#id_base_fee", "29.00")
    page.locator("a.djn-add-handler.djn-model-plans-charge").first.click()
    page.click("#charges-0 .select2-selection")
    page.fill(".select2-search__field", "LLM tok")
    # The meters whose name or event name matches; LLM tokens first.
    expect(page.locator(".select2-results__option").first).to_have_text("LLM tokens (llm_tokens)")
    page.click(".select2-results__option:text-is('LLM tokens (llm_tokens)')")
    page.select_option("#id_charges-0-model", "overage")
    page.fill("#id_charges-0-included_units", "1000000")
    page.select_option("#id_charges-0-pricing_scheme", label="Graduated")
    add_tier = page.locator("#charges-0 a.djn-add-handler.djn-model-plans-pricetier").first
    add_tier.click()
    add_tier.click()
    page.fill("#id_charges-0-tiers-0-up_to", "4000000")
    page.fill("#id_charges-0-tiers-0-unit_price", "0.000007")
    page.fill("#id_charges-0-tiers-1-unit_price", "0.000005")
    shot("1-draft-version-form")
    page.click("input[name=_continue]")
    saved(page)
    v1 = PlanVersion.objects.get(plan__code="chat_growth")
    assert (v1.number, v1.status) == (1, PlanVersion.DRAFT)
    shot("2-draft-saved")

    # 2. Try it: 2,000,000 tokens, 1,000,000 past the included ones on the first tier
    page.click("#try-prices")
    page.fill("#id_quantity_0", "2000000")
    page.click("#try-prices-form input[type=submit]")
    page.wait_for_selector("#sandbox-total")
    no_error(page)
    assert page.inner_text("#sandbox-total td.amount") == "36.00 USD"
    shot("3-try-prices")

    # Simulate prices: last month's real usage of Team (hybrid)'s subscribers (acme)
    page.goto(f"{base}/admin/plans/planversion/{v1.pk}/change/")
    page.click("#simulate-version")
    start, end = last_month(datetime.now(UTC))
    assert page.input_value("#id_month") == f"{start:%Y-%m}"
    page.select_option("#id_plan", label="Team (hybrid)")
    page.click('#simulation-form input[type="submit"]')
    page.wait_for_selector("#simulation-rows, .errorlist, .errornote")
    no_error(page)
    assert page.inner_text("#simulation-status") == "Done"
    acme = Customer.objects.get(external_id="acme")
    rated = simulation_rate_customer(customer=acme, version=v1, period_start=start, period_end=end)
    row = page.locator('tr[data-customer="acme"]')
    assert row.locator("td.version").inner_text() == "Team (hybrid) v1"
    assert row.locator("td.current").inner_text() == amount_text(rated.current_total, "USD")
    assert row.locator("td.simulated").inner_text() == amount_text(rated.simulated_total, "USD")
    # What acme paid for last month's usage and fees: real usage, not an empty month.
    assert rated.current_total > 79  # Team (hybrid)'s fee and three seats alone
    shot("4-simulation")

    # 3. Publish
    page.goto(f"{base}/admin/plans/planversion/{v1.pk}/change/")
    page.click("#publish-version")
    page.wait_for_url(f"{base}/admin/plans/planversion/{v1.pk}/publish/")
    assert page.inner_text("h1") == "Publish Chat Growth v1?"
    shot("5-publish-confirmation")
    # (the confirmation's "This cannot be undone." is an error note saved() would
    # take for the answer, and the pages after it show a success message already:
    # each time, wait for the click's own page)
    with page.expect_navigation():
        page.click("input[name=_confirm]")
    assert saved(page) == "Chat Growth v1 published"

    # 4. Change a price: New draft (v2), the second tier lowered, compared, its history
    with page.expect_navigation():
        page.click("#new-draft")
    assert saved(page) == "Chat Growth v2 created as a draft from v1"
    page.fill("#id_charges-0-tiers-1-unit_price", "0.000004")
    with page.expect_navigation():
        page.click("input[name=_save]")
    saved(page)
    v2 = PlanVersion.objects.get(plan__code="chat_growth", number=2)
    page.goto(f"{base}/admin/plans/planversion/{v2.pk}/change/")
    page.click("#compare-published")
    page.wait_for_selector("#compare-summary")
    no_error(page)
    changed = page.locator("table.compare tr.changed")
    assert changed.count() == 1
    assert changed.locator("th").inner_text() == "Tier 2"
    shot("6-compare")
    page.goto(f"{base}/admin/plans/planversion/{v2.pk}/change/")
    page.click("a.historylink")
    page.wait_for_selector("#price-history")
    newest = page.locator("#price-history tr.price-change").first
    assert newest.locator(".who").inner_text() == "fin"
    assert newest.locator("ul.change-lines li").all_inner_texts() == [
        "LLM tokens, tier 2: unit price 0.000005 USD → 0.000004 USD"
    ]
    shot("7-history")

    # and v2 is published when it is right
    page.goto(f"{base}/admin/plans/planversion/{v2.pk}/change/")
    page.click("#publish-version")
    with page.expect_navigation():
        page.click("input[name=_confirm]")
    assert saved(page) == "Chat Growth v2 published"
    assert list(Plan.objects.get(code="chat_growth").versions.values_list("status", flat=True)) == [
        PlanVersion.PUBLISHED,
        PlanVersion.PUBLISHED,
    ]

    # and the demo's invoices and the dashboard show last month as billed
    page.goto(f"{base}/admin/invoices/invoice/")
    no_error(page)
    assert page.locator("#result_list tbody tr").count() == 4
    shot("8-invoices")
    page.goto(f"{base}/admin/")
    no_error(page)
    shot("9-dashboard")

    # and Acme Inc's portal lists its two invoices, and projects this month from its usage
    token = portal_session_create(customer=acme, now=datetime.now(UTC)).token
    page.goto(f"{base}/portal/{token}/")
    # (the start invoice paid, last month's open)
    statuses = page.locator("#invoices td.status").all_inner_texts()
    assert sorted(statuses) == ["Open", "Paid"]
    assert page.inner_text("#projected") != amount_text(D(0), "USD")
    shot("10-portal")


@pytest.mark.django_db(transaction=True)
def test_operations_first_steps_on_the_demo(demo, live_server, browser_page, output_dir):
    page, base = browser_page, live_server.url

    def shot(name: str) -> None:
        page.screenshot(path=os.path.join(output_dir, f"{name}.png"), full_page=True)

    log_in(page, base, "ops")

    # 1. Add a customer: Customers and API keys > Customers > Add customer
    page.click("#content-main a:text-is('Customers')")
    page.click(".object-tools a.addlink")
    page.fill("#id_external_id", "hooli")
    page.fill("#id_name", "Hooli")
    page.fill("#id_email", "billing@hooli.test")
    page.select_option("#id_currency", label="USD — US Dollar")
    page.fill("#id_address_line1", "1 Hacker Way")
    page.fill("#id_address_city", "Palo Alto")
    page.fill("#id_address_postal_code", "94301")
    page.fill("#id_address_state", "CA")
    page.select_option("#id_address_country", label="United States")
    shot("1-customer-form")
    page.click("input[name=_continue]")
    saved(page)
    hooli = Customer.objects.get(external_id="hooli")

    # 2. Subscribe them: Add subscription on the customer's page, starting now
    page.click("#add-subscription")
    page.select_option("#id_version", label="Pro v1 — 50.00 USD / month")
    page.click("#calendarlink0")
    page.click("#calendarbox0 a:text('Today')")
    page.click("#clocklink0")
    page.click("#clockbox0 a:text('Now')")
    shot("2-subscription-form")
    page.click("input[name=_save]")
    assert saved(page) == "Hooli — Pro v1 (active) created"
    subscription = Subscription.objects.get(customer=hooli)
    shot("3-subscription")

    # 3. Move customers: Billing > Subscriptions, filtered by plan, Migrate to another version…
    globex = Subscription.objects.get(customer__external_id="globex")
    page.goto(f"{base}/admin/billing/subscription/")
    # (the unfiltered list has globex's box too: wait for the filtered one)
    with page.expect_navigation():
        page.click("#changelist-filter a:text-is('AI Assistant')")
    page.check(f'input[name="_selected_action"][value="{globex.pk}"]')
    page.select_option("select[name=action]", "migrate_to_version")
    page.click("button[name=index]")
    page.wait_for_selector("#migration-form")
    page.select_option("#id_to_version", label="Pro v1 (USD)")
    page.check('input[name="effective"][value="immediate"]')
    page.click("input[name=preview]")
    page.wait_for_selector("#migration-preview, .errorlist, .errornote")
    no_error(page)
    assert page.locator(f'tr[data-subscription="{globex.pk}"]').count() == 1
    shot("4-migration-preview")
    page.click("input[name=review]")
    page.wait_for_selector("ul.consequences")
    shot("5-migration-confirmation")
    page.click("input[name=_confirm]")
    page.wait_for_selector("#migration-progress")
    expect(page.locator("#migration-status")).to_have_text("Done")
    shot("6-migration")
    assert PlanMigration.objects.get().status == "done"
    globex.refresh_from_db()
    assert str(globex.version) == "Pro v1"

    # 4. Chase what is unpaid: Invoices > Dunning policies > Add, the default
    page.goto(f"{base}/admin/invoices/dunningpolicy/add/")
    page.fill("#id_code", "standard")
    page.fill("#id_name", "Standard")
    page.check("#id_is_default")
    steps = [(-3, "remind"), (1, "remind"), (1, "retry_payment"), (7, "restrict"), (14, "suspend")]
    for n, (days, step) in enumerate(steps):
        if n:
            page.click(".inline-group .add-row a")
        page.fill(f"#id_steps-{n}-days_after_due", str(days))
        page.select_option(f"#id_steps-{n}-action", step)
    shot("7-dunning-policy")
    page.click("input[name=_save]")
    saved(page)
    policy = DunningPolicy.objects.get(code="standard")
    assert policy.is_default
    assert list(policy.steps.values_list("days_after_due", "action")) == steps

    # 5. Cancel… on Hooli's subscription, now: the invoice's lines listed first
    page.goto(f"{base}/admin/billing/subscription/{subscription.pk}/change/")
    page.click("a.cancel-subscription")
    page.wait_for_selector("#cancel-form")
    page.check('input[name="effective"][value="immediate"]')
    page.click("#cancel-form input[type=submit]")
    page.wait_for_selector("ul.consequences, .errorlist, .errornote")
    no_error(page)
    shot("8-cancel-confirmation")
    page.click("input[name=_confirm]")
    page.wait_for_url(f"**/admin/billing/subscription/{subscription.pk}/change/")
    assert "is canceled" in page.inner_text("ul.messagelist")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.CANCELED
    shot("9-canceled")
