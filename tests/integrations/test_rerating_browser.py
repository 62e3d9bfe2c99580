"""Re-rating and refused records in a real browser (Debian's Chromium through
Playwright), as Finance uses them: October billed a fine-tune at the default row;
Finance maps it, picks October's invoice, reads the preview of "Re-rate usage…",
confirms, and finds the correction naming October's invoice; then reads a refused
LiteLLM record under Billing > Refused records and replays it. Screenshots in the
test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.integration_models import RefusedRecord
from customers.services import customer_create
from invoices.models import Invoice
from tests.factories import api_client, subscribe
from tests.integrations.test_litellm_ingest import payload
from tests.integrations.test_s38_rerating import (
    FINE_TUNE,
    NOV_5,
    map_models,
    october,  # noqa: F401 (a fixture)
    send_and_close,
)

PASSWORD = "re-rate-october-1"
AFTER_THE_CALL = datetime(2026, 11, 10, 13, tzinfo=UTC)


def log_in(page, base: str, path: str) -> None:
    """Finance logs in and lands on path."""
    page.goto(f"{base}/admin/login/?next={path}")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}{path}")


@pytest.mark.django_db(transaction=True)
def test_finance_rerates_october_and_replays_a_refused_record(
    october,  # noqa: F811
    live_server,
    browser_page,
    output_dir,
):
    # given: October billed at 4.50, the fine-tune then mapped; a Finance user
    october_invoice = send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    call_command("setup_roles", verbosity=0)
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})

    with time_machine.travel(NOV_5, tick=True):
        log_in(page, base, "/admin/invoices/invoice/")

        # when: October's invoice is picked and "Re-rate usage…" chosen
        page.check(f'input[name="_selected_action"][value="{october_invoice.pk}"]')
        page.select_option('select[name="action"]', "rerate_usage")
        page.click('button[name="index"]')
        page.wait_for_selector("form input[type=submit]")

        # then: the preview says what it will issue, and nothing is issued yet
        text = " ".join(page.inner_text("#content").split())
        assert f"{october_invoice.number} for Acme (Oct 2026) billed 4.50 USD" in text
        assert "it bills 7.50 USD: an invoice of 3.00 USD before tax" in text
        assert not Invoice.objects.filter(reason=Invoice.CORRECTION).exists()
        page.screenshot(path=os.path.join(output_dir, "1-rerate-preview.png"), full_page=True)

        # when: confirmed
        page.click("form input[type=submit]")
        page.wait_for_selector(".messagelist")

    # then: one correction of 3.00 + VAT, naming October's invoice
    correction = Invoice.objects.get(reason=Invoice.CORRECTION)
    assert (correction.total, correction.corrects) == (D("3.60"), october_invoice)
    assert correction.number in page.inner_text(".messagelist")
    page.screenshot(path=os.path.join(output_dir, "2-rerate-applied.png"), full_page=True)

    # given: a LiteLLM call (of 10 November) for a customer billing does not know yet
    with time_machine.travel(AFTER_THE_CALL, tick=True):
        refused = api_client("events:write").post(
            "/api/v1/integrations/litellm",
            [payload("call-hooli", customer="hooli", cached=0, prompt=1_000_000, completion=0)],
            format="json",
        )
        assert refused.json()["rejected"][0]["error"]["message"] == "unknown customer 'hooli'"

        # when: Finance reads it among the refused records, creates hooli, replays it
        page.goto(f"{base}/admin/billing/refusedrecord/")  # the session of 5 November
        listing = " ".join(page.inner_text("#result_list").split())
        assert "call-hooli" in listing and "Unknown customer" in listing
        page.screenshot(path=os.path.join(output_dir, "3-refused-records.png"), full_page=True)
        subscribe(customer_create(external_id="hooli", name="Hooli", currency="USD"), "tokens")
        row = RefusedRecord.objects.get(call_id="call-hooli")
        page.check(f'input[name="_selected_action"][value="{row.pk}"]')
        page.select_option('select[name="action"]', "replay")
        page.click('button[name="index"]')
        page.wait_for_selector(".messagelist")
        page.screenshot(path=os.path.join(output_dir, "4-replayed.png"), full_page=True)

    # then: the record is marked accepted
    row.refresh_from_db()
    assert row.replay_outcome == "accepted"
