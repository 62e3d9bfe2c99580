"""Issue 76: a plan version's page and a subscription's page read by a French and
a German user in a real browser (Debian's Chromium through Playwright) 1366 px
wide: the buttons above the page (longer in French and German) do not cover its
title. Screenshots are saved in the test's output directory and in /tmp/shots/
(SHOTS_DIR), to be looked at."""

import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User

from config.user_language import user_language_set
from plans.services import plan_version_copy_as_draft
from tests.factories import CustomerFactory, published_version, subscribe

PASSWORD = "admin-words-1"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)
SHOTS_DIR = os.environ.get("SHOTS_DIR", "/tmp/shots")  # noqa: S108 (looked at by hand)


def overlap(page, first: str, second: str) -> bool:
    """Whether the boxes of two elements of the page cross."""
    a, b = page.locator(first).bounding_box(), page.locator(second).bounding_box()
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["fr", "de"])
def test_the_buttons_leave_the_title_readable_at_1366_px(
    live_server, browser_page, output_dir, settings, language
):
    # given: a published version with a subscriber, and a French or German admin user
    settings.BILLING_INVOICE_PDFS = False
    with time_machine.travel(NOV_11, tick=False):
        version = published_version("pro", currency="EUR", base_fee=D("39.90"))
        acme = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
        subscription = subscribe(acme, version.plan, NOV_1)
        draft = plan_version_copy_as_draft(version=version)
    user = User.objects.create_superuser(f"user_{language}", password=PASSWORD)
    user_language_set(user=user, language=language)
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    os.makedirs(SHOTS_DIR, exist_ok=True)

    pages = {
        "plan-version": f"/admin/plans/planversion/{version.pk}/change/",
        "plan-version-draft": f"/admin/plans/planversion/{draft.pk}/change/",
        "subscription": f"/admin/billing/subscription/{subscription.pk}/change/",
    }
    covered = []
    for name, url in pages.items():
        # when: they open the page
        page.goto(f"{base}{url}")
        shot = os.path.join(output_dir, f"{name}-{language}.png")
        page.screenshot(path=shot, full_page=False)
        shutil.copy(shot, os.path.join(SHOTS_DIR, f"{name}-{language}.png"))

        # then: the title and the buttons do not cross
        for title in ("#content > h1", "#content > h2"):
            if overlap(page, title, "#content .object-tools"):
                covered.append((name, title))
    assert covered == []
