"""A rate card built in a real browser (Debian's Chromium through Playwright,
issue 50): a Finance user adds a draft version whose charge prices LLM tokens by
model and token type, pastes six rows copied from a spreadsheet, sees the one
overlapping row refused in red with why, fixes it, saves, publishes and reads
the card frozen; a new draft copies it. Screenshots are saved in the test's
output directory."""

import os
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.invoicing.close import periods_close
from billing.usage.ingestion import events_ingest
from customers.services import customer_create
from invoices.models import Invoice
from plans.models import Charge, ChargeRate, Plan, PlanVersion
from tests.factories import llm_tokens_meter, subscribe
from tests.invoices.test_invoice_void_browser import pdf_words

# Copied out of a spreadsheet (tab-separated, with its header row). gpt-4o's
# output tokens match row 2 (gpt-4o) and row 5 (output) equally.
# Prices per 1,000,000 tokens.
PASTED = (
    "model\ttoken_type\tunit_price\tper\n"
    "gpt-4o\tinput\t2.50\t1000000\n"
    "gpt-4o\t\t5.00\t1000000\n"
    "claude-sonnet\tinput\t3.00\t1000000\n"
    "claude-sonnet\toutput\t15.00\t1000000\n"
    "\toutput\t8.00\t1000000\n"
    "\t\t4.00\t1000000\n"
)
# Row 2 says what gpt-4o's output tokens cost: no overlap left.
FIXED = PASTED.replace("gpt-4o\t\t5.00", "gpt-4o\toutput\t10.00")


@pytest.mark.django_db(transaction=True)
def test_finance_pastes_a_rate_card_fixes_an_overlap_and_publishes(
    live_server, browser_page, output_dir
):
    # given: a meter of tokens broken down by model and token type, a plan, Finance
    llm_tokens_meter()
    plan = Plan.objects.create(code="ai", name="AI")
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/plans/planversion/add/%3Fplan%3D{plan.pk}")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#id_currency")

    # when: a draft version with a soft cap charge on LLM tokens, its card pasted
    page.select_option("#id_currency", label="USD — US Dollar")
    page.fill("#id_base_fee", "0")
    page.locator("a.djn-add-handler.djn-model-plans-charge").first.click()
    page.click("#charges-0 .select2-selection")
    page.fill(".select2-search__field", "llm")
    page.locator(".select2-results__option", has_text="LLM tokens").click()
    page.select_option("#id_charges-0-model", "overage")
    page.fill("#id_charges-0-included_units", "0")
    page.fill("#id_charges-0-rate_card", PASTED)
    page.click("input[name=_continue]")

    # then: refused, row 5 in red with why, the others not; nothing saved
    page.wait_for_selector("tr.rate-row-refused")
    refused = page.locator("tr.rate-row-refused")
    assert refused.count() == 1
    assert refused.get_attribute("data-row") == "5"
    assert page.locator('tr[data-problem-row="5"] .rate-problem').inner_text() == (
        "Row 2 (model gpt-4o) and row 5 (token_type output) match the same usage "
        "(model gpt-4o, token_type output) equally: add a row naming both values, "
        "or change one of them"
    )
    assert page.locator("tr.rate-row").count() == 6
    assert page.locator(".field-rate_card .errorlist").inner_text() == (
        "Refused rows: 5. Each is marked in red in the grid, with why."
    )
    assert PlanVersion.objects.count() == 0
    page.locator("#charges-0 .rate-card-grid").scroll_into_view_if_needed()
    page.screenshot(path=os.path.join(output_dir, "1-overlap-refused.png"), full_page=True)

    # when: finance gives row 2 its token type and price
    page.fill("#id_charges-0-rate_card", FIXED)

    # then: the grid says it shows the rows as last checked
    assert page.locator("#charges-0 .rate-card-grid.rate-card-stale").count() == 1
    assert page.inner_text("#charges-0 .rate-card-stale-note") == (
        "Changed: save to check these rows and see them in the grid."
    )
    page.screenshot(path=os.path.join(output_dir, "1b-row-2-fixed.png"), full_page=True)

    # when: finance saves
    page.click("input[name=_continue]")

    # then: saved; the grid shows the six rows, 'any' where a row names no value
    page.wait_for_selector(".messagelist .success")
    assert page.locator("tr.rate-row-refused").count() == 0
    rows = page.locator("#charges-0 tr.rate-row")
    assert [rows.nth(i).locator("td").all_inner_texts() for i in range(6)] == [
        ["1", "gpt-4o", "input", "2.50", "1,000,000"],
        ["2", "gpt-4o", "output", "10.00", "1,000,000"],
        ["3", "claude-sonnet", "input", "3.00", "1,000,000"],
        ["4", "claude-sonnet", "output", "15.00", "1,000,000"],
        ["5", "any", "output", "8.00", "1,000,000"],
        ["6", "any", "any", "4.00", "1,000,000"],
    ]
    assert page.input_value("#id_charges-0-price_by_text") == "model, token_type"
    version = PlanVersion.objects.get()
    charge = Charge.objects.get(version=version)
    assert [
        (row.when, row.pricing["unit_price"])
        for row in ChargeRate.objects.filter(charge=charge).order_by("position")
    ] == [
        ({"model": "gpt-4o", "token_type": "input"}, "2.50"),
        ({"model": "gpt-4o", "token_type": "output"}, "10.00"),
        ({"model": "claude-sonnet", "token_type": "input"}, "3.00"),
        ({"model": "claude-sonnet", "token_type": "output"}, "15.00"),
        ({"token_type": "output"}, "8.00"),
        ({}, "4.00"),
    ]
    page.locator("#charges-0 .rate-card-grid").scroll_into_view_if_needed()
    page.screenshot(path=os.path.join(output_dir, "2-card-saved.png"), full_page=True)

    # when: finance publishes the version
    page.click("#publish-version")
    page.click("input[name=_confirm]")

    # then: the card is shown, frozen
    page.wait_for_url(f"{base}/admin/plans/planversion/{version.pk}/change/")
    assert page.locator("textarea").count() == 0
    assert page.locator("tr.rate-row").count() == 6
    assert page.inner_text("#charges-0 .field-price_by .charge-term-value") == "model, token_type"
    page.screenshot(path=os.path.join(output_dir, "3-published.png"), full_page=True)

    # and: a new draft copies the card, ready to edit
    # (the page already shows "published": wait for the new draft's own page)
    with page.expect_navigation():
        page.click("#new-draft")
    draft = PlanVersion.objects.get(number=2)
    assert page.input_value("#id_charges-0-rate_card").splitlines() == [
        "model,token_type,unit_price,per",
        "gpt-4o,input,2.50,1000000",
        "gpt-4o,output,10.00,1000000",
        "claude-sonnet,input,3.00,1000000",
        "claude-sonnet,output,15.00,1000000",
        ",output,8.00,1000000",
        ",,4.00,1000000",
    ]
    assert ChargeRate.objects.filter(charge__version=draft).count() == 6
    assert Charge.objects.get(version=draft).unit_price is None
    assert ChargeRate.objects.get(charge__version=draft, when={}).pricing["per"] == "1000000"

    # when: a customer on the published card uses tokens in November; the month closes
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "ai")
    sent = [
        ("gpt-4o", "input", 1_000_000),
        ("gpt-4o", "output", 200_000),
        ("claude-sonnet", "output", 100_000),
        ("llama-3", "output", 50_000),
        ("llama-3", "input", 10_000),
    ]
    events_ingest(
        events=[
            {
                "id": f"t{i}",
                "customer": "acme",
                "event_name": "llm.tokens",
                "timestamp": f"2026-11-1{i}T10:00:00Z",
                "properties": {"tokens": n, "model": model, "token_type": token_type},
            }
            for i, (model, token_type, n) in enumerate(sent)
        ],
        now=datetime(2026, 11, 20, tzinfo=UTC),
    )
    periods_close(as_of=datetime(2026, 12, 1, tzinfo=UTC))
    invoice = Invoice.objects.get(subscription=subscription, reason="period")

    # then: finance downloads the invoice's PDF from its page: a line per row
    # under the charge, named by its row's values (llama-3's output tokens by
    # the token_type output row), each price per 1M; 2.50 + 2.00 + 1.50 + 0.40 + 0.04
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    with page.expect_download() as download:
        page.click(f'a[href="/admin/invoices/invoice/{invoice.pk}/pdf/"]')
    with open(download.value.path(), "rb") as pdf:
        text = pdf_words(pdf.read())
    assert (
        "LLM tokens gpt-4o · input 1,000,000 2.50 per 1M 2.50 "
        "gpt-4o · output 200,000 10.00 per 1M 2.00 "
        "claude-sonnet · output 100,000 15.00 per 1M 1.50 "
        "output 50,000 8.00 per 1M 0.40 "
        "other usage 10,000 4.00 per 1M 0.04"
    ) in text, text
    assert "Total USD 6.44" in text, text
