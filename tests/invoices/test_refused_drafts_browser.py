"""Finance resolves a refused e-invoice draft in a real browser (Debian's Chromium
through Playwright): the stacked default rate that refused it is unticked in the
admin, then the draft's own page rebuilds it from the current settings with one
button, and it is issued; another refused draft is discarded from its page.
Screenshots under test-output/."""

import os
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from invoices.models import Invoice
from plans.models import TaxRate
from tests.invoices import test_refused_drafts

pytestmark = pytest.mark.django_db(transaction=True)

# The refused draft of test_refused_drafts (two stacked default rates), made alike.
quiet = test_refused_drafts.quiet
refused = test_refused_drafts.refused


@pytest.fixture
def finance_page(live_server, browser_page):
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    return page, base


def test_finance_fixes_the_rates_and_rebuilds_the_draft_from_its_page(
    refused, finance_page, output_dir
):
    _client, draft = refused
    page, base = finance_page
    page.goto(f"{base}/admin/invoices/invoice/{draft.pk}/change/")
    box = page.locator(".e-invoice-refused")
    assert box.locator("td.rule").first.inner_text() == "EINV-VAT-STACKED"
    assert box.locator("button.rebuild").inner_text() == (
        "Rebuild from current settings and finalize"
    )
    page.screenshot(path=os.path.join(output_dir, "1-refused.png"), full_page=True)

    # Finance unticks the stray default rate in the admin.
    world = TaxRate.objects.get(code="world")
    page.goto(f"{base}/admin/plans/taxrate/{world.pk}/change/")
    page.uncheck("#id_is_default")
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/plans/taxrate/")
    world.refresh_from_db()
    assert not world.is_default

    # One button on the draft's page: rebuilt, checked, numbered and issued.
    page.goto(f"{base}/admin/invoices/invoice/{draft.pk}/change/")
    with page.expect_navigation():  # back on the same page, answered by the rebuild
        page.click("button.rebuild")
    assert page.locator(".messagelist li").inner_text() == ("FR-2026-000001 rebuilt and finalized")
    assert page.locator(".e-invoice-refused").count() == 0
    page.screenshot(path=os.path.join(output_dir, "2-rebuilt.png"), full_page=True)
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.tax, draft.total) == (
        Invoice.FINALIZED,
        "FR-2026-000001",
        D("27.98"),
        D("167.88"),
    )


def test_finance_discards_a_refused_draft_from_its_page(refused, finance_page, output_dir):
    _client, draft = refused
    page, base = finance_page
    page.goto(f"{base}/admin/invoices/invoice/{draft.pk}/change/")
    with page.expect_navigation(url=f"{base}/admin/invoices/invoice/"):
        page.click("button.discard")
    assert page.locator(".messagelist li").inner_text() == (
        f"Draft #{draft.pk} discarded: the next close bills its period again"
    )
    page.screenshot(path=os.path.join(output_dir, "3-discarded.png"), full_page=True)
    assert not Invoice.objects.filter(pk=draft.pk).exists()
