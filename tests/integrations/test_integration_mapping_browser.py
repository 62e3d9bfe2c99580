"""Mapping a gateway's model name in a real browser (Debian's Chromium through
Playwright), at 1366 px: a LiteLLM call arrives with a fine-tuned model's name S35's
card does not know; Finance opens the source, sees it flagged as priced at the default
row, maps it onto gpt-4o and saves; the flag is gone. Screenshots in the test's
output directory."""

import os

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.integration_models import IntegrationSource
from tests.integrations.test_litellm_ingest import payload, post

PASSWORD = "map-the-models-1"
# Neither the card nor its bare name (without provider and date) knows it.
DATED = "openai/acme-ft-gpt-4o-2025"
UNKNOWN = "not on the rate card: priced at the default row"


@pytest.mark.django_db(transaction=True)
def test_finance_maps_a_model_the_card_does_not_know(s35, live_server, browser_page, output_dir):
    # given: a call with the fine-tuned model's name, and a Finance user
    received = post([payload("call-1", model=DATED, cached=0, prompt=1_000_000, completion=40)])
    assert received.status_code == 202 and received.json()["calls"] == 1, received.json()
    call_command("setup_roles", verbosity=0)
    user = User.objects.create_user("finance", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})
    listing = f"{base}/admin/billing/integrationsource/"
    page.goto(f"{base}/admin/login/?next=/admin/billing/integrationsource/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url(listing)

    # when: Finance opens LiteLLM among the three sources
    assert page.locator("#result_list tbody tr").count() == 3
    page.click("#result_list a:text-is('LiteLLM')")
    page.wait_for_selector("#integrationsource_form")

    # then: the call is in the preview and its model is flagged
    flagged = page.locator("tr.unknown-model")
    assert flagged.count() == 1
    assert DATED in flagged.inner_text() and UNKNOWN in flagged.inner_text()
    assert "call-1" in page.locator(".field-recent_calls").inner_text()
    page.screenshot(path=os.path.join(output_dir, "1-unknown-model.png"), full_page=True)

    # when: the model is mapped onto the card's gpt-4o and saved
    page.fill("#id_models", f"{DATED} = gpt-4o")
    page.click('input[name="_continue"]')
    page.wait_for_selector(".messagelist .success")

    # then: it is stored, and the page no longer flags it
    row = IntegrationSource.objects.get(source="litellm")
    assert row.models == {DATED: "gpt-4o"} and row.updated_by == "finance"
    assert page.locator("tr.unknown-model").count() == 0
    assert UNKNOWN not in page.content()
    assert page.locator("#id_models").input_value() == f"{DATED} = gpt-4o"
    page.screenshot(path=os.path.join(output_dir, "2-mapped.png"), full_page=True)
