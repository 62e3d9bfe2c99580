"""S39 in the browser: after a run settled, one released as failed and one still
under way, the customer's portal says "1 run in progress: its usage is held", what it
keeps back of the balance, and "1 run not charged: failed" (in French too), and a
Support clerk finds each hold with how it ended on the admin's Holds page; read in
Chromium."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.usage.holds import hold_open, hold_release, hold_settle
from customers.portal_links import portal_link_create
from plans.rate_card_pricing import RateSpec
from plans.validation import ChargeSpec
from tests.factories import CustomerFactory, llm_tokens_meter, published_version, subscribe
from tests.rate_cards import MILLION, per_unit
from wallets.purchases import money_top_up

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
O3_OUTPUT = {"model": "o3", "token_type": "output"}


@pytest.mark.django_db(transaction=True)
def test_s39_the_portal_and_the_admin_show_the_holds(live_server, browser_page, output_dir):
    # given: S39's customer, its balance of 10.00, three runs held
    llm_tokens_meter()
    rates = (
        RateSpec(when=tuple(O3_OUTPUT.items()), pricing=per_unit("8.00", MILLION)),
        RateSpec(when=(), pricing=per_unit("1.00", MILLION)),
    )
    card = ChargeSpec("llm_tokens", "balance", price_by=("model", "token_type"), rates=rates)
    published_version("agents", charges=(card,))
    customer = CustomerFactory(external_id="acme", name="Acme")
    subscribe(customer, "agents", NOV_1)
    money_top_up(customer=customer, amount=D("10.00"), currency="USD", now=NOV_1)
    held = [
        hold_open(
            external_id="acme",
            meter="llm_tokens",
            quantity=D(500_000 if i < 2 else 100_000),
            properties=O3_OUTPUT,
            key=f"run-{i}",
            expires_in_seconds=86_400,
            now=NOW,
        ).hold
        for i in range(3)
    ]
    hold_settle(public_id=held[0].public_id, quantity=D(300_000), now=NOW)
    hold_release(public_id=held[1].public_id, reason="failed", now=NOW)
    _, token = portal_link_create(
        customer=customer,
        manage=False,
        holder="tests",
        expires_in_days=30,
        created_by="tests",
        now=NOW,
    )
    call_command("setup_roles", verbosity=0)
    clerk = User.objects.create_user("support", password="support-password-1", is_staff=True)
    clerk.groups.add(Group.objects.get(name="Support"))
    page = browser_page

    # when: the customer opens its portal, in English then in French
    with time_machine.travel(NOW + timedelta(minutes=5), tick=True):
        page.goto(f"{live_server.url}/portal/{token}/")
        page.screenshot(path=os.path.join(output_dir, "s39-portal.png"), full_page=True)
        english = page.locator("#holds").inner_text().splitlines()
        page.goto(f"{live_server.url}/portal/{token}/?lang=fr")
        french = page.locator("#holds").inner_text().splitlines()

        # and a Support clerk looks the holds up in the admin
        page.goto(f"{live_server.url}/admin/login/?next=/admin/billing/hold/")
        page.fill("#id_username", "support")
        page.fill("#id_password", "support-password-1")
        page.click("input[type=submit]")
        page.wait_for_selector("#result_list")
        page.screenshot(path=os.path.join(output_dir, "s39-admin-holds.png"), full_page=True)
        page_fits = page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        rows = {
            row.locator("th").inner_text(): row.locator("td.field-outcome").inner_text()
            for row in page.locator("#result_list tbody tr").all()
        }

    # then
    assert english == [
        "1 run in progress: its usage is held",
        "0.80\N{NO-BREAK SPACE}USD of your balance is held for them",
        "1 run not charged: failed",
    ]
    assert french == [
        "1 exécution en cours : son usage est réservé",
        "0,80\N{NO-BREAK SPACE}USD de votre solde sont réservés pour elles",
        "1 exécution non facturée : échec",
    ]
    assert page_fits, "the Holds page scrolls sideways at 1100 px"
    assert rows == {
        held[0].public_id: "Settled: 300,000",
        held[1].public_id: "Released: Failed",
        held[2].public_id: "Open",
    }
