"""A price change read back in a real browser (Debian's Chromium through
Playwright): a Finance user (the role setup_roles makes) lowers tier 2 of a
draft's graduated token price on its page, then reads the change on the price
history, sees the tier highlighted beside the published version, and tries the
draft's prices on 1,500,000 tokens. Screenshots are saved in the test's output
directory."""

import os
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from plans.pricing import PricingSpec, TierSpec
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft, tax_rate_create
from plans.validation import ChargeSpec
from tests.factories import MeterFactory, published_version

PASSWORD = "price-history-1"


def usd(text: str) -> str:
    return f"{text} USD"


@pytest.mark.django_db(transaction=True)
def test_finance_changes_a_tier_and_reads_it_back(live_server, browser_page, output_dir):
    # given: pro v1 (49.00, 12.50 a seat; tokens over 1,000 at 0.002 up to 1,000,000,
    # then 0.0015), its draft v2, a sales tax, and a Finance user
    MeterFactory(code="llm_tokens", name="LLM tokens", aggregation="sum", value_property="tokens")
    pro = published_version(
        "pro",
        base_fee=D("49.00"),
        seat_price=D("12.50"),
        charges=(
            ChargeSpec(
                "llm_tokens",
                "overage",
                D(1000),
                pricing=PricingSpec(
                    "graduated",
                    tiers=(TierSpec(D(1000000), D("0.002")), TierSpec(None, D("0.0015"))),
                ),
            ),
        ),
    )
    draft = plan_version_copy_as_draft(version=pro)
    tax_rate_create(code="us_ca", name="Sales tax", percentage=D("8.25"))
    call_command("setup_roles", stdout=StringIO())
    finance = User.objects.create_user("fin", password=PASSWORD, is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    change_url = f"{base}/admin/plans/planversion/{draft.pk}/change/"

    # when: finance logs in, opens the draft and lowers tier 2 to 0.001
    page.goto(f"{base}/admin/login/?next=/admin/plans/planversion/{draft.pk}/change/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(change_url)
    tier_2 = page.locator('input[name="charges-0-tiers-1-unit_price"]')
    assert tier_2.input_value() == "0.0015"
    tier_2.fill("0.001")
    page.screenshot(path=os.path.join(output_dir, "1-draft-tier-2.png"), full_page=True)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert version_spec(version=draft).charges[0].pricing.tiers[1].unit_price == D("0.001")

    # then: the history says so, first, with who made it
    page.click("a.historylink")
    page.wait_for_selector("#price-history")
    newest = page.locator("#price-history tr.price-change").first
    assert newest.locator(".who").inner_text() == "fin"
    assert newest.locator(".when").inner_text().endswith(" UTC")
    assert newest.locator("ul.change-lines li").all_inner_texts() == [
        f"LLM tokens, tier 2: unit price {usd('0.0015')} → {usd('0.001')}"
    ]
    page.screenshot(path=os.path.join(output_dir, "2-price-history.png"), full_page=True)

    # and the comparison with v1 highlights tier 2, and only it
    page.goto(change_url)
    page.click("#compare-published")
    page.wait_for_selector("#compare-summary")
    changed = page.locator("table.compare tr.changed")
    assert changed.count() == 1
    assert changed.locator("th").inner_text() == "Tier 2"
    assert changed.locator("td").all_inner_texts() == [
        f"up to: no limit, unit price {usd('0.0015')}",
        f"up to: no limit, unit price {usd('0.001')}",
        f"unit price {usd('0.0015')} → {usd('0.001')}",
    ]
    assert page.inner_text("#compare-summary") == (
        "1 row differs from the published version, highlighted below."
    )
    page.screenshot(path=os.path.join(output_dir, "3-compare.png"), full_page=True)

    # and trying 1,500,000 tokens and 3 seats in November with the sales tax gives
    # 49.00 + 37.50 + 1,000,000 x 0.002 + 499,000 x 0.001 = 2,585.50, tax 213.30 (8.25 %)
    page.goto(change_url)
    page.click("#try-prices")
    page.fill("#id_quantity_0", "1500000")
    page.fill("#id_seats", "3")
    page.fill("#id_period_start", "2026-11-01")
    page.fill("#id_period_end", "2026-12-01")
    page.select_option("#id_tax_rate", label="Sales tax 8.25 % (us_ca)")
    page.click("#try-prices-form input[type=submit]")
    page.wait_for_selector("#sandbox-total")
    assert page.locator("#sandbox-invoice tr.invoice-line td:last-child").all_inner_texts() == [
        usd("49.00"),
        usd("37.50"),
        usd("2,000.00"),
        usd("499.00"),
    ]
    assert page.inner_text("#sandbox-subtotal td.amount") == usd("2,585.50")
    assert page.inner_text(".sandbox-tax td.amount") == usd("213.30")
    assert page.inner_text("#sandbox-total td.amount") == usd("2,798.80")
    page.screenshot(path=os.path.join(output_dir, "4-try-prices.png"), full_page=True)
