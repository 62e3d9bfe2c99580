"""The portal's "Limits and alerts" in a real browser (Debian's Chromium through
Playwright, issue 78): a French customer opens the manage link its provider
issued for "Jane (CTO)", types the budget "1 234,50" as French writes it, saves,
and reads it back as the customer's text writes it, with the change in the
history under Jane's name; a threshold alert of the budget (raised as the alert
machinery would) shows in the history too. A read-only link shows the section
without the form. Screenshots at 1366 px wide in /tmp/shots/portal/."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from billing.models import Alert
from customers.models import CustomerLimitChange, PortalLink
from customers.portal import portal_session_create
from customers.portal_links import portal_link_create
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

NBSP = "\N{NO-BREAK SPACE}"
SHOTS = "/tmp/shots/portal"  # noqa: S108 (where the brief asks for them)


@pytest.mark.django_db(transaction=True)
def test_a_french_customer_sets_its_budget_through_a_manage_link(live_server, browser_page):
    # given: a Paris customer on 19.99 EUR a month, and a manage link for Jane
    os.makedirs(SHOTS, exist_ok=True)
    prompts_meter()
    customer = CustomerFactory(
        external_id="acme",
        name="Société Acme",
        currency="EUR",
        locale="fr",
        timezone_name="Europe/Paris",
    )
    now = datetime.now(UTC)
    plan = published_version(
        "pro", base_fee=D("19.99"), currency="EUR", charges=(overage("prompts", 200, "0.05"),)
    )
    subscription = subscribe(customer, plan, now - timedelta(days=3))
    _, token = portal_link_create(
        customer=customer,
        manage=True,
        holder="Jane (CTO)",
        expires_in_days=30,
        created_by="tests",
        now=now,
    )
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})

    # when: Jane types the budget the French way, alerts at 50 and 80 %, to an address
    page.goto(f"{live_server.url}/portal/{token}/")
    assert page.locator("#limits h2").inner_text() == "Limites et alertes"
    assert page.locator("#no-limits").is_visible()
    # (first with a typo: refused on its field, in French, nothing saved)
    page.fill("#id_limits-budget_amount", "1e400")
    with page.expect_navigation():
        page.click("#limits-save")
    assert page.locator("#id_limits-budget_amount_error").inner_text() == (
        "Tapez le nombre en entier, sans exposant (« 1e400 »)."
    )
    page.locator("#limits").screenshot(path=os.path.join(SHOTS, "refused-fr-section.png"))
    assert not CustomerLimitChange.objects.exists()
    page.fill("#id_limits-budget_amount", "1 234,50")
    page.fill("#id_limits-thresholds", "50 ; 80")
    page.fill("#id_channels-0-target", "ops@acme.example")
    with page.expect_navigation():
        page.click("#limits-save")

    # then: saved, and shown as the customer's text writes it
    assert page.locator("#limits-saved").inner_text() == "Vos limites sont enregistrées."
    budget = page.locator('#limit-rows tr[data-limit="budget"]')
    assert budget.locator("td.limit").inner_text() == f"1{NBSP}234,50{NBSP}EUR"
    assert budget.locator("td.spent").inner_text() == f"19,99{NBSP}EUR"
    assert budget.locator("td.remaining").inner_text() == f"1{NBSP}214,51{NBSP}EUR"
    assert page.locator("#id_limits-budget_amount").input_value() == "1234,50"
    assert page.locator("#limit-thresholds").inner_text() == (
        f"Alertes à 50{NBSP}%, 80{NBSP}% du budget."
    )
    customer.refresh_from_db()
    assert customer.limits["budget"] == {"amount": "1234.50", "action": "stop"}
    change = CustomerLimitChange.objects.get()
    assert (change.by, change.via) == ("Jane (CTO)", "portal")

    # when: the budget's 50 % alert fires (as billing.usage.alerts would record it)
    Alert.objects.create(
        customer=customer,
        kind=Alert.BUDGET_THRESHOLD,
        period_start=subscription.current_period_start,
        key="budget:50",
        payload={"threshold": "50", "spend": "617.25", "budget": "1234.50", "currency": "EUR"},
        created_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    page.reload()

    # then: the history shows it above Jane's change
    rows = page.locator("#limit-history tbody tr")
    assert rows.count() == 2
    alert = rows.nth(0).locator("td.what").inner_text()
    assert f"Alerte de budget : 50{NBSP}% du budget atteints" in alert
    assert f"Dépensé alors : 617,25{NBSP}EUR sur 1{NBSP}234,50{NBSP}EUR" in alert
    assert rows.nth(1).locator("td.who").inner_text() == "Jane (CTO)"
    assert rows.nth(1).locator("td.what").inner_text().splitlines() == [
        f"Budget fixé à 1{NBSP}234,50{NBSP}EUR (consommation refusée au-delà)",
        f"Seuils d\N{RIGHT SINGLE QUOTATION MARK}alerte fixés à 50{NBSP}%, 80{NBSP}%",
        "Alertes désormais envoyées aussi à ops@acme.example",
    ]
    section = page.locator("#limits")
    section.scroll_into_view_if_needed()
    page.screenshot(path=os.path.join(SHOTS, "manage-fr.png"), full_page=True)
    section.screenshot(path=os.path.join(SHOTS, "manage-fr-section.png"))
    # the section stays within the page's column: nothing covered, nothing cut
    box, main = section.bounding_box(), page.locator("main").bounding_box()
    assert box["x"] >= main["x"] and box["x"] + box["width"] <= main["x"] + main["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    # when: a read-only link opens the same portal
    session = portal_session_create(customer=customer, now=datetime.now(UTC))
    page.goto(f"{live_server.url}/portal/{session.token}/")

    # then: the limits and history, but no form
    assert page.locator("#limit-rows").is_visible()
    assert page.locator("#limit-history tbody tr").count() == 2
    assert page.locator("#limits-form").count() == 0
    page.locator("#limits").screenshot(path=os.path.join(SHOTS, "read-only-fr-section.png"))


@pytest.mark.django_db(transaction=True)
def test_support_issues_a_manage_link_and_revokes_it_in_the_admin(live_server, browser_page):
    # given: a customer, and a superuser of the admin
    os.makedirs(SHOTS, exist_ok=True)
    customer = CustomerFactory(external_id="acme", name="Acme", locale="en")
    User.objects.create_superuser("support", password="support-password-1")
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    change = f"{live_server.url}/admin/customers/customer/{customer.pk}/change/"
    page.goto(
        f"{live_server.url}/admin/login/?next=/admin/customers/customer/{customer.pk}/change/"
    )
    page.fill("#id_username", "support")
    page.fill("#id_password", "support-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(change)

    # when: support issues a manage link for Jane
    page.click("#portal-link-issue")
    page.check("#id_manage")
    page.fill("#id_holder", "Jane (CTO)")
    page.fill("#id_expires_in_days", "30")
    with page.expect_navigation():
        page.click("input[type=submit]")

    # then: its URL shown once, and it opens the portal with the form
    url = page.locator("#portal-url").input_value()
    page.screenshot(path=os.path.join(SHOTS, "admin-issued.png"))
    link = PortalLink.objects.get()
    assert (link.holder, link.manage, link.created_by) == ("Jane (CTO)", True, "support")
    page.goto(url)
    assert page.locator("#limits-form").count() == 1

    # when: support revokes it from the customer's page
    page.goto(change)
    row = page.locator(f'#customer-portal-links tr[data-link="{link.pk}"]')
    assert row.locator("td").nth(0).inner_text() == "Jane (CTO)"
    page.locator("#customer-portal-links").screenshot(path=os.path.join(SHOTS, "admin-links.png"))
    with page.expect_navigation():
        row.locator("button.revoke-portal-link").click()

    # then: revoked, the customer untouched, and the link no longer opens the portal
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert row.locator("td").nth(5).inner_text().startswith("Revoked")
    customer_before = CustomerFactory._meta.model.objects.get(pk=customer.pk)
    assert (customer_before.name, customer_before.external_id) == ("Acme", "acme")
    page.goto(url)
    assert page.locator("h1").inner_text() == "This link is no longer valid"


@pytest.mark.django_db(transaction=True)
def test_support_sets_a_customers_limits_in_the_admin_in_german(live_server, browser_page):
    """Finance and support set the limits in the admin with the portal's form,
    amounts typed in their own convention ("1.234,50" in German); the history
    names the user, beside the customer's own change."""
    from config.user_language import user_language_set
    from customers.limits import limits_set

    os.makedirs(SHOTS, exist_ok=True)
    prompts_meter()
    customer = CustomerFactory(
        external_id="acme", name="Acme", currency="EUR", spend_limit=D("5000.00")
    )
    now = datetime.now(UTC)
    plan = published_version(
        "pro", base_fee=D("19.99"), currency="EUR", charges=(overage("prompts", 200, "0.05"),)
    )
    subscribe(customer, plan, now - timedelta(days=3))
    limits_set(
        customer=customer,
        document={"budget": {"amount": "300.00", "action": "stop"}},
        by="Jane (CTO)",
        via="portal",
        now=now - timedelta(hours=1),
    )
    user = User.objects.create_superuser("finanz", password="finanz-password-1")
    user_language_set(user=user, language="de")
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    limits = f"{live_server.url}/admin/customers/customer/{customer.pk}/limits/"
    page.goto(
        f"{live_server.url}/admin/login/?next=/admin/customers/customer/{customer.pk}/limits/"
    )
    page.fill("#id_username", "finanz")
    page.fill("#id_password", "finanz-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(limits)

    page.fill("#id_limits-budget_amount", "1.234,50")
    page.fill("#id_limits-thresholds", "80")
    with page.expect_navigation():
        page.click("#limits-save")

    assert page.locator("ul.messagelist li").inner_text() == "Die Limits sind gespeichert."
    budget = page.locator('#limit-rows tr[data-limit="budget"]')
    assert budget.locator("td.limit").inner_text() == f"1.234,50{NBSP}EUR"
    assert budget.locator("td.spent").inner_text() == f"19,99{NBSP}EUR"
    who = page.locator("#limit-history td.who").all_inner_texts()
    assert who == ["finanz", "Jane (CTO)"]
    page.screenshot(path=os.path.join(SHOTS, "admin-limits-de.png"), full_page=True)
    customer.refresh_from_db()
    assert customer.limits["budget"] == {"amount": "1234.50", "action": "stop"}
    assert CustomerLimitChange.objects.order_by("-id").first().via == "admin"
