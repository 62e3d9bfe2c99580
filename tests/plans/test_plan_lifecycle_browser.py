"""A plan's lifecycle in a real browser (Debian's Chromium through Playwright): a
Finance user (the role setup_roles makes) adds a plan, adds its first version
from the plan's page (currency from the list, a graduated price of two tiers on
an existing meter picked by typing), saves it, publishes it through the
confirmation page, and sees it read-only. Screenshots are saved in the test's
output directory."""

import os
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from playwright.sync_api import expect

from plans.models import Plan, PlanVersion, PriceTier
from tests.factories import MeterFactory


@pytest.mark.django_db(transaction=True)
def test_finance_adds_a_plan_prices_it_and_publishes_it(live_server, browser_page, output_dir):
    # given: the meter the plan charges, and a Finance user
    MeterFactory(code="gpt4o_input_tokens", name="GPT-4o input tokens", event_name="llm.call")
    MeterFactory(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.call",
        aggregation="sum",
        value_property="tokens",
    )
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/admin/login/?next=/admin/plans/plan/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/plans/plan/")

    # when: finance adds the plan Pro
    page.click(".object-tools a.addlink")
    page.fill("#id_code", "pro")
    page.fill("#id_name", "Pro")
    page.click("input[name=_save]")

    # then: the plan's page says what comes next
    page.wait_for_url(f"{base}/admin/plans/plan/*/change/")
    plan = Plan.objects.get(code="pro")
    page.wait_for_url(f"{base}/admin/plans/plan/{plan.pk}/change/")
    assert page.inner_text(".messagelist .success") == (
        "Pro created. It has no version yet: add a draft version to set its currency and prices."
    )
    page.screenshot(path=os.path.join(output_dir, "1-plan-page.png"), full_page=True)

    # when: from the plan's page, a draft version: terms, then a graduated charge
    page.click("#add-draft-version")
    page.select_option("#id_currency", label="EUR — Euro")
    page.select_option("#id_interval", label="Monthly")
    page.fill("#id_base_fee", "49.00")
    page.locator("a.djn-add-handler.djn-model-plans-charge").first.click()
    page.click("#charges-0 .select2-selection")
    page.fill(".select2-search__field", "llm")
    # Both meters match (by their event name); the one named "llm..." comes first.
    # Waited for as a whole list: the list opened for an empty term (by name, GPT
    # first) shows until the search's answer replaces it.
    offered = page.locator(".select2-results__option")
    expect(offered).to_have_text(
        ["LLM tokens (llm_tokens)", "GPT-4o input tokens (gpt4o_input_tokens)"]
    )
    offered.first.click()
    page.select_option("#id_charges-0-model", "overage")
    page.select_option("#id_charges-0-pricing_scheme", label="Graduated")
    add_tier = page.locator("#charges-0 a.djn-add-handler.djn-model-plans-pricetier").first
    add_tier.click()
    add_tier.click()
    page.fill("#id_charges-0-tiers-0-up_to", "1000000")
    page.fill("#id_charges-0-tiers-0-unit_price", "0.000002")
    page.fill("#id_charges-0-tiers-1-unit_price", "0.000001")
    page.screenshot(path=os.path.join(output_dir, "2-version-form.png"), full_page=True)
    page.click("input[name=_continue]")

    # then: saved, the tiers shown as typed; the flat fee left empty is an amount,
    # shown with its currency's decimals (0.00 EUR)
    page.wait_for_selector(".messagelist .success")
    assert page.locator(".errorlist").count() == 0
    version = PlanVersion.objects.get(plan=plan)
    assert (version.number, version.status, version.currency) == (1, "draft", "EUR")
    tiers = [
        (page.input_value(f"#id_charges-0-tiers-{k}-{name}"))
        for k in range(2)
        for name in ("up_to", "unit_price", "flat_fee")
    ]
    assert tiers == ["1000000", "0.000002", "0.00", "", "0.000001", "0.00"]
    assert list(PriceTier.objects.values_list("up_to", "unit_price")) == [
        (1000000, PriceTier.objects.first().unit_price),
        (None, PriceTier.objects.last().unit_price),
    ]

    page.screenshot(path=os.path.join(output_dir, "2b-draft-saved.png"), full_page=True)

    # when: finance publishes it
    page.click("#publish-version")
    page.wait_for_url(f"{base}/admin/plans/planversion/{version.pk}/publish/")

    # then: the confirmation says what will happen, to how many customers
    assert page.inner_text("h1") == "Publish Pro v1?"
    assert page.locator(".consequences li").all_inner_texts() == [
        "Pro v1's prices become read-only.",
        "New subscriptions and migrations can use Pro v1.",
        "A subscription to Pro created through the API without a version number "
        "starts on Pro v1 from now on.",
        "No customer is on Pro yet.",
    ]
    page.screenshot(path=os.path.join(output_dir, "3-confirmation.png"), full_page=True)
    page.click("input[name=_confirm]")

    # then: published, and its page is read-only
    page.wait_for_url(f"{base}/admin/plans/planversion/{version.pk}/change/")
    assert page.inner_text(".messagelist .success") == "Pro v1 published"
    version.refresh_from_db()
    assert version.status == PlanVersion.PUBLISHED
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("#id_charges-0-tiers-0-up_to").count() == 0
    assert page.locator("#publish-version").count() == 0
    page.screenshot(path=os.path.join(output_dir, "4-published.png"), full_page=True)

    # and the plan's page lists it, with its customers
    page.goto(f"{base}/admin/plans/plan/{plan.pk}/change/")
    row = page.locator("#versions-0")
    assert [
        row.locator(f".field-{name}").inner_text()
        for name in ("version", "status", "currency", "interval", "base_fee_text", "subscribers")
    ] == ["v1", "Published", "EUR", "Monthly", "49.00 EUR", "0"]
    page.screenshot(path=os.path.join(output_dir, "5-plan-with-its-version.png"), full_page=True)

    # and the version's history shows the tiers as finance set them, then the publishing
    page.goto(f"{base}/admin/plans/planversion/{version.pk}/change/")
    page.click("a.historylink")
    page.wait_for_url(f"{base}/admin/plans/planversion/{version.pk}/history/")
    changes = page.locator("#price-history tbody tr")
    expect(changes).to_have_count(2)
    assert changes.nth(0).locator("td").nth(1).inner_text() == "fin"
    assert changes.nth(0).locator("li").all_inner_texts() == ["Status: Draft → Published"]
    assert changes.nth(1).locator("li").all_inner_texts()[-2:] == [
        "LLM tokens: tier 1 added (up to: 1,000,000, unit price 0.000002 EUR)",
        "LLM tokens: tier 2 added (up to: no limit, unit price 0.000001 EUR)",
    ]
    page.screenshot(path=os.path.join(output_dir, "6-history.png"), full_page=True)

    # when: finance makes a new draft and lowers the second tier
    page.goto(f"{base}/admin/plans/planversion/{version.pk}/change/")
    page.click("#new-draft")
    page.wait_for_selector(".messagelist .success")
    assert page.inner_text(".messagelist .success") == "Pro v2 created as a draft from v1"
    page.fill("#id_charges-0-tiers-1-unit_price", "0.0000008")
    # (the page already shows a success message, so wait for the save's own page)
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.click("a.historylink")
    page.wait_for_url("**/history/")

    # then: the draft's history reads the change as one line, before and after
    changes = page.locator("#price-history tbody tr")
    expect(changes.first).to_be_visible()
    assert changes.nth(0).locator("li").all_inner_texts() == [
        "LLM tokens, tier 2: unit price 0.000001 EUR → 0.0000008 EUR"
    ]
    page.screenshot(path=os.path.join(output_dir, "7-tier-change-in-history.png"), full_page=True)
