"""Dunning seen by its users in a real browser (Debian's Chromium through
Playwright): the German customer of a restricted account opens its portal, reads
what is past due, follows "Jetzt bezahlen" to the invoice's payment page with the
seller's bank details; finance lists customers by standing and pauses one's
dunning on its page. Screenshots in the test's output directory (copied to
$SCREENSHOTS_DIR when set)."""

import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User

from customers.models import Customer
from customers.portal import portal_session_create
from invoices.dunning import dunning_run
from invoices.dunning_policies import StepInput, policy_save
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import CustomerFactory, default_seller, period_draft

SHOTS = os.environ.get("SCREENSHOTS_DIR", "")
BERLIN = "Europe/Berlin"
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_12 = datetime(2026, 11, 12, 9, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_a_restricted_customer_reads_what_is_owed_and_finance_pauses_it(
    live_server, browser_page, output_dir
):
    # given: a seller with bank details, a policy restricting at +7, a German customer
    # whose invoice of 250.00 EUR was due on Nov 1 (Berlin)
    default_seller(
        {
            "name": "Usage Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin"],
            "bank": {
                "bank_name": "Berliner Bank",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
            },
        }
    )
    policy_save(
        code="standard",
        name="Standard",
        is_default=True,
        steps=[StepInput(1, "remind"), StepInput(7, "restrict")],
    )
    acme = CustomerFactory(
        external_id="acme",
        name="Acme GmbH",
        currency="EUR",
        locale="de",
        timezone_name=BERLIN,
        payment_terms_days=0,
    )
    line = LineInput("usage", "Prompts", None, D(1), D("250.00"), D("250.00"))
    # finalized on Nov 1, the clock moved there (a document is dated when it is
    # issued: invoices.issue_dates)
    with time_machine.travel(NOV_1, tick=False):
        invoice = invoice_finalize(
            invoice=period_draft(acme, [line], start=OCT_1, end=NOV_1), now=NOV_1
        )
    dunning_run(now=NOV_12)
    acme.refresh_from_db()
    assert acme.standing == "restricted"
    User.objects.create_superuser("finance", password="finance-password-1")
    page = browser_page

    def shot(name: str) -> None:
        path = os.path.join(output_dir, name)
        page.screenshot(path=path, full_page=True)
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            shutil.copy(path, os.path.join(SHOTS, name))

    with time_machine.travel(NOV_12, tick=True):
        # when: the customer opens its portal
        token = portal_session_create(customer=acme, now=datetime.now(UTC)).token
        page.goto(f"{live_server.url}/portal/{token}/")
        owing = page.inner_text("#owing")
        shot("portal-restricted-de.png")
        # then: what is owed, in German, with where to pay it
        assert "Ihr Konto ist eingeschränkt" in owing
        assert f"Rechnung {invoice.number}: 250,00\xa0EUR, fällig am 1. Nov. 2026" in owing
        page.click("#owing a.pay")
        page.wait_for_selector("#bank")
        shot("pay-page-de.png")
        assert "250,00" in page.inner_text("#amount-due")
        assert "DE89370400440532013000" in page.inner_text("#bank")
        assert invoice.number in page.inner_text("#bank")
        assert "überfällig" in page.inner_text("#overdue")

        # when: finance lists the restricted customers and pauses acme's dunning
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "finance")
        page.fill("#id_password", "finance-password-1")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        page.goto(f"{live_server.url}/admin/customers/customer/?standing__exact=restricted")
        shot("customers-restricted.png")
        assert "acme" in page.inner_text("#result_list")
        page.click("#result_list a:has-text('acme')")
        page.wait_for_selector("#id_dunning_paused_until_0")
        page.fill("#id_dunning_paused_until_0", "2026-11-30")
        page.fill("#id_dunning_paused_until_1", "12:00:00")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist")
        shot("customer-paused.png")
    acme = Customer.objects.get(external_id="acme")
    assert acme.dunning_paused_until is not None
    assert acme.dunning_paused_by == "finance"
