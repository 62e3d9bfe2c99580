"""Cancelling a subscription with a prepaid commit now, its access left
credited, in a real browser (Debian's Chromium through Playwright): the
subscription's page, Cancel…, the form, the confirmation (screenshot copied to
$SCREENSHOTS_DIR when set), then the subscription canceled and the note issued."""

import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User

from billing.models import Subscription
from invoices.models import Invoice
from tests.wallets.test_commits import (
    S27_PREPAID,
    catalog,  # noqa: F401 (the fixture)
    customer_on_plan,
    post_usage,
    sign,
)
from wallets.commit_models import Commit

SHOTS = os.environ.get("SCREENSHOTS_DIR", "")


@pytest.mark.usefixtures("catalog")
@pytest.mark.django_db(transaction=True)
def test_cancel_now_crediting_the_commit_through_the_confirmation(
    live_server, browser_page, output_dir
):
    # given: acme on the AI plan with the S27 commit, 300.00 of tokens used
    customer, subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=300_000)
    User.objects.create_superuser("ops", password="ops-password-1")
    page = browser_page

    def shot(name: str) -> None:
        path = os.path.join(output_dir, name)
        page.screenshot(path=path, full_page=True)
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            shutil.copy(path, os.path.join(SHOTS, name))

    change = f"{live_server.url}/admin/billing/subscription/{subscription.pk}/change/"
    with time_machine.travel(datetime(2026, 11, 16, 9, tzinfo=UTC), tick=True):
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "ops-password-1")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        # when: the subscription's page, Cancel…, now, the rest credited
        page.goto(change)
        page.click("a.cancel-subscription")
        page.wait_for_selector("#cancel-form")
        assert "11,700.00 USD of access" in page.inner_text("#cancel-form")
        page.check('input[name="effective"][value="immediate"]')
        page.check('input[name="commit_leftover"][value="credit"]')
        page.click("#cancel-form input[type=submit]")

        # then: the confirmation states it; nothing written yet
        page.wait_for_selector("ul.consequences")
        shot("cancel-confirm.png")
        consequences = page.inner_text("ul.consequences")
        commit = Commit.objects.get(customer=customer)
        assert (
            "the 11,700.00 USD of access left is credited by a credit note on its invoice "
            f"{commit.invoice.number}" in consequences
        )
        assert "-300.00 USD" in consequences
        assert Subscription.objects.get(pk=subscription.pk).status == Subscription.ACTIVE

        # when: confirmed
        page.click("input[name=_confirm]")
        page.wait_for_url(f"**/admin/billing/subscription/{subscription.pk}/change/")
        assert "is canceled" in page.inner_text("ul.messagelist")

    commit.refresh_from_db()
    assert commit.status == Commit.CANCELED
    (note,) = commit.invoice.credit_notes.all()
    assert note.subtotal == D("11700.00")
    assert Invoice.objects.filter(customer=customer, reason=Invoice.CANCEL).exists()
